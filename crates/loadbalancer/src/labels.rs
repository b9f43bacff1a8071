//! Container labels shared with CAPD and kind (so tools that know kind clusters
//! recognise ours), plus the one capd-rs adds.

/// Cluster a container belongs to.
pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// Role of the container in its cluster.
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";
pub const ROLE_LOAD_BALANCER: &str = "external-load-balancer";
pub const ROLE_CONTROL_PLANE: &str = "control-plane";
pub const ROLE_WORKER: &str = "worker";
/// UID of the cluster object that created the container: tells a container of an
/// earlier (deleted) cluster of the same name, or of a same-named cluster in another
/// namespace, from our own.
pub const CLUSTER_UID_LABEL: &str = "io.x-k8s.capd-rs.cluster-uid";
