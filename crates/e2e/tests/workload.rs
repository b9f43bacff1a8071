//! The main job, for real: a Kubernetes workload cluster provisioned by capd-rs through
//! the real Cluster API controllers, from the default flavour exactly as a user renders it
//! (`clusterctl generate cluster --from templates/cluster-template.yaml`), on the node
//! image that `cargo xtask up` builds offline. It checks what a user would: every Node
//! Ready, the kubeconfig from `clusterctl get kubeconfig` working from the host, a pod
//! on the control-plane node reaching a pod on the worker (pod network across nodes),
//! through a Service by its DNS name (kube-proxy and CoreDNS); scales the workers
//! 1 → 2 → 1 and the control plane 1 → 3 → 1 while counting API requests through the
//! load balancer; then deletes the cluster and finds no container or volume left.

use capd_e2e::cmd::{clusterctl, docker, stdout};
use capd_e2e::proc::Proc;
use capd_e2e::workload::{containers_of, node_ready, Cleanup};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::time::Duration;

const KUBERNETES_VERSION: &str = "v1.36.3";
/// CAPI's own e2e bounds: control plane 10 minutes, workers 5.
const CONTROL_PLANE_TIMEOUT: Duration = Duration::from_secs(600);
const WORKERS_TIMEOUT: Duration = Duration::from_secs(300);
const TOOLBOX: &str = "localhost/capd-rs/toolbox:v1";

/// The DockerMachines' conditions that are not True, for a failure message.
fn machines_report(client: &kube::Client, ns: &str) -> String {
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "infrastructure.cluster.x-k8s.io",
            "v1beta2",
            "DockerMachine",
        )),
    );
    let list = match tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(api.list(&ListParams::default()))
    }) {
        Ok(l) => l,
        Err(e) => return format!("(listing DockerMachines: {e})"),
    };
    let mut out = String::new();
    for dm in list.items {
        out.push_str(&format!("\n  {}:", dm.name_any()));
        for c in dm.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "True")
        {
            out.push_str(&format!(
                "\n    {} {} {}: {}",
                c["type"],
                c["status"],
                c["reason"],
                c["message"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// Anonymous volumes mounted by the cluster's containers.
fn volumes_of(env: &TestEnv, cluster: &str) -> Vec<String> {
    let mut out = Vec::new();
    for id in containers_of(env, cluster) {
        let o = docker(env)
            .args([
                "inspect",
                "--format",
                "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
                &id,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        out.extend(o.split_whitespace().map(String::from));
    }
    out
}

fn volume_exists(env: &TestEnv, name: &str) -> bool {
    docker(env)
        .args(["volume", "inspect", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

async fn scale(api: &Api<kube::api::DynamicObject>, name: &str, replicas: i64) {
    let patch = json!({"spec": {"replicas": replicas}});
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap_or_else(|e| panic!("scaling {name} to {replicas}: {e}"));
}

/// Waits until exactly `want` Nodes exist and all are Ready, while the manager runs.
async fn wait_ready_nodes(
    env: &TestEnv,
    cluster: &str,
    nodes: &Api<Node>,
    want: usize,
    timeout: Duration,
    manager: &mut Proc,
) {
    if let Err(e) = manager.check_running() {
        panic!("{e:#}");
    }
    if let Err(e) = capd_e2e::workload::wait_ready_nodes(env, cluster, nodes, want, timeout).await {
        panic!("{e:#}\nmanager log:\n{}", manager.log_tail(40));
    }
}

/// Asks the workload API server for its version through the load balancer twice a
/// second, counting answers and failures, until stopped.
struct Prober {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u64, u64, bool)>,
}

impl Prober {
    fn start(client: kube::Client) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut ok, mut failed, mut last_ok) = (0u64, 0u64, false);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tick.tick() => {
                        last_ok = matches!(tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await, Ok(Ok(_)));
                        if last_ok { ok += 1 } else { failed += 1 }
                    }
                }
            }
            (ok, failed, last_ok)
        });
        Self { stop, task }
    }

    async fn stop(self) -> (u64, u64, bool) {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or((0, 0, false))
    }
}

/// A pod that has ended: its phase and log.
async fn finished_pod(pods: &Api<Pod>, name: &str, timeout: Duration) -> (String, String) {
    let phase = poll_until(&format!("pod {name} to finish"), timeout, || {
        let pods = pods.clone();
        let name = name.to_string();
        async move {
            let p = pods.get(&name).await.map_err(|e| e.to_string())?;
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            match phase.as_str() {
                "Succeeded" | "Failed" => Ok(phase),
                _ => Err(format!(
                    "phase {phase:?}, status {:?}",
                    p.status.as_ref().map(|s| &s.container_statuses)
                )),
            }
        }
    })
    .await
    .unwrap();
    let log = pods
        .logs(name, &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("(no log: {e})"));
    (phase, log)
}

#[tokio::test(flavor = "multi_thread")]
async fn default_flavour_gives_a_working_kubernetes_cluster() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let client = env.kube_client().await.unwrap();
    capd_testenv::install_provider_manifests(&client)
        .await
        .unwrap();
    let ns = unique_name("workload");
    let cluster = unique_name("wl");
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

    // The user's step: render the default flavour.
    let config_home = capd_e2e::scratch_dir(&format!("workload-{cluster}")).unwrap();
    let template = capd_e2e::repo_root().join("templates/cluster-template.yaml");
    let yaml = stdout(
        clusterctl(&env, &env.state.kubeconfig, &config_home)
            .args(["generate", "cluster", &cluster, "--from"])
            .arg(&template)
            .args([
                "--target-namespace",
                &ns,
                "--kubernetes-version",
                KUBERNETES_VERSION,
            ])
            .args([
                "--control-plane-machine-count",
                "1",
                "--worker-machine-count",
                "1",
            ]),
    )
    .unwrap();
    let docs =
        capd_testenv::manifests::parse_docs(&yaml, "templates/cluster-template.yaml").unwrap();
    capd_testenv::manifests::apply(&client, "capd-e2e", &docs)
        .await
        .unwrap();

    // The control plane: KubeadmControlPlane initialized, so the kubeconfig Secret exists.
    let kcps: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "controlplane.cluster.x-k8s.io",
            "v1beta2",
            "KubeadmControlPlane",
        )),
    );
    let kcp_name = format!("{cluster}-control-plane");
    poll_until(
        "the KubeadmControlPlane to be initialized",
        CONTROL_PLANE_TIMEOUT,
        || {
            let (kcps, kcp_name) = (kcps.clone(), kcp_name.clone());
            let mgr = manager.check_running().map_err(|e| e.to_string());
            async move {
                mgr?;
                let kcp = kcps.get(&kcp_name).await.map_err(|e| e.to_string())?;
                let st: &Value = &kcp.data["status"];
                if st["initialization"]["controlPlaneInitialized"] == json!(true) {
                    Ok(())
                } else {
                    Err(format!("status {st}"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nmachines: {}\nmanager log:\n{}",
            machines_report(&client, &ns),
            manager.log_tail(40)
        )
    });

    // What a user runs: `clusterctl get kubeconfig`, used from this host.
    let kubeconfig = stdout(clusterctl(&env, &env.state.kubeconfig, &config_home).args([
        "get",
        "kubeconfig",
        &cluster,
        "-n",
        &ns,
    ]))
    .unwrap();
    let wl = capd_testenv::client_from_kubeconfig_yaml(&kubeconfig, "the workload kubeconfig")
        .await
        .unwrap();

    let nodes: Api<Node> = Api::all(wl.clone());
    // Ready and with a providerID: the manager sets it once the kubelet registered the Node,
    // which can be a moment after the Node turns Ready.
    let ready = poll_until(
        "both Nodes Ready with a providerID",
        CONTROL_PLANE_TIMEOUT + WORKERS_TIMEOUT,
        || {
            let nodes = nodes.clone();
            async move {
                let list = nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let has_id = |n: &Node| {
                    n.spec
                        .as_ref()
                        .and_then(|s| s.provider_id.as_deref())
                        .is_some_and(|p| !p.is_empty())
                };
                let states: Vec<(String, bool, bool)> = list
                    .items
                    .iter()
                    .map(|n| (n.name_any(), node_ready(n), has_id(n)))
                    .collect();
                if states.len() == 2 && states.iter().all(|s| s.1 && s.2) {
                    Ok(list.items)
                } else {
                    Err(format!("nodes {states:?}"))
                }
            }
        },
    )
    .await;
    let ready = match ready {
        Ok(r) => r,
        Err(e) => {
            let diagnosis = capd_e2e::workload::diagnose(&env, &cluster, &nodes).await;
            panic!("{e}\n{diagnosis}\nmanager log:\n{}", manager.log_tail(40))
        }
    };
    let is_cp = |n: &Node| {
        n.labels()
            .contains_key("node-role.kubernetes.io/control-plane")
    };
    let cp = ready
        .iter()
        .find(|n| is_cp(n))
        .map(|n| n.name_any())
        .expect("a control-plane Node");
    let worker = ready
        .iter()
        .find(|n| !is_cp(n))
        .map(|n| n.name_any())
        .expect("a worker Node");
    for n in &ready {
        let v = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default();
        assert_eq!(v, KUBERNETES_VERSION, "kubelet version of {}", n.name_any());
        let pid = n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        assert_eq!(
            pid,
            format!("docker:////{}", n.name_any()),
            "providerID of {}",
            n.name_any()
        );
    }

    // A web server on the worker, a Service in front of it, a client on the control plane.
    let pods: Api<Pod> = Api::namespaced(wl.clone(), "default");
    let services: Api<Service> = Api::namespaced(wl.clone(), "default");
    let server: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "nodeName": worker,
            "containers": [{
                "name": "httpd", "image": TOOLBOX, "imagePullPolicy": "Never",
                "command": ["sh", "-c", "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec busybox httpd -f -p 8080 -h /www"],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
            }]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &server).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let server_ip = poll_until(
        "the web pod to be Ready with an IP",
        WORKERS_TIMEOUT,
        || {
            let pods = pods.clone();
            async move {
                let p = pods.get("web").await.map_err(|e| e.to_string())?;
                let st = p.status.clone().unwrap_or_default();
                let ready = st
                    .conditions
                    .as_ref()
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                match (ready, st.pod_ip) {
                    (true, Some(ip)) => Ok(ip),
                    _ => Err(format!(
                        "phase {:?}, conditions {:?}",
                        st.phase, st.conditions
                    )),
                }
            }
        },
    )
    .await
    .unwrap();

    // (Debian busybox 1.35 wget crashes with -T: coreutils timeout bounds each try.)
    // The client retries for a bounded time (Service endpoints and DNS settle
    // asynchronously), then prints what each check got.
    let script = format!(
        "ok=0; for i in $(seq 30); do \
           a=$(timeout 3 busybox wget -q -O- http://{server_ip}:8080/ 2>&1) && \
           b=$(timeout 3 busybox wget -q -O- http://web.default.svc.cluster.local/ 2>&1) && {{ ok=1; break; }}; \
           sleep 1; done; \
         echo \"pod-to-pod: $a\"; echo \"service-by-dns: $b\"; [ $ok = 1 ]"
    );
    let client_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "client"},
        "spec": {
            "nodeName": cp,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "client", "image": TOOLBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", script]}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &client_pod)
        .await
        .unwrap();
    // Longer than the script can run (30 tries of at most 7 s), so its log is always seen.
    let (phase, log) = finished_pod(&pods, "client", Duration::from_secs(300)).await;
    assert_eq!(
        phase, "Succeeded",
        "client pod on {cp} could not reach the web pod on {worker}:\n{log}"
    );
    assert!(
        log.contains("pod-to-pod: served-by-web"),
        "pod-to-pod answer:\n{log}"
    );
    assert!(
        log.contains("service-by-dns: served-by-web"),
        "Service answer:\n{log}"
    );

    // Bare pods would hold up the drain of a worker being scaled away.
    for p in ["web", "client"] {
        pods.delete(p, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("deleting pod {p}: {e}"));
    }

    // Scale the workers 1 → 2 → 1, then the control plane 1 → 3 → 1 while a prober
    // counts how often the API answers through the load balancer.
    let dynamic = |group: &str, kind: &str| -> Api<kube::api::DynamicObject> {
        Api::namespaced_with(
            client.clone(),
            &ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                group, "v1beta2", kind,
            )),
        )
    };
    let mds = dynamic("cluster.x-k8s.io", "MachineDeployment");
    let md_name = format!("{cluster}-md-0");
    scale(&mds, &md_name, 2).await;
    wait_ready_nodes(&env, &cluster, &nodes, 3, WORKERS_TIMEOUT, &mut manager).await;
    scale(&mds, &md_name, 1).await;
    wait_ready_nodes(&env, &cluster, &nodes, 2, WORKERS_TIMEOUT, &mut manager).await;

    let prober = Prober::start(wl.clone());
    scale(&kcps, &kcp_name, 3).await;
    wait_ready_nodes(
        &env,
        &cluster,
        &nodes,
        4,
        2 * CONTROL_PLANE_TIMEOUT,
        &mut manager,
    )
    .await;
    scale(&kcps, &kcp_name, 1).await;
    wait_ready_nodes(
        &env,
        &cluster,
        &nodes,
        2,
        CONTROL_PLANE_TIMEOUT,
        &mut manager,
    )
    .await;
    let (ok, failed, last_ok) = prober.stop().await;
    eprintln!("API through the load balancer during KubeadmControlPlane 1 → 3 → 1: {ok} answered, {failed} failed");
    assert!(last_ok, "the API does not answer through the load balancer after scaling ({ok} answered, {failed} failed)");
    assert!(
        ok > 0 && failed * 20 <= ok + failed,
        "more than 5% of API requests failed while scaling: {ok} answered, {failed} failed"
    );
    let volumes_before_delete = volumes_of(&env, &cluster);
    assert!(
        !volumes_before_delete.is_empty(),
        "node containers have /var volumes (the check below must see them)"
    );

    // Delete: the Cluster goes, and with it every container and its volumes.
    let clusters: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "cluster.x-k8s.io",
            "v1beta2",
            "Cluster",
        )),
    );
    clusters
        .delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        "the Cluster and its containers to be gone",
        Duration::from_secs(180),
        || {
            let (clusters, cluster) = (clusters.clone(), cluster.clone());
            let left = containers_of(&env, &cluster);
            async move {
                let exists = clusters
                    .get_opt(&cluster)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some();
                if !exists && left.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "cluster exists: {exists}, containers left: {left:?}"
                    ))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nmanager log:\n{}", manager.log_tail(40)));
    let dangling: Vec<String> = volumes_before_delete
        .into_iter()
        .filter(|v| volume_exists(&env, v))
        .collect();
    assert!(
        dangling.is_empty(),
        "volumes of the deleted nodes left: {dangling:?}"
    );
    manager.stop(Duration::from_secs(10));
    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}
