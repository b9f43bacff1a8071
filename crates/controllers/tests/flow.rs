//! Fast flow tests: the cluster and machine flows against an in-memory container runtime
//! and a mocked API server (requests recorded, answers canned), in milliseconds. They
//! check what each reconcile decides and exactly which requests it makes; the same flows
//! run for real (kube-apiserver, Cluster API, Docker) in crates/manager/tests.

use capd_api::capi::{Cluster, Machine};
use capd_api::dev::DevCluster;
use capd_api::{DockerCluster, DockerMachine, HasConditions};
use capd_controllers::caches::Caches;
use capd_controllers::metrics::Metrics;
use capd_controllers::{cluster, machine, Config, Context};
use capd_runtime::memory::MemoryRuntime;
use capd_runtime::{ContainerRuntime, ExecOutput};
use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// One request the flow sent.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

/// A mocked API server: answers GET/PATCH of the objects it holds (by path), accepts
/// Events, 404 for anything else; records every request.
#[derive(Clone, Default)]
struct FakeApi {
    sent: Arc<Mutex<Vec<Sent>>>,
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl FakeApi {
    fn hold(&self, path: &str, obj: Value) {
        self.objects.lock().unwrap().insert(path.to_string(), obj);
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }

    /// The body of the last status patch sent to a path containing `path_part`.
    fn last_status(&self, path_part: &str) -> Value {
        self.sent()
            .into_iter()
            .rev()
            .find(|s| s.path.contains(path_part) && s.path.ends_with("/status"))
            .map(|s| s.body)
            .expect("a status patch")
    }

    fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.answer(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.sent.lock().unwrap().push(Sent {
            method: method.clone(),
            path: path.clone(),
            content_type,
            body: body.clone(),
        });
        let object_path = path.trim_end_matches("/status").to_string();
        let held = self.objects.lock().unwrap().get(&object_path).cloned();
        let (status, out) = match (method.as_str(), held) {
            ("GET" | "PATCH", Some(obj)) => (StatusCode::OK, obj),
            ("POST", _) if path.contains("/events") => (StatusCode::CREATED, body),
            _ => (
                StatusCode::NOT_FOUND,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{path} not found")}),
            ),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&out).unwrap()))
            .unwrap()
    }
}

/// Condition `type_` of a status patch body (`null` when absent).
fn condition(body: &Value, type_: &str) -> Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or_default()
}

fn store_of<K>(objs: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objs {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

struct World {
    api: FakeApi,
    runtime: Arc<MemoryRuntime>,
    ctx: Arc<Context>,
}

fn world(
    clusters: Vec<Cluster>,
    machines: Vec<Machine>,
    docker_clusters: Vec<DockerCluster>,
) -> World {
    let api = FakeApi::default();
    let runtime = Arc::new(MemoryRuntime::new());
    // HAProxy's master catches SIGHUP (the load balancer waits for that before a reload).
    runtime.answer(
        "cp /proc/1/status /dev/stdout",
        ExecOutput {
            stdout: b"Name:\thaproxy\nSigCgt:\t0000000000004001\n".to_vec(),
            stderr: vec![],
            exit_code: 0,
        },
    );
    let caches = Caches::new(store_of(clusters), store_of(machines))
        .with_infra_cluster("DockerCluster", store_of(docker_clusters))
        .with_infra_cluster("DevCluster", store_of::<DevCluster>(vec![]));
    let ctx = Arc::new(Context::new(
        api.client(),
        caches,
        runtime.clone(),
        Config::default(),
        Arc::new(Metrics::default()),
    ));
    World { api, runtime, ctx }
}

fn capi_cluster(name: &str, infra_kind: &str, status: Value, paused: bool) -> Cluster {
    serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": name, "namespace": "ns", "uid": "cluster-uid"},
        "spec": {"paused": paused, "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": infra_kind, "name": name}},
        "status": status
    }))
    .unwrap()
}

fn docker_cluster(name: &str, extra_meta: Value, spec: Value, status: Value) -> DockerCluster {
    let mut meta = json!({"name": name, "namespace": "ns", "uid": "dc-uid", "generation": 1,
        "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": name, "uid": "cluster-uid"}]});
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(json!({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster", "metadata": meta, "spec": spec, "status": status})).unwrap()
}

const DC_PATH: &str =
    "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/ns/dockerclusters/c1";

#[tokio::test]
async fn a_new_docker_cluster_gets_finalizer_load_balancer_endpoint_and_status_in_three_writes_and_an_event(
) {
    let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", Value::Null, false)],
        vec![],
        vec![],
    );
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap();

    assert_eq!(w.runtime.container_names(), ["c1-lb"], "one load balancer");
    let ip = w
        .runtime
        .inspect_container("c1-lb")
        .await
        .unwrap()
        .unwrap()
        .addresses(None)
        .unwrap()
        .ipv4
        .unwrap()
        .to_string();
    let sent = w.api.sent();
    let writes: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.path.contains("/dockerclusters/"))
        .collect();
    assert_eq!(writes.len(), 3, "finalizer, spec, status: {writes:#?}");
    assert!(
        writes[0].content_type.contains("apply-patch"),
        "the finalizer first, by server-side apply: {:?}",
        writes[0]
    );
    assert_eq!(
        writes[0].body["metadata"]["finalizers"],
        json!(["dockercluster.infrastructure.cluster.x-k8s.io"])
    );
    assert_eq!(
        writes[1].body["spec"]["controlPlaneEndpoint"],
        json!({"host": ip, "port": 6443})
    );
    assert_eq!(
        writes[1].body["metadata"]["annotations"]
            ["infrastructure.cluster.x-k8s.io/capd-rs-container-owner"],
        "dc-uid"
    );
    assert!(writes[2].path.ends_with("/status"));
    assert_eq!(
        writes[2].body["status"]["initialization"]["provisioned"],
        true
    );
    let events: Vec<&Sent> = sent.iter().filter(|s| s.path.contains("/events")).collect();
    assert_eq!(events.len(), 1, "LoadBalancerCreated");
    assert!(
        sent.iter().all(|s| s.method != "GET"),
        "no reads: the objects come from the caches: {sent:#?}"
    );
}

/// Reconciles a new `dc` and returns it as the watch would deliver it after those writes.
async fn provision(w: &World, dc: DockerCluster) -> DockerCluster {
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    cluster::reconcile(Arc::new(dc.clone()), w.ctx.clone())
        .await
        .unwrap();
    let mut after = dc;
    after.metadata.finalizers = Some(vec!["dockercluster.infrastructure.cluster.x-k8s.io".into()]);
    let patches: Vec<Sent> = w
        .api
        .sent()
        .into_iter()
        .filter(|s| s.method == "PATCH" && !s.content_type.contains("apply"))
        .collect();
    let mut v = serde_json::to_value(&after).unwrap();
    for p in &patches {
        json_patch::merge(&mut v, &p.body);
    }
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_provisioned_unchanged_docker_cluster_costs_no_request() {
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", Value::Null, false)],
        vec![],
        vec![],
    );
    let after = provision(&w, docker_cluster("c1", json!({}), json!({}), Value::Null)).await;
    w.api.clear();
    cluster::reconcile(Arc::new(after.clone()), w.ctx.clone())
        .await
        .unwrap();
    assert!(
        w.api.sent().is_empty(),
        "second reconcile sent {:#?}",
        w.api.sent()
    );
    assert_eq!(w.runtime.container_names(), ["c1-lb"]);
    assert!(capd_api::conditions::is_true(after.conditions(), "Ready"));
}

const TEMPLATE_PATH: &str = "/api/v1/namespaces/ns/configmaps/lb-template";

/// A DockerCluster whose load balancer is configured from ConfigMap `lb-template`.
fn docker_cluster_with_template(spec: Value) -> DockerCluster {
    let mut spec = spec;
    spec["loadBalancer"] = json!({"customHAProxyConfigTemplateRef": {"name": "lb-template"}});
    docker_cluster("c1", json!({}), spec, Value::Null)
}

/// Holds ConfigMap `lb-template`: the default template after a `# custom` line.
fn hold_template(api: &FakeApi) {
    let value = format!("# custom\n{}", capd_loadbalancer::DEFAULT_TEMPLATE);
    api.hold(TEMPLATE_PATH, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lb-template", "namespace": "ns"}, "data": {"value": value}}));
}

fn template_reads(api: &FakeApi) -> usize {
    api.sent()
        .iter()
        .filter(|s| s.method == "GET" && s.path == TEMPLATE_PATH)
        .count()
}

#[tokio::test]
async fn a_provisioned_unchanged_docker_cluster_with_a_custom_template_costs_no_request() {
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", Value::Null, false)],
        vec![],
        vec![],
    );
    hold_template(&w.api);
    let after = provision(&w, docker_cluster_with_template(json!({}))).await;
    assert_eq!(
        template_reads(&w.api),
        1,
        "the new load balancer is configured from the template: {:#?}",
        w.api.sent()
    );
    let live = w
        .runtime
        .read_file("c1-lb", capd_loadbalancer::CONFIG_PATH)
        .await
        .unwrap();
    assert!(
        live.starts_with(b"# custom\n"),
        "{}",
        String::from_utf8_lossy(&live)
    );

    w.api.clear();
    cluster::reconcile(Arc::new(after.clone()), w.ctx.clone())
        .await
        .unwrap();
    assert!(
        w.api.sent().is_empty(),
        "the 30 s look at a provisioned cluster sent {:#?}",
        w.api.sent()
    );
    assert!(capd_api::conditions::is_true(after.conditions(), "Ready"));
}

#[tokio::test]
async fn a_missing_template_configmap_is_an_error_naming_it_and_the_field() {
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", Value::Null, false)],
        vec![],
        vec![],
    );
    let dc = docker_cluster_with_template(json!({}));
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    let err = cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap_err();
    match &err {
        capd_controllers::Error::Invalid {
            kind,
            name,
            message,
            ..
        } => {
            assert_eq!((kind.as_ref(), name.as_str()), ("DockerCluster", "c1"));
            assert!(
                message.contains("spec.loadBalancer.customHAProxyConfigTemplateRef")
                    && message.contains("ConfigMap lb-template not found"),
                "{message}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(
        w.runtime.container_names().is_empty(),
        "nothing created without its configuration"
    );
}

#[tokio::test]
async fn a_paused_cluster_gets_only_the_paused_condition() {
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", Value::Null, true)],
        vec![],
        vec![],
    );
    let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap();
    assert!(w.runtime.container_names().is_empty());
    let sent = w.api.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].path.ends_with("/status"));
    assert_eq!(sent[0].body["status"]["conditions"][0]["type"], "Paused");
    assert_eq!(sent[0].body["status"]["conditions"][0]["status"], "True");
}

#[tokio::test]
async fn without_its_cluster_a_docker_cluster_waits_and_when_deleted_is_released() {
    let w = world(vec![], vec![], vec![]);
    let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
    cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap();
    assert!(w.api.sent().is_empty(), "a wait writes nothing");

    let deleting = docker_cluster(
        "c1",
        json!({"deletionTimestamp": "2026-11-30T00:00:00Z", "finalizers": ["other", "dockercluster.infrastructure.cluster.x-k8s.io"]}),
        json!({}),
        Value::Null,
    );
    w.api
        .hold(DC_PATH, serde_json::to_value(&deleting).unwrap());
    cluster::reconcile(Arc::new(deleting), w.ctx.clone())
        .await
        .unwrap();
    let sent = w.api.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(
        sent[0].body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "dockercluster.infrastructure.cluster.x-k8s.io"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]),
        "only our finalizer, guarded by a test"
    );
}

#[tokio::test]
async fn a_machine_goes_from_nothing_to_bootstrapped_its_bootstrap_in_the_background() {
    let provisioned = json!({"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}});
    let dc = docker_cluster(
        "c1",
        json!({}),
        json!({"controlPlaneEndpoint": {"host": "172.18.0.9", "port": 6443}}),
        json!({"initialization": {"provisioned": true}}),
    );
    let m: Machine = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": "m1", "namespace": "ns", "labels": {"cluster.x-k8s.io/cluster-name": "c1"}},
        "spec": {"clusterName": "c1", "version": "v1.36.3", "bootstrap": {"dataSecretName": "m1-bootstrap"},
                 "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": "m1"}}
    }))
    .unwrap();
    let w = world(
        vec![capi_cluster("c1", "DockerCluster", provisioned, false)],
        vec![m],
        vec![dc],
    );
    let dm: DockerMachine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachine",
        "metadata": {"name": "m1", "namespace": "ns", "uid": "dm-uid", "labels": {"cluster.x-k8s.io/cluster-name": "c1"},
                     "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": "m1", "uid": "m-uid"}]},
        "spec": {}
    }))
    .unwrap();
    w.api.hold(
        "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/ns/dockermachines/m1",
        serde_json::to_value(&dm).unwrap(),
    );
    use base64::Engine;
    let data =
        base64::engine::general_purpose::STANDARD.encode("#cloud-config\nruncmd:\n- echo hi\n");
    w.api.hold("/api/v1/namespaces/ns/secrets/m1-bootstrap", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "m1-bootstrap", "namespace": "ns"}, "data": {"value": data}}));
    w.runtime.answer(
        "/bin/sh -c test -f",
        ExecOutput {
            stdout: b"false\n".to_vec(),
            stderr: vec![],
            exit_code: 0,
        },
    );
    w.runtime.answer(
        "/bin/sh -c test -d",
        ExecOutput {
            stdout: b"no\n".to_vec(),
            stderr: vec![],
            exit_code: 0,
        },
    );

    // The node's systemd is still starting for the first three looks, and its
    // end-of-boot wait returns at once (it does not answer yet).
    w.runtime.answer_times(
        "systemctl is-active multi-user.target",
        ExecOutput {
            stdout: b"activating\n".to_vec(),
            stderr: vec![],
            exit_code: 3,
        },
        3,
    );

    // The first reconcile creates and boots the node (looking again within its bound,
    // not after a requeue) and starts the bootstrap in the background: the worker is
    // free again, the machine is looked at again shortly.
    let dm = Arc::new(dm);
    let action = machine::reconcile(dm.clone(), w.ctx.clone()).await.unwrap();
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(capd_controllers::bootstrap_tasks::POLL)
    );
    let waits = w
        .runtime
        .calls()
        .iter()
        .filter(|c| c.ends_with("systemctl is-system-running --wait"))
        .count();
    assert_eq!(waits, 3, "{:?}", w.runtime.calls());
    let completed = condition(&w.api.last_status(""), "BootstrapCompleted");
    assert_eq!(
        (&completed["status"], &completed["message"]),
        (&json!("False"), &json!("bootstrapping")),
        "{completed}"
    );
    wait_for_bootstraps(&w).await;
    // The next reconcile takes the outcome.
    machine::reconcile(dm.clone(), w.ctx.clone()).await.unwrap();

    assert_eq!(w.runtime.container_names(), ["c1-m1"]);
    let sent = w.api.sent();
    let status = sent
        .iter()
        .rev()
        .find(|s| s.path.ends_with("/status"))
        .expect("a status patch");
    let conds: BTreeMap<String, String> = status.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for c in [
        "ContainerProvisioned",
        "CGroupsReady",
        "PreLoadedImagesReady",
        "BootstrapCompleted",
        "Ready",
    ] {
        assert_eq!(
            conds.get(c).map(String::as_str),
            Some("True"),
            "{c}: {conds:?}"
        );
    }
    let spec_patch = sent
        .iter()
        .find(|s| s.method == "PATCH" && s.body["spec"]["providerID"].is_string())
        .expect("providerID written");
    assert_eq!(spec_patch.body["spec"]["providerID"], "docker:////c1-m1");
    let gets: Vec<&str> = sent
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.as_str())
        .collect();
    assert!(
        gets.contains(&"/api/v1/namespaces/ns/secrets/m1-bootstrap"),
        "the bootstrap Secret is read fresh: {gets:?}"
    );
    assert!(
        !gets
            .iter()
            .any(|p| p.contains("/machines/") || p.contains("/clusters/")),
        "owners come from the caches: {gets:?}"
    );

    // A reconcile of the object as read before the completion was written (the cache
    // not caught up yet): the bootstrap is not run again, the machine stays completed.
    let execs = |w: &World| {
        w.runtime
            .calls()
            .iter()
            .filter(|c| c.contains("echo hi") || c.contains("test -f"))
            .count()
    };
    let before = execs(&w);
    machine::reconcile(dm, w.ctx.clone()).await.unwrap();
    assert_eq!(execs(&w), before, "{:?}", w.runtime.calls());
    let completed = condition(&w.api.last_status(""), "BootstrapCompleted");
    assert_eq!(completed["status"], json!("True"), "{completed}");
}

/// A control-plane Machine of cluster c1, being deleted or not.
fn cp_machine(name: &str, deleting: bool) -> Machine {
    let mut meta = json!({"name": name, "namespace": "ns", "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""}});
    if deleting {
        meta["deletionTimestamp"] = json!("2026-11-30T00:00:00Z");
        meta["finalizers"] = json!(["machine.cluster.x-k8s.io"]);
    }
    serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "metadata": meta,
        "spec": {"clusterName": "c1", "version": "v1.36.3", "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
                 "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": name}}
    }))
    .unwrap()
}

/// A control-plane node container of cluster c1, as the machine flow makes it.
async fn run_cp_node(w: &World, name: &str) {
    let spec = capd_runtime::ContainerSpec::new(name, "kindest/node:v1.36.3")
        .label(capd_controllers::PROVIDER_LABEL, "capd-rs")
        .label("io.x-k8s.kind.cluster", "c1")
        .label("io.x-k8s.kind.role", "control-plane")
        .network("kind");
    w.runtime.run_container(&spec).await.unwrap();
}

/// A provisioned and bootstrapped control-plane DockerMachine (held by the API); its
/// reconcile rewrites the load balancer.
fn provisioned_cp_docker_machine(w: &World, name: &str) -> DockerMachine {
    let now = "2026-11-30T00:00:00Z";
    let conds: Vec<Value> = ["ContainerProvisioned", "CGroupsReady", "PreLoadedImagesReady", "BootstrapCompleted"]
        .iter()
        .map(|t| json!({"type": t, "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": now}))
        .collect();
    let dm: DockerMachine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachine",
        "metadata": {"name": name, "namespace": "ns", "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""},
                     "finalizers": ["dockermachine.infrastructure.cluster.x-k8s.io"],
                     "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": name, "uid": "m-uid"}]},
        "spec": {"providerID": format!("docker:////c1-{name}")},
        "status": {"conditions": conds, "initialization": {"provisioned": true}}
    }))
    .unwrap();
    w.api.hold(
        &format!(
            "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/ns/dockermachines/{name}"
        ),
        serde_json::to_value(&dm).unwrap(),
    );
    dm
}

fn cluster_provisioned() -> Value {
    json!({"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}})
}

#[tokio::test]
async fn a_control_plane_machine_being_deleted_is_drained_from_the_load_balancer() {
    let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
    let w = world(
        vec![capi_cluster(
            "c1",
            "DockerCluster",
            cluster_provisioned(),
            false,
        )],
        vec![cp_machine("cp0", false), cp_machine("cp1", true)],
        vec![dc.clone()],
    );
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap();
    run_cp_node(&w, "c1-cp0").await;
    run_cp_node(&w, "c1-cp1").await;
    let dm = provisioned_cp_docker_machine(&w, "cp0");
    machine::reconcile(Arc::new(dm), w.ctx.clone())
        .await
        .unwrap();

    let cfg = String::from_utf8(
        w.runtime
            .read_file("c1-lb", capd_loadbalancer::CONFIG_PATH)
            .await
            .unwrap(),
    )
    .unwrap();
    let server = |name: &str| {
        cfg.lines()
            .find(|l| l.trim_start().starts_with(&format!("server {name} ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{cfg}"))
            .to_string()
    };
    assert!(
        server("c1-cp0").contains("weight 100"),
        "{}",
        server("c1-cp0")
    );
    assert!(
        server("c1-cp1").contains("weight 0 "),
        "the deleting Machine's node is drained: {}",
        server("c1-cp1")
    );
}

#[tokio::test]
async fn a_control_plane_machine_reads_the_template_only_when_the_backends_change() {
    let dc = docker_cluster_with_template(json!({}));
    let w = world(
        vec![capi_cluster(
            "c1",
            "DockerCluster",
            cluster_provisioned(),
            false,
        )],
        vec![cp_machine("cp0", false)],
        vec![dc.clone()],
    );
    hold_template(&w.api);
    provision(&w, dc).await;
    run_cp_node(&w, "c1-cp0").await;
    let dm = provisioned_cp_docker_machine(&w, "cp0");
    let live = || async {
        String::from_utf8(
            w.runtime
                .read_file("c1-lb", capd_loadbalancer::CONFIG_PATH)
                .await
                .unwrap(),
        )
        .unwrap()
    };

    w.api.clear();
    machine::reconcile(Arc::new(dm.clone()), w.ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        template_reads(&w.api),
        1,
        "a new backend: the configuration is rendered from the template"
    );
    let cfg = live().await;
    assert!(
        cfg.starts_with("# custom\n") && cfg.contains("server c1-cp0 "),
        "{cfg}"
    );

    w.api.clear();
    machine::reconcile(Arc::new(dm.clone()), w.ctx.clone())
        .await
        .unwrap();
    assert_eq!(
        template_reads(&w.api),
        0,
        "same backends: not read: {:#?}",
        w.api.sent()
    );

    run_cp_node(&w, "c1-cp1").await;
    w.api.clear();
    machine::reconcile(Arc::new(dm), w.ctx.clone())
        .await
        .unwrap();
    assert_eq!(template_reads(&w.api), 1, "another backend: read again");
    assert!(live().await.contains("server c1-cp1 "));
}

/// Cluster c1 with `spec.clusterNetwork` pods and services CIDR blocks.
fn cluster_with_network(status: Value, pods: &[&str], services: &[&str]) -> Cluster {
    let mut c = capi_cluster("c1", "DockerCluster", status, false);
    let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    c.spec.cluster_network.pods.cidr_blocks = own(pods);
    c.spec.cluster_network.services.cidr_blocks = own(services);
    c
}

/// A new control-plane DockerMachine of c1 whose bootstrap is a plain cloud-config (held
/// by the API with its Secret); the node answers as never bootstrapped before.
fn new_cp_docker_machine(w: &World, name: &str) -> DockerMachine {
    let dm: DockerMachine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachine",
        "metadata": {"name": name, "namespace": "ns", "uid": "dm-uid",
                     "labels": {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/control-plane": ""},
                     "ownerReferences": [{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine", "name": name, "uid": "m-uid"}]},
        "spec": {}
    }))
    .unwrap();
    w.api.hold(
        &format!(
            "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/ns/dockermachines/{name}"
        ),
        serde_json::to_value(&dm).unwrap(),
    );
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .encode("#cloud-config\nruncmd:\n- echo ok > /var/ok\n");
    w.api.hold(&format!("/api/v1/namespaces/ns/secrets/{name}-bootstrap"), json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-bootstrap"), "namespace": "ns"}, "data": {"value": data}}));
    let answer = |stdout: &[u8]| ExecOutput {
        stdout: stdout.to_vec(),
        stderr: vec![],
        exit_code: 0,
    };
    w.runtime.answer("/bin/sh -c test -f", answer(b"false\n"));
    w.runtime.answer("/bin/sh -c test -d", answer(b"no\n"));
    dm
}

/// Reconciles `dm` until its background bootstrap has finished and been taken up.
async fn reconcile_until_bootstrapped(w: &World, dm: DockerMachine) {
    let dm = Arc::new(dm);
    machine::reconcile(dm.clone(), w.ctx.clone()).await.unwrap();
    wait_for_bootstraps(w).await;
    machine::reconcile(dm, w.ctx.clone()).await.unwrap();
}

/// Polls (10 s at most) until no background bootstrap runs.
async fn wait_for_bootstraps(w: &World) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.ctx.bootstraps.running() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "bootstrap task still running"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// CAPD's IP families end to end through both flows: what the load balancer listens on and
/// balances to, the endpoint, the node's sysctls and the machine's addresses. The
/// in-memory network gives every container an IPv4 and an IPv6 address.
#[tokio::test]
async fn each_ip_family_shapes_load_balancer_endpoint_node_and_addresses() {
    use std::net::IpAddr;
    #[derive(Debug, Clone, Copy)]
    enum F {
        V4,
        V6,
        Dual,
    }
    let cases: [(&[&str], &[&str], F); 4] = [
        (&[], &[], F::V4),
        (&["192.168.0.0/16"], &["10.96.0.0/12"], F::V4),
        (&["fd00:10::/48"], &["fd00:20::/108"], F::V6),
        (
            &["192.168.0.0/16", "fd00:10::/48"],
            &["10.96.0.0/12", "fd00:20::/108"],
            F::Dual,
        ),
    ];
    for (pods, services, family) in cases {
        let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
        let w = world(
            vec![cluster_with_network(cluster_provisioned(), pods, services)],
            vec![cp_machine("cp0", false)],
            vec![dc.clone()],
        );
        let after = provision(&w, dc).await;
        let addrs_of = |info: capd_runtime::ContainerInfo| info.addresses(None).cloned().unwrap();
        let lb = addrs_of(w.runtime.inspect_container("c1-lb").await.unwrap().unwrap());
        let want_endpoint = match family {
            F::V6 => IpAddr::V6(lb.ipv6.unwrap()),
            F::V4 | F::Dual => IpAddr::V4(lb.ipv4.unwrap()),
        };
        assert_eq!(
            after
                .spec
                .control_plane_endpoint
                .host
                .parse::<IpAddr>()
                .ok(),
            Some(want_endpoint),
            "{family:?}"
        );
        assert!(
            capd_api::conditions::is_true(after.conditions(), "Ready"),
            "{family:?}"
        );

        reconcile_until_bootstrapped(&w, new_cp_docker_machine(&w, "cp0")).await;

        let node = addrs_of(
            w.runtime
                .inspect_container("c1-cp0")
                .await
                .unwrap()
                .unwrap(),
        );
        let (v4, v6) = (
            node.ipv4.unwrap().to_string(),
            node.ipv6.unwrap().to_string(),
        );
        let (v4, v6) = (v4.as_str(), v6.as_str());
        let cfg = String::from_utf8(
            w.runtime
                .read_file("c1-lb", capd_loadbalancer::CONFIG_PATH)
                .await
                .unwrap(),
        )
        .unwrap();
        let backend = match family {
            F::V6 => format!("server c1-cp0 [{v6}]:6443 "),
            F::V4 | F::Dual => format!("server c1-cp0 {v4}:6443 "),
        };
        assert!(
            cfg.contains(&backend),
            "{family:?}: no `{backend}` in\n{cfg}"
        );
        assert_eq!(
            cfg.contains("bind :::6443"),
            matches!(family, F::V6),
            "{family:?}: listens on IPv6 only for IPv6:\n{cfg}"
        );

        let sysctls = w.runtime.spec_of("c1-cp0").unwrap().sysctls;
        let ipv6_on = BTreeMap::from([
            (
                "net.ipv6.conf.all.disable_ipv6".to_string(),
                "0".to_string(),
            ),
            ("net.ipv6.conf.all.forwarding".to_string(), "1".to_string()),
        ]);
        match family {
            F::V4 => assert!(sysctls.is_empty(), "{sysctls:?}"),
            F::V6 | F::Dual => assert_eq!(sysctls, ipv6_on, "{family:?}"),
        }

        let status = w.api.last_status("/dockermachines/");
        let ips: Vec<(&str, &str)> = status["status"]["addresses"]
            .as_array()
            .unwrap_or_else(|| panic!("{family:?}: no addresses in {status:#}"))
            .iter()
            .map(|a| (a["type"].as_str().unwrap(), a["address"].as_str().unwrap()))
            .filter(|(t, _)| *t != "Hostname")
            .collect();
        let want: Vec<(&str, &str)> = match family {
            F::V4 => vec![("InternalIP", v4), ("ExternalIP", v4)],
            F::V6 => vec![("InternalIP", v6), ("ExternalIP", v6)],
            F::Dual => vec![
                ("InternalIP", v4),
                ("ExternalIP", v4),
                ("InternalIP", v6),
                ("ExternalIP", v6),
            ],
        };
        assert_eq!(ips, want, "{family:?}");
    }
}

#[tokio::test]
async fn a_cluster_network_of_mixed_families_is_invalid_and_nothing_is_created() {
    let dc = docker_cluster("c1", json!({}), json!({}), Value::Null);
    let w = world(
        vec![cluster_with_network(
            cluster_provisioned(),
            &["fd00:10::/48"],
            &["10.96.0.0/12"],
        )],
        vec![cp_machine("cp0", false)],
        vec![dc.clone()],
    );
    let want = "Cluster ns/c1: spec.clusterNetwork: pods and services IP family mismatch";
    w.api.hold(DC_PATH, serde_json::to_value(&dc).unwrap());
    let err = cluster::reconcile(Arc::new(dc), w.ctx.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, capd_controllers::Error::Invalid { .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), want);
    let lb_condition = condition(&w.api.last_status(""), "LoadBalancerAvailable");
    assert_eq!(
        (&lb_condition["status"], &lb_condition["message"]),
        (&json!("False"), &json!(want)),
        "the DockerCluster says why: {lb_condition}"
    );

    let err = machine::reconcile(Arc::new(new_cp_docker_machine(&w, "cp0")), w.ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), want);
    assert!(
        w.runtime.container_names().is_empty(),
        "no load balancer, no node: {:?}",
        w.runtime.container_names()
    );
}
