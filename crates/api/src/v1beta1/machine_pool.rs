//! DockerMachinePool and DockerMachinePoolTemplate in v1beta1, as CAPD v1.14 serves them.
//! (DevMachinePool and its template have no v1beta1: CAPD added them in v1beta2.)

use super::common::Mount;
use crate::common::{MachineAddress, TemplateMeta, V1Beta1Condition};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DockerMachinePoolMachineTemplate defines the desired state of each instance in the pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolMachineTemplate {
    /// customImage allows customizing the container image that is used for running the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_image: Option<String>,
    /// preLoadImages allows to pre-load images in a newly created machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_load_images: Option<Vec<String>>,
    /// extraMounts describes additional mount points for the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_mounts: Option<Vec<Mount>>,
}

/// DockerMachinePoolSpec defines the desired state of DockerMachinePool.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerMachinePool",
    namespaced,
    status = "DockerMachinePoolStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DockerMachinePool is the Schema for the dockermachinepools API (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DockerMachinePool"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolSpec {
    /// template contains the details used to build a replica machine within the Machine Pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<DockerMachinePoolMachineTemplate>,
    /// providerID is the identification ID of the Machine Pool.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    /// providerIDList is the list of identification IDs of machine instances managed by this Machine Pool.
    #[serde(
        rename = "providerIDList",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id_list: Option<Vec<String>>,
}

/// DockerMachinePoolStatus defines the observed state of DockerMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolStatus {
    /// ready denotes that the machine pool is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// replicas is the most recently observed number of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// observedGeneration is the latest generation observed by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// instances contains the status for each instance in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<DockerMachinePoolInstanceStatus>>,
    /// conditions defines the current service state of the DockerMachinePool (Cluster API v1beta1 conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<V1Beta1Condition>>,
    /// infrastructureMachineKind is the kind of the infrastructure resources behind MachinePool Machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_machine_kind: Option<String>,
}

/// DockerMachinePoolInstanceStatus contains status information about one instance of a DockerMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolInstanceStatus {
    /// addresses contains the associated addresses for the docker machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<MachineAddress>>,
    /// instanceName is the identification of the Machine Instance within the Machine Pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// providerID is the provider identification of the Machine Pool Instance.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    /// version defines the Kubernetes version for the Machine Instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// ready denotes that the machine (its container) is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// bootstrapped is true when the kubeadm bootstrapping has been run against this machine.
    /// Deprecated in CAPD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrapped: Option<bool>,
}

/// DockerMachinePoolTemplateSpec defines the desired state of DockerMachinePoolTemplate.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta1",
    kind = "DockerMachinePoolTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    deprecated,
    doc = "DockerMachinePoolTemplate is the Schema for the dockermachinepooltemplates API (v1beta1).",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DockerMachinePoolTemplate"
    )
)]
pub struct DockerMachinePoolTemplateSpec {
    /// template is the DockerMachinePool to stamp out.
    pub template: DockerMachinePoolTemplateResource,
}

/// DockerMachinePoolTemplateResource describes the data needed to create a DockerMachinePool from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DockerMachinePoolTemplateResource {
    /// metadata (labels, annotations) put on the DockerMachinePool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMeta>,
    /// spec is the specification of the desired behaviour of the machine pool.
    pub spec: DockerMachinePoolSpec,
}
