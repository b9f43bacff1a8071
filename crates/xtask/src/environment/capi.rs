//! Cluster API on the management plane: its CRDs from the module cache, its three
//! managers running out of cluster, and their webhook and conversion configurations
//! rewritten to `https://127.0.0.1:PORT` with the environment's CA.

use crate::environment::pki::Pki;
use crate::support::procs;
use crate::support::steps::{wait_for, Outcome, StepLog};
use anyhow::{bail, Context, Result};
use capd_testenv::manifests;
use capd_testenv::Component;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Field manager of everything `up` applies.
const FIELD_MANAGER: &str = "capd-rs-testenv";

pub struct Manager {
    pub name: &'static str,
    pub bin: &'static str,
    /// Directory of the manager's sources inside the cluster-api module.
    pub dir: &'static str,
    /// Prefix for its webhook configurations (upstream names collide across managers).
    pub prefix: &'static str,
    pub webhook_port: u16,
    pub health_port: u16,
    pub metrics_port: u16,
    pub extra_args: &'static [&'static str],
}

pub const MANAGERS: [Manager; 3] = [
    Manager {
        name: "capi-controller-manager",
        bin: "capi-manager",
        dir: "core",
        prefix: "capi",
        webhook_port: 16451,
        health_port: 16461,
        metrics_port: 16471,
        // ClusterClass is still behind a gate; users of the Docker provider rely on it.
        extra_args: &["--feature-gates=ClusterTopology=true"],
    },
    Manager {
        name: "capi-kubeadm-bootstrap-controller-manager",
        bin: "capi-kubeadm-bootstrap-manager",
        dir: "bootstrap/kubeadm",
        prefix: "capi-kubeadm-bootstrap",
        webhook_port: 16452,
        health_port: 16462,
        metrics_port: 16472,
        extra_args: &[],
    },
    Manager {
        name: "capi-kubeadm-control-plane-controller-manager",
        bin: "capi-kubeadm-control-plane-manager",
        dir: "controlplane/kubeadm",
        prefix: "capi-kubeadm-control-plane",
        webhook_port: 16453,
        health_port: 16463,
        metrics_port: 16473,
        extra_args: &["--feature-gates=ClusterTopology=true"],
    },
];

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Applies every Cluster API CRD with its conversion webhook pointing at its manager.
pub fn apply_crds(
    _log: &StepLog,
    client: &kube::Client,
    module: &Path,
    pki: &Pki,
) -> Result<Outcome<usize>> {
    let ca = crate::environment::pki::base64_embed(&std::fs::read(pki.ca_crt())?);
    let mut docs = Vec::new();
    for m in &MANAGERS {
        for f in yaml_files(&module.join(m.dir).join("config/crd/bases"))? {
            for mut doc in manifests::read_docs(&f)? {
                let url = format!(
                    "https://127.0.0.1:{}/convert",
                    crate::support::paths::port(m.webhook_port)
                );
                manifests::wire_crd(&mut doc, &url, &ca);
                docs.push(doc);
            }
        }
    }
    let names: Vec<String> = docs
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str().map(String::from))
        .collect();
    apply(client, &docs)?;
    wait_established(client, &names)?;
    Ok(Outcome::Done(names.len()))
}

/// Waits until every named CRD reports `Established=True`.
pub fn wait_established(client: &kube::Client, names: &[String]) -> Result<()> {
    crate::block_on(async {
        Ok(manifests::wait_established(client, names, Duration::from_secs(60)).await?)
    })
}

/// Server-side applies `docs` as the environment's field manager.
pub fn apply(client: &kube::Client, docs: &[serde_json::Value]) -> Result<()> {
    crate::block_on(async { Ok(manifests::apply(client, FIELD_MANAGER, docs).await?) })
}

fn ready(m: &Manager) -> bool {
    matches!(
        procs::http_get(crate::support::paths::port(m.health_port), "/readyz"),
        Ok((200, _))
    )
}

/// Starts a manager out of cluster (or keeps the one still running).
pub fn start_manager(
    _log: &StepLog,
    m: &Manager,
    bin_dir: &Path,
    pki: &Pki,
    prev: &[Component],
) -> Result<Outcome<Component>> {
    let bin = bin_dir.join(m.bin);
    let ports = [
        ("webhook", crate::support::paths::port(m.webhook_port)),
        ("health", crate::support::paths::port(m.health_port)),
        ("metrics", crate::support::paths::port(m.metrics_port)),
    ];
    let log = crate::support::paths::log_dir().join(format!("{}.log", m.name));
    let comp = |pid| Component {
        name: m.name.to_string(),
        pid,
        version: crate::builds::pins::CLUSTER_API.to_string(),
        ports: ports.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        log: log.clone(),
    };
    if let Some(c) = crate::environment::plane::running(prev, m.name, &bin) {
        if ready(m) {
            return Ok(Outcome::Skipped(
                c.clone(),
                format!("running (pid {})", c.pid),
            ));
        }
    }
    for (role, port) in ports {
        if procs::port_open(port) {
            bail!(
                "127.0.0.1:{port} ({role} port of {}) is taken by another process",
                m.name
            );
        }
    }
    let mut args = vec![
        format!(
            "--kubeconfig={}",
            crate::environment::plane::kubeconfig_path().display()
        ),
        "--leader-elect=false".to_string(),
        format!(
            "--webhook-port={}",
            crate::support::paths::port(m.webhook_port)
        ),
        format!("--webhook-cert-dir={}", pki.webhook_dir().display()),
        format!(
            "--health-addr=127.0.0.1:{}",
            crate::support::paths::port(m.health_port)
        ),
        format!(
            "--diagnostics-address=127.0.0.1:{}",
            crate::support::paths::port(m.metrics_port)
        ),
        "--insecure-diagnostics".to_string(),
    ];
    args.extend(m.extra_args.iter().map(|s| s.to_string()));
    let envs = [("POD_NAMESPACE", "capi-system".to_string())];
    let pid = procs::spawn(&bin, &args, &envs, &log)?;
    wait_for(
        &format!("{} /readyz", m.name),
        Duration::from_secs(120),
        || {
            if !procs::alive(pid, &bin.to_string_lossy()) {
                bail!("{} exited; see {}", m.name, log.display());
            }
            Ok(ready(m).then_some(()))
        },
    )?;
    Ok(Outcome::Done(comp(pid)))
}

/// Applies each manager's Mutating/ValidatingWebhookConfiguration, pointed at 127.0.0.1.
pub fn apply_webhooks(
    _log: &StepLog,
    client: &kube::Client,
    module: &Path,
    pki: &Pki,
) -> Result<Outcome<usize>> {
    let ca = crate::environment::pki::base64_embed(&std::fs::read(pki.ca_crt())?);
    let mut docs = Vec::new();
    for m in &MANAGERS {
        let path = module.join(m.dir).join("config/webhook/manifests.yaml");
        for mut doc in manifests::read_docs(&path)? {
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or("webhook-configuration")
                .to_string();
            doc["metadata"]["name"] = serde_json::json!(format!("{}-{name}", m.prefix));
            if let Some(hooks) = doc["webhooks"].as_array_mut() {
                for h in hooks {
                    let path = h["clientConfig"]["service"]["path"]
                        .as_str()
                        .unwrap_or("/")
                        .to_string();
                    h["clientConfig"] = serde_json::json!({
                        "url": format!("https://127.0.0.1:{}{path}", crate::support::paths::port(m.webhook_port)),
                        "caBundle": ca,
                    });
                }
            }
            docs.push(doc);
        }
    }
    apply(client, &docs)?;
    Ok(Outcome::Done(docs.len()))
}
