//! DockerCluster, DockerMachine and their templates in v1beta1, as CAPD v1.14 serves them.

// Clippy reads the repeated `type_ = "string"` of kube's printcolumn(...) as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use super::common::{ApiEndpoint, DockerLoadBalancer, FailureDomains, Mount, V1Beta2Status};
use crate::common::{MachineAddress, TemplateMeta, V1Beta1Condition};
#[allow(unused_imports)] // used inside the `kube` attributes
use kube::core::{Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DockerClusterSpec defines the desired state of DockerCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerCluster",
    namespaced,
    status = "DockerClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    // The names are the CRD's, shared by every version: as v1beta2's.
    shortname = "dcl",
    category = "cluster-api",
    deprecated,
    doc = "DockerCluster is the infrastructure of a Cluster API cluster made of containers: its load balancer (v1beta1).",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time duration since creation of DockerCluster")
)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterSpec {
    /// controlPlaneEndpoint represents the endpoint used to communicate with the control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<ApiEndpoint>,

    /// failureDomains are copied into status for Cluster API to spread machines over; they
    /// mean nothing to containers on one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domains: Option<FailureDomains>,

    /// loadBalancer configures the cluster load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<DockerLoadBalancer>,
}

/// DockerClusterStatus defines the observed state of DockerCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterStatus {
    /// ready denotes that the infrastructure (the load balancer) is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,

    /// failureDomains is the map of failure domains, copied from spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domains: Option<FailureDomains>,

    /// conditions defines the current service state of the DockerCluster (Cluster API v1beta1 conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<V1Beta1Condition>>,

    /// v1beta2 groups the status fields of the v1beta2 API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta2: Option<V1Beta2Status>,
}

/// DockerClusterTemplateSpec defines the desired state of DockerClusterTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerClusterTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "dclt",
    category = "cluster-api",
    deprecated,
    doc = "DockerClusterTemplate is the template DockerClusters of a ClusterClass are made from (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DockerClusterTemplate"
    )
)]
pub struct DockerClusterTemplateSpec {
    /// template is the DockerCluster to stamp out.
    pub template: DockerClusterTemplateResource,
}

/// DockerClusterTemplateResource describes the data needed to create a DockerCluster from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DockerClusterTemplateResource {
    /// metadata (labels, annotations) put on the DockerCluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// spec of the DockerCluster.
    pub spec: DockerClusterSpec,
}

/// DockerMachineSpec defines the desired state of DockerMachine.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema,
)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerMachine",
    namespaced,
    status = "DockerMachineStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "dma",
    category = "cluster-api",
    deprecated,
    doc = "DockerMachine is a Cluster API machine made of a node container (v1beta1).",
    // Not in CAPD's v1beta1 schema, but CAPD's webhook refuses the change in any version; the
    // same root-level rule as v1beta2's.
    validation = Rule::new("(has(self.spec.customImage) ? self.spec.customImage : '') == (has(oldSelf.spec.customImage) ? oldSelf.spec.customImage : '')")
        .message("customImage is immutable")
        .field_path(".spec.customImage")
        .reason(Reason::FieldValueForbidden),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Machine", type_ = "string", json_path = ".metadata.ownerReferences[?(@.kind==\"Machine\")].name", description = "Machine object which owns with this DockerMachine"),
    printcolumn(name = "ProviderID", type_ = "string", json_path = ".spec.providerID", description = "Provider ID"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready", description = "Machine ready status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time duration since creation of DockerMachine")
)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineSpec {
    /// providerID is the container name in ProviderID format (docker:////<containername>).
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,

    /// customImage is the container image the machine runs, instead of
    /// kindest/node:<Kubernetes version>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_image: Option<String>,

    /// preLoadImages are loaded into a new machine before bootstrap, e.g. CNI images, so that
    /// every node need not pull them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_load_images: Option<Vec<String>>,

    /// extraMounts are additional bind mounts into the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_mounts: Option<Vec<Mount>>,

    /// bootstrapTimeout is how long to wait for the machine to bootstrap before timing out,
    /// a duration such as "5m" or "1h30m" (a `metav1.Duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_timeout: Option<String>,
}

/// DockerMachineStatus defines the observed state of DockerMachine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineStatus {
    /// ready denotes that the machine (its container) is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,

    /// loadBalancerConfigured denotes that the machine has been added to the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_configured: Option<bool>,

    /// addresses of the machine: its hostname and container IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<MachineAddress>>,

    /// conditions defines the current service state of the DockerMachine (Cluster API v1beta1 conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<V1Beta1Condition>>,

    /// v1beta2 groups the status fields of the v1beta2 API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta2: Option<V1Beta2Status>,
}

/// DockerMachineTemplateSpec defines the desired state of DockerMachineTemplate.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerMachineTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "dmt",
    category = "cluster-api",
    deprecated,
    doc = "DockerMachineTemplate is the template DockerMachines of a MachineDeployment or control plane are made from (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DockerMachineTemplate"
    )
)]
pub struct DockerMachineTemplateSpec {
    /// template is the DockerMachine to stamp out.
    pub template: DockerMachineTemplateResource,
}

/// DockerMachineTemplateResource describes the data needed to create a DockerMachine from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DockerMachineTemplateResource {
    /// metadata (labels, annotations) put on the DockerMachine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// spec of the DockerMachine.
    pub spec: DockerMachineSpec,
}
