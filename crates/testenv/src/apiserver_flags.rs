//! The kube-apiserver flags of every plane the environment starts: the shared one of
//! `cargo xtask up`, a second server on its etcd (workload clusters, the benchmark's
//! private planes) and the end-to-end tests' scratch planes.

use std::path::Path;

/// Flags for a kube-apiserver on 127.0.0.1:`port` with the environment's certificates
/// in `pki_dir` (CA, serving pair, service-account keys); keys under `etcd_prefix`
/// when given (several servers share one etcd).
pub fn apiserver_flags(
    pki_dir: &Path,
    etcd_url: &str,
    etcd_prefix: Option<&str>,
    port: u16,
    cert_dir: &Path,
) -> Vec<String> {
    let p = |f: &str| pki_dir.join(f).display().to_string();
    let mut flags = vec![format!("--etcd-servers={etcd_url}")];
    if let Some(prefix) = etcd_prefix {
        flags.push(format!("--etcd-prefix={prefix}"));
    }
    flags.extend([
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", cert_dir.display()),
        format!("--tls-cert-file={}", p("apiserver.crt")),
        format!("--tls-private-key-file={}", p("apiserver.key")),
        format!("--client-ca-file={}", p("ca.crt")),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
        // No pods run here, so nothing needs tokens mounted into them.
        "--disable-admission-plugins=ServiceAccount".into(),
        "--authorization-mode=RBAC".into(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", p("sa.pub")),
        format!("--service-account-signing-key-file={}", p("sa.key")),
        // The advertise address is loopback; don't publish it as the `kubernetes` Service endpoint.
        "--endpoint-reconciler-type=none".into(),
        "--v=1".into(),
    ]);
    flags
}
