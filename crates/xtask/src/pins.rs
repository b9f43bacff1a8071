//! Every pinned version of the test environment, in one place. Changing one here
//! changes the cache keys, so the affected binaries or images are rebuilt.

/// Kubernetes release whose kube-apiserver, kube-controller-manager and kubectl are
/// built; the minor that Cluster API v1.14's k8s.io libraries use (v0.36.x).
pub const KUBERNETES: &str = "v1.36.3";
/// etcd server (go.etcd.io/etcd/server/v3); the 3.6 line that Cluster API v1.14 uses.
pub const ETCD: &str = "v3.6.14";
/// Cluster API release: core, kubeadm bootstrap and control-plane managers, clusterctl.
pub const CLUSTER_API: &str = "v1.14.0";
/// Debian suite the images are built from.
pub const DEBIAN_SUITE: &str = "bookworm";
/// Tilt (github.com/tilt-dev/tilt), built by `cargo xtask tilt` for the Tiltfile's dev loop.
pub const TILT: &str = "v0.34.0";
/// CAPD, Cluster API's Go Docker provider (module sigs.k8s.io/cluster-api/test), built
/// by `cargo xtask bench` to run side by side with capd-rs. Same release as the core.
pub const CAPD: &str = CLUSTER_API;
