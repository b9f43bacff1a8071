//! Small types shared by the provider kinds, shaped like their Cluster API v1beta2
//! counterparts (`clusterv1.FailureDomain`, `clusterv1.MachineAddress`, `clusterv1.ObjectMeta`,
//! the deprecated v1beta1 `clusterv1.Condition`).
//!
//! Strings follow Go's `omitempty`: an empty string means "not set" and is not serialized.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Port CAPD defaults `controlPlaneEndpoint.port` to, and the port the load balancer serves.
pub const DEFAULT_API_SERVER_PORT: i32 = 6443;

pub(crate) fn is_zero(v: &i32) -> bool {
    *v == 0
}

pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

/// Schema of a `status.conditions` list: `metav1.Condition` items validated as the API server's
/// own types validate them (CAPD's CRDs carry the same), a list-map keyed by type, at most 32.
pub(crate) fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "conditions represent the observations of the object's current state (metav1.Condition).",
        "type": "array",
        "maxItems": 32,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {
                    "description": "lastTransitionTime is the last time the condition transitioned from one status to another.",
                    "type": "string",
                    "format": "date-time"
                },
                "message": {
                    "description": "message is a human readable message indicating details about the transition. This may be an empty string.",
                    "type": "string",
                    "maxLength": 32768
                },
                "observedGeneration": {
                    "description": "observedGeneration is the .metadata.generation the condition was set based upon.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0
                },
                "reason": {
                    "description": "reason is a CamelCase identifier of the condition's last transition.",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
                },
                "status": {
                    "description": "status of the condition, one of True, False, Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"]
                },
                "type": {
                    "description": "type of condition in CamelCase or in foo.example.com/CamelCase.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                }
            }
        }
    })
}

/// A reachable Kubernetes API endpoint.
///
/// A port without a host is valid, as in CAPD: the port is then the load balancer's
/// frontend port, and the host is filled in with the load balancer's address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct ApiEndpoint {
    /// host is the hostname on which the API server is serving.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 512))]
    pub host: String,

    /// port is the port on which the API server is serving. Defaults to 6443.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1, max = 65535), extend("default" = 6443, "format" = "int32"))]
    pub port: i32,
}

impl ApiEndpoint {
    /// Neither host nor port set (Go's `omitzero`).
    pub fn is_zero(&self) -> bool {
        self.host.is_empty() && self.port == 0
    }

    /// Both host and port set, as Cluster API's `APIEndpoint.IsValid`.
    pub fn is_valid(&self) -> bool {
        !self.host.is_empty() && self.port != 0
    }
}

impl std::fmt::Display for ApiEndpoint {
    /// `host:port`, with brackets around IPv6 hosts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A failure domain: CAPD copies `spec.failureDomains` into `status.failureDomains` for
/// Cluster API to spread machines over.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureDomain {
    /// name is the name of the failure domain.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,

    /// controlPlane determines if this failure domain is suitable for use by control plane machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub control_plane: Option<bool>,

    /// attributes is a free form map of attributes an infrastructure provider might use or require.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl FailureDomain {
    /// A failure domain with only a name; `control_plane` as given.
    pub fn new(name: impl Into<String>, control_plane: bool) -> Self {
        Self {
            name: name.into(),
            control_plane: Some(control_plane),
            attributes: BTreeMap::new(),
        }
    }
}

/// Kind of a machine address.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum MachineAddressType {
    Hostname,
    #[serde(rename = "ExternalIP")]
    ExternalIp,
    #[serde(rename = "InternalIP")]
    InternalIp,
    #[serde(rename = "ExternalDNS")]
    ExternalDns,
    #[serde(rename = "InternalDNS")]
    InternalDns,
}

/// One address of a machine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct MachineAddress {
    /// type is the machine address type, one of Hostname, ExternalIP, InternalIP, ExternalDNS or InternalDNS.
    #[serde(rename = "type")]
    pub type_: MachineAddressType,
    /// address is the machine address.
    #[schemars(length(min = 1, max = 256))]
    pub address: String,
}

impl MachineAddress {
    pub fn new(type_: MachineAddressType, address: impl Into<String>) -> Self {
        Self {
            type_,
            address: address.into(),
        }
    }

    /// CAPD's addresses of a node container: its name as Hostname, and every IP both as
    /// InternalIP and ExternalIP.
    pub fn for_container<'a>(name: &str, ips: impl IntoIterator<Item = &'a str>) -> Vec<Self> {
        let mut out = vec![Self::new(MachineAddressType::Hostname, name)];
        for ip in ips {
            out.push(Self::new(MachineAddressType::InternalIp, ip));
            out.push(Self::new(MachineAddressType::ExternalIp, ip));
        }
        out
    }
}

/// Labels and annotations a template stamps onto the objects made from it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TemplateMeta {
    /// labels is a map of string keys and values that can be used to organize and categorize objects.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// annotations is an unstructured key value map stored with a resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMeta {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// Deprecated v1beta1 condition (Cluster API `clusterv1.Condition`), kept under
/// `status.deprecated.v1beta1.conditions` for controllers still on the v1beta1 contract.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1Beta1Condition {
    /// type of condition in CamelCase or in foo.example.com/CamelCase.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 256))]
    pub type_: String,
    /// status of the condition, one of True, False, Unknown.
    pub status: String,
    /// severity provides an explicit classification of Reason code; set only when status is False.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 32))]
    pub severity: String,
    /// lastTransitionTime is the last time the condition transitioned from one status to another.
    pub last_transition_time: Time,
    /// reason is the reason for the condition's last transition in CamelCase.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
    /// message is a human readable message indicating details about the transition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 10240))]
    pub message: String,
}

/// The `status.initialization` block of the v1beta2 contract.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("minProperties" = 1))]
pub struct Initialization {
    /// provisioned is true when the infrastructure is fully provisioned.
    /// Part of the Cluster API contract: it orchestrates initial provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<bool>,
}

impl Initialization {
    pub fn is_empty(&self) -> bool {
        self.provisioned.is_none()
    }
}

/// The deprecated block of a status: `status.deprecated.v1beta1.conditions`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct DeprecatedStatus {
    /// v1beta1 groups the status fields kept for the v1beta1 contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1beta1: Option<V1Beta1DeprecatedStatus>,
}

impl DeprecatedStatus {
    /// The v1beta1 conditions.
    pub fn v1beta1_conditions(&self) -> &[V1Beta1Condition] {
        self.v1beta1
            .as_ref()
            .map(|v| v.conditions.as_slice())
            .unwrap_or(&[])
    }

    /// Sets a v1beta1 condition, keeping `lastTransitionTime` when the status is unchanged.
    /// `severity` is dropped unless the status is False, as v1beta1 requires.
    pub fn set_v1beta1_condition(&mut self, mut new: V1Beta1Condition) {
        if new.status != "False" {
            new.severity.clear();
        }
        let conditions = &mut self.v1beta1.get_or_insert_with(Default::default).conditions;
        match conditions.iter_mut().find(|c| c.type_ == new.type_) {
            Some(existing) => {
                if existing.status == new.status {
                    new.last_transition_time = existing.last_transition_time.clone();
                }
                *existing = new;
            }
            None => conditions.push(new),
        }
        // v1beta1 order: Ready first, the rest by type.
        conditions
            .sort_by(|a, b| (a.type_ != "Ready", &a.type_).cmp(&(b.type_ != "Ready", &b.type_)));
    }
}

/// Status fields kept for the v1beta1 contract.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct V1Beta1DeprecatedStatus {
    /// conditions in the v1beta1 shape. Deprecated: read status.conditions instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<V1Beta1Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_display_brackets_ipv6() {
        let v4 = ApiEndpoint {
            host: "172.18.0.3".into(),
            port: 6443,
        };
        let v6 = ApiEndpoint {
            host: "fd00::3".into(),
            port: 6443,
        };
        assert_eq!(v4.to_string(), "172.18.0.3:6443");
        assert_eq!(v6.to_string(), "[fd00::3]:6443");
    }

    #[test]
    fn endpoint_validity_needs_host_and_port() {
        assert!(ApiEndpoint::default().is_zero());
        assert!(!ApiEndpoint {
            host: "h".into(),
            port: 0
        }
        .is_valid());
        assert!(ApiEndpoint {
            host: "h".into(),
            port: 1
        }
        .is_valid());
    }

    #[test]
    fn container_addresses_as_capd_reports_them() {
        let a = MachineAddress::for_container("c-md-0", ["172.18.0.4"]);
        let types: Vec<_> = a.iter().map(|a| a.type_).collect();
        assert_eq!(
            types,
            [
                MachineAddressType::Hostname,
                MachineAddressType::InternalIp,
                MachineAddressType::ExternalIp
            ]
        );
        assert_eq!(a[0].address, "c-md-0");
    }

    fn v1beta1(type_: &str, status: &str, at: i64) -> V1Beta1Condition {
        V1Beta1Condition {
            type_: type_.into(),
            status: status.into(),
            severity: "Warning".into(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(at).unwrap()),
            reason: "R".into(),
            message: String::new(),
        }
    }

    #[test]
    fn v1beta1_conditions_keep_transition_time_and_order() {
        let mut d = DeprecatedStatus::default();
        d.set_v1beta1_condition(v1beta1("LoadBalancerAvailable", "False", 1));
        d.set_v1beta1_condition(v1beta1("Ready", "False", 1));
        d.set_v1beta1_condition(v1beta1("Ready", "False", 5));
        let c = d.v1beta1_conditions();
        assert_eq!(c[0].type_, "Ready");
        assert_eq!(c[0].last_transition_time.0.as_second(), 1);
        assert_eq!(c[1].severity, "Warning");
        d.set_v1beta1_condition(v1beta1("Ready", "True", 9));
        let ready = &d.v1beta1_conditions()[0];
        assert_eq!(ready.last_transition_time.0.as_second(), 9);
        assert_eq!(ready.severity, "", "severity only when False");
    }

    #[test]
    fn machine_address_types_use_capi_spelling() {
        let a = MachineAddress::new(MachineAddressType::InternalIp, "10.0.0.1");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"type": "InternalIP", "address": "10.0.0.1"})
        );
    }
}
