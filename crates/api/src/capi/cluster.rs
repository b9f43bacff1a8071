//! View of Cluster API's `Cluster` (v1beta2).

use super::ContractVersionedObjectReference;
use crate::common::ApiEndpoint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The fields of `Cluster.spec` the provider reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cluster.x-k8s.io",
    version = "v1beta2",
    kind = "Cluster",
    namespaced,
    status = "ClusterStatus",
    schema = "disabled",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterSpec {
    /// Pauses reconciliation of the cluster and every object of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(skip_serializing_if = "ApiEndpoint::is_zero")]
    pub control_plane_endpoint: ApiEndpoint,
    #[serde(skip_serializing_if = "ContractVersionedObjectReference::is_empty")]
    pub control_plane_ref: ContractVersionedObjectReference,
    #[serde(skip_serializing_if = "ContractVersionedObjectReference::is_empty")]
    pub infrastructure_ref: ContractVersionedObjectReference,
    /// Present when the cluster is built from a ClusterClass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<ClusterTopology>,
    /// Its pod and service ranges decide the cluster's IP family (IPv4, IPv6, dual).
    #[serde(skip_serializing_if = "ClusterNetwork::is_empty")]
    pub cluster_network: ClusterNetwork,
}

/// The fields of `Cluster.spec.clusterNetwork` the provider reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterNetwork {
    #[serde(skip_serializing_if = "NetworkRanges::is_empty")]
    pub pods: NetworkRanges,
    #[serde(skip_serializing_if = "NetworkRanges::is_empty")]
    pub services: NetworkRanges,
}

impl ClusterNetwork {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.services.is_empty()
    }
}

/// `Cluster.spec.clusterNetwork.{pods,services}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkRanges {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cidr_blocks: Vec<String>,
}

impl NetworkRanges {
    pub fn is_empty(&self) -> bool {
        self.cidr_blocks.is_empty()
    }
}

/// The fields of `Cluster.spec.topology` the provider reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterTopology {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_ref: Option<ClusterClassRef>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// `Cluster.spec.topology.classRef`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterClassRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// The fields of `Cluster.status` the provider reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initialization: Option<ClusterInitialization>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

/// `Cluster.status.initialization`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInitialization {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infrastructure_provisioned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane_initialized: Option<bool>,
}

impl Cluster {
    /// `spec.paused`.
    pub fn spec_paused(&self) -> bool {
        self.spec.paused.unwrap_or(false)
    }

    /// Whether the Cluster itself carries `cluster.x-k8s.io/paused`.
    pub fn has_paused_annotation(&self) -> bool {
        crate::annotations::has_paused_annotation(&self.metadata)
    }

    /// Whether the cluster is built from a ClusterClass.
    pub fn has_topology(&self) -> bool {
        self.spec.topology.is_some()
    }

    /// `status.initialization.infrastructureProvisioned`.
    pub fn infrastructure_provisioned(&self) -> bool {
        self.initialization()
            .and_then(|i| i.infrastructure_provisioned)
            .unwrap_or(false)
    }

    /// `status.initialization.controlPlaneInitialized`.
    pub fn control_plane_initialized(&self) -> bool {
        self.initialization()
            .and_then(|i| i.control_plane_initialized)
            .unwrap_or(false)
    }

    fn initialization(&self) -> Option<&ClusterInitialization> {
        self.status.as_ref().and_then(|s| s.initialization.as_ref())
    }

    /// Conditions of the Cluster (v1beta2 shape).
    pub fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }
}
