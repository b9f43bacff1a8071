//! Cluster API's managers on a private plane, out of cluster as `cargo xtask up` runs
//! them on the shared one (crates/xtask/src/environment/capi.rs): each with its CRDs (conversion to
//! its webhook server), its own webhook, health and metrics ports, and its webhook
//! configurations rewritten to `https://127.0.0.1:PORT` under a name of its own.

/// One Cluster API manager of the environment's bin directory.
pub struct CapiManager {
    /// Process name in logs and errors.
    pub name: &'static str,
    /// Binary in the environment's bin directory.
    pub bin: &'static str,
    /// Directory of its sources inside the cluster-api module (`config/crd/bases`,
    /// `config/webhook/manifests.yaml`).
    pub dir: &'static str,
    /// Prefix for its webhook configurations (the upstream names are the same for all three).
    pub prefix: &'static str,
    pub extra_args: &'static [&'static str],
}

/// The core manager (Cluster, MachineDeployment, Machine, ClusterResourceSet, ...).
pub const CORE: CapiManager = CapiManager {
    name: "capi-manager",
    bin: "capi-manager",
    dir: "core",
    prefix: "capi",
    extra_args: &["--feature-gates=ClusterTopology=true"],
};

/// The kubeadm bootstrap provider (KubeadmConfig → bootstrap data Secret).
pub const KUBEADM_BOOTSTRAP: CapiManager = CapiManager {
    name: "capi-kubeadm-bootstrap-manager",
    bin: "capi-kubeadm-bootstrap-manager",
    dir: "bootstrap/kubeadm",
    prefix: "capi-kubeadm-bootstrap",
    extra_args: &[],
};

/// The kubeadm control-plane provider (KubeadmControlPlane, the workload kubeconfig Secret).
pub const KUBEADM_CONTROL_PLANE: CapiManager = CapiManager {
    name: "capi-kubeadm-control-plane-manager",
    bin: "capi-kubeadm-control-plane-manager",
    dir: "controlplane/kubeadm",
    prefix: "capi-kubeadm-control-plane",
    extra_args: &["--feature-gates=ClusterTopology=true"],
};

/// Ports of one manager on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub webhook: u16,
    pub health: u16,
    pub metrics: u16,
}

impl CapiManager {
    /// Its command line against `kubeconfig`, serving webhooks with the certificate in `cert_dir`.
    pub fn args(
        &self,
        kubeconfig: &std::path::Path,
        cert_dir: &std::path::Path,
        ports: Ports,
    ) -> Vec<String> {
        let mut args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            "--leader-elect=false".to_string(),
            format!("--webhook-port={}", ports.webhook),
            format!("--webhook-cert-dir={}", cert_dir.display()),
            format!("--health-addr=127.0.0.1:{}", ports.health),
            format!("--diagnostics-address=127.0.0.1:{}", ports.metrics),
            "--insecure-diagnostics".to_string(),
        ];
        args.extend(self.extra_args.iter().map(|s| s.to_string()));
        args
    }

    /// Its webhook configuration `doc`, renamed `<prefix>-<name>` and pointed at 127.0.0.1.
    pub fn wire_webhook_configuration(
        &self,
        doc: &mut serde_json::Value,
        webhook_port: u16,
        ca_b64: &str,
    ) {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or("webhook-configuration")
            .to_string();
        doc["metadata"]["name"] = serde_json::json!(format!("{}-{name}", self.prefix));
        capd_testenv::manifests::wire_webhooks(
            doc,
            &format!("https://127.0.0.1:{webhook_port}"),
            ca_b64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_configurations_get_distinct_names_and_local_urls() {
        let doc = serde_json::json!({"metadata": {"name": "validating-webhook-configuration"},
            "webhooks": [{"clientConfig": {"service": {"path": "/validate"}}}]});
        let (mut a, mut b) = (doc.clone(), doc);
        KUBEADM_BOOTSTRAP.wire_webhook_configuration(&mut a, 1, "Q0E=");
        KUBEADM_CONTROL_PLANE.wire_webhook_configuration(&mut b, 2, "Q0E=");
        assert_eq!(
            a["metadata"]["name"],
            "capi-kubeadm-bootstrap-validating-webhook-configuration"
        );
        assert_ne!(a["metadata"]["name"], b["metadata"]["name"]);
        assert_eq!(
            b["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:2/validate"
        );
    }

    #[test]
    fn args_name_the_ports_and_gates() {
        let ports = Ports {
            webhook: 1,
            health: 2,
            metrics: 3,
        };
        let args = KUBEADM_CONTROL_PLANE.args(
            std::path::Path::new("/k"),
            std::path::Path::new("/c"),
            ports,
        );
        assert!(args.contains(&"--health-addr=127.0.0.1:2".to_string()));
        assert!(args.contains(&"--feature-gates=ClusterTopology=true".to_string()));
        assert!(!KUBEADM_BOOTSTRAP
            .args(
                std::path::Path::new("/k"),
                std::path::Path::new("/c"),
                ports
            )
            .iter()
            .any(|a| a.starts_with("--feature-gates")));
    }
}
