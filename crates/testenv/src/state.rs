use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Overrides where the environment keeps its state (`env.json`, certificates, data, logs).
pub const STATE_DIR_ENV: &str = "CAPD_TESTENV_DIR";

/// `$CAPD_TESTENV_DIR`, else `$XDG_STATE_HOME/capd-rs/testenv`, else `~/.local/state/capd-rs/testenv`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(STATE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("capd-rs/testenv")
}

/// What `cargo xtask up` brought up; written to `<state dir>/env.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvState {
    /// Admin kubeconfig of the management kube-apiserver.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT` of the management kube-apiserver.
    pub api_server_url: String,
    /// `DOCKER_HOST` value for the engine.
    pub docker_host: String,
    /// Directory holding the Go-built binaries (kube-apiserver, etcd, clusterctl, kubectl, ...).
    pub bin_dir: PathBuf,
    /// Directory holding every component's log file.
    pub log_dir: PathBuf,
    /// Directory holding the generated CA and certificates.
    pub pki_dir: PathBuf,
    /// Locally built images (`name:tag`), tagged with a hash of their recipe.
    pub images: Images,
    /// Processes the environment runs.
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Images {
    /// HAProxy load-balancer image.
    pub haproxy: String,
    /// systemd "node" image (systemd, containerd, runc, iproute2, ...).
    pub node: String,
    /// Base image for the project's own Dockerfile.
    pub base: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub pid: u32,
    pub version: String,
    /// Ports it listens on, by role (`client`, `secure`, `webhook`, `health`, ...).
    pub ports: std::collections::BTreeMap<String, u16>,
    pub log: PathBuf,
}
