//! The manager's HTTP endpoints, served by hyper (already in the tree through the engine
//! client): health (/healthz, /readyz, plain HTTP as kubelet probes them), diagnostics
//! (/metrics: HTTPS with callers authenticated and authorized through the API server as
//! CAPD does, or plain HTTP with --insecure-diagnostics) and the conversion webhook (HTTPS).

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

pub struct Health {
    /// Ready to serve its role: the leader once its caches synced, a standby once the
    /// election said it is one (see main.rs).
    pub ready: AtomicBool,
}

pub type Reply = Response<Full<Bytes>>;
pub type Handler =
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync;

/// The largest request body read (a ConversionReview of many objects fits well below).
const MAX_BODY: usize = 16 << 20;

/// Accepts connections until the process ends; a failing `accept` (e.g. out of file
/// descriptors) is logged and retried after a growing pause instead of spinning.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, handler: Arc<Handler>) {
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
        let (handler, tls) = (handler.clone(), tls.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, Infallible>(h(req).await) }
            });
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .clone();
            let result = match tls {
                Some(tls) => match tokio::time::timeout(Duration::from_secs(5), tls.accept(sock))
                    .await
                {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                    Ok(Err(e)) => return debug!(error = %e, "TLS handshake"),
                    Err(_) => return debug!("TLS handshake timed out"),
                },
                None => http.serve_connection(TokioIo::new(sock), service).await,
            };
            if let Err(e) = result {
                debug!(error = %e, "HTTP connection");
            }
        });
    }
}

pub fn reply(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn text(code: StatusCode, body: &str) -> Reply {
    reply(code, "text/plain", body.to_string())
}

/// Reads a request body up to `MAX_BODY`.
pub async fn body(req: Request<Incoming>) -> Result<Bytes, String> {
    Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| format!("reading the request body: {e}"))
}

pub fn handler<F, Fut>(f: F) -> Arc<Handler>
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

pub fn health(health: Arc<Health>) -> Arc<Handler> {
    handler(move |req| {
        let ready = health.ready.load(Ordering::Relaxed);
        async move {
            match req.uri().path() {
                "/healthz" => text(StatusCode::OK, "ok"),
                "/readyz" if ready => text(StatusCode::OK, "ok"),
                "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready"),
                _ => text(StatusCode::NOT_FOUND, "not found"),
            }
        }
    })
}

/// /metrics; with `auth`, only for callers the API server authenticates (TokenReview) and
/// allows `get` on the non-resource URL /metrics (SubjectAccessReview), as controller-runtime's
/// authenticated metrics server does.
pub fn metrics(registry: Arc<Registry>, auth: Option<kube::Client>) -> Arc<Handler> {
    handler(move |req| {
        let (registry, auth) = (registry.clone(), auth.clone());
        async move {
            if req.uri().path() != "/metrics" {
                return text(StatusCode::NOT_FOUND, "not found");
            }
            if let Some(client) = auth {
                if let Err((code, why)) =
                    crate::authz::allowed(&client, req.headers(), "/metrics", "get").await
                {
                    return text(code, &why);
                }
            }
            let mut out = String::new();
            match prometheus_client::encoding::text::encode(&mut out, &registry) {
                Ok(()) => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    out,
                ),
                Err(e) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("encoding metrics: {e}"),
                ),
            }
        }
    })
}
