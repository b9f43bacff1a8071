//! v1beta1 objects written as CAPD's v1beta1 templates and controllers write them survive a
//! round trip through the v1beta1 types unchanged, and fit the v1beta1 schema of our CRDs
//! (nothing the API server would prune, every required field there, scalars of the right type).

use super::*;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Parses YAML into `T`, serializes it back, and asserts nothing was lost or added.
fn round_trip<T: DeserializeOwned + Serialize>(yaml: &str) -> T {
    let original: Value = serde_yaml_ng::from_str(yaml).unwrap();
    let typed: T = serde_json::from_value(original.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "round trip changed the object");
    typed
}

/// The v1beta1 schema of `kind` in the generated CRDs.
fn v1beta1_schema(kind: &str) -> Value {
    let crd = crate::crd::all()
        .unwrap()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    let version = crd
        .spec
        .versions
        .into_iter()
        .find(|v| v.name == "v1beta1")
        .unwrap();
    serde_json::to_value(version.schema.unwrap().open_api_v3_schema.unwrap()).unwrap()
}

/// Where `value` does not fit `schema`: unknown fields (pruned by the API server), missing
/// required fields, scalars of another type, values outside an enum.
fn misfits(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    let ty = schema["type"].as_str().unwrap_or("");
    match value {
        Value::Object(map) => {
            if ty != "object" {
                out.push(format!("{path}: an object where the schema says {ty:?}"));
                return;
            }
            for field in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(field.as_str().unwrap()) {
                    out.push(format!("{path}: required {field} missing"));
                }
            }
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if let Some(s) = schema["properties"].get(k) {
                    misfits(v, s, &here, out);
                } else if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object())
                {
                    misfits(v, s, &here, out);
                } else {
                    out.push(format!("{here}: not in the schema, would be pruned"));
                }
            }
        }
        Value::Array(items) => {
            if ty != "array" {
                out.push(format!("{path}: an array where the schema says {ty:?}"));
                return;
            }
            for (i, item) in items.iter().enumerate() {
                misfits(item, &schema["items"], &format!("{path}[{i}]"), out);
            }
        }
        Value::String(_) if ty != "string" => {
            out.push(format!("{path}: a string where the schema says {ty:?}"))
        }
        Value::Bool(_) if ty != "boolean" => {
            out.push(format!("{path}: a boolean where the schema says {ty:?}"))
        }
        Value::Number(_) if ty != "integer" && ty != "number" => {
            out.push(format!("{path}: a number where the schema says {ty:?}"))
        }
        _ => {}
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} not one of {allowed:?}"));
        }
    }
}

/// Round-trips `yaml` through `T` and checks it against the v1beta1 schema of its kind
/// (spec and status; kube's derive does not describe apiVersion, kind and metadata).
fn check<T: DeserializeOwned + Serialize + Resource<DynamicType = ()>>(yaml: &str) -> T {
    let typed: T = round_trip(yaml);
    let object: Value = serde_yaml_ng::from_str(yaml).unwrap();
    assert_eq!(object["apiVersion"], API_VERSION);
    assert_eq!(T::api_version(&()), API_VERSION);
    assert_eq!(object["kind"], T::kind(&()).as_ref());
    let schema = v1beta1_schema(&T::kind(&()));
    let mut out = Vec::new();
    for part in ["spec", "status"] {
        if let Some(v) = object.get(part) {
            misfits(v, &schema["properties"][part], part, &mut out);
        }
    }
    assert_eq!(
        out,
        Vec::<String>::new(),
        "{} does not fit its v1beta1 schema",
        T::kind(&())
    );
    typed
}

/// A DockerCluster as CAPD v1.10's controller left it (before the v1beta2 API).
const DOCKER_CLUSTER: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerCluster
metadata:
  name: my-cluster
  namespace: default
  labels:
    cluster.x-k8s.io/cluster-name: my-cluster
spec:
  controlPlaneEndpoint:
    host: 172.18.0.3
    port: 6443
  failureDomains:
    fd1:
      controlPlane: true
    fd2:
      controlPlane: false
      attributes:
        rack: r2
  loadBalancer:
    imageRepository: kindest
    imageTag: v20230606-42a2262b
    customHAProxyConfigTemplateRef:
      name: my-haproxy-config
status:
  ready: true
  failureDomains:
    fd1:
      controlPlane: true
    fd2:
      attributes:
        rack: r2
  conditions:
  - type: Ready
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
  - type: LoadBalancerAvailable
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
  v1beta2:
    conditions:
    - type: Ready
      status: "True"
      reason: Ready
      message: ""
      lastTransitionTime: "2026-01-02T03:04:05Z"
      observedGeneration: 2
    - type: LoadBalancerAvailable
      status: "True"
      reason: Available
      message: ""
      lastTransitionTime: "2026-01-02T03:04:05Z"
      observedGeneration: 2
"#;

/// A DockerMachine waiting for bootstrap; Go writes `ready` and `loadBalancerConfigured`
/// even when false.
const DOCKER_MACHINE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachine
metadata:
  name: my-cluster-control-plane-abcde
  namespace: default
  labels:
    cluster.x-k8s.io/cluster-name: my-cluster
    cluster.x-k8s.io/control-plane: ""
spec:
  providerID: docker:////my-cluster-control-plane-abcde
  customImage: kindest/node:v1.31.0
  preLoadImages:
  - registry.k8s.io/pause:3.10
  extraMounts:
  - containerPath: /var/run/docker.sock
    hostPath: /var/run/docker.sock
  - containerPath: /data
    hostPath: /srv/data
    readOnly: true
  bootstrapTimeout: 3m0s
status:
  ready: false
  loadBalancerConfigured: false
  addresses:
  - type: Hostname
    address: my-cluster-control-plane-abcde
  - type: InternalIP
    address: 172.18.0.4
  - type: ExternalIP
    address: 172.18.0.4
  conditions:
  - type: Ready
    status: "False"
    severity: Info
    reason: Bootstrapping
    lastTransitionTime: "2026-01-02T03:04:05Z"
  - type: BootstrapExecSucceeded
    status: "False"
    severity: Info
    reason: Bootstrapping
    lastTransitionTime: "2026-01-02T03:04:05Z"
  - type: ContainerProvisioned
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
  v1beta2:
    conditions:
    - type: BootstrapExecSucceeded
      status: "False"
      reason: NotSucceeded
      message: Waiting for bootstrap to complete
      lastTransitionTime: "2026-01-02T03:04:05Z"
"#;

/// As CAPD's v1beta1 quick-start ClusterClass wrote its templates (`preLoadImages` from
/// `${DOCKER_PRELOAD_IMAGES:-[]}`).
const DOCKER_MACHINE_TEMPLATE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachineTemplate
metadata:
  name: quick-start-control-plane
  namespace: default
spec:
  template:
    metadata:
      labels:
        tier: control-plane
    spec:
      extraMounts:
      - containerPath: /var/run/docker.sock
        hostPath: /var/run/docker.sock
      preLoadImages: []
"#;

const DOCKER_CLUSTER_TEMPLATE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerClusterTemplate
metadata:
  name: quick-start-cluster
  namespace: default
spec:
  template:
    spec:
      failureDomains:
        fd1:
          controlPlane: true
        fd4:
          controlPlane: false
      loadBalancer:
        imageRepository: kindest
"#;

/// CAPD's `clusterclass-quick-start-runtimesdk-v1beta1.yaml` DevClusterTemplate (shortened).
const DEV_CLUSTER_TEMPLATE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DevClusterTemplate
metadata:
  name: quick-start-cluster
spec:
  template:
    spec:
      backend:
        docker:
          failureDomains:
            fd1:
              controlPlane: true
            fd2:
              controlPlane: true
            fd4:
              controlPlane: false
"#;

const DEV_MACHINE_TEMPLATE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DevMachineTemplate
metadata:
  name: quick-start-default-worker-machinetemplate
spec:
  template:
    spec:
      backend:
        docker:
          extraMounts:
          - containerPath: "/var/run/docker.sock"
            hostPath: "/var/run/docker.sock"
          preLoadImages: []
"#;

const DEV_CLUSTER: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DevCluster
metadata:
  name: dev
  namespace: default
spec:
  controlPlaneEndpoint:
    host: 172.18.0.2
    port: 6443
  backend:
    docker:
      loadBalancer:
        imageRepository: kindest
        imageTag: v20230606-42a2262b
status:
  ready: true
  conditions:
  - type: Ready
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
  v1beta2:
    conditions:
    - type: Ready
      status: "True"
      reason: Ready
      message: ""
      lastTransitionTime: "2026-01-02T03:04:05Z"
"#;

const DEV_MACHINE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DevMachine
metadata:
  name: dev-md-0-xyz
  namespace: default
spec:
  providerID: docker:////dev-md-0-xyz
  backend:
    docker:
      customImage: kindest/node:v1.31.0
      bootstrapTimeout: 10m
status:
  ready: true
  addresses:
  - type: Hostname
    address: dev-md-0-xyz
  - type: InternalIP
    address: 172.18.0.6
  conditions:
  - type: Ready
    status: "True"
    lastTransitionTime: "2026-01-02T03:04:05Z"
"#;

/// A DevMachine on CAPD's in-memory backend: parses (the CRD rule refuses it at admission).
const DEV_MACHINE_IN_MEMORY: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DevMachine
metadata:
  name: scale-md-0-abc
spec:
  backend:
    inMemory:
      vm:
        provisioning:
          startupDuration: 10s
          startupJitter: "0.2"
      node:
        provisioning:
          startupDuration: 2s
      apiServer:
        provisioning:
          startupDuration: 2s
      etcd:
        provisioning:
          startupDuration: 2s
"#;

/// A DockerMachinePool as CAPD's v1beta1 controller wrote it (`ready` and `replicas` always).
const DOCKER_MACHINE_POOL: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachinePool
metadata:
  name: my-cluster-mp-0
  namespace: default
spec:
  template:
    customImage: kindest/node:v1.31.0
    preLoadImages:
    - registry.k8s.io/pause:3.10
  providerIDList:
  - docker:////my-cluster-mp-0-a
  - docker:////my-cluster-mp-0-b
status:
  ready: false
  replicas: 2
  observedGeneration: 3
  infrastructureMachineKind: DockerMachine
  instances:
  - instanceName: my-cluster-mp-0-a
    providerID: docker:////my-cluster-mp-0-a
    version: v1.31.0
    ready: true
    bootstrapped: true
    addresses:
    - type: InternalIP
      address: 172.18.0.7
  - instanceName: my-cluster-mp-0-b
    ready: false
  conditions:
  - type: Ready
    status: "False"
    severity: Warning
    reason: ReplicasNotReady
    message: 1 of 2 replicas not ready
    lastTransitionTime: "2026-01-02T03:04:05Z"
"#;

const DOCKER_MACHINE_POOL_TEMPLATE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachinePoolTemplate
metadata:
  name: quick-start-default-worker-machinepooltemplate
spec:
  template:
    spec:
      template:
        extraMounts:
        - containerPath: /var/run/docker.sock
          hostPath: /var/run/docker.sock
"#;

#[test]
fn docker_cluster_round_trips_and_fits_the_schema() {
    let dc: DockerCluster = check(DOCKER_CLUSTER);
    let fd = dc.spec.failure_domains.as_ref().unwrap();
    assert_eq!(fd["fd1"].control_plane, Some(true));
    assert_eq!(
        fd["fd2"].control_plane,
        Some(false),
        "an explicit false stays"
    );
    assert_eq!(fd["fd2"].attributes.as_ref().unwrap()["rack"], "r2");
    let endpoint = dc.spec.control_plane_endpoint.as_ref().unwrap();
    assert_eq!(
        (endpoint.host.as_deref(), endpoint.port),
        (Some("172.18.0.3"), Some(6443))
    );
    let status = dc.status.unwrap();
    assert_eq!(status.ready, Some(true));
    assert_eq!(status.conditions.as_ref().unwrap()[0].type_, "Ready");
    let v1beta2 = status.v1beta2.unwrap().conditions.unwrap();
    assert_eq!(v1beta2[0].observed_generation, Some(2));
}

#[test]
fn docker_machine_round_trips_and_fits_the_schema() {
    let dm: DockerMachine = check(DOCKER_MACHINE);
    assert_eq!(dm.spec.bootstrap_timeout.as_deref(), Some("3m0s"));
    assert_eq!(
        dm.spec.extra_mounts.as_ref().unwrap()[1].read_only,
        Some(true)
    );
    let status = dm.status.unwrap();
    assert_eq!(
        (status.ready, status.load_balancer_configured),
        (Some(false), Some(false))
    );
    assert_eq!(status.conditions.unwrap()[0].severity, "Info");
}

#[test]
fn templates_round_trip_and_fit_the_schema() {
    let dmt: DockerMachineTemplate = check(DOCKER_MACHINE_TEMPLATE);
    assert_eq!(
        dmt.spec.template.spec.pre_load_images,
        Some(vec![]),
        "an explicit [] stays"
    );
    assert_eq!(
        dmt.spec.template.metadata.unwrap().labels["tier"],
        "control-plane"
    );
    let dct: DockerClusterTemplate = check(DOCKER_CLUSTER_TEMPLATE);
    assert_eq!(dct.spec.template.spec.failure_domains.unwrap().len(), 2);
    let dev_ct: DevClusterTemplate = check(DEV_CLUSTER_TEMPLATE);
    let docker = dev_ct.spec.template.spec.backend.docker.unwrap();
    assert_eq!(
        docker.failure_domains.unwrap()["fd4"].control_plane,
        Some(false)
    );
    let dev_mt: DevMachineTemplate = check(DEV_MACHINE_TEMPLATE);
    assert!(dev_mt.spec.template.spec.backend.docker.is_some());
    let mpt: DockerMachinePoolTemplate = check(DOCKER_MACHINE_POOL_TEMPLATE);
    assert!(mpt
        .spec
        .template
        .spec
        .template
        .unwrap()
        .extra_mounts
        .is_some());
}

#[test]
fn dev_kinds_round_trip_and_fit_the_schema() {
    let dc: DevCluster = check(DEV_CLUSTER);
    assert_eq!(
        dc.spec
            .backend
            .docker
            .unwrap()
            .load_balancer
            .unwrap()
            .image_tag
            .as_deref(),
        Some("v20230606-42a2262b")
    );
    let dm: DevMachine = check(DEV_MACHINE);
    assert_eq!(
        dm.spec.backend.docker.unwrap().bootstrap_timeout.as_deref(),
        Some("10m")
    );
    let in_memory: DevMachine = check(DEV_MACHINE_IN_MEMORY);
    let vm = in_memory
        .spec
        .backend
        .in_memory
        .unwrap()
        .vm
        .unwrap()
        .provisioning
        .unwrap();
    assert_eq!(
        (vm.startup_duration.as_str(), vm.startup_jitter.as_str()),
        ("10s", "0.2")
    );
}

#[test]
fn machine_pool_round_trips_and_fits_the_schema() {
    let mp: DockerMachinePool = check(DOCKER_MACHINE_POOL);
    let status = mp.status.unwrap();
    assert_eq!((status.ready, status.replicas), (Some(false), Some(2)));
    let instances = status.instances.unwrap();
    assert_eq!(instances[1].ready, Some(false));
    assert_eq!(instances[0].bootstrapped, Some(true));
}

#[test]
fn empty_objects_stay_empty() {
    // CAPD's examples write DockerClusters with no spec fields at all.
    let yaml = "apiVersion: infrastructure.cluster.x-k8s.io/v1beta1\nkind: DockerCluster\nmetadata:\n  name: c\nspec: {}\n";
    let dc: DockerCluster = check(yaml);
    assert_eq!(dc.spec, docker::DockerClusterSpec::default());
}

/// The fit check and the types can fail: v1beta2 shapes are not v1beta1 ones.
#[test]
fn v1beta2_shapes_do_not_pass_as_v1beta1() {
    // A failure-domain list (v1beta2) where v1beta1 has a map.
    let list = serde_json::json!({"apiVersion": API_VERSION, "kind": "DockerCluster", "metadata": {"name": "c"},
        "spec": {"failureDomains": [{"name": "fd1", "controlPlane": true}]}});
    assert!(serde_json::from_value::<DockerCluster>(list.clone()).is_err());
    let mut out = Vec::new();
    misfits(
        &list["spec"],
        &v1beta1_schema("DockerCluster")["properties"]["spec"],
        "spec",
        &mut out,
    );
    assert_eq!(
        out,
        ["spec.failureDomains: an array where the schema says \"object\""]
    );

    // v1beta2's status blocks would be pruned from a v1beta1 object.
    let status = serde_json::json!({"initialization": {"provisioned": true}, "ready": "yes", "conditions": [{"type": "Ready"}]});
    let mut out = Vec::new();
    misfits(
        &status,
        &v1beta1_schema("DockerMachine")["properties"]["status"],
        "status",
        &mut out,
    );
    out.sort();
    assert_eq!(
        out,
        [
            "status.conditions[0]: required \"lastTransitionTime\" missing",
            "status.conditions[0]: required \"status\" missing",
            "status.initialization: not in the schema, would be pruned",
            "status.ready: a string where the schema says \"boolean\"",
        ]
    );
}
