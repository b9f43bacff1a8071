//! Every pinned version of the test environment, in one place. Changing one here
//! changes the cache keys, so the affected binaries or images are rebuilt.

/// Kubernetes release whose kube-apiserver, kube-controller-manager and kubectl are
/// built; the minor that Cluster API v1.14's k8s.io libraries use (v0.36.x).
pub const KUBERNETES: &str = "v1.36.3";
/// etcd server (go.etcd.io/etcd/server/v3): the release kubeadm v1.36 deploys
/// (`DefaultEtcdVersion` 3.6.8-0), so one build serves the management plane and the
/// workload clusters' `registry.k8s.io/etcd` image.
pub const ETCD: &str = "v3.6.8";
/// The tag kubeadm v1.36.3 computes for its etcd image.
pub const ETCD_IMAGE_TAG: &str = "3.6.8-0";
/// CoreDNS, the version kubeadm v1.36.3 deploys (`CoreDNSVersion`).
pub const COREDNS: &str = "v1.14.2";
/// pause, built from `build/pause/linux/pause.c` of the Kubernetes module; the tag
/// kubeadm v1.36.3 computes (`PauseVersion`) and containerd's sandbox image.
pub const PAUSE: &str = "3.10.2";
/// crictl (sigs.k8s.io/cri-tools), the minor matching Kubernetes.
pub const CRI_TOOLS: &str = "v1.36.0";
/// Cluster API release: core, kubeadm bootstrap and control-plane managers, clusterctl.
pub const CLUSTER_API: &str = "v1.14.0";
/// kind (sigs.k8s.io/kind), the release Cluster API v1.14.0's test module pins: the
/// end-to-end suite's management cluster, created from the project's node image.
pub const KIND: &str = "v0.32.0";
/// The provider's previous release for `clusterctl upgrade` tests (there is no published
/// one): version and the commit of this repository it is built from (`builds/previous.rs`).
/// 4098349: the kind suite's first complete state, before fixed container addresses and
/// the restart-policy grace, so an upgrade to the current build changes behaviour.
pub const PREVIOUS_RELEASE: (&str, &str) = ("v0.1.0", "4098349955ca695e794da61eae1d2e63e9ebbc04");
/// Debian suite the images are built from.
pub const DEBIAN_SUITE: &str = "bookworm";
/// Tilt (github.com/tilt-dev/tilt), built by `cargo xtask tilt` for the Tiltfile's dev loop.
pub const TILT: &str = "v0.34.0";
/// CAPD, Cluster API's Go Docker provider (module sigs.k8s.io/cluster-api/test), built
/// by `cargo xtask bench` to run side by side with capd-rs. Same release as the core.
pub const CAPD: &str = CLUSTER_API;
