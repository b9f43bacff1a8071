//! A second kube-apiserver on the environment's etcd (under its own key prefix), for
//! tests that need another cluster: a workload cluster, or a plane of its own.

use crate::{poll_until, Error, TestEnv};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Stops the server when dropped.
pub struct ExtraApiServer {
    child: Child,
    pub port: u16,
    /// Admin kubeconfig pointing at it (same CA and admin credentials as the environment).
    pub kubeconfig: String,
}

impl Drop for ExtraApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| Error::StateMissing { path: "127.0.0.1:0".into(), source })?;
    l.local_addr().map(|a| a.port()).map_err(|source| Error::StateMissing { path: "127.0.0.1:0".into(), source })
}

impl ExtraApiServer {
    /// Starts it with keys under `/<prefix>` in etcd and waits until it serves.
    pub async fn start(env: &TestEnv, prefix: &str) -> Result<Self, Error> {
        let port = free_port()?;
        let pki = &env.state.pki_dir;
        let etcd = env
            .state
            .components
            .iter()
            .find(|c| c.name == "etcd")
            .and_then(|c| c.ports.get("client").copied())
            .unwrap_or(23791);
        let log_path = env.state.log_dir.join(format!("extra-apiserver-{prefix}-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|source| Error::StateMissing { path: log_path.clone(), source })?;
        let err = log.try_clone().map_err(|source| Error::StateMissing { path: log_path.clone(), source })?;
        let child = Command::new(env.bin("kube-apiserver"))
            .args(crate::apiserver_flags(
                pki,
                &format!("http://127.0.0.1:{etcd}"),
                Some(&format!("/{prefix}")),
                port,
                &std::env::temp_dir().join(format!("capd-rs-extra-{port}")),
            ))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|source| Error::StateMissing { path: env.bin("kube-apiserver"), source })?;
        let admin = std::fs::read_to_string(&env.state.kubeconfig)
            .map_err(|source| Error::StateMissing { path: env.state.kubeconfig.clone(), source })?;
        let kubeconfig = admin.replace(&env.state.api_server_url, &format!("https://127.0.0.1:{port}"));
        let server = Self { child, port, kubeconfig };
        let client = server.client().await?;
        poll_until(&format!("the extra kube-apiserver on 127.0.0.1:{port} (log {})", log_path.display()), Duration::from_secs(90), || {
            let client = client.clone();
            async move { client.apiserver_version().await.map(|_| ()).map_err(|e| e.to_string()) }
        })
        .await?;
        Ok(server)
    }

    pub async fn client(&self) -> Result<kube::Client, Error> {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig)
            .map_err(|source| Error::Kubeconfig { path: "(extra apiserver)".into(), source })?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|source| Error::Kubeconfig { path: "(extra apiserver)".into(), source })?;
        Ok(kube::Client::try_from(cfg)?)
    }
}
