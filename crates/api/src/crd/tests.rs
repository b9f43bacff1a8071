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

/// One version of a CRD.
fn version(kind: &str, name: &str) -> Value {
    crd_json(kind)["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{kind} has no version {name}"))
}

/// The schema of the stored version, v1beta2.
fn schema(kind: &str) -> Value {
    schema_of(kind, "v1beta2")
}

fn schema_of(kind: &str, name: &str) -> Value {
    version(kind, name)["schema"]["openAPIV3Schema"].clone()
}

/// The rule strings of `x-kubernetes-validations` at a JSON pointer into the schema.
fn rules_at(schema: &Value, pointer: &str) -> Vec<String> {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema at {pointer}"))
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["rule"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| usize::from(k == key) + count_key(v, key))
            .sum(),
        Value::Array(a) => a.iter().map(|v| count_key(v, key)).sum(),
        _ => 0,
    }
}

const KINDS: [&str; 4] = [
    "DockerCluster",
    "DockerClusterTemplate",
    "DockerMachine",
    "DockerMachineTemplate",
];

#[test]
fn every_crd_is_v1beta2_namespaced_with_contract_labels() {
    for kind in KINDS {
        let crd = crd_json(kind);
        let labels = &crd["metadata"]["labels"];
        assert_eq!(labels["cluster.x-k8s.io/v1beta2"], "v1beta2", "{kind}");
        assert_eq!(labels["cluster.x-k8s.io/v1beta1"], "v1beta1", "{kind}");
        assert_eq!(labels["clusterctl.cluster.x-k8s.io"], "", "{kind}");
        assert!(
            labels.get("clusterctl.cluster.x-k8s.io/move").is_none(),
            "{kind}"
        );
        assert_eq!(crd["spec"]["group"], "infrastructure.cluster.x-k8s.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(
            crd["spec"]["names"]["categories"],
            serde_json::json!(["cluster-api"])
        );
        assert!(
            crd["spec"]["names"]["shortNames"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "{kind}"
        );
        let v1beta2 = version(kind, "v1beta2");
        assert_eq!(v1beta2["served"], true);
        assert_eq!(v1beta2["storage"], true);
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
        let sub = &version(kind, "v1beta2")["subresources"]["status"];
        assert_eq!(!sub.is_null(), has_status, "{kind}");
    }
}

#[test]
fn spec_is_optional_and_defaulted_on_clusters_and_machines() {
    for kind in ["DockerCluster", "DockerMachine"] {
        let s = schema(kind);
        let required = s["required"].as_array().cloned().unwrap_or_default();
        assert!(!required.contains(&"spec".into()), "{kind} requires spec");
        assert_eq!(
            s["properties"]["spec"]["default"],
            serde_json::json!({}),
            "{kind}"
        );
    }
    for kind in ["DockerClusterTemplate", "DockerMachineTemplate"] {
        assert_eq!(
            schema(kind)["properties"]["spec"]["required"],
            serde_json::json!(["template"])
        );
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
    // No rule tying port to host: CAPD accepts a port-only endpoint (its frontend port).
    assert!(rules_at(&s, "/properties/spec/properties/controlPlaneEndpoint").is_empty());
}

#[test]
fn failure_domains_are_a_sorted_list_map() {
    for (kind, pointer) in [
        (
            "DockerCluster",
            "/properties/spec/properties/failureDomains",
        ),
        (
            "DockerClusterTemplate",
            "/properties/spec/properties/template/properties/spec/properties/failureDomains",
        ),
    ] {
        let s = schema(kind);
        let fd = s.pointer(pointer).unwrap();
        assert_eq!(fd["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            fd["x-kubernetes-list-map-keys"],
            serde_json::json!(["name"]),
            "{kind}"
        );
        assert_eq!(
            fd["items"]["properties"]["controlPlane"]["default"], false,
            "{kind}"
        );
        assert_eq!(
            rules_at(&s, pointer),
            ["self.all(i, fd, i == 0 || self[i - 1].name < fd.name)"],
            "{kind}"
        );
    }
    let status_fd =
        &schema("DockerCluster")["properties"]["status"]["properties"]["failureDomains"];
    assert_eq!(
        status_fd["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
}

#[test]
fn machine_spec_rules_apply_in_machines_and_templates() {
    for (kind, spec) in [
        ("DockerMachine", "/properties/spec"),
        (
            "DockerMachineTemplate",
            "/properties/spec/properties/template/properties/spec",
        ),
    ] {
        let s = schema(kind);
        let mounts = format!("{spec}/properties/extraMounts/items/properties");
        assert_eq!(
            rules_at(&s, &format!("{mounts}/containerPath")),
            ["self.startsWith('/')"],
            "{kind}"
        );
        assert_eq!(
            rules_at(&s, &format!("{mounts}/hostPath")),
            ["self.startsWith('/')"],
            "{kind}"
        );
        let timeout = rules_at(&s, &format!("{spec}/properties/bootstrapTimeout"));
        assert_eq!(timeout.len(), 1);
        assert!(
            timeout[0].starts_with("self.matches("),
            "{kind}: {timeout:?}"
        );
        assert_eq!(
            s.pointer(&format!("{spec}/properties/providerID/maxLength"))
                .unwrap(),
            512
        );
    }
}

#[test]
fn custom_image_immutability_binds_machines_not_templates() {
    let machine = schema("DockerMachine");
    let rules = machine["x-kubernetes-validations"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0]["rule"]
        .as_str()
        .unwrap()
        .contains("oldSelf.spec.customImage"));
    assert_eq!(rules[0]["fieldPath"], ".spec.customImage");
    // A transition rule on the template would block ClusterClass dry-runs; the admission
    // policy handles template immutability instead.
    let template = serde_json::to_string(&schema("DockerMachineTemplate")).unwrap();
    assert!(
        !template.contains("oldSelf"),
        "template schema has a transition rule"
    );
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
        assert_eq!(
            c["items"]["properties"]["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"])
        );
        assert!(c["items"]["properties"]["reason"]["pattern"].is_string());
    }
}

#[test]
fn print_columns_show_cluster_state_and_age() {
    let columns = |kind: &str| -> Vec<String> {
        version(kind, "v1beta2")["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        columns("DockerCluster"),
        [
            "Cluster",
            "Provisioned",
            "Ready",
            "Host",
            "Port",
            "Paused",
            "Age"
        ]
    );
    let machine = columns("DockerMachine");
    for c in [
        "Cluster",
        "Machine",
        "ProviderID",
        "Provisioned",
        "Ready",
        "IP",
        "Age",
    ] {
        assert!(
            machine.contains(&c.to_string()),
            "{c} missing from {machine:?}"
        );
    }
    assert_eq!(columns("DockerClusterTemplate").last().unwrap(), "Age");
}

const DEV_KINDS: [&str; 4] = [
    "DevCluster",
    "DevClusterTemplate",
    "DevMachine",
    "DevMachineTemplate",
];

#[test]
fn dev_kinds_are_capds_names_subresources_and_columns() {
    for kind in DEV_KINDS {
        let crd = crd_json(kind);
        assert_eq!(
            crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"], "v1beta2",
            "{kind}"
        );
        assert_eq!(
            crd["spec"]["names"]["categories"],
            serde_json::json!(["cluster-api"])
        );
        assert!(
            crd["spec"]["names"]["shortNames"].is_null(),
            "{kind}: CAPD sets no short names"
        );
        assert_eq!(count_key(&crd, "nullable"), 0, "{kind} has nullable");
    }
    for (kind, has_status) in [
        ("DevCluster", true),
        ("DevMachine", true),
        ("DevMachineTemplate", true),
        ("DevClusterTemplate", false),
    ] {
        let sub = &version(kind, "v1beta2")["subresources"]["status"];
        assert_eq!(!sub.is_null(), has_status, "{kind}");
    }
    let columns = |kind: &str| -> Vec<String> {
        version(kind, "v1beta2")["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(columns("DevCluster"), ["Cluster", "Age"]);
    assert_eq!(
        columns("DevMachine"),
        [
            "Cluster",
            "Provider ID",
            "Failure domain",
            "IP",
            "Paused",
            "Provisioned",
            "Age"
        ]
    );
}

#[test]
fn dev_kinds_refuse_backends_other_than_docker() {
    for kind in ["DevCluster", "DevMachine"] {
        let s = schema(kind);
        assert_eq!(
            s["properties"]["spec"]["required"],
            serde_json::json!(["backend"]),
            "{kind}"
        );
        let rules = rules_at(&s, "");
        assert!(
            rules
                .iter()
                .any(|r| r.contains("has(self.spec.backend.docker)")
                    && r.contains("!has(self.spec.backend.inMemory)")),
            "{kind}: {rules:?}"
        );
        let messages = s["x-kubernetes-validations"].to_string();
        assert!(
            messages.contains("inMemory is not supported"),
            "{kind}: {messages}"
        );
        assert!(
            s["properties"]["spec"]["properties"]["backend"]["properties"]["inMemory"].is_object(),
            "{kind}: inMemory must parse, to be refused with a message"
        );
    }
}

/// The versions CAPD v1.14's CRD of each kind serves, in its order. DevMachinePool and
/// DevMachinePoolTemplate were added in v1beta2 and have no v1beta1.
const CAPD_VERSIONS: [(&str, &[&str]); 12] = [
    ("DockerCluster", &["v1beta1", "v1beta2"]),
    ("DockerClusterTemplate", &["v1beta1", "v1beta2"]),
    ("DockerMachine", &["v1beta1", "v1beta2"]),
    ("DockerMachineTemplate", &["v1beta1", "v1beta2"]),
    ("DockerMachinePool", &["v1beta1", "v1beta2"]),
    ("DockerMachinePoolTemplate", &["v1beta1", "v1beta2"]),
    ("DevCluster", &["v1beta1", "v1beta2"]),
    ("DevClusterTemplate", &["v1beta1", "v1beta2"]),
    ("DevMachine", &["v1beta1", "v1beta2"]),
    ("DevMachineTemplate", &["v1beta1", "v1beta2"]),
    ("DevMachinePool", &["v1beta2"]),
    ("DevMachinePoolTemplate", &["v1beta2"]),
];

#[test]
fn every_crd_serves_capds_versions_and_stores_only_v1beta2() {
    let crds = all().unwrap();
    assert_eq!(crds.len(), CAPD_VERSIONS.len());
    for (kind, expected) in CAPD_VERSIONS {
        let crd = crd_json(kind);
        let versions = crd["spec"]["versions"].as_array().unwrap();
        let names: Vec<&str> = versions
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "{kind}");
        let stored: Vec<&str> = versions
            .iter()
            .filter(|v| v["storage"] == true)
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            stored,
            [STORAGE_VERSION],
            "{kind}: exactly one storage version"
        );
        for v in versions {
            assert_eq!(v["served"], true, "{kind} {}", v["name"]);
            // CAPD marks v1beta1 deprecated, without a custom warning.
            assert_eq!(
                v["deprecated"] == true,
                v["name"] == "v1beta1",
                "{kind} {}",
                v["name"]
            );
            assert!(
                v.get("deprecationWarning").is_none(),
                "{kind} {}",
                v["name"]
            );
        }
        let labels = &crd["metadata"]["labels"];
        assert_eq!(labels["cluster.x-k8s.io/v1beta1"], "v1beta1", "{kind}");
        assert_eq!(labels["cluster.x-k8s.io/v1beta2"], "v1beta2", "{kind}");
    }
}

/// `merge_crds` keeps the stored version's `names`; the v1beta1 derive must say the same.
#[test]
fn both_versions_derive_the_same_names() {
    use crate::v1beta1;
    let pairs = [
        (v1beta1::DockerCluster::crd(), DockerCluster::crd()),
        (
            v1beta1::DockerClusterTemplate::crd(),
            DockerClusterTemplate::crd(),
        ),
        (v1beta1::DockerMachine::crd(), DockerMachine::crd()),
        (
            v1beta1::DockerMachineTemplate::crd(),
            DockerMachineTemplate::crd(),
        ),
        (v1beta1::DockerMachinePool::crd(), DockerMachinePool::crd()),
        (
            v1beta1::DockerMachinePoolTemplate::crd(),
            DockerMachinePoolTemplate::crd(),
        ),
        (v1beta1::DevCluster::crd(), DevCluster::crd()),
        (
            v1beta1::DevClusterTemplate::crd(),
            DevClusterTemplate::crd(),
        ),
        (v1beta1::DevMachine::crd(), DevMachine::crd()),
        (
            v1beta1::DevMachineTemplate::crd(),
            DevMachineTemplate::crd(),
        ),
    ];
    for (old, new) in pairs {
        assert_eq!(old.spec.names, new.spec.names, "{}", new.spec.names.kind);
        assert_eq!(old.metadata.name, new.metadata.name);
        assert_eq!(old.spec.versions[0].name, "v1beta1");
    }
}

/// `finish` post-processes every version, not only the stored one.
#[test]
fn post_processing_applies_to_every_version() {
    for (kind, versions) in CAPD_VERSIONS {
        let crd = crd_json(kind);
        assert_eq!(count_key(&crd, "nullable"), 0, "{kind} has nullable");
        for name in versions {
            let s = schema_of(kind, name);
            assert!(
                s.get("title").is_none(),
                "{kind} {name} keeps schemars' title"
            );
            assert_eq!(
                wrapped_descriptions(&s),
                Vec::<String>::new(),
                "{kind} {name}"
            );
        }
    }
    for kind in ["DockerCluster", "DockerMachine", "DockerMachinePool"] {
        for name in ["v1beta1", "v1beta2"] {
            let s = schema_of(kind, name);
            assert_eq!(
                s["properties"]["spec"]["default"],
                serde_json::json!({}),
                "{kind} {name}"
            );
            assert!(
                s.get("required").is_none(),
                "{kind} {name} requires {}",
                s["required"]
            );
        }
    }
}

/// Descriptions with a line break that is not a paragraph break (`unwrap_descriptions` joins them).
fn wrapped_descriptions(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match v {
                Value::String(d) if k == "description" && d.replace("\n\n", "").contains('\n') => {
                    vec![d.clone()]
                }
                v => wrapped_descriptions(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(wrapped_descriptions).collect(),
        _ => vec![],
    }
}

/// The v1beta1 conditions of Cluster API: `severity`, no `observedGeneration`, and only
/// type, status and lastTransitionTime required.
fn assert_v1beta1_conditions(c: &Value, what: &str) {
    assert_eq!(c["type"], "array", "{what}");
    let item = &c["items"];
    assert_eq!(item["properties"]["severity"]["maxLength"], 32, "{what}");
    assert_eq!(item["properties"]["type"]["maxLength"], 256, "{what}");
    assert_eq!(item["properties"]["message"]["maxLength"], 10240, "{what}");
    assert!(item["properties"]["observedGeneration"].is_null(), "{what}");
    assert!(
        item["properties"]["status"]["enum"].is_null(),
        "{what}: v1beta1 status is a free string"
    );
    assert_eq!(
        item["required"],
        serde_json::json!(["lastTransitionTime", "status", "type"]),
        "{what}"
    );
    assert!(
        c.get("x-kubernetes-list-type").is_none(),
        "{what}: v1beta1 conditions are a plain list"
    );
}

/// `status.v1beta2.conditions`: the metav1.Condition list v1beta2 has at `status.conditions`.
fn assert_v1beta2_conditions(status: &Value, what: &str) {
    let c = &status["properties"]["v1beta2"]["properties"]["conditions"];
    assert_eq!(c["x-kubernetes-list-type"], "map", "{what}");
    assert_eq!(
        c["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"]),
        "{what}"
    );
    assert_eq!(c["maxItems"], 32, "{what}");
    assert_eq!(
        c["items"]["properties"]["status"]["enum"],
        serde_json::json!(["True", "False", "Unknown"]),
        "{what}"
    );
    assert!(
        c["items"]["properties"]["observedGeneration"].is_object(),
        "{what}"
    );
}

/// A v1beta1 failure-domain map: `name -> {controlPlane, attributes}`.
fn assert_failure_domain_map(fd: &Value, what: &str) {
    assert_eq!(fd["type"], "object", "{what}");
    assert!(fd.get("items").is_none(), "{what} is a list");
    let domain = &fd["additionalProperties"];
    assert_eq!(
        domain["properties"]["controlPlane"]["type"], "boolean",
        "{what}"
    );
    assert!(
        domain["properties"]["controlPlane"]
            .get("default")
            .is_none(),
        "{what}"
    );
    assert_eq!(
        domain["properties"]["attributes"]["additionalProperties"]["type"], "string",
        "{what}"
    );
    assert!(
        domain["properties"].get("name").is_none(),
        "{what}: the name is the key"
    );
}

#[test]
fn docker_cluster_v1beta1_has_capds_v1beta1_shape() {
    let s = schema_of("DockerCluster", "v1beta1");
    let spec = &s["properties"]["spec"];
    assert_failure_domain_map(&spec["properties"]["failureDomains"], "spec.failureDomains");
    let endpoint = &spec["properties"]["controlPlaneEndpoint"];
    assert_eq!(
        endpoint["properties"]["port"],
        serde_json::json!({"type": "integer", "description": endpoint["properties"]["port"]["description"]})
    );
    assert!(
        endpoint.get("x-kubernetes-validations").is_none()
            && endpoint.get("minProperties").is_none()
    );
    let lb_ref =
        &spec["properties"]["loadBalancer"]["properties"]["customHAProxyConfigTemplateRef"];
    assert_eq!(lb_ref["x-kubernetes-map-type"], "atomic");
    assert_eq!(lb_ref["properties"]["name"]["default"], "");

    let status = &s["properties"]["status"];
    assert_eq!(status["properties"]["ready"]["type"], "boolean");
    assert_failure_domain_map(
        &status["properties"]["failureDomains"],
        "status.failureDomains",
    );
    assert_v1beta1_conditions(
        &status["properties"]["conditions"],
        "DockerCluster status.conditions",
    );
    assert_v1beta2_conditions(status, "DockerCluster");
    for v1beta2_only in ["initialization", "deprecated"] {
        assert!(
            status["properties"].get(v1beta2_only).is_none(),
            "v1beta1 status has {v1beta2_only}"
        );
    }
    assert!(version("DockerCluster", "v1beta1")["subresources"]["status"].is_object());
    // v1beta2 keeps its own shape.
    assert_eq!(
        schema("DockerCluster")["properties"]["spec"]["properties"]["failureDomains"]["type"],
        "array"
    );
}

#[test]
fn docker_machine_v1beta1_has_capds_v1beta1_shape() {
    for (kind, spec) in [
        ("DockerMachine", "/properties/spec"),
        (
            "DockerMachineTemplate",
            "/properties/spec/properties/template/properties/spec",
        ),
    ] {
        let s = schema_of(kind, "v1beta1");
        let spec = s.pointer(spec).unwrap();
        assert_eq!(
            spec["properties"]["bootstrapTimeout"]["type"], "string",
            "{kind}"
        );
        // CAPD's v1beta1 schema has none of the limits and rules v1beta2 added.
        assert!(
            spec["properties"]["bootstrapTimeout"]
                .get("x-kubernetes-validations")
                .is_none(),
            "{kind}"
        );
        assert!(
            spec["properties"]["providerID"].get("maxLength").is_none(),
            "{kind}"
        );
        let mount = &spec["properties"]["extraMounts"]["items"]["properties"];
        assert_eq!(mount["readOnly"]["type"], "boolean", "{kind}");
        assert!(
            mount["containerPath"]
                .get("x-kubernetes-validations")
                .is_none(),
            "{kind}"
        );
    }
    let status = &schema_of("DockerMachine", "v1beta1")["properties"]["status"];
    assert_eq!(status["properties"]["ready"]["type"], "boolean");
    assert_eq!(
        status["properties"]["loadBalancerConfigured"]["type"],
        "boolean"
    );
    assert_eq!(
        status["properties"]["addresses"]["items"]["required"],
        serde_json::json!(["address", "type"])
    );
    assert!(
        status["properties"].get("failureDomain").is_none(),
        "v1beta1 has no status.failureDomain"
    );
    assert_v1beta1_conditions(
        &status["properties"]["conditions"],
        "DockerMachine status.conditions",
    );
    assert_v1beta2_conditions(status, "DockerMachine");
    // DockerMachineTemplate's v1beta1 has no status (v1beta2 has capacity).
    assert!(version("DockerMachineTemplate", "v1beta1")["subresources"]["status"].is_null());
    assert!(schema_of("DockerMachineTemplate", "v1beta1")["properties"]
        .get("status")
        .is_none());
}

#[test]
fn dev_kinds_v1beta1_have_capds_v1beta1_shape() {
    let cluster = schema_of("DevCluster", "v1beta1");
    let backend = &cluster["properties"]["spec"]["properties"]["backend"];
    assert_eq!(
        cluster["properties"]["spec"]["required"],
        serde_json::json!(["backend"])
    );
    assert_failure_domain_map(
        &backend["properties"]["docker"]["properties"]["failureDomains"],
        "DevCluster docker.failureDomains",
    );
    assert_eq!(backend["properties"]["inMemory"]["type"], "object");
    assert_failure_domain_map(
        &cluster["properties"]["status"]["properties"]["failureDomains"],
        "DevCluster status.failureDomains",
    );
    assert_v1beta2_conditions(&cluster["properties"]["status"], "DevCluster");

    let machine = schema_of("DevMachine", "v1beta1");
    let docker = &machine["properties"]["spec"]["properties"]["backend"]["properties"]["docker"];
    assert_eq!(docker["properties"]["bootstrapTimeout"]["type"], "string");
    let in_memory =
        &machine["properties"]["spec"]["properties"]["backend"]["properties"]["inMemory"];
    assert_eq!(
        in_memory["properties"]["vm"]["properties"]["provisioning"]["required"],
        serde_json::json!(["startupDuration"])
    );
    assert_eq!(
        machine["properties"]["status"]["properties"]["ready"]["type"],
        "boolean"
    );
    assert_v1beta1_conditions(
        &machine["properties"]["status"]["properties"]["conditions"],
        "DevMachine status.conditions",
    );

    let template = schema_of("DevClusterTemplate", "v1beta1");
    let spec = template
        .pointer("/properties/spec/properties/template/properties/spec")
        .unwrap();
    assert_eq!(spec["required"], serde_json::json!(["backend"]));
    assert_failure_domain_map(
        &spec["properties"]["backend"]["properties"]["docker"]["properties"]["failureDomains"],
        "DevClusterTemplate",
    );
}

#[test]
fn machine_pool_v1beta1_has_capds_v1beta1_shape() {
    let s = schema_of("DockerMachinePool", "v1beta1");
    let status = &s["properties"]["status"]["properties"];
    assert_eq!(status["replicas"]["format"], "int32");
    assert_eq!(
        status["instances"]["items"]["properties"]["bootstrapped"]["type"],
        "boolean"
    );
    assert_v1beta1_conditions(&status["conditions"], "DockerMachinePool status.conditions");
    assert!(
        status.get("v1beta2").is_none(),
        "CAPD's v1beta1 DockerMachinePool has no status.v1beta2"
    );
    assert!(status.get("deprecated").is_none());
    let template = schema_of("DockerMachinePoolTemplate", "v1beta1");
    assert_eq!(
        template["properties"]["spec"]["required"],
        serde_json::json!(["template"])
    );
    assert_eq!(
        template
            .pointer("/properties/spec/properties/template/required")
            .unwrap(),
        &serde_json::json!(["spec"])
    );
}

#[test]
fn v1beta1_print_columns_are_capds() {
    let columns = |kind: &str| -> Vec<(String, String)> {
        version(kind, "v1beta1")["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["jsonPath"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let names = |kind: &str| -> Vec<String> { columns(kind).into_iter().map(|(n, _)| n).collect() };
    for kind in ["DockerMachine", "DevMachine"] {
        assert_eq!(
            names(kind),
            ["Cluster", "Machine", "ProviderID", "Ready", "Age"],
            "{kind}"
        );
        assert!(
            columns(kind).contains(&("Ready".into(), ".status.ready".into())),
            "{kind}"
        );
    }
    for kind in ["DockerCluster", "DevCluster"] {
        assert_eq!(names(kind), ["Cluster", "Age"], "{kind}");
    }
    for kind in [
        "DockerClusterTemplate",
        "DockerMachineTemplate",
        "DockerMachinePool",
        "DockerMachinePoolTemplate",
        "DevClusterTemplate",
        "DevMachineTemplate",
    ] {
        assert_eq!(names(kind), ["Age"], "{kind}");
    }
}

/// Admission rules that hold whatever version a request uses are the same in v1beta1.
#[test]
fn capd_rs_admission_rules_hold_in_v1beta1_too() {
    for kind in ["DockerMachine", "DevCluster", "DevMachine"] {
        let old = &schema_of(kind, "v1beta1")["x-kubernetes-validations"];
        assert!(old.as_array().is_some_and(|r| !r.is_empty()), "{kind}");
        assert_eq!(old, &schema(kind)["x-kubernetes-validations"], "{kind}");
    }
    for kind in [
        "DockerCluster",
        "DockerClusterTemplate",
        "DockerMachineTemplate",
        "DevClusterTemplate",
        "DevMachineTemplate",
        "DockerMachinePool",
    ] {
        assert!(
            schema_of(kind, "v1beta1")
                .get("x-kubernetes-validations")
                .is_none(),
            "{kind}"
        );
    }
}
