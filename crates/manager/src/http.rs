//! The two small HTTP endpoints: health (/healthz, /readyz) and metrics (/metrics), served
//! by hyper (already in the dependency tree through the engine client).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, warn};

pub struct Health {
    /// Ready to serve its role: the leader once its caches synced, a standby once the
    /// election said it is one (see main.rs).
    pub ready: AtomicBool,
}

type Answer = (StatusCode, &'static str, String);

/// Accepts connections until the process ends; a failing `accept` (e.g. out of file
/// descriptors) is logged and retried after a growing pause instead of spinning.
async fn serve<F>(listener: TcpListener, handler: F)
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let mut pause = Duration::from_millis(10);
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => {
                pause = Duration::from_millis(10);
                sock
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?pause, "accepting a connection failed");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (code, ctype, body) = handler(req.uri().path());
                async move {
                    let resp = Response::builder().status(code).header("content-type", ctype).body(http_body_util::Full::new(hyper::body::Bytes::from(body)));
                    // The builder only fails on invalid header values; ours are constants.
                    Ok::<_, Infallible>(resp.unwrap_or_else(|_| Response::new(http_body_util::Full::new(hyper::body::Bytes::new()))))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(5)).serve_connection(TokioIo::new(sock), service);
            if let Err(e) = conn.await {
                debug!(error = %e, "health/metrics connection");
            }
        });
    }
}

fn text(code: StatusCode, body: &str) -> Answer {
    (code, "text/plain", body.to_string())
}

pub async fn health(listener: TcpListener, health: Arc<Health>) {
    serve(listener, move |path| match path {
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if health.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ok"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    })
    .await
}

pub async fn metrics(listener: TcpListener, registry: Arc<Registry>) {
    serve(listener, move |path| match path {
        "/metrics" => {
            let mut out = String::new();
            match prometheus_client::encoding::text::encode(&mut out, &registry) {
                Ok(()) => (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", out),
                Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("encoding metrics: {e}")),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    })
    .await
}
