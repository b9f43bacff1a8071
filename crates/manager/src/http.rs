//! The two small HTTP endpoints: health (/healthz, /readyz) and metrics (/metrics).
//! Plain HTTP/1.1 with one GET per connection: no framework needed for this.

use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct Health {
    pub ready: AtomicBool,
}

async fn serve<F>(listener: TcpListener, handler: F)
where
    F: Fn(&str) -> (u16, &'static str, String) + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let handler = handler.clone();
        tokio::spawn(async move {
            // Read the whole request head: a client may write it in several pieces.
            let mut buf = Vec::with_capacity(512);
            let mut chunk = [0u8; 1024];
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let req = String::from_utf8_lossy(&buf);
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (code, ctype, body) = handler(&path);
            let reason = if code == 200 { "OK" } else if code == 404 { "Not Found" } else { "Service Unavailable" };
            let resp = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

pub async fn health(listener: TcpListener, health: Arc<Health>) {
    serve(listener, move |path| match path {
        "/healthz" => (200, "text/plain", "ok".into()),
        "/readyz" if health.ready.load(Ordering::Relaxed) => (200, "text/plain", "ok".into()),
        "/readyz" => (503, "text/plain", "not ready".into()),
        _ => (404, "text/plain", "not found".into()),
    })
    .await
}

pub async fn metrics(listener: TcpListener, registry: Arc<Registry>) {
    serve(listener, move |path| match path {
        "/metrics" => {
            let mut out = String::new();
            match prometheus_client::encoding::text::encode(&mut out, &registry) {
                Ok(()) => (200, "application/openmetrics-text; version=1.0.0; charset=utf-8", out),
                Err(e) => (503, "text/plain", format!("encoding metrics: {e}")),
            }
        }
        _ => (404, "text/plain", "not found".into()),
    })
    .await
}
