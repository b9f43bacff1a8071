//! View of Cluster API's `MachinePool` (v1beta2): what the pool controllers read.

use super::{Bootstrap, ContractVersionedObjectReference};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The fields of `MachinePool.spec` the provider reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cluster.x-k8s.io",
    version = "v1beta2",
    kind = "MachinePool",
    namespaced,
    schema = "disabled",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", default)]
pub struct MachinePoolSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Desired number of machines; Cluster API defaults it to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    pub template: MachinePoolTemplate,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure_domains: Vec<String>,
}

/// `MachinePool.spec.template`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct MachinePoolTemplate {
    pub spec: MachinePoolMachineSpec,
}

/// `MachinePool.spec.template.spec`: what every machine of the pool is made from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct MachinePoolMachineSpec {
    #[serde(skip_serializing_if = "Bootstrap::is_empty")]
    pub bootstrap: Bootstrap,
    #[serde(skip_serializing_if = "ContractVersionedObjectReference::is_empty")]
    pub infrastructure_ref: ContractVersionedObjectReference,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

impl MachinePool {
    /// `spec.replicas`, 1 when unset (Cluster API's default, and CAPD's).
    pub fn replicas(&self) -> i32 {
        self.spec.replicas.unwrap_or(1)
    }

    /// The bootstrap data Secret every machine of the pool runs, once written.
    pub fn bootstrap_data_secret_name(&self) -> Option<&str> {
        self.spec
            .template
            .spec
            .bootstrap
            .data_secret_name
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    pub fn version(&self) -> Option<&str> {
        Some(self.spec.template.spec.version.as_str()).filter(|v| !v.is_empty())
    }
}
