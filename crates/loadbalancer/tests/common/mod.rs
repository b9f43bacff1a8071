//! Shared by the load-balancer tests: engine, backend servers, a TLS client.
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use capd_loadbalancer::labels::{CLUSTER_LABEL, ROLE_CONTROL_PLANE, ROLE_LABEL};
use capd_runtime::{ContainerRuntime, ContainerSpec, DockerRuntime, NetworkSpec};
use capd_testenv::TestEnv;
pub use capd_testenv::{ENGINE_OVERRIDE_ENV, TEST_LABEL, TEST_NETWORK};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name the backends' test certificate is issued for.
pub const SERVER_NAME: &str = "backend.test";

pub struct Engine {
    pub env: TestEnv,
    pub rt: Arc<dyn ContainerRuntime>,
}

pub fn engine() -> Engine {
    let env = TestEnv::load().expect("test environment (cargo xtask up)");
    let host = std::env::var(ENGINE_OVERRIDE_ENV).unwrap_or_else(|_| env.docker_host().to_string());
    let rt: Arc<dyn ContainerRuntime> =
        Arc::new(DockerRuntime::new(&host).expect("engine address"));
    Engine { env, rt }
}

pub async fn test_network(rt: &dyn ContainerRuntime) -> String {
    rt.ensure_network(&NetworkSpec::bridge(TEST_NETWORK).label(TEST_LABEL, "true"))
        .await
        .expect("test network");
    TEST_NETWORK.to_string()
}

/// Runs `body`, then removes `containers` whatever happened, then re-raises.
pub async fn with_cleanup<F: Future<Output = ()>>(
    rt: &dyn ContainerRuntime,
    containers: &[String],
    body: F,
) {
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    for c in containers {
        if let Err(e) = rt.remove_container(c).await {
            eprintln!("cleanup of {c} failed: {e}");
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A self-signed certificate for [`SERVER_NAME`]: (cert DER, cert+key PEM).
pub fn test_certificate() -> (Vec<u8>, String) {
    let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).unwrap();
    let pem = format!("{}{}", ck.cert.pem(), ck.signing_key.serialize_pem());
    (ck.cert.der().to_vec(), pem)
}

/// A stand-in for a control-plane node: HAProxy (the only image there is) serving
/// HTTPS on 6443, answering every path, /healthz included, with its own name.
/// Labelled like a CAPD control-plane node so the load balancer finds it.
pub fn backend_spec(
    name: &str,
    cluster: &str,
    image: &str,
    network: &str,
    pem: &str,
) -> ContainerSpec {
    let cfg = format!(
        "global
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend https
  bind *:6443 ssl crt /tmp/server.pem
  http-request return status 200 content-type text/plain string \"{name}\"
"
    );
    ContainerSpec::new(name, image)
        .label(TEST_LABEL, "true")
        .label(CLUSTER_LABEL, cluster)
        .label(ROLE_LABEL, ROLE_CONTROL_PLANE)
        .network(network)
        .env("BACKEND_CFG", cfg)
        .env("BACKEND_PEM", pem)
        .entrypoint([
            "sh",
            "-c",
            r#"printf '%s' "$BACKEND_PEM" > /tmp/server.pem && printf '%s' "$BACKEND_CFG" > /tmp/backend.cfg && exec haproxy -W -db -f /tmp/backend.cfg"#,
        ])
}

pub fn tls_connector(cert_der: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert_der.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One fresh connection through 127.0.0.1:`port`: TLS to the backend, GET /,
/// returns the body (the backend's name).
pub async fn fetch(tls: &tokio_rustls::TlsConnector, port: u16) -> Result<String, String> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name =
            rustls::pki_types::ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
        let mut s = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        s.write_all(
            format!("GET / HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        // A peer that closes without close_notify still sent its answer.
        let _ = s.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
            _ => Err(format!("unexpected answer {text:?}")),
        }
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "no answer within 5s".to_string())?
}
