//! HTTP transport to the engine with a short connect timeout.
//!
//! bollard's own transports only bound the whole request, and its unix transport
//! refuses to be built while the socket is missing. Ours connect lazily on every
//! request and give up connecting after `connect_timeout`, so an engine that is
//! gone is reported in seconds while long requests (stop, exec) are not cut short.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

use super::endpoint::Endpoint;
use crate::error::{Error, Result};

/// The API version we start negotiating from; the engine may lower it
/// (Docker 20.10 speaks 1.41).
const CLIENT_VERSION: &ClientVersion = bollard::API_DEFAULT_VERSION;

/// Idle keep-alive connections kept per engine; saves a connect per call.
const POOL_IDLE: usize = 8;

/// Builds a bollard client for `endpoint`. Never touches the network.
pub fn build(
    endpoint: &Endpoint,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Docker> {
    let secs = request_timeout.as_secs().max(1);
    match endpoint {
        Endpoint::Unix(path) => {
            let connector = UnixConnector {
                path: Arc::new(path.clone()),
                timeout: connect_timeout,
            };
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(POOL_IDLE)
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
            let transport = move |req: BollardRequest| {
                let client = client.clone();
                async move {
                    client
                        .request(req)
                        .await
                        .map_err(bollard::errors::Error::from)
                }
            };
            // The host part is a placeholder: the connector ignores it.
            Docker::connect_with_custom_transport(
                transport,
                Some("http://docker.sock"),
                secs,
                CLIENT_VERSION,
            )
        }
        Endpoint::Tcp { authority } => {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(connect_timeout));
            connector.set_nodelay(true);
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(POOL_IDLE)
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
            let transport = move |req: BollardRequest| {
                let client = client.clone();
                async move {
                    client
                        .request(req)
                        .await
                        .map_err(bollard::errors::Error::from)
                }
            };
            Docker::connect_with_custom_transport(
                transport,
                Some(format!("http://{authority}")),
                secs,
                CLIENT_VERSION,
            )
        }
    }
    .map_err(|e| Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: e.to_string(),
    })
}

/// Connects to a unix socket, bounded by a timeout.
#[derive(Clone)]
struct UnixConnector {
    path: Arc<PathBuf>,
    timeout: Duration,
}

impl tower_service::Service<hyper::Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: hyper::Uri) -> Self::Future {
        let path = self.path.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, UnixStream::connect(path.as_path())).await {
                Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
                Ok(Err(e)) => Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                )),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{}: connect timed out after {timeout:?}", path.display()),
                )),
            }
        })
    }
}
