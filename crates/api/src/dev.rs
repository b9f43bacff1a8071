//! The Dev* kinds CAPD v1.14 ships beside the (now deprecated) Docker* ones: DevCluster,
//! DevMachine and their templates, whose `spec.backend.docker` carries the same fields as
//! the Docker* spec. Field names, optionality and print columns are CAPD's v1beta2.
//!
//! Only the docker backend exists here: an object with `spec.backend.inMemory` (CAPD's
//! simulated backend for scale tests) or without `spec.backend.docker` is refused at
//! admission by a CRD rule that says so, rather than accepted and never reconciled.
//!
//! The controllers reconcile a Dev* object as its Docker* twin: [`DevCluster::to_docker`]
//! and [`DevCluster::set_from_docker`] (and the DevMachine pair) convert losslessly.

// Clippy reads the repeated `type_ = "string"` of kube's printcolumn(...) as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use crate::common::{
    ApiEndpoint, DeprecatedStatus, FailureDomain, Initialization, MachineAddress, TemplateMeta,
};
use crate::conditions::HasConditions;
use crate::docker_cluster::{
    DockerCluster, DockerClusterSpec, DockerClusterStatus, DockerLoadBalancer,
};
use crate::docker_machine::{DockerMachine, DockerMachineSpec, DockerMachineStatus, Mount};
use crate::templates::DockerMachineTemplateStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
#[allow(unused_imports)] // used inside the `kube`/`x_kube` attributes
use kube::core::{Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The admission rule every Dev* kind carries (at the root, where `has()` can see the
/// backend whichever way the object was written).
const DOCKER_BACKEND_ONLY: &str = "capd-rs implements the docker backend only: set spec.backend.docker (spec.backend.inMemory is not supported)";

/// DevClusterSpec defines the desired state of DevCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevCluster",
    namespaced,
    status = "DevClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevCluster is the schema for the dev cluster infrastructure API (docker backend: a load-balancer container).",
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
    #[serde(default, skip_serializing_if = "ApiEndpoint::is_zero")]
    pub control_plane_endpoint: ApiEndpoint,

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
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterBackendSpec {
    /// failureDomains are usable by control plane machines (as DockerCluster's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub failure_domains: Vec<FailureDomain>,

    /// loadBalancer allows defining configurations for the cluster load balancer.
    #[serde(default, skip_serializing_if = "DockerLoadBalancer::is_empty")]
    pub load_balancer: DockerLoadBalancer,
}

/// InMemoryClusterBackendSpec defines backend for a DevCluster running in memory.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InMemoryClusterBackendSpec {}

/// DevClusterStatus defines the observed state of the DevCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevClusterStatus {
    /// conditions represents the observations of a DevCluster's current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,

    /// initialization provides observations of the DevCluster initialization process.
    #[serde(default, skip_serializing_if = "Initialization::is_empty")]
    pub initialization: Initialization,

    /// failureDomains is a list of failure domain objects synced from the infrastructure provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub failure_domains: Vec<FailureDomain>,

    /// deprecated groups all the status fields that are deprecated and will be removed when
    /// all the nested fields are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
}

/// DevMachineSpec defines the desired state of DevMachine.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevMachine",
    namespaced,
    status = "DevMachineStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevMachine is the schema for the dev machine infrastructure API (docker backend: a node container).",
    validation = Rule::new("has(self.spec.backend.docker) && !has(self.spec.backend.inMemory)")
        .message(DOCKER_BACKEND_ONLY)
        .field_path(".spec.backend")
        .reason(Reason::FieldValueForbidden),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Provider ID", type_ = "string", json_path = ".spec.providerID", description = "Provider ID", priority = 10),
    printcolumn(name = "Failure domain", type_ = "string", json_path = ".status.failureDomain", description = "The failure domain the machine is placed in"),
    printcolumn(name = "IP", type_ = "string", json_path = ".status.addresses[?(@.type==\"InternalIP\")].address", description = "IP of the Machine", priority = 10),
    printcolumn(name = "Paused", type_ = "string", json_path = ".status.conditions[?(@.type==\"Paused\")].status", description = "Reconciliation paused", priority = 10),
    printcolumn(name = "Provisioned", type_ = "string", json_path = ".status.initialization.provisioned", description = "DevMachine is provisioned"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time duration since creation of the DevMachine")
)]
#[serde(rename_all = "camelCase")]
pub struct DevMachineSpec {
    /// providerID used to link this machine with a node.
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(length(min = 1, max = 512))]
    pub provider_id: String,

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
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineBackendSpec {
    /// customImage allows customizing the container image that is used for running the machine.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub custom_image: String,

    /// preLoadImages allows to pre-load images in a newly created machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_load_images: Vec<String>,

    /// extraMounts describes additional mount points for the node container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,

    /// bootstrapTimeout is the total amount of time to wait for the machine to bootstrap
    /// before timing out. The default value is 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(r"self.matches('^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')")
        .message("must be a duration such as 90s, 5m or 1h30m")
        .reason(Reason::FieldValueInvalid))]
    pub bootstrap_timeout: Option<String>,
}

/// InMemoryMachineBackendSpec defines the in-memory backend (schema only: refused at admission).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InMemoryMachineBackendSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<InMemoryProvisioning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<InMemoryProvisioning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<InMemoryProvisioning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<InMemoryProvisioning>,
}

/// The `provisioning` settings of one simulated in-memory component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct InMemoryProvisioning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<CommonProvisioningSettings>,
}

/// CommonProvisioningSettings holds parameters that applies to provisioning of most of the objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonProvisioningSettings {
    /// startupDuration defines the duration of the object provisioning phase.
    pub startup_duration: String,
    /// startupJitter adds some randomness on StartupDuration (a float between 0 and 1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub startup_jitter: String,
}

/// DevMachineStatus defines the observed state of DevMachine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevMachineStatus {
    /// conditions represents the observations of a DevMachine's current state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,

    /// initialization provides observations of the DevMachine initialization process.
    #[serde(default, skip_serializing_if = "Initialization::is_empty")]
    pub initialization: Initialization,

    /// addresses contains the associated addresses for the dev machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub addresses: Vec<MachineAddress>,

    /// failureDomain is the unique identifier of the failure domain where this Machine has
    /// been placed in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 256))]
    pub failure_domain: String,

    /// deprecated groups all the status fields that are deprecated and will be removed when
    /// all the nested fields are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
}

/// DevClusterTemplateSpec defines the desired state of DevClusterTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevClusterTemplate",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevClusterTemplate is the schema for the dev cluster template API.",
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
    /// metadata is the standard object's metadata.
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// spec is the specification of the desired behaviour of the cluster.
    pub spec: DevClusterSpec,
}

/// DevMachineTemplateSpec defines the desired state of DevMachineTemplate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DevMachineTemplate",
    namespaced,
    status = "DockerMachineTemplateStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "cluster-api",
    doc = "DevMachineTemplate is the schema for the dev machine template API.",
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
    /// metadata is the standard object's metadata.
    #[serde(default, skip_serializing_if = "TemplateMeta::is_empty")]
    pub metadata: TemplateMeta,
    /// spec is the specification of the desired behaviour of the machine.
    pub spec: DevMachineSpec,
}

impl DevCluster {
    /// The DockerCluster the docker backend reconciles; `None` without `spec.backend.docker`.
    pub fn to_docker(&self) -> Option<DockerCluster> {
        let docker = self.spec.backend.docker.as_ref()?;
        let status = self.status.as_ref().map(|s| DockerClusterStatus {
            conditions: s.conditions.clone(),
            initialization: s.initialization.clone(),
            // Not a DevCluster field: derived, and dropped again on the way back.
            ready: s.initialization.provisioned.unwrap_or(false),
            failure_domains: s.failure_domains.clone(),
            deprecated: s.deprecated.clone(),
        });
        Some(DockerCluster {
            metadata: self.metadata.clone(),
            spec: DockerClusterSpec {
                control_plane_endpoint: self.spec.control_plane_endpoint.clone(),
                failure_domains: docker.failure_domains.clone(),
                load_balancer: docker.load_balancer.clone(),
            },
            status,
        })
    }

    /// Takes what the backend changed back from its DockerCluster.
    pub fn set_from_docker(&mut self, dc: DockerCluster) {
        self.metadata = dc.metadata;
        self.spec.control_plane_endpoint = dc.spec.control_plane_endpoint;
        let docker = self
            .spec
            .backend
            .docker
            .get_or_insert_with(Default::default);
        docker.failure_domains = dc.spec.failure_domains;
        docker.load_balancer = dc.spec.load_balancer;
        self.status = dc.status.map(|s| DevClusterStatus {
            conditions: s.conditions,
            initialization: s.initialization,
            failure_domains: s.failure_domains,
            deprecated: s.deprecated,
        });
    }
}

impl DevMachine {
    /// The DockerMachine the docker backend reconciles; `None` without `spec.backend.docker`.
    pub fn to_docker(&self) -> Option<DockerMachine> {
        let docker = self.spec.backend.docker.as_ref()?;
        let status = self.status.as_ref().map(|s| DockerMachineStatus {
            conditions: s.conditions.clone(),
            initialization: s.initialization.clone(),
            ready: s.initialization.provisioned.unwrap_or(false),
            load_balancer_configured: false,
            addresses: s.addresses.clone(),
            failure_domain: s.failure_domain.clone(),
            deprecated: s.deprecated.clone(),
        });
        Some(DockerMachine {
            metadata: self.metadata.clone(),
            spec: DockerMachineSpec {
                provider_id: self.spec.provider_id.clone(),
                custom_image: docker.custom_image.clone(),
                pre_load_images: docker.pre_load_images.clone(),
                extra_mounts: docker.extra_mounts.clone(),
                bootstrap_timeout: docker.bootstrap_timeout.clone(),
            },
            status,
        })
    }

    /// Takes what the backend changed back from its DockerMachine.
    pub fn set_from_docker(&mut self, dm: DockerMachine) {
        self.metadata = dm.metadata;
        self.spec.provider_id = dm.spec.provider_id;
        let docker = self
            .spec
            .backend
            .docker
            .get_or_insert_with(Default::default);
        docker.custom_image = dm.spec.custom_image;
        docker.pre_load_images = dm.spec.pre_load_images;
        docker.extra_mounts = dm.spec.extra_mounts;
        docker.bootstrap_timeout = dm.spec.bootstrap_timeout;
        self.status = dm.status.map(|s| DevMachineStatus {
            conditions: s.conditions,
            initialization: s.initialization,
            addresses: s.addresses,
            failure_domain: s.failure_domain,
            deprecated: s.deprecated,
        });
    }
}

impl HasConditions for DevCluster {
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

impl HasConditions for DevMachine {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip_cluster(v: serde_json::Value) {
        let dev: DevCluster = serde_json::from_value(v.clone()).unwrap();
        let mut back = DevCluster {
            metadata: Default::default(),
            spec: Default::default(),
            status: None,
        };
        back.set_from_docker(dev.to_docker().unwrap());
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&dev).unwrap()
        );
        assert_eq!(serde_json::to_value(&back).unwrap()["spec"], v["spec"]);
    }

    #[test]
    fn dev_cluster_converts_losslessly_through_docker_cluster() {
        roundtrip_cluster(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevCluster",
            "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "b"}, "finalizers": ["f"]},
            "spec": {"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443},
                     "backend": {"docker": {"failureDomains": [{"name": "fd1", "controlPlane": true}],
                                            "loadBalancer": {"imageRepository": "r", "imageTag": "t", "customHAProxyConfigTemplateRef": {"name": "cm"}}}}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-11-30T00:00:00Z"}],
                       "initialization": {"provisioned": true}, "failureDomains": [{"name": "fd1", "controlPlane": true}]}
        }));
        roundtrip_cluster(json!({"metadata": {"name": "c"}, "spec": {"backend": {"docker": {}}}}));
    }

    #[test]
    fn dev_cluster_status_keeps_its_own_fields_only() {
        let dev: DevCluster = serde_json::from_value(
            json!({"metadata": {"name": "c"}, "spec": {"backend": {"docker": {}}}}),
        )
        .unwrap();
        let mut dc = dev.to_docker().unwrap();
        dc.set_provisioned(true);
        let mut back = dev.clone();
        back.set_from_docker(dc);
        // DockerCluster's v1beta1-era `ready` does not exist on DevCluster.
        assert_eq!(
            serde_json::to_value(back.status.unwrap()).unwrap(),
            json!({"initialization": {"provisioned": true}})
        );
    }

    #[test]
    fn dev_machine_converts_losslessly_through_docker_machine() {
        let v = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachine",
            "metadata": {"name": "m", "namespace": "ns", "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": "m", "uid": "u"}]},
            "spec": {"providerID": "docker:////c-m", "backend": {"docker": {"customImage": "img", "preLoadImages": ["a"], "extraMounts": [{"containerPath": "/x", "hostPath": "/y", "readOnly": true}], "bootstrapTimeout": "10m"}}},
            "status": {"initialization": {"provisioned": true}, "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}], "failureDomain": "fd1"}
        });
        let dev: DevMachine = serde_json::from_value(v.clone()).unwrap();
        let dm = dev.to_docker().unwrap();
        assert_eq!(dm.spec.custom_image, "img");
        assert_eq!(dm.bootstrap_timeout(), std::time::Duration::from_secs(600));
        let mut back = DevMachine {
            metadata: Default::default(),
            spec: Default::default(),
            status: None,
        };
        back.set_from_docker(dm);
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&dev).unwrap()
        );
        assert_eq!(serde_json::to_value(&back).unwrap()["status"], v["status"]);
    }

    #[test]
    fn only_the_docker_backend_converts() {
        let dev: DevMachine = serde_json::from_value(json!({"metadata": {"name": "m"}, "spec": {"backend": {"inMemory": {"vm": {"provisioning": {"startupDuration": "1s"}}}}}})).unwrap();
        assert!(dev.to_docker().is_none());
        let dev: DevCluster =
            serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {"backend": {}}}))
                .unwrap();
        assert!(dev.to_docker().is_none());
    }
}
