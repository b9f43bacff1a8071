//! Typed read views of the Cluster API core objects the controllers read
//! (`cluster.x-k8s.io/v1beta2` Cluster, Machine and MachinePool): only the fields used, every field
//! defaulted, unknown fields ignored, so they deserialize any real object.
//!
//! They implement `kube::Resource` (usable with `Api<Cluster>`, watches, owner references).
//! They are views: never write one back whole (`replace`, a full apply), that would drop every
//! field they do not know. Write with a merge patch of the fields you mean to change.

mod cluster;
mod machine;
mod machine_pool;

pub use cluster::{
    Cluster, ClusterClassRef, ClusterInitialization, ClusterNetwork, ClusterSpec, ClusterStatus,
    ClusterTopology, NetworkRanges,
};
pub use machine::{
    Bootstrap, Machine, MachineInitialization, MachineNodeReference, MachineSpec, MachineStatus,
};
pub use machine_pool::{MachinePool, MachinePoolMachineSpec, MachinePoolSpec, MachinePoolTemplate};

use serde::{Deserialize, Serialize};

/// A reference to an object of a contract-versioned kind (v1beta2 refs name the API group,
/// not an apiVersion: the version comes from the CRD's contract label).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ContractVersionedObjectReference {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl ContractVersionedObjectReference {
    pub fn is_empty(&self) -> bool {
        self.api_group.is_empty() && self.kind.is_empty() && self.name.is_empty()
    }

    /// Whether it points at `kind` of `group` (any name).
    pub fn is_kind(&self, group: &str, kind: &str) -> bool {
        self.api_group == group && self.kind == kind
    }
}
