//! A second kube-apiserver on the environment's etcd (under its own key prefix), for
//! tests that need another cluster: a workload cluster, or a plane of its own.

use crate::{client_from_kubeconfig_yaml, free_port, poll_until, Error, TestEnv};
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

impl ExtraApiServer {
    /// Starts it with keys under `/<prefix>` in etcd and waits until it serves.
    pub async fn start(env: &TestEnv, prefix: &str) -> Result<Self, Error> {
        let port = free_port()?;
        let pki = &env.state.pki_dir;
        let etcd = env.etcd_client_port();
        let log_path = env
            .state
            .log_dir
            .join(format!("extra-apiserver-{prefix}-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|source| Error::Io {
            what: format!("creating {}", log_path.display()),
            source,
        })?;
        let err = log.try_clone().map_err(|source| Error::Io {
            what: format!("opening {}", log_path.display()),
            source,
        })?;
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
            .map_err(|source| Error::Io {
                what: format!("starting {}", env.bin("kube-apiserver").display()),
                source,
            })?;
        // Built before the server is waited on: dropping `server` stops the process.
        let mut server = Self {
            child,
            port,
            kubeconfig: String::new(),
        };
        server.kubeconfig = env.admin_kubeconfig_for(&format!("https://127.0.0.1:{port}"))?;
        let client = server.client().await?;
        poll_until(
            &format!(
                "the extra kube-apiserver on 127.0.0.1:{port} (log {})",
                log_path.display()
            ),
            Duration::from_secs(90),
            || {
                let client = client.clone();
                async move {
                    client
                        .apiserver_version()
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await?;
        Ok(server)
    }

    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_from_kubeconfig_yaml(&self.kubeconfig, "(extra apiserver)").await
    }
}
