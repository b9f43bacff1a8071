//! capd-rs API: the provider's kinds in `infrastructure.cluster.x-k8s.io/v1beta2`, drop-in
//! compatible with Cluster API's Docker provider (CAPD) — DockerCluster, DockerMachine and
//! their templates — plus typed views of the Cluster API objects the controllers read, the
//! names they share ([`consts`]), condition helpers, and the generator of the CRD and
//! admission-policy manifests.

pub mod annotations;
pub mod capi;
pub mod common;
pub mod conditions;
pub mod consts;
pub mod conversion;
pub mod crd;
pub mod dev;
pub mod docker_cluster;
pub mod docker_machine;
mod error;
pub mod machine_pool;
pub mod manifests;
pub mod policy;
#[cfg(test)]
mod serde_tests;
pub mod templates;
pub mod v1beta1;
mod yaml;

pub use common::{ApiEndpoint, FailureDomain, MachineAddress, MachineAddressType, TemplateMeta};
pub use conditions::{HasConditions, NewCondition, Status as ConditionStatus};
pub use docker_cluster::{
    DockerCluster, DockerClusterSpec, DockerClusterStatus, DockerLoadBalancer,
};
pub use docker_machine::{DockerMachine, DockerMachineSpec, DockerMachineStatus, Mount};
pub use error::Error;
pub use templates::{
    DockerClusterTemplate, DockerClusterTemplateResource, DockerClusterTemplateSpec,
    DockerMachineTemplate, DockerMachineTemplateResource, DockerMachineTemplateSpec,
    DockerMachineTemplateStatus,
};
