//! Every well-known name the provider shares with Cluster API and CAPD: API group and
//! version, finalizers, condition types and reasons, label and annotation keys.
//!
//! The values are CAPD's (Cluster API v1.14, `test/infrastructure/docker`) and Cluster API
//! core's (`api/core/v1beta2`), so objects written by capd-rs read the same as CAPD's.

/// API group of every provider kind.
pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
/// The one served and stored version.
pub const VERSION: &str = "v1beta2";
/// `GROUP/VERSION`.
pub const API_VERSION: &str = "infrastructure.cluster.x-k8s.io/v1beta2";

/// Cluster API core group (Cluster, Machine).
pub const CAPI_GROUP: &str = "cluster.x-k8s.io";
/// Cluster API core version the typed views read.
pub const CAPI_VERSION: &str = "v1beta2";

/// Finalizers the controllers put on their objects.
pub mod finalizer {
    /// On every DockerCluster until its load balancer is gone.
    pub const DOCKER_CLUSTER: &str = "dockercluster.infrastructure.cluster.x-k8s.io";
    /// On every DockerMachine until its container is gone.
    pub const DOCKER_MACHINE: &str = "dockermachine.infrastructure.cluster.x-k8s.io";
    /// On every DockerMachinePool and DevMachinePool until its machines are gone.
    pub const MACHINE_POOL: &str = "dockermachinepool.infrastructure.cluster.x-k8s.io";
}

/// v1beta2 condition types (`status.conditions[].type`).
pub mod condition {
    /// Summary of the object; mirrored by Cluster API into `InfrastructureReady`.
    pub const READY: &str = "Ready";
    /// Reconciliation is paused (Cluster paused or `cluster.x-k8s.io/paused`).
    pub const PAUSED: &str = "Paused";
    /// DockerCluster: the load-balancer container exists and runs.
    pub const LOAD_BALANCER_AVAILABLE: &str = "LoadBalancerAvailable";
    /// DockerMachine: the node container exists.
    pub const CONTAINER_PROVISIONED: &str = "ContainerProvisioned";
    /// DockerMachine: cgroups inside the node container are usable.
    pub const CGROUPS_READY: &str = "CGroupsReady";
    /// DockerMachine: `spec.preLoadImages` are loaded into the node container.
    pub const PRELOADED_IMAGES_READY: &str = "PreLoadedImagesReady";
    /// DockerMachine: the bootstrap data (cloud-config or Ignition) ran to completion.
    /// (CAPD's v1beta1 name for it was `BootstrapExecSucceeded`, see [`super::v1beta1`].)
    pub const BOOTSTRAP_COMPLETED: &str = "BootstrapCompleted";
    /// The object is being deleted.
    pub const DELETING: &str = "Deleting";
    /// Aggregated availability, as Cluster API names it.
    pub const AVAILABLE: &str = "Available";
    /// DockerMachinePool/DevMachinePool: as many provisioned machines as replicas.
    pub const REPLICAS_READY: &str = "ReplicasReady";
}

/// v1beta2 condition reasons (`status.conditions[].reason`), as CAPD and Cluster API spell them.
pub mod reason {
    pub const READY: &str = "Ready";
    pub const NOT_READY: &str = "NotReady";
    pub const READY_UNKNOWN: &str = "ReadyUnknown";
    pub const AVAILABLE: &str = "Available";
    pub const NOT_AVAILABLE: &str = "NotAvailable";
    pub const DELETING: &str = "Deleting";
    pub const PAUSED: &str = "Paused";
    pub const NOT_PAUSED: &str = "NotPaused";
    pub const PROVISIONED: &str = "Provisioned";
    pub const NOT_PROVISIONED: &str = "NotProvisioned";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const WAITING_FOR_CLUSTER_INFRASTRUCTURE_READY: &str =
        "WaitingForClusterInfrastructureReady";
    pub const WAITING_FOR_CONTROL_PLANE_INITIALIZED: &str = "WaitingForControlPlaneInitialized";
    pub const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapData";
    pub const WAITING_FOR_CONTAINER: &str = "WaitingForContainer";
    pub const WAITING_FOR_CGROUPS: &str = "WaitingForCGroups";
    pub const WAITING_FOR_PRELOADED_IMAGES: &str = "WaitingForPreloadedImages";
    /// BootstrapCompleted=True.
    pub const COMPLETED: &str = "Completed";
    /// BootstrapCompleted=False while bootstrap still runs.
    pub const NOT_COMPLETED: &str = "NotCompleted";
    /// BootstrapCompleted=False after a bootstrap command failed.
    pub const FAILED: &str = "Failed";
    /// ReplicasReady=False while the pool grows or shrinks.
    pub const SCALING_UP: &str = "ScalingUp";
    pub const SCALING_DOWN: &str = "ScalingDown";
    /// ReplicasReady=False while the pool's machines are not all provisioned yet.
    pub const WAITING_FOR_REPLICAS: &str = "WaitingForReplicasReady";
}

/// Names of the deprecated v1beta1 conditions (`status.deprecated.v1beta1.conditions`),
/// still read by Cluster API v1.10 and older.
pub mod v1beta1 {
    pub const READY_CONDITION: &str = "Ready";
    pub const LOAD_BALANCER_AVAILABLE_CONDITION: &str = "LoadBalancerAvailable";
    pub const CONTAINER_PROVISIONED_CONDITION: &str = "ContainerProvisioned";
    pub const BOOTSTRAP_EXEC_SUCCEEDED_CONDITION: &str = "BootstrapExecSucceeded";

    pub const WAITING_FOR_CLUSTER_INFRASTRUCTURE_REASON: &str = "WaitingForClusterInfrastructure";
    pub const WAITING_FOR_BOOTSTRAP_DATA_REASON: &str = "WaitingForBootstrapData";
    pub const CONTAINER_PROVISIONING_FAILED_REASON: &str = "ContainerProvisioningFailed";
    pub const CONTAINER_DELETED_REASON: &str = "ContainerDeleted";
    pub const BOOTSTRAPPING_REASON: &str = "Bootstrapping";
    pub const BOOTSTRAP_FAILED_REASON: &str = "BootstrapFailed";
    pub const LOAD_BALANCER_PROVISIONING_FAILED_REASON: &str = "LoadBalancerProvisioningFailed";
    pub const DELETING_REASON: &str = "Deleting";
    pub const DELETED_REASON: &str = "Deleted";

    pub const SEVERITY_ERROR: &str = "Error";
    pub const SEVERITY_WARNING: &str = "Warning";
    pub const SEVERITY_INFO: &str = "Info";
}

/// Label keys and values.
pub mod label {
    /// On every Cluster API object: the name of its Cluster.
    pub const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
    /// On control-plane Machines (any value, usually empty).
    pub const CONTROL_PLANE: &str = "cluster.x-k8s.io/control-plane";
    /// `--watch-filter` selects objects whose label has the given value.
    pub const WATCH_FILTER: &str = "cluster.x-k8s.io/watch-filter";
    /// Provider label clusterctl puts on every component.
    pub const PROVIDER: &str = "cluster.x-k8s.io/provider";
    pub const PROVIDER_VALUE: &str = "infrastructure-docker";

    /// On CRDs: which of our versions implements a Cluster API contract version.
    pub const CONTRACT_V1BETA1: &str = "cluster.x-k8s.io/v1beta1";
    pub const CONTRACT_V1BETA2: &str = "cluster.x-k8s.io/v1beta2";
    /// On CRDs installed by clusterctl; `clusterctl move` discovers kinds through it.
    pub const CLUSTERCTL: &str = "clusterctl.cluster.x-k8s.io";
    /// Forces `clusterctl move` to move every object of a kind, even outside a Cluster's
    /// owner chain. CAPD does not set it (its objects move with their Cluster), nor do we.
    pub const CLUSTERCTL_MOVE: &str = "clusterctl.cluster.x-k8s.io/move";

    /// Container labels, kind's and CAPD's: the cluster a container belongs to ...
    pub const KIND_CLUSTER: &str = "io.x-k8s.kind.cluster";
    /// ... and its role, one of the `ROLE_*` values.
    pub const KIND_ROLE: &str = "io.x-k8s.kind.role";
    pub const ROLE_CONTROL_PLANE: &str = "control-plane";
    pub const ROLE_WORKER: &str = "worker";
    pub const ROLE_LOAD_BALANCER: &str = "external-load-balancer";

    /// On a MachinePool's Machines and infrastructure machines: the MachinePool's name.
    pub const MACHINE_POOL_NAME: &str = "cluster.x-k8s.io/pool-name";
    /// Container labels CAPD puts on a pool's node containers: the DockerMachinePool's
    /// (or DevMachinePool's) name.
    pub const DOCKER_MACHINE_POOL: &str = "docker.cluster.x-k8s.io/machine-pool";
    pub const DEV_MACHINE_POOL: &str = "dev.cluster.x-k8s.io/machine-pool";
}

/// Annotation keys.
pub mod annotation {
    /// On any object (or its Cluster): do not reconcile it.
    pub const PAUSED: &str = "cluster.x-k8s.io/paused";
    /// On an infra cluster: someone else manages it, leave it alone.
    pub const MANAGED_BY: &str = "cluster.x-k8s.io/managed-by";
    /// Set by the ClusterClass topology controller on server-side-apply dry-run requests;
    /// template immutability lets those through.
    pub const TOPOLOGY_DRY_RUN: &str = "topology.cluster.x-k8s.io/dry-run";
    /// On a Machine: delete this one first when its set or pool scales down.
    pub const DELETE_MACHINE: &str = "cluster.x-k8s.io/delete-machine";
}

/// Names used in the CRD manifests that are not object fields.
pub mod names {
    /// Category shared with every Cluster API kind: `kubectl get cluster-api`.
    pub const CATEGORY: &str = "cluster-api";
}
