//! `DockerMachine`: one Cluster API machine as a node container. Field names, optionality
//! and defaults are CAPD's v1beta2.

use crate::common::{is_false, DeprecatedStatus, Initialization, MachineAddress};
use crate::conditions::HasConditions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
#[allow(unused_imports)] // used inside the `x_kube`/`kube` attributes
use kube::core::{Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CAPD's providerID of a node container: `docker:////<container name>`.
pub fn provider_id(container_name: &str) -> String {
    format!("docker:////{container_name}")
}

/// How long CAPD waits for a machine to bootstrap when `bootstrapTimeout` is not set.
pub const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// DockerMachineSpec defines the desired state of DockerMachine.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema,
)]
#[kube(
    group = "infrastructure.cluster.x-k8s.io",
    version = "v1beta2",
    kind = "DockerMachine",
    namespaced,
    status = "DockerMachineStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "dma",
    category = "cluster-api",
    doc = "DockerMachine is a Cluster API machine made of a node container.",
    // Root-level so it does not also bind DockerMachineTemplate, whose spec.template.spec
    // shares DockerMachineSpec and must stay patchable by ClusterClass dry-runs.
    validation = Rule::new("(has(self.spec.customImage) ? self.spec.customImage : '') == (has(oldSelf.spec.customImage) ? oldSelf.spec.customImage : '')")
        .message("customImage is immutable")
        .field_path(".spec.customImage")
        .reason(Reason::FieldValueForbidden),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", description = "Cluster"),
    printcolumn(name = "Machine", type_ = "string", json_path = ".metadata.ownerReferences[?(@.kind==\"Machine\")].name", description = "Machine that owns this DockerMachine"),
    printcolumn(name = "ProviderID", type_ = "string", json_path = ".spec.providerID", description = "Provider ID"),
    printcolumn(name = "Provisioned", type_ = "string", json_path = ".status.initialization.provisioned", description = "DockerMachine is provisioned"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Ready condition"),
    printcolumn(name = "Failure domain", type_ = "string", json_path = ".status.failureDomain", description = "Failure domain the machine is placed in", priority = 10),
    printcolumn(name = "IP", type_ = "string", json_path = ".status.addresses[?(@.type==\"InternalIP\")].address", description = "IP of the machine", priority = 10),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.customImage", description = "Custom node image", priority = 10),
    printcolumn(name = "Paused", type_ = "string", json_path = ".status.conditions[?(@.type==\"Paused\")].status", description = "Reconciliation paused", priority = 10),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", description = "Time since creation")
)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineSpec {
    /// providerID is the container name in ProviderID format (docker:////<containername>).
    #[serde(
        rename = "providerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(length(min = 1, max = 512))]
    pub provider_id: String,

    /// customImage is the container image the machine runs, instead of
    /// kindest/node:<Kubernetes version>. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub custom_image: String,

    /// preLoadImages are loaded into a new machine before bootstrap, e.g. CNI images, so that
    /// every node need not pull them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_load_images: Vec<String>,

    /// extraMounts are additional bind mounts into the node container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,

    /// bootstrapTimeout is how long to wait for the machine to bootstrap before timing out,
    /// a duration such as "5m" or "1h30m". Defaults to 5m.
    // The rule accepts what Go's time.ParseDuration does, less the sign: a timeout is never negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(r"self.matches('^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')")
        .message("must be a duration such as 90s, 5m or 1h30m")
        .reason(Reason::FieldValueInvalid))]
    pub bootstrap_timeout: Option<String>,
}

/// Mount is a host path mounted into the node container (a simplified kind `Mount`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// containerPath is the absolute path of the mount inside the container.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    #[x_kube(validation = Rule::new("self.startsWith('/')")
        .message("must be an absolute path")
        .reason(Reason::FieldValueInvalid))]
    pub container_path: String,

    /// hostPath is the absolute path on the host. It must exist; symbolic links are followed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 4096))]
    #[x_kube(validation = Rule::new("self.startsWith('/')")
        .message("must be an absolute path")
        .reason(Reason::FieldValueInvalid))]
    pub host_path: String,

    /// readOnly mounts it read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

/// DockerMachineStatus defines the observed state of DockerMachine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerMachineStatus {
    /// conditions represents the observations of a DockerMachine's current state.
    /// Known condition types are Ready, ContainerProvisioned, BootstrapCompleted and Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,

    /// initialization provides observations of the DockerMachine initialization process
    /// (part of the Cluster API v1beta2 contract).
    #[serde(default, skip_serializing_if = "Initialization::is_empty")]
    pub initialization: Initialization,

    /// ready mirrors initialization.provisioned for controllers on the v1beta1 contract.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ready: bool,

    /// loadBalancerConfigured denotes that the machine has been added to the load balancer.
    #[serde(default)]
    pub load_balancer_configured: bool,

    /// addresses of the machine: its hostname and container IPs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub addresses: Vec<MachineAddress>,

    /// failureDomain is the failure domain the machine has been placed in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 256))]
    pub failure_domain: String,

    /// deprecated groups the status fields kept for the v1beta1 contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedStatus>,
}

/// Parses a Go duration string ("5m", "1h30m", "1.5s", "0") as `bootstrapTimeout` holds it.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map(|(i, _)| i)
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).ok()
}

impl DockerMachine {
    /// `status.initialization.provisioned`.
    pub fn is_provisioned(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.initialization.provisioned)
            .unwrap_or(false)
    }

    /// The status, created empty if missing.
    pub fn status_mut(&mut self) -> &mut DockerMachineStatus {
        self.status.get_or_insert_with(Default::default)
    }

    /// Marks the machine provisioned for both contracts (v1beta2 `initialization`, v1beta1 `ready`).
    pub fn set_provisioned(&mut self, provisioned: bool) {
        let status = self.status_mut();
        status.initialization.provisioned = Some(provisioned);
        status.ready = provisioned;
    }

    /// `spec.bootstrapTimeout`, or CAPD's default of 5 minutes when unset or unparsable
    /// (the schema already rejects unparsable values).
    pub fn bootstrap_timeout(&self) -> Duration {
        self.spec
            .bootstrap_timeout
            .as_deref()
            .and_then(parse_go_duration)
            .unwrap_or(DEFAULT_BOOTSTRAP_TIMEOUT)
    }
}

impl HasConditions for DockerMachine {
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

    #[test]
    fn provider_id_is_capd_format() {
        assert_eq!(provider_id("c-md-0-x"), "docker:////c-md-0-x");
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "m", "5x", "-5m", "1h 2m", "."] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bootstrap_timeout_defaults_to_five_minutes() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        assert_eq!(dm.bootstrap_timeout(), DEFAULT_BOOTSTRAP_TIMEOUT);
        dm.spec.bootstrap_timeout = Some("10m".into());
        assert_eq!(dm.bootstrap_timeout(), Duration::from_secs(600));
    }

    #[test]
    fn status_serializes_load_balancer_configured_always() {
        // CAPD's field has no omitempty: v1beta1 readers expect it present.
        let status = serde_json::to_value(DockerMachineStatus::default()).unwrap();
        assert_eq!(status, serde_json::json!({"loadBalancerConfigured": false}));
    }
}
