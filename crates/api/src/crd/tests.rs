//! The generated CRDs carry the labels, names and rules CAPD-compatibility needs.

use super::*;
use serde_json::Value;

fn crd_json(kind: &str) -> Value {
    let crd = all()
        .unwrap()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    serde_json::to_value(crd).unwrap()
}

fn schema(kind: &str) -> Value {
    crd_json(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// The rule strings of `x-kubernetes-validations` at a JSON pointer into the schema.
fn rules_at(schema: &Value, pointer: &str) -> Vec<String> {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema at {pointer}"))
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|rules| rules.iter().map(|r| r["rule"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| usize::from(k == key) + count_key(v, key)).sum(),
        Value::Array(a) => a.iter().map(|v| count_key(v, key)).sum(),
        _ => 0,
    }
}

const KINDS: [&str; 4] = ["DockerCluster", "DockerClusterTemplate", "DockerMachine", "DockerMachineTemplate"];

#[test]
fn every_crd_is_v1beta2_namespaced_with_contract_labels() {
    for kind in KINDS {
        let crd = crd_json(kind);
        let labels = &crd["metadata"]["labels"];
        assert_eq!(labels["cluster.x-k8s.io/v1beta2"], "v1beta2", "{kind}");
        assert_eq!(labels["cluster.x-k8s.io/v1beta1"], "v1beta2", "{kind}");
        assert_eq!(labels["clusterctl.cluster.x-k8s.io"], "", "{kind}");
        assert!(labels.get("clusterctl.cluster.x-k8s.io/move").is_none(), "{kind}");
        assert_eq!(crd["spec"]["group"], "infrastructure.cluster.x-k8s.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["cluster-api"]));
        assert!(crd["spec"]["names"]["shortNames"].as_array().is_some_and(|s| !s.is_empty()), "{kind}");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["name"], "v1beta2");
        assert_eq!(versions[0]["served"], true);
        assert_eq!(versions[0]["storage"], true);
        assert_eq!(count_key(&crd, "nullable"), 0, "{kind} has nullable");
    }
}

#[test]
fn status_subresource_where_capd_has_one() {
    for (kind, has_status) in [
        ("DockerCluster", true),
        ("DockerMachine", true),
        ("DockerMachineTemplate", true),
        ("DockerClusterTemplate", false),
    ] {
        let sub = &crd_json(kind)["spec"]["versions"][0]["subresources"]["status"];
        assert_eq!(!sub.is_null(), has_status, "{kind}");
    }
}

#[test]
fn spec_is_optional_and_defaulted_on_clusters_and_machines() {
    for kind in ["DockerCluster", "DockerMachine"] {
        let s = schema(kind);
        let required = s["required"].as_array().cloned().unwrap_or_default();
        assert!(!required.contains(&"spec".into()), "{kind} requires spec");
        assert_eq!(s["properties"]["spec"]["default"], serde_json::json!({}), "{kind}");
    }
    for kind in ["DockerClusterTemplate", "DockerMachineTemplate"] {
        assert_eq!(schema(kind)["properties"]["spec"]["required"], serde_json::json!(["template"]));
    }
}

#[test]
fn control_plane_endpoint_rules() {
    let s = schema("DockerCluster");
    let ep = &s["properties"]["spec"]["properties"]["controlPlaneEndpoint"];
    assert_eq!(ep["minProperties"], 1);
    assert_eq!(ep["properties"]["port"]["minimum"], 1.0);
    assert_eq!(ep["properties"]["port"]["maximum"], 65535.0);
    assert_eq!(ep["properties"]["port"]["default"], 6443);
    assert_eq!(ep["properties"]["host"]["minLength"], 1);
    assert_eq!(
        rules_at(&s, "/properties/spec/properties/controlPlaneEndpoint"),
        ["has(self.host) || (has(self.port) && self.port == 6443)"]
    );
}

#[test]
fn failure_domains_are_a_sorted_list_map() {
    for (kind, pointer) in [
        ("DockerCluster", "/properties/spec/properties/failureDomains"),
        ("DockerClusterTemplate", "/properties/spec/properties/template/properties/spec/properties/failureDomains"),
    ] {
        let s = schema(kind);
        let fd = s.pointer(pointer).unwrap();
        assert_eq!(fd["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(fd["x-kubernetes-list-map-keys"], serde_json::json!(["name"]), "{kind}");
        assert_eq!(fd["items"]["properties"]["controlPlane"]["default"], false, "{kind}");
        assert_eq!(rules_at(&s, pointer), ["self.all(i, fd, i == 0 || self[i - 1].name < fd.name)"], "{kind}");
    }
    let status_fd = &schema("DockerCluster")["properties"]["status"]["properties"]["failureDomains"];
    assert_eq!(status_fd["x-kubernetes-list-map-keys"], serde_json::json!(["name"]));
}

#[test]
fn machine_spec_rules_apply_in_machines_and_templates() {
    for (kind, spec) in [
        ("DockerMachine", "/properties/spec"),
        ("DockerMachineTemplate", "/properties/spec/properties/template/properties/spec"),
    ] {
        let s = schema(kind);
        let mounts = format!("{spec}/properties/extraMounts/items/properties");
        assert_eq!(rules_at(&s, &format!("{mounts}/containerPath")), ["self.startsWith('/')"], "{kind}");
        assert_eq!(rules_at(&s, &format!("{mounts}/hostPath")), ["self.startsWith('/')"], "{kind}");
        let timeout = rules_at(&s, &format!("{spec}/properties/bootstrapTimeout"));
        assert_eq!(timeout.len(), 1);
        assert!(timeout[0].starts_with("self.matches("), "{kind}: {timeout:?}");
        assert_eq!(s.pointer(&format!("{spec}/properties/providerID/maxLength")).unwrap(), 512);
    }
}

#[test]
fn custom_image_immutability_binds_machines_not_templates() {
    let machine = schema("DockerMachine");
    let rules = machine["x-kubernetes-validations"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0]["rule"].as_str().unwrap().contains("oldSelf.spec.customImage"));
    assert_eq!(rules[0]["fieldPath"], ".spec.customImage");
    // A transition rule on the template would block ClusterClass dry-runs; the admission
    // policy handles template immutability instead.
    let template = serde_json::to_string(&schema("DockerMachineTemplate")).unwrap();
    assert!(!template.contains("oldSelf"), "template schema has a transition rule");
    let cluster_template = serde_json::to_string(&schema("DockerClusterTemplate")).unwrap();
    assert!(!cluster_template.contains("oldSelf"));
}

#[test]
fn conditions_validated_like_metav1_condition() {
    for kind in ["DockerCluster", "DockerMachine"] {
        let c = &schema(kind)["properties"]["status"]["properties"]["conditions"];
        assert_eq!(c["x-kubernetes-list-type"], "map");
        assert_eq!(c["x-kubernetes-list-map-keys"], serde_json::json!(["type"]));
        assert_eq!(c["maxItems"], 32);
        assert_eq!(c["items"]["properties"]["status"]["enum"], serde_json::json!(["True", "False", "Unknown"]));
        assert!(c["items"]["properties"]["reason"]["pattern"].is_string());
    }
}

#[test]
fn print_columns_show_cluster_state_and_age() {
    let columns = |kind: &str| -> Vec<String> {
        crd_json(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(columns("DockerCluster"), ["Cluster", "Provisioned", "Ready", "Host", "Port", "Paused", "Age"]);
    let machine = columns("DockerMachine");
    for c in ["Cluster", "Machine", "ProviderID", "Provisioned", "Ready", "IP", "Age"] {
        assert!(machine.contains(&c.to_string()), "{c} missing from {machine:?}");
    }
    assert_eq!(columns("DockerClusterTemplate").last().unwrap(), "Age");
}

const DEV_KINDS: [&str; 4] = ["DevCluster", "DevClusterTemplate", "DevMachine", "DevMachineTemplate"];

#[test]
fn dev_kinds_are_capds_names_subresources_and_columns() {
    for kind in DEV_KINDS {
        let crd = crd_json(kind);
        assert_eq!(crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"], "v1beta2", "{kind}");
        assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["cluster-api"]));
        assert!(crd["spec"]["names"]["shortNames"].is_null(), "{kind}: CAPD sets no short names");
        assert_eq!(count_key(&crd, "nullable"), 0, "{kind} has nullable");
    }
    for (kind, has_status) in [("DevCluster", true), ("DevMachine", true), ("DevMachineTemplate", true), ("DevClusterTemplate", false)] {
        let sub = &crd_json(kind)["spec"]["versions"][0]["subresources"]["status"];
        assert_eq!(!sub.is_null(), has_status, "{kind}");
    }
    let columns = |kind: &str| -> Vec<String> {
        crd_json(kind)["spec"]["versions"][0]["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(columns("DevCluster"), ["Cluster", "Age"]);
    assert_eq!(columns("DevMachine"), ["Cluster", "Provider ID", "Failure domain", "IP", "Paused", "Provisioned", "Age"]);
}

#[test]
fn dev_kinds_refuse_backends_other_than_docker() {
    for kind in ["DevCluster", "DevMachine"] {
        let s = schema(kind);
        assert_eq!(s["properties"]["spec"]["required"], serde_json::json!(["backend"]), "{kind}");
        let rules = rules_at(&s, "");
        assert!(rules.iter().any(|r| r.contains("has(self.spec.backend.docker)") && r.contains("!has(self.spec.backend.inMemory)")), "{kind}: {rules:?}");
        let messages = s["x-kubernetes-validations"].to_string();
        assert!(messages.contains("inMemory is not supported"), "{kind}: {messages}");
        assert!(s["properties"]["spec"]["properties"]["backend"]["properties"]["inMemory"].is_object(), "{kind}: inMemory must parse, to be refused with a message");
    }
}
