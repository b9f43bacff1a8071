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

pub use apiserver_flags::apiserver_flags;
pub use extra_apiserver::ExtraApiServer;
pub use install::{install_provider_manifests, workspace_root};

pub use poll::{poll_until, PollError};
pub use state::{default_state_dir, Component, EnvState, Images, STATE_DIR_ENV};

use std::path::PathBuf;

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
        let state = serde_json::from_str(&text).map_err(|source| Error::StateInvalid { path, source })?;
        Ok(Self { state })
    }

    /// A client for the management cluster's kube-apiserver, as cluster-admin.
    pub async fn kube_client(&self) -> Result<kube::Client, Error> {
        let path = self.state.kubeconfig.clone();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .map_err(|source| Error::Kubeconfig { path: path.clone(), source })?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|source| Error::Kubeconfig { path, source })?;
        Ok(kube::Client::try_from(config)?)
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
    format!("{prefix}-{:x}{:x}{n}", std::process::id() & 0xfff, nanos & 0xfff)
}
