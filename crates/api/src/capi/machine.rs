//! View of Cluster API's `Machine` (v1beta2).

use super::ContractVersionedObjectReference;
use crate::common::MachineAddress;
use crate::consts::label;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The fields of `Machine.spec` the provider reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cluster.x-k8s.io",
    version = "v1beta2",
    kind = "Machine",
    namespaced,
    status = "MachineStatus",
    schema = "disabled",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", default)]
pub struct MachineSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Bootstrap::is_empty")]
    pub bootstrap: Bootstrap,
    #[serde(skip_serializing_if = "ContractVersionedObjectReference::is_empty")]
    pub infrastructure_ref: ContractVersionedObjectReference,
    /// Kubernetes version, e.g. "v1.36.0".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(rename = "providerID", skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    /// Failure domain Cluster API chose for the machine.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure_domain: String,
}

/// `Machine.spec.bootstrap`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Bootstrap {
    #[serde(skip_serializing_if = "ContractVersionedObjectReference::is_empty")]
    pub config_ref: ContractVersionedObjectReference,
    /// Secret holding the bootstrap data (key `value`, format in key `format`), once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_secret_name: Option<String>,
}

impl Bootstrap {
    pub fn is_empty(&self) -> bool {
        self.config_ref.is_empty() && self.data_secret_name.is_none()
    }
}

/// The fields of `Machine.status` the provider reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct MachineStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initialization: Option<MachineInitialization>,
    /// Set once the machine's Node exists in the workload cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<MachineNodeReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MachineAddress>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure_domain: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

/// `Machine.status.initialization`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct MachineInitialization {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infrastructure_provisioned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_data_secret_created: Option<bool>,
}

/// `Machine.status.nodeRef` (v1beta2: the Node's name only).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct MachineNodeReference {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Machine {
    /// Control-plane machines carry the `cluster.x-k8s.io/control-plane` label.
    pub fn is_control_plane(&self) -> bool {
        self.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(label::CONTROL_PLANE))
    }

    /// `spec.clusterName`, else the `cluster.x-k8s.io/cluster-name` label.
    pub fn cluster_name(&self) -> Option<&str> {
        if !self.spec.cluster_name.is_empty() {
            return Some(&self.spec.cluster_name);
        }
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label::CLUSTER_NAME))
            .map(String::as_str)
    }

    /// Name of the bootstrap data Secret, once the bootstrap provider has written it.
    pub fn bootstrap_data_secret_name(&self) -> Option<&str> {
        self.spec
            .bootstrap
            .data_secret_name
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// Name of the Node, once Cluster API has found it.
    pub fn node_name(&self) -> Option<&str> {
        self.status
            .as_ref()
            .and_then(|s| s.node_ref.as_ref())
            .map(|n| n.name.as_str())
            .filter(|n| !n.is_empty())
    }

    /// Kubernetes version (`spec.version`), if set.
    pub fn version(&self) -> Option<&str> {
        Some(self.spec.version.as_str()).filter(|v| !v.is_empty())
    }

    /// Failure domain chosen for the machine, if any.
    pub fn failure_domain(&self) -> Option<&str> {
        Some(self.spec.failure_domain.as_str()).filter(|f| !f.is_empty())
    }
}
