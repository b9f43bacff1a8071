//! The provider's kinds in `infrastructure.cluster.x-k8s.io/v1beta1`, as CAPD v1.14 still
//! serves them (deprecated, not stored): the schema of that version in our CRDs, and typed
//! (de)serialization of v1beta1 objects.
//!
//! Field for field CAPD's v1beta1 API: JSON names, optionality, required fields, enums and
//! limits, print columns. Where v1beta1 differs from v1beta2 it keeps its own shape:
//! `failureDomains` is a map `name -> {controlPlane, attributes}`, `status.ready` is the
//! v1beta1 contract's provisioned flag, `status.conditions` are Cluster API v1beta1
//! conditions (with `severity`), and the v1beta2 `metav1.Condition`s live under
//! `status.v1beta2.conditions`.
//!
//! Every optional field is an `Option` (or, for types reused from v1beta2, an empty collection
//! or string that is skipped), so an object read and written back is unchanged: what was
//! absent stays absent, what was set, even to `false`, `0` or `[]`, stays set. (Go's encoder
//! would instead drop zero `omitempty` values and write zero values of the other fields.)
//!
//! There is no conversion here: objects are converted between versions at JSON level
//! elsewhere. Only two capd-rs admission rules that do not exist in CAPD's v1beta1 schema are
//! carried over from v1beta2, because they hold whatever version a request uses:
//! `customImage` immutability on DockerMachine (CAPD's webhook, which also sees v1beta1
//! requests) and the refusal of the in-memory backend on DevCluster and DevMachine.
//!
//! CAPD serves no v1beta1 of DevMachinePool and DevMachinePoolTemplate (they were added in
//! v1beta2), so neither does this module.

pub mod common;
pub mod dev;
pub mod docker;
pub mod machine_pool;

pub use common::{
    ApiEndpoint, DockerLoadBalancer, FailureDomainSpec, FailureDomains, LocalObjectReference,
    Mount, V1Beta2Status,
};
pub use dev::{DevCluster, DevClusterTemplate, DevMachine, DevMachineTemplate};
pub use docker::{DockerCluster, DockerClusterTemplate, DockerMachine, DockerMachineTemplate};
pub use machine_pool::{DockerMachinePool, DockerMachinePoolTemplate};

/// The API version of this module's kinds.
pub const API_VERSION: &str = "infrastructure.cluster.x-k8s.io/v1beta1";

#[cfg(test)]
mod tests;
