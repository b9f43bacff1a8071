//! Proves the test environment is real: the Cluster API core controller running on
//! the management plane adopts an infrastructure object through the contract label,
//! and the node image boots systemd and runs a nested container with containerd.

use capd_testenv::{poll_until, unique_name, TestEnv, TEST_LABEL};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::time::Duration;

const GROUP: &str = "infrastructure.testenv.capd-rs.io";

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run `cargo xtask up`)")
}

/// A minimal infrastructure CRD carrying the Cluster API contract label.
fn contract_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("probeclusters.{GROUP}"),
            "labels": {"cluster.x-k8s.io/v1beta2": "v1alpha1"}
        },
        "spec": {
            "group": GROUP,
            "names": {"kind": "ProbeCluster", "listKind": "ProbeClusterList", "plural": "probeclusters", "singular": "probecluster"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn cluster_api_core_controller_adopts_infrastructure_via_contract_label() {
    let env = env();
    let client = env.kube_client().await.unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = contract_crd();
    crds.patch(
        crd.metadata.name.as_deref().unwrap(),
        &PatchParams::apply("capd-rs-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    poll_until(
        "probe CRD to be established",
        Duration::from_secs(30),
        || {
            let crds = crds.clone();
            async move {
                let c = crds
                    .get(&format!("probeclusters.{GROUP}"))
                    .await
                    .map_err(|e| e.to_string())?;
                let ok = c
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if ok {
                    Ok(())
                } else {
                    Err("not established".into())
                }
            }
        },
    )
    .await
    .unwrap();

    let ns = unique_name("envtest");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    let probe_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1alpha1", "ProbeCluster"));
    let probes: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &probe_ar);
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "ProbeCluster",
        "metadata": {"name": "probe"}, "spec": {}
    }))
    .unwrap();
    probes.create(&PostParams::default(), &probe).await.unwrap();

    let cluster_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cluster.x-k8s.io",
        "v1beta2",
        "Cluster",
    ));
    let clusters: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &cluster_ar);
    let cluster: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": "probe"},
        "spec": {"infrastructureRef": {"apiGroup": GROUP, "kind": "ProbeCluster", "name": "probe"}}
    }))
    .unwrap();
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();

    let owner = poll_until(
        "the Cluster controller to set an ownerReference on the ProbeCluster",
        Duration::from_secs(60),
        || {
            let probes = probes.clone();
            async move {
                let p = probes.get("probe").await.map_err(|e| e.to_string())?;
                p.metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .find(|o| o.kind == "Cluster" && o.api_version.starts_with("cluster.x-k8s.io/"))
                    .ok_or_else(|| "no Cluster ownerReference yet".to_string())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(owner.name, "probe");

    // Namespace deletion only completes with kube-controller-manager running.
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    // The Cluster's own finalizer needs its infrastructure gone first, so drop both finalizers.
    for api in [&clusters, &probes] {
        let _ = api
            .patch(
                "probe",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    poll_until(
        "the namespace to be deleted",
        Duration::from_secs(90),
        || {
            let namespaces = namespaces.clone();
            let ns = ns.clone();
            async move {
                match namespaces.get_opt(&ns).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(n) => Err(format!("phase {:?}", n.status.and_then(|s| s.phase))),
                }
            }
        },
    )
    .await
    .unwrap();
}

fn docker(env: &TestEnv, args: &[&str]) -> std::process::Output {
    env.docker().args(args).output().expect("docker CLI")
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the node container even when an assertion fails.
struct Cleanup<'a>(&'a TestEnv, String);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = docker(self.0, &["rm", "-f", "-v", &self.1]);
    }
}

#[tokio::test]
async fn node_image_boots_systemd_and_runs_a_nested_container() {
    let env = env();
    let name = unique_name("envtest-node");
    let _cleanup = Cleanup(&env, name.clone());
    let label = format!("{TEST_LABEL}=true");
    ok(
        docker(
            &env,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                &name,
                "--label",
                &label,
                "--privileged",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--tmpfs",
                "/tmp",
                "--tmpfs",
                "/run",
                "--volume",
                "/var",
                "--volume",
                "/lib/modules:/lib/modules:ro",
                &env.state.images.node,
            ],
        ),
        "starting the node container",
    );

    poll_until(
        "systemd to reach multi-user.target",
        Duration::from_secs(90),
        || {
            let out = docker(
                &env,
                &[
                    "exec",
                    &name,
                    "systemctl",
                    "show",
                    "-p",
                    "ActiveState",
                    "--value",
                    "multi-user.target",
                ],
            );
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            async move {
                if state == "active" {
                    Ok(())
                } else {
                    Err(format!("multi-user.target {state:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    poll_until("containerd to be active", Duration::from_secs(60), || {
        let out = docker(
            &env,
            &["exec", &name, "systemctl", "is-active", "containerd"],
        );
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        async move {
            if state == "active" {
                Ok(())
            } else {
                Err(format!("containerd {state:?}"))
            }
        }
    })
    .await
    .unwrap();

    // No registry: move the environment's base image into the node's containerd.
    let image = &env.state.images.base;
    let save = env
        .docker()
        .args(["save", image])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let import = env
        .docker()
        .args([
            "exec", "-i", &name, "ctr", "-n", "k8s.io", "images", "import", "-",
        ])
        .stdin(save.stdout.unwrap())
        .output()
        .unwrap();
    ok(
        import,
        "importing the base image into the node's containerd",
    );

    let full = if image.contains('/') && !image.starts_with("docker.io/") {
        format!("docker.io/{image}")
    } else {
        image.clone()
    };
    let marker = unique_name("nested");
    let out = ok(
        docker(
            &env,
            &[
                "exec",
                &name,
                "ctr",
                "-n",
                "k8s.io",
                "run",
                "--rm",
                &full,
                &marker,
                "sh",
                "-c",
                &format!("echo hello from {marker}"),
            ],
        ),
        "running a nested container with ctr",
    );
    assert_eq!(out, format!("hello from {marker}"));
}
