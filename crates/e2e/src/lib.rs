//! Support for the packaging and end-to-end tests of capd-rs: everything here drives
//! real parts (cargo, docker, kube-apiserver, etcd, clusterctl, kubectl, Tilt) and
//! reports failures naming the command, file or object involved.
//!
//! The tests live in `tests/`:
//! - `image.rs`: the Dockerfile builds offline and the image runs `--help`;
//! - `manifests.rs`: the deployment manifests are well-formed and match the manager's flags;
//! - `rbac.rs`: the real manager with exactly the ClusterRole's permissions provisions a cluster;
//! - `clusterctl.rs`: `clusterctl init` with the local repository, `clusterctl generate cluster`;
//! - `tilt.rs`: `tilt ci` with the repository's Tiltfile;
//! - `e2e.rs`: the provider's image run as its Deployment runs it, against the test environment;
//! - `kind.rs`: a kind management cluster, `clusterctl init`, the quick start, self-hosted.

pub mod artifacts;
pub mod certs;
pub mod cmd;
pub mod kind;
pub mod plane;
pub mod proc;
pub mod rbac;
pub mod steps;
pub mod workload;
pub mod yaml;

use std::path::PathBuf;

/// The repository root (this crate lives in `crates/e2e`).
pub fn repo_root() -> PathBuf {
    capd_testenv::workspace_root()
        .canonicalize()
        .unwrap_or_else(|_| capd_testenv::workspace_root())
}

/// A scratch directory under `target/capd-e2e/<name>`, emptied first.
pub fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let dir = repo_root().join("target/capd-e2e").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
