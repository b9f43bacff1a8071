//! `DockerCluster`: the infrastructure of one Cluster API cluster, i.e. its HAProxy
//! load-balancer container. Field names, optionality and defaults are CAPD's v1beta2.

// Clippy reads the repeated `type_ = "string"` of kube's printcolumn(...) as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use crate::common::{is_false, ApiEndpoint, DeprecatedStatus, FailureDomain, Initialization};
use crate::conditions::HasConditions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
#[allow(unused_imports)] // used inside the `x_kube` attributes
use kube::core::{Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DockerClusterSpec defines the desired state of DockerCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerCluster",
    namespaced,
    status = "DockerClusterStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "dcl",
    category = "cluster-api",
    doc = "DockerCluster is the infrastructure of a Cluster API cluster made of containers: its load balancer.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']",
        description = "Cluster"
    ),
    printcolumn(
        name = "Provisioned",
        type_ = "string",
        json_path = ".status.initialization.provisioned",
        description = "Infrastructure is provisioned"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Ready condition"
    ),
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".spec.controlPlaneEndpoint.host",
        description = "Control plane endpoint host"
    ),
    printcolumn(
        name = "Port",
        type_ = "integer",
        json_path = ".spec.controlPlaneEndpoint.port",
        description = "Control plane endpoint port"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Paused\")].status",
        description = "Reconciliation paused",
        priority = 10
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since creation"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterSpec {
    /// controlPlaneEndpoint represents the endpoint used to communicate with the control plane.
    /// Set by the controller to the load balancer once it exists.
    #[serde(default, skip_serializing_if = "ApiEndpoint::is_zero")]
    pub control_plane_endpoint: ApiEndpoint,

    /// failureDomains are copied into status for Cluster API to spread machines over; they
    /// mean nothing to containers on one host. Sorted by name, names unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    // Two-variable `all` (Kubernetes 1.33+, the oldest management cluster Cluster API v1.14
    // supports): `map(..).isSorted()` reads the same but its cost estimate is unbounded.
    #[x_kube(validation = Rule::new("self.all(i, fd, i == 0 || self[i - 1].name < fd.name)")
        .message("failure domains must be sorted by name")
        .reason(Reason::FieldValueInvalid))]
    pub failure_domains: Vec<FailureDomain>,

    /// loadBalancer configures the cluster load balancer.
    #[serde(default, skip_serializing_if = "DockerLoadBalancer::is_empty")]
    pub load_balancer: DockerLoadBalancer,
}

/// DockerLoadBalancer configures the cluster load balancer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerLoadBalancer {
    /// imageRepository sets the container registry to pull the haproxy image from.
    /// If not set, "kindest" is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,

    /// imageTag sets the tag of the haproxy image. If not set, "v20210715-a6da3463" is used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,

    /// customHAProxyConfigTemplateRef names a ConfigMap (key `value`) holding a Go-template of
    /// the HAProxy configuration that replaces the default one. Variables: $IPv6 (bool),
    /// $FrontendControlPlanePort, $BackendControlPlanePort (strings), $BackendServers
    /// (map name -> address), and the function JoinHostPort.
    #[serde(
        rename = "customHAProxyConfigTemplateRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_haproxy_config_template_ref: Option<LocalObjectReference>,
}

impl DockerLoadBalancer {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectReference {
    /// name of the referent.
    #[serde(default)]
    pub name: String,
}

/// DockerClusterStatus defines the observed state of DockerCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterStatus {
    /// conditions represents the observations of a DockerCluster's current state.
    /// Known condition types are Ready, LoadBalancerAvailable and Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,

    /// initialization provides observations of the DockerCluster initialization process
    /// (part of the Cluster API v1beta2 contract).
    #[serde(default, skip_serializing_if = "Initialization::is_empty")]
    pub initialization: Initialization,

    /// ready mirrors initialization.provisioned for controllers on the v1beta1 contract.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ready: bool,

    /// failureDomains is the list of failure domains, copied from spec, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub failure_domains: Vec<FailureDomain>,

    /// deprecated groups the status fields kept for the v1beta1 contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
}

impl DockerCluster {
    /// `status.initialization.provisioned`.
    pub fn is_provisioned(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.initialization.provisioned)
            .unwrap_or(false)
    }

    /// The status, created empty if missing.
    pub fn status_mut(&mut self) -> &mut DockerClusterStatus {
        self.status.get_or_insert_with(Default::default)
    }

    /// Marks the infrastructure provisioned for both contracts (v1beta2 `initialization`,
    /// v1beta1 `ready`).
    pub fn set_provisioned(&mut self, provisioned: bool) {
        let status = self.status_mut();
        status.initialization.provisioned = Some(provisioned);
        status.ready = provisioned;
    }

    /// Copies `spec.failureDomains` into status, sorted by name as the contract wants.
    pub fn sync_failure_domains(&mut self) {
        let mut domains = self.spec.failure_domains.clone();
        domains.sort_by(|a, b| a.name.cmp(&b.name));
        self.status_mut().failure_domains = domains;
    }
}

impl HasConditions for DockerCluster {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }

    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.status_mut().conditions
    }

    fn generation(&self) -> Option<i64> {
        self.metadata.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::NewCondition;
    use crate::consts::{condition, reason};

    #[test]
    fn provisioned_sets_both_contracts() {
        let mut dc = DockerCluster::new("c", DockerClusterSpec::default());
        assert!(!dc.is_provisioned());
        dc.set_provisioned(true);
        assert!(dc.is_provisioned());
        let status = serde_json::to_value(dc.status.as_ref().unwrap()).unwrap();
        assert_eq!(status["initialization"]["provisioned"], true);
        assert_eq!(status["ready"], true);
    }

    #[test]
    fn failure_domains_are_synced_sorted() {
        let mut dc = DockerCluster::new(
            "c",
            DockerClusterSpec {
                failure_domains: vec![
                    FailureDomain::new("fd2", false),
                    FailureDomain::new("fd1", true),
                ],
                ..Default::default()
            },
        );
        dc.sync_failure_domains();
        let names: Vec<_> = dc
            .status
            .unwrap()
            .failure_domains
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["fd1", "fd2"]);
    }

    #[test]
    fn conditions_through_trait() {
        let mut dc = DockerCluster::new("c", DockerClusterSpec::default());
        dc.metadata.generation = Some(3);
        assert!(dc.set_condition(NewCondition::true_(
            condition::LOAD_BALANCER_AVAILABLE,
            reason::AVAILABLE,
            ""
        )));
        let c = dc
            .get_condition(condition::LOAD_BALANCER_AVAILABLE)
            .unwrap();
        assert_eq!(c.observed_generation, Some(3));
        assert!(dc.is_condition_true(condition::LOAD_BALANCER_AVAILABLE));
    }
}
