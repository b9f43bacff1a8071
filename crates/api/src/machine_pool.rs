//! The MachinePool kinds of CAPD v1.14: DockerMachinePool and DevMachinePool (its
//! `spec.backend.docker`), and their templates. Field names, optionality and versions are
//! CAPD's v1beta2. The ClusterClass of CAPD's `development` flavour names
//! DevMachinePoolTemplate, so these kinds must exist for that flavour to apply at all.

// Clippy reads the repeated `type_ = "string"` of kube's printcolumn(...) as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use crate::common::{DeprecatedStatus, MachineAddress, TemplateMeta};
use crate::docker_machine::Mount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DockerMachinePoolMachineTemplate defines the desired state of each instance in the pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolMachineTemplate {
    /// customImage allows customizing the container image that is used for running the machine.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub custom_image: String,
    /// preLoadImages allows to pre-load images in a newly created machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_load_images: Vec<String>,
    /// extraMounts describes additional mount points for the node container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,
}

/// DockerMachinePoolSpec defines the desired state of DockerMachinePool.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerMachinePool",
    namespaced,
    status = "DockerMachinePoolStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DockerMachinePool is the Schema for the dockermachinepools API.",
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
    #[serde(default, skip_serializing_if = "is_default")]
    pub template: DockerMachinePoolMachineTemplate,
    /// providerID is the identification ID of the Machine Pool.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_id: String,
    /// providerIDList is the list of identification IDs of machine instances managed by this Machine Pool.
    #[serde(
        rename = "providerIDList",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_id_list: Vec<String>,
}

/// DockerMachinePoolStatus defines the observed state of DockerMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolStatus {
    /// ready denotes that the machine pool is ready.
    #[serde(default, skip_serializing_if = "crate::common::is_false")]
    pub ready: bool,
    /// replicas is the most recently observed number of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// observedGeneration is the latest generation observed by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// instances contains the status for each instance in the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<DockerMachinePoolInstanceStatus>,
    /// conditions represents the observations of a DockerMachinePool's current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,
    /// infrastructureMachineKind is the kind of the infrastructure resources behind MachinePool Machines.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub infrastructure_machine_kind: String,
    /// deprecated groups all the status fields that are deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
}

/// DockerMachinePoolInstanceStatus contains status information about a DockerMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachinePoolInstanceStatus {
    /// addresses contains the associated addresses for the docker machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MachineAddress>,
    /// instanceName is the identification of the Machine Instance within the Machine Pool.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_name: String,
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
    /// ready denotes that the machine is ready.
    #[serde(default, skip_serializing_if = "crate::common::is_false")]
    pub ready: bool,
    /// bootstrapped is true when the kubeadm bootstrapping has been run against this machine.
    #[serde(default, skip_serializing_if = "crate::common::is_false")]
    pub bootstrapped: bool,
}

/// DockerMachinePoolTemplateSpec defines the desired state of DockerMachinePoolTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerMachinePoolTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DockerMachinePoolTemplate is the Schema for the dockermachinepooltemplates API.",
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

/// DockerMachinePoolTemplateResource describes the data needed to create a DockerMachine from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DockerMachinePoolTemplateResource {
    /// metadata is the standard object's metadata.
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// spec is the specification of the desired behaviour of the machine pool.
    pub spec: DockerMachinePoolSpec,
}

/// DevMachinePoolSpec defines the desired state of DevMachinePool.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevMachinePool",
    namespaced,
    status = "DevMachinePoolStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevMachinePool is the Schema for the devmachinepools API.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DevMachinePool"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DevMachinePoolSpec {
    /// backend contains backend specific configuration for the Machine Pool.
    #[serde(default, skip_serializing_if = "is_default")]
    pub backend: DevMachinePoolBackendSpec,
    /// providerID is the identification ID of the Machine Pool.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub provider_id: String,
    /// providerIDList is the list of identification IDs of machine instances managed by this Machine Pool.
    #[serde(
        rename = "providerIDList",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub provider_id_list: Vec<String>,
}

/// DevMachinePoolBackendSpec defines backends for a DevMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DevMachinePoolBackendSpec {
    /// docker defines a backend for a DevMachinePool using docker containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerMachinePoolMachineTemplate>,
}

/// DevMachinePoolStatus defines the observed state of DevMachinePool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevMachinePoolStatus {
    #[serde(default, skip_serializing_if = "crate::common::is_false")]
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<DevMachinePoolInstanceStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub infrastructure_machine_kind: String,
}

/// DevMachinePoolInstanceStatus contains status information about a DevMachinePool instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevMachinePoolInstanceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MachineAddress>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_name: String,
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "crate::common::is_false")]
    pub ready: bool,
}

/// DevMachinePoolTemplateSpec defines the desired state of DevMachinePoolTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevMachinePoolTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevMachinePoolTemplate is the Schema for the devmachinepooltemplates API.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time duration since creation of DevMachinePoolTemplate"
    )
)]
pub struct DevMachinePoolTemplateSpec {
    /// template is the DevMachinePool to stamp out.
    pub template: DevMachinePoolTemplateResource,
}

/// DevMachinePoolTemplateResource describes the data needed to create a DevMachinePool from a template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DevMachinePoolTemplateResource {
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    pub spec: DevMachinePoolSpec,
}

impl DevMachinePool {
    /// The DockerMachinePool the docker backend reconciles; `None` without `spec.backend.docker`.
    pub fn to_docker(&self) -> Option<DockerMachinePool> {
        let docker = self.spec.backend.docker.as_ref()?;
        let status = self.status.as_ref().map(|s| DockerMachinePoolStatus {
            ready: s.ready,
            replicas: s.replicas,
            observed_generation: s.observed_generation,
            // DevMachinePool instances carry no `bootstrapped`: it comes back false and is
            // dropped again on the way back.
            instances: s
                .instances
                .iter()
                .map(|i| DockerMachinePoolInstanceStatus {
                    addresses: i.addresses.clone(),
                    instance_name: i.instance_name.clone(),
                    provider_id: i.provider_id.clone(),
                    version: i.version.clone(),
                    ready: i.ready,
                    bootstrapped: false,
                })
                .collect(),
            conditions: s.conditions.clone(),
            infrastructure_machine_kind: s.infrastructure_machine_kind.clone(),
            deprecated: None,
        });
        Some(DockerMachinePool {
            metadata: self.metadata.clone(),
            spec: DockerMachinePoolSpec {
                template: docker.clone(),
                provider_id: self.spec.provider_id.clone(),
                provider_id_list: self.spec.provider_id_list.clone(),
            },
            status,
        })
    }

    /// Takes what the backend changed back from its DockerMachinePool.
    pub fn set_from_docker(&mut self, dmp: DockerMachinePool) {
        self.metadata = dmp.metadata;
        self.spec.backend.docker = Some(dmp.spec.template);
        self.spec.provider_id = dmp.spec.provider_id;
        self.spec.provider_id_list = dmp.spec.provider_id_list;
        self.status = dmp.status.map(|s| DevMachinePoolStatus {
            ready: s.ready,
            replicas: s.replicas,
            observed_generation: s.observed_generation,
            instances: s
                .instances
                .into_iter()
                .map(|i| DevMachinePoolInstanceStatus {
                    addresses: i.addresses,
                    instance_name: i.instance_name,
                    provider_id: i.provider_id,
                    version: i.version,
                    ready: i.ready,
                })
                .collect(),
            conditions: s.conditions,
            infrastructure_machine_kind: s.infrastructure_machine_kind,
        });
    }
}

impl crate::HasConditions for DockerMachinePool {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.status.get_or_insert_with(Default::default).conditions
    }
    fn generation(&self) -> Option<i64> {
        self.metadata.generation
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    v == &T::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capds_machine_pool_yaml_reads_and_writes_back_unchanged() {
        let v = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachinePool",
            "metadata": {"name": "mp"},
            "spec": {"backend": {"docker": {"preLoadImages": ["a"], "extraMounts": [{"containerPath": "/x", "hostPath": "/y"}]}}, "providerIDList": ["docker:////a"]},
            "status": {"replicas": 2, "ready": true, "infrastructureMachineKind": "DevMachine", "instances": [{"instanceName": "a", "providerID": "docker:////a", "ready": true}]}
        });
        let mp: DevMachinePool = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&mp).unwrap(), v);
        let d = json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachinePool", "metadata": {"name": "mp"}, "spec": {"template": {"customImage": "img"}}});
        let dmp: DockerMachinePool = serde_json::from_value(d.clone()).unwrap();
        assert_eq!(serde_json::to_value(&dmp).unwrap(), d);
    }

    #[test]
    fn dev_machine_pool_goes_through_its_docker_view_unchanged() {
        let v = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachinePool",
            "metadata": {"name": "mp", "finalizers": ["f"]},
            "spec": {"backend": {"docker": {"customImage": "img", "preLoadImages": ["a"]}}, "providerID": "docker:////c-dmp-mp", "providerIDList": ["docker:////a"]},
            "status": {"replicas": 1, "ready": true, "infrastructureMachineKind": "DevMachine", "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z", "message": ""}]}
        });
        let dev: DevMachinePool = serde_json::from_value(v.clone()).unwrap();
        let view = dev.to_docker().unwrap();
        assert_eq!(view.spec.template.custom_image, "img");
        assert_eq!(view.spec.provider_id_list, ["docker:////a"]);
        let mut back = DevMachinePool::default();
        back.set_from_docker(view);
        assert_eq!(serde_json::to_value(&back).unwrap()["spec"], v["spec"]);
        assert_eq!(serde_json::to_value(&back).unwrap()["status"], v["status"]);
        let no_backend: DevMachinePool =
            serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {}})).unwrap();
        assert!(no_backend.to_docker().is_none());
    }
}
