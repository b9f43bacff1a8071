use super::*;
use serde_json::json;

fn without_data(mut v: Value) -> Value {
    if let Some(ann) = v
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove(DATA_ANNOTATION);
        if ann.is_empty() {
            v["metadata"].as_object_mut().unwrap().remove("annotations");
        }
    }
    v
}

fn meta() -> Value {
    json!({"name": "c1", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": {"cluster.x-k8s.io/cluster-name": "c1"}, "annotations": {"keep": "me"}})
}

fn v1beta1_condition(t: &str) -> Value {
    json!({"type": t, "status": "False", "severity": "Warning", "reason": "Waiting", "message": "m", "lastTransitionTime": "2026-11-30T07:00:00Z"})
}

fn v1beta2_condition(t: &str) -> Value {
    json!({"type": t, "status": "True", "reason": "Ready", "message": "", "observedGeneration": 3, "lastTransitionTime": "2026-11-30T07:00:00Z"})
}

/// One v1beta1 object per kind, with every field that converts non-trivially.
fn v1beta1_objects() -> Vec<Value> {
    let cluster_spec = json!({
        "controlPlaneEndpoint": {"host": "172.18.0.3", "port": 6443},
        "failureDomains": {"fd2": {"controlPlane": false}, "fd1": {"controlPlane": true, "attributes": {"zone": "a"}}},
        "loadBalancer": {"imageRepository": "kindest", "imageTag": "v1", "customHAProxyConfigTemplateRef": {"name": "lb"}},
    });
    let cluster_status = json!({
        "ready": true,
        "failureDomains": {"fd1": {"controlPlane": true, "attributes": {"zone": "a"}}},
        "conditions": [v1beta1_condition("LoadBalancerAvailable")],
        "v1beta2": {"conditions": [v1beta2_condition("Ready")]},
    });
    let machine_spec = json!({"providerID": "docker:////c1-md-0-x", "customImage": "kindest/node:v1.36.3", "preLoadImages": ["busybox"],
        "extraMounts": [{"containerPath": "/data", "hostPath": "/tmp/d", "readOnly": true}], "bootstrapTimeout": "5m0s"});
    let machine_status = json!({"ready": true, "loadBalancerConfigured": true, "addresses": [{"type": "InternalIP", "address": "172.18.0.4"}],
        "conditions": [v1beta1_condition("ContainerProvisioned")], "v1beta2": {"conditions": [v1beta2_condition("Ready")]}});
    let pool_spec = json!({"template": {"customImage": "kindest/node:v1.36.3", "preLoadImages": ["busybox"]}, "providerID": "docker:////pool", "providerIDList": ["docker:////a"]});
    let pool_status = json!({"ready": true, "replicas": 2, "observedGeneration": 4, "infrastructureMachineKind": "DockerMachine",
        "instances": [{"instanceName": "a", "providerID": "docker:////a", "ready": true, "bootstrapped": true, "version": "v1.36.3"}],
        "conditions": [v1beta1_condition("ReplicasReady")]});
    let tmpl =
        |spec: Value| json!({"template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}});
    let dev = |docker: Value| json!({"docker": docker});
    let obj = |kind: &str, spec: Value, status: Option<Value>| {
        let mut o = json!({"apiVersion": V1BETA1, "kind": kind, "metadata": meta(), "spec": spec});
        if let Some(s) = status {
            o["status"] = s;
        }
        o
    };
    // A DevMachine's providerID sits beside `backend`, not inside the docker backend.
    let mut dev_machine_spec = machine_spec.clone();
    dev_machine_spec
        .as_object_mut()
        .unwrap()
        .remove("providerID");
    let mut dev_cluster_spec =
        json!({"controlPlaneEndpoint": cluster_spec["controlPlaneEndpoint"].clone()});
    dev_cluster_spec["backend"] = dev(
        json!({"failureDomains": cluster_spec["failureDomains"].clone(), "loadBalancer": cluster_spec["loadBalancer"].clone()}),
    );
    vec![
        obj(
            "DockerCluster",
            cluster_spec.clone(),
            Some(cluster_status.clone()),
        ),
        obj("DockerClusterTemplate", tmpl(cluster_spec.clone()), None),
        obj(
            "DockerMachine",
            machine_spec.clone(),
            Some(machine_status.clone()),
        ),
        obj("DockerMachineTemplate", tmpl(machine_spec.clone()), None),
        obj(
            "DockerMachinePool",
            pool_spec.clone(),
            Some(pool_status.clone()),
        ),
        obj("DockerMachinePoolTemplate", tmpl(pool_spec.clone()), None),
        obj("DevCluster", dev_cluster_spec.clone(), Some(cluster_status)),
        obj("DevClusterTemplate", tmpl(dev_cluster_spec), None),
        obj(
            "DevMachine",
            json!({"providerID": "docker:////x", "backend": dev(dev_machine_spec.clone())}),
            Some(machine_status),
        ),
        obj(
            "DevMachineTemplate",
            tmpl(json!({"providerID": "docker:////x", "backend": dev(dev_machine_spec)})),
            None,
        ),
        obj(
            "DevMachinePool",
            json!({"template": {"backend": dev(pool_spec["template"].clone())}}),
            Some(pool_status),
        ),
        obj(
            "DevMachinePoolTemplate",
            tmpl(json!({"template": {"backend": dev(pool_spec["template"].clone())}})),
            None,
        ),
    ]
}

#[test]
fn every_kind_survives_v1beta1_to_v1beta2_and_back() {
    for original in v1beta1_objects() {
        let kind = original["kind"].as_str().unwrap().to_string();
        let hub = convert(original.clone(), V1BETA2).unwrap();
        assert_eq!(hub["apiVersion"], V1BETA2, "{kind}");
        let back = convert(hub.clone(), V1BETA1).unwrap();
        assert_eq!(
            without_data(back),
            original,
            "{kind}: v1beta1 → v1beta2 → v1beta1 changed the object\nhub: {hub:#}"
        );
    }
}

#[test]
fn every_kind_survives_v1beta2_to_v1beta1_and_back_including_what_v1beta1_cannot_hold() {
    for spoke in v1beta1_objects() {
        let kind = spoke["kind"].as_str().unwrap().to_string();
        let mut hub = convert(spoke, V1BETA2).unwrap();
        // What only v1beta2 has.
        if let Some(status) = hub.get_mut("status").and_then(Value::as_object_mut) {
            if kind.ends_with("Machine") {
                status.insert("failureDomain".into(), json!("fd1"));
                status.insert("initialization".into(), json!({"provisioned": false}));
                status.insert("ready".into(), json!(false));
            }
            if kind.ends_with("Pool") {
                status.insert("conditions".into(), json!([v1beta2_condition("Ready")]));
            }
        }
        if kind.ends_with("MachineTemplate") {
            hub["status"] = json!({"capacity": {"cpu": "2", "memory": "24Gi"}});
        }
        let spoke = convert(hub.clone(), V1BETA1).unwrap();
        let keeps = !(kind.ends_with("ClusterTemplate") || kind.ends_with("PoolTemplate"));
        let ann = format!(
            "/metadata/annotations/{}",
            DATA_ANNOTATION.replace('/', "~1")
        );
        assert_eq!(
            spoke.pointer(&ann).is_some(),
            keeps,
            "{kind}: conversion data kept as CAPD keeps it"
        );
        let again = convert(spoke.clone(), V1BETA2).unwrap();
        assert_eq!(
            again, hub,
            "{kind}: v1beta2 → v1beta1 → v1beta2 changed the object\nspoke: {spoke:#}"
        );
    }
}

#[test]
fn a_v1beta1_cluster_reads_as_capd_writes_it_in_v1beta2() {
    let dc = convert(v1beta1_objects().remove(0), V1BETA2).unwrap();
    assert_eq!(
        dc["spec"]["failureDomains"],
        json!([
            {"name": "fd1", "controlPlane": true, "attributes": {"zone": "a"}},
            {"name": "fd2", "controlPlane": false},
        ])
    );
    assert_eq!(dc["status"]["initialization"]["provisioned"], true);
    assert_eq!(dc["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(
        dc["status"]["deprecated"]["v1beta1"]["conditions"][0]["severity"],
        "Warning"
    );
    assert!(dc["status"].get("v1beta2").is_none());
    assert_eq!(
        dc["metadata"]["annotations"],
        json!({"keep": "me"}),
        "other annotations untouched"
    );
    // And it is a DockerCluster as this crate reads one.
    let typed: crate::DockerCluster = serde_json::from_value(dc).unwrap();
    assert!(typed.is_provisioned());
    assert_eq!(typed.spec.failure_domains[0].name, "fd1");
}

#[test]
fn a_v1beta2_object_reads_as_capd_writes_it_in_v1beta1() {
    let hub = json!({"apiVersion": V1BETA2, "kind": "DockerMachine", "metadata": {"name": "m"},
        "spec": {"providerID": ""},
        "status": {"initialization": {"provisioned": true}, "failureDomain": "fd1", "conditions": [v1beta2_condition("Ready")], "loadBalancerConfigured": false}});
    let m = convert(hub, V1BETA1).unwrap();
    assert_eq!(m["status"]["ready"], true);
    assert!(
        m["status"].get("initialization").is_none() && m["status"].get("failureDomain").is_none()
    );
    assert_eq!(m["status"]["v1beta2"]["conditions"][0]["type"], "Ready");
    assert!(
        m["spec"].get("providerID").is_none(),
        "an empty providerID is unset in v1beta1"
    );
    let data: Value = serde_json::from_str(
        m["metadata"]["annotations"][DATA_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["status"]["failureDomain"], "fd1");
    assert!(
        data.get("metadata").is_none(),
        "CAPD stores the object without its metadata"
    );
}

#[test]
fn a_cluster_that_was_never_provisioned_stays_unset() {
    let spoke = json!({"apiVersion": V1BETA1, "kind": "DockerCluster", "metadata": {"name": "c"}, "spec": {}, "status": {"ready": false}});
    let hub = convert(spoke, V1BETA2).unwrap();
    assert!(hub["status"].get("initialization").is_none(), "{hub}");
}

#[test]
fn same_version_is_returned_unchanged() {
    let o = v1beta1_objects().remove(2);
    assert_eq!(convert(o.clone(), V1BETA1).unwrap(), o);
}

#[test]
fn bad_input_is_refused_with_what_and_where() {
    let o = json!({"apiVersion": V1BETA1, "kind": "DockerCluster", "metadata": {"name": "c"}, "spec": {"failureDomains": ["fd1"]}});
    assert_eq!(
        convert(o, V1BETA2).unwrap_err(),
        Error::Field {
            field: "spec.failureDomains".into(),
            problem: "expected a map of failure domains (v1beta1)".into()
        }
    );
    let o = json!({"apiVersion": V1BETA1, "kind": "DevClusterTemplate", "metadata": {"name": "c"},
        "spec": {"template": {"spec": {"backend": {"docker": {"failureDomains": 3}}}}}});
    assert!(convert(o, V1BETA2)
        .unwrap_err()
        .to_string()
        .starts_with("spec.template.spec.backend.docker.failureDomains:"));
    let o = json!({"apiVersion": V1BETA1, "kind": "Cluster", "metadata": {"name": "c"}});
    assert_eq!(
        convert(o, V1BETA2).unwrap_err(),
        Error::Kind("Cluster".into())
    );
    let o =
        json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha4", "kind": "DockerCluster"});
    assert!(
        matches!(convert(o, V1BETA2).unwrap_err(), Error::Version(v) if v.ends_with("v1alpha4"))
    );
    let o = json!({"apiVersion": V1BETA1, "kind": "DockerMachine", "metadata": {"name": "m", "annotations": {DATA_ANNOTATION: "{not json"}}});
    assert!(convert(o, V1BETA2)
        .unwrap_err()
        .to_string()
        .contains("conversion-data"));
}

#[test]
fn empty_provider_ids_are_unset_in_v1beta1_for_both_machine_kinds() {
    for (kind, spec) in [
        ("DockerMachine", json!({"providerID": ""})),
        (
            "DevMachine",
            json!({"providerID": "", "backend": {"docker": {}}}),
        ),
    ] {
        let hub =
            json!({"apiVersion": V1BETA2, "kind": kind, "metadata": {"name": "m"}, "spec": spec});
        let spoke = convert(hub, V1BETA1).unwrap();
        assert!(spoke["spec"].get("providerID").is_none(), "{kind}: {spoke}");
    }
}

#[test]
fn a_dev_machine_is_ready_in_v1beta1_only_when_provisioned_as_capd_converts_it() {
    for (kind, want) in [("DockerMachine", true), ("DevMachine", false)] {
        let hub = json!({"apiVersion": V1BETA2, "kind": kind, "metadata": {"name": "m"}, "spec": {}, "status": {"ready": true}});
        assert_eq!(
            convert(hub, V1BETA1).unwrap()["status"]["ready"],
            want,
            "{kind}"
        );
    }
}

#[test]
fn empty_failure_domains_are_omitted_not_empty_lists() {
    let spoke = json!({"apiVersion": V1BETA1, "kind": "DockerCluster", "metadata": {"name": "c"}, "spec": {"failureDomains": {}}});
    assert!(convert(spoke, V1BETA2).unwrap()["spec"]
        .get("failureDomains")
        .is_none());
}

#[test]
fn templates_leave_a_conversion_data_annotation_alone_as_capd_does() {
    let ann = json!({DATA_ANNOTATION: "not ours to read"});
    let spoke = json!({"apiVersion": V1BETA1, "kind": "DockerClusterTemplate", "metadata": {"name": "t", "annotations": ann}, "spec": {"template": {"spec": {}}}});
    assert_eq!(
        convert(spoke, V1BETA2).unwrap()["metadata"]["annotations"],
        ann
    );
}
