//! Types the v1beta1 kinds share: the endpoint, the failure-domain map, the load balancer,
//! mounts, and the `status.v1beta2` block. Shaped as CAPD's v1beta1 package and the Cluster
//! API core v1beta1 types it uses (`FailureDomains`, `FailureDomainSpec`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `int` fields of Go types: controller-gen writes `type: integer` without a format.
fn go_int(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer" })
}

/// APIEndpoint is a reachable Kubernetes API endpoint (CAPD's own v1beta1 type: no limits,
/// no default; CAPD's defaulting webhook sets the port).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ApiEndpoint {
    /// host is the hostname on which the API server is serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,

    /// port is the port on which the API server is serving. Defaults to 6443 if not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "go_int")]
    pub port: Option<i64>,
}

/// Failure domains by name, as Cluster API v1beta1 has them (v1beta2 has a list of
/// `{name, controlPlane, attributes}` instead).
pub type FailureDomains = BTreeMap<String, FailureDomainSpec>;

/// FailureDomainSpec is one failure domain of a cluster (Cluster API v1beta1).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureDomainSpec {
    /// controlPlane determines if this failure domain is suitable for use by control plane machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<bool>,

    /// attributes is a free form map of attributes an infrastructure provider might use or require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
}

/// DockerLoadBalancer configures the cluster load balancer (the image fields are CAPD's inline
/// `ImageMeta`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerLoadBalancer {
    /// imageRepository sets the container registry to pull the haproxy image from.
    /// If not set, "kindest" is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,

    /// imageTag sets the tag of the haproxy image. If not set, "v20210715-a6da3463" is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,

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

/// A reference to an object in the same namespace (`corev1.LocalObjectReference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LocalObjectReference {
    /// name of the referent. Effectively required, but may be empty for backwards compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ""))]
    pub name: Option<String>,
}

/// Mount is a host path mounted into the node container (a simplified kind `Mount`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// containerPath is the path of the mount inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,

    /// hostPath is the path on the host. It must exist; symbolic links are followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,

    /// readOnly mounts it read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// The `status.v1beta2` block of v1beta1 objects: the v1beta2 (`metav1.Condition`) conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct V1Beta2Status {
    /// conditions represents the observations of the object's current state, as v1beta2 has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
}
