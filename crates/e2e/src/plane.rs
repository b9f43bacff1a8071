//! A second, throw-away management plane (etcd + kube-apiserver from the environment's
//! binaries, on free ports, with the environment's certificates) for tests that
//! install things cluster-wide, such as `clusterctl init`, and must not touch the
//! shared environment other tests rely on.

use crate::proc::Proc;
use anyhow::{bail, Context, Result};
use capd_testenv::{free_port, TestEnv};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct ScratchPlane {
    /// Admin kubeconfig (the environment's admin client certificate, this plane's URL).
    pub kubeconfig: PathBuf,
    pub url: String,
    pub dir: PathBuf,
    // Dropped in field order: the API server before etcd.
    apiserver: Proc,
    etcd: Proc,
}

impl ScratchPlane {
    /// Starts etcd and kube-apiserver under `target/capd-e2e/<name>` and waits until the
    /// API server is ready.
    pub async fn start(env: &TestEnv, name: &str) -> Result<Self> {
        let dir = crate::scratch_dir(name)?;
        let (client, peer, secure) = (free_port()?, free_port()?, free_port()?);
        let mut etcd_cmd = Command::new(env.bin("etcd"));
        etcd_cmd.args([
            "--name=scratch".to_string(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{client}"),
            format!("--advertise-client-urls=http://127.0.0.1:{client}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-cluster=scratch=http://127.0.0.1:{peer}"),
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ]);
        let mut etcd = Proc::spawn("scratch etcd", etcd_cmd, &dir.join("etcd.log"))?;
        crate::proc::wait_http_ok(&mut etcd, client, "/health", Duration::from_secs(60)).await?;

        let mut api_cmd = Command::new(env.bin("kube-apiserver"));
        api_cmd.args(capd_testenv::apiserver_flags(
            &env.state.pki_dir,
            &format!("http://127.0.0.1:{client}"),
            None,
            secure,
            &dir.join("apiserver"),
        ));
        let apiserver = Proc::spawn(
            "scratch kube-apiserver",
            api_cmd,
            &dir.join("kube-apiserver.log"),
        )?;

        let url = format!("https://127.0.0.1:{secure}");
        let kubeconfig = dir.join("admin.kubeconfig");
        std::fs::write(
            &kubeconfig,
            env.admin_kubeconfig_for(&url)
                .context("a kubeconfig for the scratch plane")?,
        )
        .with_context(|| format!("writing {}", kubeconfig.display()))?;
        let mut plane = Self {
            kubeconfig,
            url,
            dir,
            apiserver,
            etcd,
        };
        plane.wait_ready(env, Duration::from_secs(120)).await?;
        Ok(plane)
    }

    async fn wait_ready(&mut self, env: &TestEnv, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.etcd.check_running()?;
            self.apiserver.check_running()?;
            let out = crate::cmd::kubectl(env, &self.kubeconfig)
                .args(["get", "--raw", "/readyz"])
                .output();
            if matches!(&out, Ok(o) if o.status.success()) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "scratch kube-apiserver {} not ready after {timeout:?}; log {}:\n{}",
                    self.url,
                    self.apiserver.log.display(),
                    self.apiserver.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// A kube client for this plane, as the environment's admin.
    pub async fn client(&self) -> Result<kube::Client> {
        Ok(capd_testenv::client_from_kubeconfig_file(&self.kubeconfig)
            .await
            .context("scratch plane kubeconfig")?)
    }
}
