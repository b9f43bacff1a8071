//! /metrics as CAPD serves it by default: HTTPS, and only for callers the API server
//! authenticates (TokenReview) and authorizes for `get /metrics` (SubjectAccessReview).

mod common;

use capd_testenv::{poll_until, unique_name};
use common::Fixture;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET https://127.0.0.1:port/metrics, trusting the environment's CA: (status, body).
async fn get_metrics(f: &Fixture, port: u16, token: Option<&str>) -> Result<(u16, String), String> {
    let ca = std::fs::read(f.env.state.pki_dir.join("ca.crt")).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    tls.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await; // a close without close_notify still gave us the answer
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok((
        code,
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

#[tokio::test]
async fn metrics_are_served_over_https_to_authorized_callers_only() {
    let f = Fixture::new("diag").await;
    let m = f.manager(&["--insecure-diagnostics=false"]).await;

    let (code, _) = get_metrics(&f, m.metrics_port, None).await.unwrap();
    assert_eq!(code, 401, "no token");

    let sa_name = "scraper";
    let sas: Api<ServiceAccount> = Api::namespaced(f.client.clone(), &f.ns);
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": sa_name}})).unwrap(),
    )
    .await
    .unwrap();
    let req: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 600}}))
            .unwrap();
    let token = sas
        .create_token_request(sa_name, &PostParams::default(), &req)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap_or_default();

    let (code, body) = get_metrics(&f, m.metrics_port, Some(&token)).await.unwrap();
    assert_eq!(code, 403, "authenticated but not authorized: {body}");
    assert!(
        body.contains(&format!("system:serviceaccount:{}:{sa_name}", f.ns)),
        "{body}"
    );

    let role_name = unique_name("capd-metrics-reader");
    let roles: Api<ClusterRole> = Api::all(f.client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(f.client.clone());
    roles
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": role_name}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]})).unwrap())
        .await
        .unwrap();
    bindings
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": role_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": f.ns}]})).unwrap())
        .await
        .unwrap();
    let body = poll_until(
        "/metrics answers 200 once the role is bound",
        Duration::from_secs(30),
        || {
            let (f, token) = (&f, token.clone());
            async move {
                match get_metrics(f, m.metrics_port, Some(&token)).await {
                    Ok((200, body)) => Ok(body),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    let _ = bindings.delete(&role_name, &DeleteParams::default()).await;
    let _ = roles.delete(&role_name, &DeleteParams::default()).await;
    let body = body.unwrap();
    assert!(body.contains("capd_kube_api_requests"), "{body}");
}
