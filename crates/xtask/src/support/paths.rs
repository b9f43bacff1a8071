//! Where the environment keeps things: caches (safe to keep across runs, keyed by
//! pinned versions) under `~/.cache/capd-rs`, runtime state under the state dir.

use std::path::PathBuf;

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// `$XDG_CACHE_HOME/capd-rs` or `~/.cache/capd-rs`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache"))
        .join("capd-rs")
}

pub fn state_dir() -> PathBuf {
    capd_testenv::default_state_dir()
}

pub fn log_dir() -> PathBuf {
    state_dir().join("logs")
}

pub fn pki_dir() -> PathBuf {
    state_dir().join("pki")
}

/// Symlinks to the Go-built binaries of the pinned versions.
pub fn bin_dir() -> PathBuf {
    state_dir().join("bin")
}

pub fn env_file() -> PathBuf {
    state_dir().join("env.json")
}

/// The workspace root (xtask lives in `crates/xtask`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// The pod network's manifest, relative to the workspace root: baked into the node image
/// and wrapped into the templates by `gen-templates`.
pub const CNI_MANIFEST: &str = "manifests/cni/capd-podnet.yaml";

/// Added to every port of the environment (`CAPD_TESTENV_PORT_OFFSET`), so a second
/// instance with its own state directory can run beside the first (used by the
/// lifecycle test).
pub fn port(base: u16) -> u16 {
    let offset: u16 = std::env::var("CAPD_TESTENV_PORT_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    base.saturating_add(offset)
}
