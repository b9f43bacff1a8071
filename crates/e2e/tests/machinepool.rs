//! MachinePools as a user of CAPD v1.14 runs them: `clusterctl generate cluster NAME
//! --flavor development-mp` from the provider's clusterctl repository, applied to the
//! management cluster (real Cluster API, kubeadm, Docker): a Cluster of the `quick-start`
//! ClusterClass whose workers are a MachinePool backed by a DevMachinePool. The pool
//! scales 2 → 3 → 1 through the Cluster's topology; each time the Nodes, the pool's
//! DevMachines and their node containers follow, and the pool reports it as CAPD does
//! (providerIDList, replicas, ready). Then the Cluster is deleted and nothing is left.

use capd_e2e::cmd::docker;
use capd_e2e::workload::{
    containers_of, generate_from_repo, v1beta2, wait_ready_nodes, workload_client, Cleanup,
};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::time::Duration;

const KUBERNETES_VERSION: &str = "v1.36.3";
/// CAPI's own e2e bounds: control plane 10 minutes, workers 5.
const CONTROL_PLANE_TIMEOUT: Duration = Duration::from_secs(900);
const WORKERS_TIMEOUT: Duration = Duration::from_secs(300);

/// Names of the node containers CAPD's pool label marks as the pool's.
fn pool_containers(env: &TestEnv, cluster: &str) -> Vec<String> {
    let out = docker(env)
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .args([
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={cluster}"),
        ])
        .args(["--filter", "label=dev.cluster.x-k8s.io/machine-pool"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mut names: Vec<String> = out.split_whitespace().map(String::from).collect();
    names.sort();
    names
}

/// Waits until the pool has exactly `want` machines, each provisioned with a running
/// container, and says so in its status; returns the DevMachinePool.
async fn wait_pool(
    client: &kube::Client,
    env: &TestEnv,
    ns: &str,
    cluster: &str,
    want: usize,
) -> Value {
    let pools = v1beta2(
        client,
        ns,
        "infrastructure.cluster.x-k8s.io",
        "DevMachinePool",
    );
    let machines = v1beta2(client, ns, "infrastructure.cluster.x-k8s.io", "DevMachine");
    poll_until(&format!("the pool at {want} machines"), WORKERS_TIMEOUT, || {
        let (pools, machines, containers) = (pools.clone(), machines.clone(), pool_containers(env, cluster));
        async move {
            let list = pools.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let [pool] = list.items.as_slice() else {
                return Err(format!("{} DevMachinePools", list.items.len()));
            };
            let selector = format!("cluster.x-k8s.io/pool-name,cluster.x-k8s.io/cluster-name={cluster}");
            let ms = machines.list(&ListParams::default().labels(&selector)).await.map_err(|e| e.to_string())?;
            let provisioned = ms.items.iter().filter(|m| m.data["status"]["initialization"]["provisioned"] == json!(true)).count();
            let ids = pool.data["spec"]["providerIDList"].as_array().map_or(0, Vec::len);
            let state = format!(
                "DevMachines {} ({provisioned} provisioned), containers {containers:?}, pool spec {} status {}",
                ms.items.len(),
                pool.data["spec"],
                pool.data["status"]
            );
            let ready = pool.data["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "ReplicasReady" && c["status"] == "True");
            if ms.items.len() == want && provisioned == want && containers.len() == want && ids == want && pool.data["status"]["replicas"] == json!(want) && ready {
                Ok(pool.data.clone())
            } else {
                Err(state)
            }
        }
    })
    .await
    .unwrap()
}

async fn scale(clusters: &Api<DynamicObject>, cluster: &str, replicas: u32) {
    let patch = json!([{"op": "replace", "path": "/spec/topology/workers/machinePools/0/replicas", "value": replicas}]);
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    clusters
        .patch(cluster, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .unwrap_or_else(|e| panic!("scaling the pool of {cluster} to {replicas}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn development_mp_flavour_pool_scales_its_nodes() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let client = env.kube_client().await.unwrap();
    capd_testenv::install_provider_manifests(&client)
        .await
        .unwrap();
    let ns = unique_name("machinepool");
    let cluster = unique_name("mp");
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
    let mut manager = capd_e2e::proc::start_manager_in(&env, &ns).await.unwrap();

    // The user's steps: the provider's repository, then `--flavor development-mp`.
    let out = capd_e2e::scratch_dir(&format!("machinepool-{cluster}")).unwrap();
    let yaml = generate_from_repo(
        &env,
        &out,
        &cluster,
        &ns,
        "development-mp",
        KUBERNETES_VERSION,
        2,
    )
    .unwrap();
    let docs = capd_testenv::manifests::parse_docs(&yaml, "the development-mp flavour").unwrap();
    let workers = docs
        .iter()
        .find(|d| d["kind"] == "Cluster")
        .map(|c| c["spec"]["topology"]["workers"].clone())
        .unwrap_or_default();
    assert_eq!(
        workers["machinePools"][0]["replicas"],
        json!(2),
        "a MachinePool of 2 workers: {workers}"
    );
    assert!(
        workers.get("machineDeployments").is_none(),
        "no MachineDeployment in development-mp: {workers}"
    );
    capd_testenv::manifests::apply(&client, "capd-e2e", &docs)
        .await
        .unwrap();

    let wl = workload_client(
        &env,
        &env.state.kubeconfig,
        &out.join("xdg"),
        &cluster,
        &ns,
        Some(&mut manager),
        CONTROL_PLANE_TIMEOUT,
    )
    .await
    .unwrap();
    let nodes: Api<Node> = Api::all(wl);
    let fail = |e: anyhow::Error, manager: &capd_e2e::proc::Proc| {
        panic!("{e:#}\nmanager log:\n{}", manager.log_tail(40))
    };
    if let Err(e) = wait_ready_nodes(&env, &cluster, &nodes, 3, CONTROL_PLANE_TIMEOUT).await {
        fail(e, &manager);
    }
    let pool = wait_pool(&client, &env, &ns, &cluster, 2).await;
    assert_eq!(pool["status"]["ready"], json!(true));
    assert_eq!(
        pool["status"]["infrastructureMachineKind"],
        json!("DevMachine")
    );
    assert!(
        pool["spec"]["providerID"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("docker:////{cluster}-dmp-"))),
        "the pool's own providerID, as CAPD sets it: {}",
        pool["spec"]
    );
    // Every Node of the pool carries a providerID the pool lists (Cluster API matches them).
    let ids: Vec<String> = pool["spec"]["providerIDList"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    // The provider sets a Node's providerID once kubelet has registered it, which may
    // come a moment after the Node shows Ready: poll.
    poll_until(
        "every providerID the pool lists on a Node",
        Duration::from_secs(60),
        || {
            let (nodes, ids) = (nodes.clone(), ids.clone());
            async move {
                let listed = nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let on_nodes: Vec<&str> = listed
                    .items
                    .iter()
                    .filter_map(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()))
                    .collect();
                match ids.iter().find(|id| !on_nodes.contains(&id.as_str())) {
                    None => Ok(()),
                    Some(id) => Err(format!(
                        "no Node has the pool's providerID {id}; Nodes have {on_nodes:?}"
                    )),
                }
            }
        },
    )
    .await
    .unwrap();
    let before = pool_containers(&env, &cluster);

    let clusters = v1beta2(&client, &ns, "cluster.x-k8s.io", "Cluster");
    scale(&clusters, &cluster, 3).await;
    if let Err(e) = wait_ready_nodes(&env, &cluster, &nodes, 4, WORKERS_TIMEOUT).await {
        fail(e, &manager);
    }
    let grown = wait_pool(&client, &env, &ns, &cluster, 3).await;
    let three = pool_containers(&env, &cluster);
    assert!(
        before.iter().all(|c| three.contains(c)),
        "scaling up kept the existing nodes: {before:?} → {three:?}"
    );

    scale(&clusters, &cluster, 1).await;
    if let Err(e) = wait_ready_nodes(&env, &cluster, &nodes, 2, WORKERS_TIMEOUT).await {
        fail(e, &manager);
    }
    let shrunk = wait_pool(&client, &env, &ns, &cluster, 1).await;
    assert_eq!(grown["status"]["ready"], json!(true));
    assert_eq!(shrunk["status"]["ready"], json!(true));
    let one = pool_containers(&env, &cluster);
    assert!(
        three.contains(&one[0]),
        "the survivor is one of the three: {three:?} → {one:?}"
    );

    // Delete: nothing of the cluster is left, the pool's objects included.
    clusters
        .delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    let kinds = ["DevMachinePool", "DevMachine", "DevCluster"]
        .map(|k| v1beta2(&client, &ns, "infrastructure.cluster.x-k8s.io", k));
    poll_until(
        "the cluster's containers and Dev* objects to be gone",
        Duration::from_secs(300),
        || {
            let (kinds, containers) = (kinds.clone(), containers_of(&env, &cluster));
            async move {
                let mut left = Vec::new();
                for api in &kinds {
                    let items = api
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?
                        .items;
                    left.extend(items.iter().map(|o| o.name_any()));
                }
                if left.is_empty() && containers.is_empty() {
                    Ok(())
                } else {
                    Err(format!("objects {left:?}, containers {containers:?}"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nmanager log:\n{}", manager.log_tail(40)));
    manager.stop(Duration::from_secs(10));
    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}
