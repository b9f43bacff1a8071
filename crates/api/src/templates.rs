//! `DockerClusterTemplate` and `DockerMachineTemplate`, the kinds ClusterClass and
//! MachineDeployments stamp DockerClusters and DockerMachines from.
//!
//! `spec.template.spec` is immutable, but not through CEL here: the ClusterClass topology
//! controller sends dry-run updates carrying `topology.cluster.x-k8s.io/dry-run`, which a CRD
//! rule cannot see. The ValidatingAdmissionPolicy in [`crate::policy`] enforces it instead.

use crate::common::TemplateMeta;
use crate::docker_cluster::DockerClusterSpec;
use crate::docker_machine::DockerMachineSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// DockerClusterTemplateSpec defines the desired state of DockerClusterTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerClusterTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "dclt",
    category = "cluster-api",
    doc = "DockerClusterTemplate is the template DockerClusters of a ClusterClass are made from.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since creation"
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
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// spec of the DockerCluster.
    pub spec: DockerClusterSpec,
}

/// DockerMachineTemplateSpec defines the desired state of DockerMachineTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerMachineTemplate",
    namespaced,
    status = "DockerMachineTemplateStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "dmt",
    category = "cluster-api",
    doc = "DockerMachineTemplate is the template DockerMachines of a MachineDeployment or control plane are made from.",
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.template.spec.customImage",
        description = "Custom node image",
        priority = 10
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since creation"
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
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// spec of the DockerMachine.
    pub spec: DockerMachineSpec,
}

/// DockerMachineTemplateStatus defines the observed state of a DockerMachineTemplate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DockerMachineTemplateStatus {
    /// capacity is the resource capacity of machines made from this template, for the
    /// cluster autoscaler's scale from zero.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "resource_list_schema")]
    pub capacity: BTreeMap<String, Quantity>,
}

/// `corev1.ResourceList` as controller-gen writes it (k8s-openapi's Quantity schema carries a
/// page-long description into every CRD).
fn resource_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {
            "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
            "x-kubernetes-int-or-string": true
        }
    })
}
