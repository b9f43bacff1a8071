//! The contract between the test-environment tool (`cargo xtask up`) and every
//! integration test: where the management plane's kubeconfig is, which Docker
//! engine to use, which locally built images exist, where the Go-built binaries are.
//!
//! `cargo xtask up` writes [`EnvState`] as JSON; tests call [`TestEnv::load`].

mod apiserver_flags;
mod extra_apiserver;
mod install;
pub mod manifests;
mod poll;
mod state;
pub mod support;

pub use apiserver_flags::apiserver_flags;
pub use extra_apiserver::ExtraApiServer;
pub use install::{install_provider_manifests, workspace_root};

pub use poll::{poll_until, PollError};
pub use state::{default_state_dir, Component, EnvState, Images, STATE_DIR_ENV};
pub use support::{
    b64, free_port, http_get, HttpGetError, DEFAULT_ETCD_CLIENT_PORT, ENGINE_OVERRIDE_ENV,
    TEST_LABEL, TEST_NETWORK,
};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("test environment state {path} not readable ({source}); bring the environment up with `cargo xtask up`")]
    StateMissing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("test environment state {path} is not valid JSON: {source}")]
    StateInvalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
    #[error("manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("applying {what}: {source}")]
    Apply { what: String, source: kube::Error },
    #[error(transparent)]
    Timeout(#[from] PollError),
    #[error("finding a free port on 127.0.0.1: {0}")]
    FreePort(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{} does not name {url}; cannot derive a kubeconfig for another API server from it", path.display())]
    KubeconfigServer { path: PathBuf, url: String },
}

/// A handle on the running test environment.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub state: EnvState,
}

impl TestEnv {
    /// Reads the state written by `cargo xtask up` (from `$CAPD_TESTENV_DIR` or the
    /// default state directory). Fails with a message that says how to bring it up.
    pub fn load() -> Result<Self, Error> {
        let dir = default_state_dir();
        let path = dir.join("env.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::StateMissing {
            path: path.clone(),
            source,
        })?;
        let state =
            serde_json::from_str(&text).map_err(|source| Error::StateInvalid { path, source })?;
        Ok(Self { state })
    }

    /// A client for the management cluster's kube-apiserver, as cluster-admin.
    pub async fn kube_client(&self) -> Result<kube::Client, Error> {
        client_from_kubeconfig_file(&self.state.kubeconfig).await
    }

    /// The admin kubeconfig (the environment's CA and admin client certificate) pointed
    /// at another kube-apiserver, `url` (`https://127.0.0.1:PORT`), as YAML text: for a
    /// second server on the environment's certificates.
    pub fn admin_kubeconfig_for(&self, url: &str) -> Result<String, Error> {
        let path = &self.state.kubeconfig;
        let admin = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        if !admin.contains(&self.state.api_server_url) {
            return Err(Error::KubeconfigServer {
                path: path.clone(),
                url: self.state.api_server_url.clone(),
            });
        }
        Ok(admin.replace(&self.state.api_server_url, url))
    }

    /// Client port of the environment's etcd, as `env.json` records it
    /// ([`DEFAULT_ETCD_CLIENT_PORT`] when it does not).
    pub fn etcd_client_port(&self) -> u16 {
        self.state
            .components
            .iter()
            .find(|c| c.name == "etcd")
            .and_then(|c| c.ports.get("client").copied())
            .unwrap_or(DEFAULT_ETCD_CLIENT_PORT)
    }

    /// `docker` against the environment's engine (`DOCKER_HOST` set).
    pub fn docker(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("docker");
        cmd.env("DOCKER_HOST", self.docker_host());
        cmd
    }

    /// `DOCKER_HOST` of the engine the environment set up, e.g. `unix:///var/run/docker.sock`.
    pub fn docker_host(&self) -> &str {
        &self.state.docker_host
    }

    /// Path of a Go-built binary of the environment (`kube-apiserver`, `etcd`, `clusterctl`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.state.bin_dir.join(name)
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig_file(path: &Path) -> Result<kube::Client, Error> {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
    client_from_kubeconfig(kubeconfig, path).await
}

/// A kube client from kubeconfig text; `origin` names it in errors (a Secret, a server).
pub async fn client_from_kubeconfig_yaml(yaml: &str, origin: &str) -> Result<kube::Client, Error> {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(yaml).map_err(|source| Error::Kubeconfig {
            path: origin.into(),
            source,
        })?;
    client_from_kubeconfig(kubeconfig, Path::new(origin)).await
}

async fn client_from_kubeconfig(
    kubeconfig: kube::config::Kubeconfig,
    origin: &Path,
) -> Result<kube::Client, Error> {
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|source| Error::Kubeconfig {
            path: origin.to_path_buf(),
            source,
        })?;
    Ok(kube::Client::try_from(config)?)
}

/// A name unique to this test run, for namespaces and clusters: `<prefix>-<pid hex><counter>`.
/// Kept short and DNS-1123 so it also fits container names.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{:x}{:x}{n}",
        std::process::id() & 0xfff,
        nanos & 0xfff
    )
}
