//! The provider under test as a process: capd-rs's manager or CAPD's, started out of
//! cluster against a private plane, with what is read from it (metrics, /proc).

use crate::plane::{self, Plane};
use crate::probe;
use anyhow::{Context, Result};
use capd_testenv::{free_port, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Contender {
    #[value(name = "capd-rs")]
    #[serde(rename = "capd-rs")]
    CapdRs,
    #[value(name = "capd")]
    #[serde(rename = "capd")]
    Capd,
    #[value(name = "raw")]
    #[serde(rename = "raw")]
    Raw,
}

impl Contender {
    pub fn label(self) -> &'static str {
        match self {
            Contender::CapdRs => "capd-rs",
            Contender::Capd => "CAPD",
            Contender::Raw => "raw Docker",
        }
    }
}

pub struct Bins {
    pub manager: PathBuf,
    pub capd: PathBuf,
    pub capd_module: PathBuf,
    /// Extra flags for each manager (profiling experiments).
    pub manager_args: Vec<String>,
    pub capd_args: Vec<String>,
}

/// Installs the provider's CRDs on the plane.
pub async fn install(who: Contender, plane: &Plane, env: &TestEnv, bins: &Bins) -> Result<()> {
    match who {
        Contender::CapdRs => capd_testenv::install_provider_manifests(&plane.client)
            .await
            .context("installing capd-rs's CRDs")?,
        Contender::Capd => {
            let ca = plane::ca_b64(env)?;
            let mut crds = capd_testenv::manifests::read_dir_docs(
                &bins
                    .capd_module
                    .join("infrastructure/docker/config/crd/bases"),
            )?;
            for d in &mut crds {
                plane::wire_crd(d, plane.provider_webhook_port, &ca);
            }
            plane::apply(&plane.client, &crds)
                .await
                .context("installing CAPD's CRDs")?;
        }
        Contender::Raw => {}
    }
    Ok(())
}

/// CAPD's defaulting and validating webhooks, served by its manager: without them a
/// DockerCluster keeps `controlPlaneEndpoint.port` 0 (the webhook defaults it to 6443) and
/// the kubeadm control plane never starts. Registered once CAPD answers, as clusterctl
/// installs them, pointed at 127.0.0.1.
async fn register_capd_webhooks(plane: &Plane, env: &TestEnv, bins: &Bins) -> Result<()> {
    let ca = plane::ca_b64(env)?;
    let path = bins
        .capd_module
        .join("infrastructure/docker/config/webhook/manifests.yaml");
    let mut hooks = capd_testenv::manifests::read_docs(&path)?;
    for h in &mut hooks {
        let name = h["metadata"]["name"]
            .as_str()
            .unwrap_or("webhook-configuration")
            .to_string();
        h["metadata"]["name"] = serde_json::Value::String(format!("capd-{name}"));
        capd_testenv::manifests::wire_webhooks(
            h,
            &format!("https://127.0.0.1:{}", plane.provider_webhook_port),
            &ca,
        );
    }
    plane::apply(&plane.client, &hooks)
        .await
        .context("registering CAPD's webhooks")
}

pub struct Provider {
    pub who: Contender,
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

/// What the metrics endpoint and /proc say at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub cpu_s: f64,
    pub api_requests: f64,
    /// controller → reconciles
    pub reconciles: std::collections::BTreeMap<String, f64>,
    /// controller → (sum of reconcile seconds, count)
    pub reconcile_time: std::collections::BTreeMap<String, (f64, f64)>,
    pub errors: std::collections::BTreeMap<String, f64>,
}

pub const CONTROLLERS: [&str; 2] = ["dockercluster", "dockermachine"];

impl Provider {
    pub async fn start(
        who: Contender,
        plane: &Plane,
        env: &TestEnv,
        bins: &Bins,
        log: &Path,
    ) -> Result<Provider> {
        let (health, metrics) = (free_port()?, free_port()?);
        let kubeconfig = plane.kubeconfig.display().to_string();
        let docker_host = env.docker_host().to_string();
        // Profiling runs may ask for more (e.g. CAPD_BENCH_RUST_LOG=debug); measuring runs log at info.
        let rust_log = std::env::var("CAPD_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
        let (bin, args, envs): (&Path, Vec<String>, Vec<(&str, &str)>) = match who {
            Contender::CapdRs => (
                &bins.manager,
                // The environment's webhook certificate, as CAPD gets it: no issuing, no CRD patches.
                [
                    format!("--kubeconfig={kubeconfig}"),
                    format!("--health-addr=127.0.0.1:{health}"),
                    format!("--diagnostics-address=127.0.0.1:{metrics}"),
                ]
                .into_iter()
                .chain(capd_testenv::support::local_manager_flags(
                    &env.state.pki_dir,
                )?)
                .collect(),
                vec![
                    ("DOCKER_HOST", docker_host.as_str()),
                    ("RUST_LOG", rust_log.as_str()),
                ],
            ),
            Contender::Capd => (
                &bins.capd,
                vec![
                    format!("--kubeconfig={kubeconfig}"),
                    "--leader-elect=false".into(),
                    format!("--webhook-port={}", plane.provider_webhook_port),
                    format!(
                        "--webhook-cert-dir={}",
                        env.state.pki_dir.join("webhook").display()
                    ),
                    format!("--health-addr=127.0.0.1:{health}"),
                    format!("--diagnostics-address=127.0.0.1:{metrics}"),
                    "--insecure-diagnostics".into(),
                ],
                vec![("DOCKER_HOST", docker_host.as_str())],
            ),
            Contender::Raw => anyhow::bail!("raw Docker has no provider process"),
        };
        let extra = if who == Contender::CapdRs {
            &bins.manager_args
        } else {
            &bins.capd_args
        };
        let args: Vec<String> = args.into_iter().chain(extra.iter().cloned()).collect();
        let child = plane::spawn(bin, &args, &envs, log)?;
        let mut p = Provider {
            who,
            child,
            metrics_port: metrics,
            log: log.to_path_buf(),
        };
        let name = who.label();
        let log = p.log.clone();
        probe::wait_http_ok(health, "/readyz", Duration::from_secs(120), || {
            plane::alive(name, &mut p.child, &log)
        })
        .await?;
        if who == Contender::Capd {
            register_capd_webhooks(plane, env, bins).await?;
        }
        Ok(p)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> Result<()> {
        plane::alive(self.who.label(), &mut self.child, &self.log)
    }

    pub async fn snapshot(&self) -> Result<Snapshot> {
        let (code, body) = probe::http(self.metrics_port, "GET", "/metrics", None).await?;
        if code != 200 {
            anyhow::bail!("{} /metrics: HTTP {code}", self.who.label());
        }
        let s = probe::parse_prometheus(&body);
        let mut snap = Snapshot {
            cpu_s: probe::cpu_seconds(self.pid()).unwrap_or(0.0),
            ..Default::default()
        };
        let (requests, reconciles, time, errors) = match self.who {
            Contender::CapdRs => (
                "capd_kube_api_requests_total",
                "capd_reconcile_total",
                "capd_reconcile_duration_seconds",
                "capd_reconcile_errors_total",
            ),
            _ => (
                "rest_client_requests_total",
                "controller_runtime_reconcile_total",
                "controller_runtime_reconcile_time_seconds",
                "controller_runtime_reconcile_errors_total",
            ),
        };
        snap.api_requests = probe::sum(&s, requests, &[]);
        for c in CONTROLLERS {
            snap.reconciles
                .insert(c.into(), probe::sum(&s, reconciles, &[("controller", c)]));
            let sum = probe::sum(&s, &format!("{time}_sum"), &[("controller", c)]);
            let count = probe::sum(&s, &format!("{time}_count"), &[("controller", c)]);
            snap.reconcile_time.insert(c.into(), (sum, count));
            snap.errors
                .insert(c.into(), probe::sum(&s, errors, &[("controller", c)]));
        }
        Ok(snap)
    }

    pub async fn stop(mut self) {
        plane::stop_child(&mut self.child, Duration::from_secs(20)).await;
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
