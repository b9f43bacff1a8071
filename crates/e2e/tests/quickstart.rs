//! The Cluster API book's quick start, as a user of CAPD v1.14 runs it, against capd-rs:
//! `clusterctl generate cluster NAME --infrastructure docker --flavor development` from the
//! provider's clusterctl repository (`cargo xtask clusterctl-repo`), applied to the
//! management cluster: a Cluster of the `quick-start` ClusterClass, whose DevCluster and
//! DevMachines (`spec.backend.docker`) capd-rs reconciles with the same flows as the
//! Docker* kinds. Done when both workload Nodes are Ready and every DevMachine is
//! provisioned; then the Cluster is deleted and nothing of it is left.

use capd_e2e::workload::{
    containers_of, generate_from_repo, wait_ready_nodes, workload_client, Cleanup,
};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;

const KUBERNETES_VERSION: &str = "v1.36.3";
/// CAPI's own e2e bounds: control plane 10 minutes, workers 5.
const TIMEOUT: Duration = Duration::from_secs(900);

fn dynamic(client: &kube::Client, ns: &str, group: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1beta2", kind)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn development_flavour_quick_start_gives_ready_nodes() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let client = env.kube_client().await.unwrap();
    capd_testenv::install_provider_manifests(&client)
        .await
        .unwrap();
    let ns = unique_name("quickstart");
    let cluster = unique_name("qs");
    let _cleanup = Cleanup {
        env: &env,
        cluster: cluster.clone(),
    };
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    // The manager, as `cargo xtask demo` runs it, limited to this namespace.
    let mut manager = capd_e2e::proc::start_manager_in(&env, &ns).await.unwrap();

    // The user's steps: the provider's repository, then `--flavor development`.
    let out = capd_e2e::scratch_dir(&format!("quickstart-{cluster}")).unwrap();
    let yaml = generate_from_repo(
        &env,
        &out,
        &cluster,
        &ns,
        "development",
        KUBERNETES_VERSION,
        1,
    )
    .unwrap();
    let docs = capd_testenv::manifests::parse_docs(&yaml, "the development flavour").unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "Cluster",
        "ClusterClass",
        "DevClusterTemplate",
        "DevMachineTemplate",
        "ClusterResourceSet",
    ] {
        assert!(
            kinds.contains(&k),
            "{k} missing from the development flavour: {kinds:?}"
        );
    }
    capd_testenv::manifests::apply(&client, "capd-e2e", &docs)
        .await
        .unwrap();

    // The workload cluster, through `clusterctl get kubeconfig` once the control plane is up.
    let wl = workload_client(&env, &out.join("xdg"), &cluster, &ns, &mut manager, TIMEOUT)
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(wl);
    if let Err(e) = wait_ready_nodes(&env, &cluster, &nodes, 2, TIMEOUT).await {
        panic!("{e:#}\nmanager log:\n{}", manager.log_tail(40));
    }

    // The infrastructure is Dev*, reconciled by capd-rs: every DevMachine provisioned.
    let devmachines = dynamic(
        &client,
        &ns,
        "infrastructure.cluster.x-k8s.io",
        "DevMachine",
    );
    let list = devmachines.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items.len(),
        2,
        "one control plane and one worker DevMachine"
    );
    for dm in &list.items {
        assert_eq!(
            dm.data["status"]["initialization"]["provisioned"],
            json!(true),
            "{}",
            dm.name_any()
        );
        assert!(
            dm.data["spec"]["providerID"]
                .as_str()
                .is_some_and(|p| p.starts_with("docker:////")),
            "{}: {}",
            dm.name_any(),
            dm.data["spec"]
        );
    }
    let devclusters = dynamic(
        &client,
        &ns,
        "infrastructure.cluster.x-k8s.io",
        "DevCluster",
    );
    let dc = devclusters.list(&ListParams::default()).await.unwrap();
    assert_eq!(dc.items.len(), 1);
    assert_eq!(
        dc.items[0].data["status"]["initialization"]["provisioned"],
        json!(true)
    );

    // Delete: nothing of the cluster is left.
    dynamic(&client, &ns, "cluster.x-k8s.io", "Cluster")
        .delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        "the cluster's containers and Dev* objects to be gone",
        Duration::from_secs(300),
        || {
            let (env, cluster, dms, dcs) = (
                env.clone(),
                cluster.clone(),
                devmachines.clone(),
                devclusters.clone(),
            );
            async move {
                let left = dms
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len()
                    + dcs
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?
                        .items
                        .len();
                let containers = containers_of(&env, &cluster);
                if left == 0 && containers.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{left} Dev* objects, containers {containers:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    manager.stop(Duration::from_secs(10));
}
