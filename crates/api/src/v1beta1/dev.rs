//! DevCluster, DevMachine and their templates in v1beta1, as CAPD v1.14 serves them. As in
//! v1beta2, only the docker backend is implemented: `spec.backend.inMemory` parses (it is
//! CAPD's schema) and is refused at admission with a message.

// Clippy reads the repeated `type_ = "string"` of kube's printcolumn(...) as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use super::common::{ApiEndpoint, DockerLoadBalancer, FailureDomains, Mount, V1Beta2Status};
use crate::common::{MachineAddress, TemplateMeta, V1Beta1Condition};
use crate::dev::{InMemoryClusterBackendSpec, InMemoryMachineBackendSpec};
#[allow(unused_imports)] // used inside the `kube` attributes
use kube::core::{Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The admission rule of the Dev* kinds, the same as v1beta2's (a v1beta1 object is stored
/// as v1beta2 and must be one the controllers can reconcile).
const DOCKER_BACKEND_ONLY: &str = "capd-rs implements the docker backend only: set spec.backend.docker (spec.backend.inMemory is not supported)";

/// DevClusterSpec defines the desired state of DevCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DevCluster",
    namespaced,
    status = "DevClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DevCluster is the schema for the dev cluster infrastructure API (v1beta1; docker backend: a load-balancer container).",
    validation = Rule::new("has(self.spec.backend.docker) && !has(self.spec.backend.inMemory)")
        .message(DOCKER_BACKEND_ONLY)
        .field_path(".spec.backend")
        .reason(Reason::FieldValueForbidden),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time duration since creation of the DevCluster")
)]
#[serde(rename_all = "camelCase")]
pub struct DevClusterSpec {
    /// controlPlaneEndpoint represents the endpoint used to communicate with the control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,

    /// backend defines backends for a DevCluster.
    pub backend: DevClusterBackendSpec,
}

/// DevClusterBackendSpec defines backends for a DevCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevClusterBackendSpec {
    /// docker defines a backend for a DevCluster using docker containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerClusterBackendSpec>,

    /// inMemory defines a backend for a DevCluster that runs in memory (not supported by capd-rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_memory: Option<InMemoryClusterBackendSpec>,
}

/// DockerClusterBackendSpec defines a backend for a DevCluster using docker containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterBackendSpec {
    /// failureDomains are copied into status for Cluster API to spread machines over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domains: Option<FailureDomains>,

    /// loadBalancer allows defining configurations for the cluster load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<DockerLoadBalancer>,
}

/// DevClusterStatus defines the observed state of the DevCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevClusterStatus {
    /// ready denotes that the dev cluster infrastructure is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,

    /// failureDomains is the map of failure domains, copied from spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domains: Option<FailureDomains>,

    /// conditions defines the current service state of the DevCluster (Cluster API v1beta1 conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<V1Beta1Condition>>,

    /// v1beta2 groups the status fields of the v1beta2 API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta2: Option<V1Beta2Status>,
}

/// DevClusterTemplateSpec defines the desired state of DevClusterTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DevClusterTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DevClusterTemplate is the schema for the dev cluster template API (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of the DevClusterTemplate"
    )
)]
pub struct DevClusterTemplateSpec {
    /// template defines the desired state of DevClusterTemplate.
    pub template: DevClusterTemplateResource,
}

/// DevClusterTemplateResource describes the data needed to create a DevCluster from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DevClusterTemplateResource {
    /// metadata (labels, annotations) put on the DevCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// spec is the specification of the desired behaviour of the cluster.
    pub spec: DevClusterSpec,
}

/// DevMachineSpec defines the desired state of DevMachine.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DevMachine",
    namespaced,
    status = "DevMachineStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DevMachine is the schema for the dev machine infrastructure API (v1beta1; docker backend: a node container).",
    validation = Rule::new("has(self.spec.backend.docker) && !has(self.spec.backend.inMemory)")
        .message(DOCKER_BACKEND_ONLY)
        .field_path(".spec.backend")
        .reason(Reason::FieldValueForbidden),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Machine", type_ = "string", json_path = ".metadata.ownerReferences[?(@.kind==\"Machine\")].name", description = "Machine object which owns with this DevMachine"),
    printcolumn(name = "ProviderID", type_ = "string", json_path = ".spec.providerID", description = "Provider ID"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready", description = "Machine ready status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time duration since creation of the DevMachine")
)]
#[serde(rename_all = "camelCase")]
pub struct DevMachineSpec {
    /// providerID used to link this machine with the node hosted on it.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,

    /// backend defines backends for a DevMachine.
    pub backend: DevMachineBackendSpec,
}

/// DevMachineBackendSpec defines backends for a DevMachine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevMachineBackendSpec {
    /// docker defines a backend for a DevMachine using docker containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerMachineBackendSpec>,

    /// inMemory defines a backend for a DevMachine that runs in memory (not supported by capd-rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_memory: Option<InMemoryMachineBackendSpec>,
}

/// DockerMachineBackendSpec defines a backend for a DevMachine using docker containers:
/// the DockerMachine spec less `providerID`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineBackendSpec {
    /// customImage allows customizing the container image that is used for running the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_image: Option<String>,

    /// preLoadImages allows to pre-load images in a newly created machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_load_images: Option<Vec<String>>,

    /// extraMounts describes additional mount points for the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_mounts: Option<Vec<Mount>>,

    /// bootstrapTimeout is the total amount of time to wait for the machine to bootstrap
    /// before timing out (a `metav1.Duration` such as "5m").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_timeout: Option<String>,
}

/// DevMachineStatus defines the observed state of DevMachine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevMachineStatus {
    /// ready denotes that the machine is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,

    /// addresses contains the associated addresses for the dev machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<MachineAddress>>,

    /// conditions defines the current service state of the DevMachine (Cluster API v1beta1 conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<V1Beta1Condition>>,

    /// v1beta2 groups the status fields of the v1beta2 API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta2: Option<V1Beta2Status>,
}

/// DevMachineTemplateSpec defines the desired state of DevMachineTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DevMachineTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DevMachineTemplate is the schema for the dev machine template API (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of the DevMachineTemplate"
    )
)]
pub struct DevMachineTemplateSpec {
    /// template defines the desired state of DevMachineTemplate.
    pub template: DevMachineTemplateResource,
}

/// DevMachineTemplateResource describes the data needed to create a DevMachine from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DevMachineTemplateResource {
    /// metadata (labels, annotations) put on the DevMachine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// spec is the specification of the desired behaviour of the machine.
    pub spec: DevMachineSpec,
}
