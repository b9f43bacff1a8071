//! Keeps manifests/cni/capd-podnet.yaml in line with what the daemon and the node image expect.

use std::path::PathBuf;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

const IMAGE: &str = "localhost/capd-rs/podnet:v1";

fn documents() -> Vec<serde_yaml_ng::Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests/cni/capd-podnet.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).expect("valid YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn one<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let docs: Vec<serde_yaml_ng::Value> = documents()
        .into_iter()
        .filter(|d| d.get("kind").and_then(|k| k.as_str()) == Some(kind))
        .collect();
    assert_eq!(docs.len(), 1, "exactly one {kind}");
    serde_yaml_ng::from_value(docs[0].clone())
        .unwrap_or_else(|e| panic!("{kind} does not match the API type: {e}"))
}

#[test]
fn daemonset() {
    let ds: DaemonSet = one("DaemonSet");
    assert_eq!(ds.metadata.name.as_deref(), Some("capd-podnet"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some("kube-system"));
    let spec = ds.spec.expect("spec");
    let selector = spec.selector.match_labels.expect("matchLabels");
    assert_eq!(selector.get("app").map(String::as_str), Some("capd-podnet"));
    let template_labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("template labels");
    assert_eq!(
        template_labels.get("app").map(String::as_str),
        Some("capd-podnet")
    );

    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.service_account_name.as_deref(), Some("capd-podnet"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    let tolerations = pod.tolerations.expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.key.is_none()
                && t.effect.is_none()),
        "a toleration matching every taint: {tolerations:?}"
    );

    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        c.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    let env = c.env.as_ref().expect("env");
    let node_name = env
        .iter()
        .find(|e| e.name == "NODE_NAME")
        .expect("NODE_NAME env");
    let field = node_name
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("NODE_NAME from a fieldRef");
    assert_eq!(field.field_path, "spec.nodeName");

    let volumes = pod.volumes.expect("volumes");
    let host_path = |path: &str| {
        volumes.iter().find_map(|v| {
            v.host_path
                .as_ref()
                .filter(|h| h.path == path)
                .map(|h| (v.name.clone(), h.type_.clone()))
        })
    };
    let (cni, cni_type) = host_path("/etc/cni/net.d").expect("/etc/cni/net.d hostPath");
    assert_eq!(cni_type.as_deref(), Some("DirectoryOrCreate"));
    let (lock, lock_type) = host_path("/run/xtables.lock").expect("/run/xtables.lock hostPath");
    assert_eq!(lock_type.as_deref(), Some("FileOrCreate"));
    let mounts = c.volume_mounts.as_ref().expect("volumeMounts");
    for (name, path) in [(cni, "/etc/cni/net.d"), (lock, "/run/xtables.lock")] {
        assert!(
            mounts
                .iter()
                .any(|m| m.name == name && m.mount_path == path),
            "{name} mounted at {path}"
        );
    }
}

#[test]
fn rbac() {
    let sa: ServiceAccount = one("ServiceAccount");
    assert_eq!(sa.metadata.name.as_deref(), Some("capd-podnet"));
    assert_eq!(sa.metadata.namespace.as_deref(), Some("kube-system"));

    let role: ClusterRole = one("ClusterRole");
    let rules = role.rules.expect("rules");
    let nodes = rules
        .iter()
        .find(|r| {
            r.resources
                .as_ref()
                .is_some_and(|res| res.iter().any(|x| x == "nodes"))
        })
        .expect("a rule for nodes");
    assert_eq!(nodes.api_groups.as_deref(), Some(&[String::new()][..]));
    for verb in ["get", "list", "watch"] {
        assert!(nodes.verbs.iter().any(|v| v == verb), "nodes: {verb}");
    }
    assert!(
        rules.iter().all(|r| r
            .verbs
            .iter()
            .all(|v| ["get", "list", "watch"].contains(&v.as_str()))),
        "read-only"
    );

    let binding: ClusterRoleBinding = one("ClusterRoleBinding");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(binding.role_ref.name), role.metadata.name);
    let subjects = binding.subjects.expect("subjects");
    assert!(subjects.iter().any(|s| s.kind == "ServiceAccount"
        && s.name == "capd-podnet"
        && s.namespace.as_deref() == Some("kube-system")));
}
