//! A private management plane for one provider: a kube-apiserver of the environment's
//! build on the environment's etcd under an etcd prefix of its own, the Cluster API core
//! manager against it (with the kubeadm bootstrap and control-plane managers when a
//! scenario needs real clusters), and the provider's CRDs. The shared plane of `cargo xtask up`
//! is left alone: other engineers' tests use its DockerCluster/DockerMachine CRDs while
//! the benchmark runs, and CAPD's CRDs carry the same names as ours.

use crate::capi::{self, CapiManager};
use crate::probe;
use anyhow::{anyhow, bail, Context, Result};
use capd_testenv::{b64, free_port, manifests, TestEnv};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// etcd of the environment (`cargo xtask up`), client port.
const ETCD_PORT: u16 = capd_testenv::DEFAULT_ETCD_CLIENT_PORT;

pub struct Plane {
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    pub etcd_prefix: String,
    /// Webhook port reserved for a provider that serves conversion webhooks (CAPD).
    pub provider_webhook_port: u16,
    procs: Vec<Proc>,
    wiped: bool,
    /// Its name (`<run>-<provider tag>`), for log file names.
    name: String,
}

/// A process of the plane, with its log for errors.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

pub fn log_dir(env: &TestEnv) -> PathBuf {
    env.state.log_dir.join("bench")
}

/// Starts `bin args`, output to `log`, in our process group (Ctrl-C stops it too).
pub fn spawn(bin: &Path, args: &[String], envs: &[(&str, &str)], log: &Path) -> Result<Child> {
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d)?;
    }
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
pub async fn stop_child(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn alive(name: &str, child: &mut Child, log: &Path) -> Result<()> {
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => bail!("{name} exited ({status}); see {}", log.display()),
        Err(e) => bail!("{name}: {e}"),
    }
}

/// Server-side applies `docs`; waits for the CRDs among them to be Established.
pub async fn apply(client: &kube::Client, docs: &[serde_json::Value]) -> Result<()> {
    manifests::apply(client, "capd-bench", docs).await?;
    manifests::wait_established(client, &manifests::crd_names(docs), Duration::from_secs(60))
        .await?;
    Ok(())
}

/// [`manifests::wire_crd`] with the conversion webhook at 127.0.0.1:`webhook_port`.
pub fn wire_crd(doc: &mut serde_json::Value, webhook_port: u16, ca_b64: &str) {
    manifests::wire_crd(
        doc,
        &format!("https://127.0.0.1:{webhook_port}/convert"),
        ca_b64,
    );
}

pub fn ca_b64(env: &TestEnv) -> Result<String> {
    let ca =
        std::fs::read(env.state.pki_dir.join("ca.crt")).context("reading the environment's CA")?;
    Ok(b64(ca))
}

impl Plane {
    /// kube-apiserver (fresh etcd prefix) + Cluster API CRDs, core manager and webhooks;
    /// with `kubeadm`, also the kubeadm bootstrap and control-plane managers.
    pub async fn start(
        env: &TestEnv,
        capi_module: &Path,
        name: &str,
        kubeadm: bool,
    ) -> Result<Plane> {
        let pki = &env.state.pki_dir;
        let dir = env
            .state
            .log_dir
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join("bench")
            .join(name);
        std::fs::create_dir_all(&dir)?;
        let logs = log_dir(env);
        let port = free_port()?;
        let etcd_prefix = format!("/capd-bench-{name}");
        let args = capd_testenv::apiserver_flags(
            pki,
            &format!("http://127.0.0.1:{ETCD_PORT}"),
            Some(&etcd_prefix),
            port,
            &dir.join("apiserver"),
        );
        let mut plane = Plane {
            kubeconfig: dir.join("admin.kubeconfig"),
            // Replaced below, once the API server answers.
            client: env.kube_client().await?,
            etcd_prefix,
            provider_webhook_port: free_port()?,
            procs: Vec::new(),
            wiped: false,
            name: name.to_string(),
        };
        let api_log = logs.join(format!("{name}-kube-apiserver.log"));
        let child = spawn(&env.bin("kube-apiserver"), &args, &[], &api_log)?;
        plane.procs.push(Proc {
            name: "kube-apiserver".into(),
            child,
            log: api_log.clone(),
        });

        let kubeconfig = env.admin_kubeconfig_for(&format!("https://127.0.0.1:{port}"))?;
        std::fs::write(&plane.kubeconfig, kubeconfig)
            .with_context(|| format!("writing {}", plane.kubeconfig.display()))?;
        plane.client = capd_testenv::client_from_kubeconfig_file(&plane.kubeconfig).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            plane.alive()?;
            let req = http_get_request("/readyz")?;
            if plane.client.request_text(req).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the bench kube-apiserver is not ready after 120s; see {}",
                    api_log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        plane.start_manager(env, capi_module, &capi::CORE).await?;
        if kubeadm {
            plane
                .start_manager(env, capi_module, &capi::KUBEADM_BOOTSTRAP)
                .await?;
            plane
                .start_manager(env, capi_module, &capi::KUBEADM_CONTROL_PLANE)
                .await?;
        }
        Ok(plane)
    }

    /// A Cluster API manager: its CRDs with conversion to its webhook server, the
    /// manager, then its webhook configurations (once it serves them).
    async fn start_manager(
        &mut self,
        env: &TestEnv,
        capi_module: &Path,
        m: &CapiManager,
    ) -> Result<()> {
        let ca = ca_b64(env)?;
        let ports = capi::Ports {
            webhook: free_port()?,
            health: free_port()?,
            metrics: free_port()?,
        };
        let dir = capi_module.join(m.dir);
        let mut crds = manifests::read_dir_docs(&dir.join("config/crd/bases"))?;
        for d in &mut crds {
            wire_crd(d, ports.webhook, &ca);
        }
        apply(&self.client, &crds)
            .await
            .with_context(|| format!("installing {}'s CRDs", m.name))?;
        let log = log_dir(env).join(format!("{}-{}.log", self.name, m.name));
        let args = m.args(&self.kubeconfig, &env.state.pki_dir.join("webhook"), ports);
        let child = spawn(
            &env.bin(m.bin),
            &args,
            &[("POD_NAMESPACE", "capi-system")],
            &log,
        )?;
        self.procs.push(Proc {
            name: m.name.to_string(),
            child,
            log: log.clone(),
        });
        let idx = self.procs.len() - 1;
        probe::wait_http_ok(ports.health, "/readyz", Duration::from_secs(120), || {
            let p = &mut self.procs[idx];
            alive(&p.name, &mut p.child, &p.log)
        })
        .await?;
        let mut hooks = manifests::read_docs(&dir.join("config/webhook/manifests.yaml"))?;
        for h in &mut hooks {
            m.wire_webhook_configuration(h, ports.webhook, &ca);
        }
        apply(&self.client, &hooks)
            .await
            .with_context(|| format!("registering {}'s webhooks", m.name))?;
        Ok(())
    }

    /// Fails when a process of the plane has exited.
    pub fn alive(&mut self) -> Result<()> {
        for p in &mut self.procs {
            alive(&p.name, &mut p.child, &p.log)?;
        }
        Ok(())
    }

    /// Stops the plane's processes and deletes its etcd prefix.
    pub async fn stop(mut self) -> Result<()> {
        self.stop_inner().await
    }

    async fn stop_inner(&mut self) -> Result<()> {
        while let Some(mut p) = self.procs.pop() {
            stop_child(&mut p.child, Duration::from_secs(15)).await;
        }
        if !self.wiped {
            self.wiped = true;
            wipe_etcd_prefix(&self.etcd_prefix).await?;
        }
        Ok(())
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

pub fn http_get_request(path: &str) -> Result<http::Request<Vec<u8>>> {
    http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| anyhow!("{e}"))
}

/// Deletes every key under `prefix/` through etcd's JSON gateway.
pub async fn wipe_etcd_prefix(prefix: &str) -> Result<()> {
    if !prefix.starts_with("/capd-bench-") {
        bail!("refusing to delete etcd keys outside /capd-bench-*: {prefix}");
    }
    // The range [prefix/, prefix0) is every key under prefix/ ('0' follows '/').
    let body = serde_json::json!({"key": b64(&format!("{prefix}/")), "range_end": b64(&format!("{prefix}0"))}).to_string();
    let (code, text) = probe::http(ETCD_PORT, "POST", "/v3/kv/deleterange", Some(&body)).await?;
    if code != 200 {
        bail!("etcd deleterange {prefix}: HTTP {code}: {text}");
    }
    Ok(())
}
