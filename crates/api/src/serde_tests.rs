//! Objects written the way CAPD's docs, templates and controllers write them survive a
//! round trip through our types unchanged, and real Cluster API objects read into the views.

use crate::capi::{Cluster, Machine};
use crate::common::MachineAddressType;
use crate::{DockerCluster, DockerClusterTemplate, DockerMachine, DockerMachineTemplate};
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

const DOCKER_CLUSTER: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
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
  - name: fd1
    controlPlane: true
  - name: fd2
    controlPlane: false
    attributes:
      rack: r2
  loadBalancer:
    imageRepository: kindest
    imageTag: v20230606-42a2262b
    customHAProxyConfigTemplateRef:
      name: my-haproxy-config
status:
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
  initialization:
    provisioned: true
  ready: true
  failureDomains:
  - name: fd1
    controlPlane: true
  - name: fd2
    controlPlane: false
    attributes:
      rack: r2
  deprecated:
    v1beta1:
      conditions:
      - type: Ready
        status: "True"
        lastTransitionTime: "2026-01-02T03:04:05Z"
      - type: LoadBalancerAvailable
        status: "False"
        severity: Warning
        reason: LoadBalancerProvisioningFailed
        message: container not running
        lastTransitionTime: "2026-01-02T03:04:05Z"
"#;

const DOCKER_MACHINE: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachine
metadata:
  name: my-cluster-control-plane-abcde
  namespace: default
spec:
  providerID: docker:////my-cluster-control-plane-abcde
  customImage: kindest/node:v1.36.0
  preLoadImages:
  - registry.k8s.io/pause:3.10
  extraMounts:
  - containerPath: /var/run/docker.sock
    hostPath: /var/run/docker.sock
  - containerPath: /data
    hostPath: /srv/data
    readOnly: true
  bootstrapTimeout: 10m
status:
  conditions:
  - type: Ready
    status: "False"
    reason: NotReady
    message: "* BootstrapCompleted: waiting"
    lastTransitionTime: "2026-01-02T03:04:05Z"
  - type: BootstrapCompleted
    status: "False"
    reason: NotCompleted
    message: waiting
    lastTransitionTime: "2026-01-02T03:04:05Z"
  initialization:
    provisioned: true
  ready: true
  loadBalancerConfigured: true
  addresses:
  - type: Hostname
    address: my-cluster-control-plane-abcde
  - type: InternalIP
    address: 172.18.0.4
  - type: ExternalIP
    address: 172.18.0.4
  failureDomain: fd1
"#;

#[test]
fn docker_cluster_round_trips() {
    let dc: DockerCluster = round_trip(DOCKER_CLUSTER);
    assert_eq!(
        dc.spec.control_plane_endpoint.to_string(),
        "172.18.0.3:6443"
    );
    assert_eq!(dc.spec.failure_domains[1].attributes["rack"], "r2");
    assert_eq!(
        dc.spec
            .load_balancer
            .custom_haproxy_config_template_ref
            .as_ref()
            .unwrap()
            .name,
        "my-haproxy-config"
    );
    assert!(dc.is_provisioned());
    let status = dc.status.unwrap();
    assert_eq!(status.conditions[0].observed_generation, Some(2));
    let v1beta1 = status.deprecated.unwrap().v1beta1.unwrap();
    assert_eq!(v1beta1.conditions[1].severity, "Warning");
}

#[test]
fn docker_machine_round_trips() {
    let dm: DockerMachine = round_trip(DOCKER_MACHINE);
    assert_eq!(
        dm.spec.provider_id,
        "docker:////my-cluster-control-plane-abcde"
    );
    assert!(dm.spec.extra_mounts[1].read_only);
    assert_eq!(dm.bootstrap_timeout(), std::time::Duration::from_secs(600));
    let status = dm.status.unwrap();
    assert!(status.load_balancer_configured);
    assert_eq!(status.addresses[1].type_, MachineAddressType::InternalIp);
}

#[test]
fn minimal_objects_as_capd_examples_write_them() {
    // CAPD's examples/simple-cluster.yaml shape: an empty spec, templates with one mount.
    let dc: DockerCluster = round_trip(
        "apiVersion: infrastructure.cluster.x-k8s.io/v1beta2\nkind: DockerCluster\nmetadata:\n  name: c\n  namespace: default\nspec: {}\n",
    );
    assert!(dc.status.is_none());
    let dmt: DockerMachineTemplate = round_trip(
        r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata:
  name: controlplane
  namespace: default
spec:
  template:
    spec:
      extraMounts:
      - containerPath: /var/run/docker.sock
        hostPath: /var/run/docker.sock
"#,
    );
    assert_eq!(dmt.spec.template.spec.extra_mounts.len(), 1);
    let dct: DockerClusterTemplate = round_trip(
        r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerClusterTemplate
metadata:
  name: quick-start-cluster
  namespace: default
spec:
  template:
    metadata:
      labels:
        team: a
      annotations:
        note: from the template
    spec:
      failureDomains:
      - name: fd1
        controlPlane: true
      loadBalancer:
        imageTag: v20230606-42a2262b
"#,
    );
    assert_eq!(dct.spec.template.metadata.labels["team"], "a");
}

#[test]
fn machine_template_status_capacity_round_trips() {
    let dmt: DockerMachineTemplate = round_trip(
        r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata:
  name: worker
spec:
  template:
    spec:
      customImage: kindest/node:v1.36.0
status:
  capacity:
    cpu: "2"
    memory: 4Gi
"#,
    );
    assert_eq!(dmt.status.unwrap().capacity["memory"].0, "4Gi");
}

/// A Cluster as Cluster API v1.14 stores it, with many fields the view does not know.
const CLUSTER: &str = r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: my-cluster
  namespace: default
  uid: 7b0f1c9e-0000-4000-8000-000000000001
  finalizers: [cluster.cluster.x-k8s.io]
spec:
  paused: true
  clusterNetwork:
    services: {cidrBlocks: ["10.96.0.0/12"]}
    pods: {cidrBlocks: ["192.168.0.0/16"]}
    serviceDomain: cluster.local
  controlPlaneEndpoint: {host: 172.18.0.3, port: 6443}
  controlPlaneRef: {apiGroup: controlplane.cluster.x-k8s.io, kind: KubeadmControlPlane, name: controlplane}
  infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: DockerCluster, name: my-cluster}
  topology:
    classRef: {name: quick-start}
    version: v1.36.0
    controlPlane: {replicas: 1}
    workers:
      machineDeployments:
      - {class: default-worker, name: md-0, replicas: 1}
    variables:
    - {name: imageRepository, value: ""}
status:
  initialization: {infrastructureProvisioned: true, controlPlaneInitialized: false}
  phase: Provisioned
  observedGeneration: 3
  conditions:
  - {type: InfrastructureReady, status: "True", reason: Ready, message: "", lastTransitionTime: "2026-01-02T03:04:05Z", observedGeneration: 3}
  controlPlane: {desiredReplicas: 1, replicas: 1}
  deprecated:
    v1beta1:
      conditions:
      - {type: Ready, status: "False", severity: Warning, reason: Foo, lastTransitionTime: "2026-01-02T03:04:05Z"}
"#;

#[test]
fn cluster_view_reads_a_real_cluster() {
    let cluster: Cluster = serde_yaml_ng::from_str(CLUSTER).unwrap();
    assert!(cluster.spec_paused());
    assert!(cluster.has_topology());
    assert!(cluster
        .spec
        .infrastructure_ref
        .is_kind("infrastructure.cluster.x-k8s.io", "DockerCluster"));
    assert_eq!(cluster.spec.infrastructure_ref.name, "my-cluster");
    assert_eq!(cluster.spec.control_plane_endpoint.port, 6443);
    assert!(cluster.infrastructure_provisioned());
    assert!(!cluster.control_plane_initialized());
    assert!(crate::conditions::is_true(
        cluster.conditions(),
        "InfrastructureReady"
    ));
}

#[test]
fn cluster_view_reads_a_bare_cluster() {
    let cluster: Cluster = serde_yaml_ng::from_str(
        "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata: {name: c}\nspec: {}\n",
    )
    .unwrap();
    assert!(!cluster.spec_paused());
    assert!(!cluster.has_topology());
    assert!(!cluster.infrastructure_provisioned());
    assert!(cluster.status.is_none());
}

#[test]
fn machine_view_reads_a_real_machine() {
    let machine: Machine = serde_yaml_ng::from_str(
        r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata:
  name: my-cluster-control-plane-abcde
  namespace: default
  labels:
    cluster.x-k8s.io/cluster-name: my-cluster
    cluster.x-k8s.io/control-plane: ""
    cluster.x-k8s.io/control-plane-name: controlplane
spec:
  clusterName: my-cluster
  version: v1.36.0
  failureDomain: fd1
  bootstrap:
    configRef: {apiGroup: bootstrap.cluster.x-k8s.io, kind: KubeadmConfig, name: my-config}
    dataSecretName: my-cluster-control-plane-abcde
  infrastructureRef: {apiGroup: infrastructure.cluster.x-k8s.io, kind: DockerMachine, name: my-cluster-control-plane-abcde}
  deletion: {nodeDrainTimeoutSeconds: 10}
  readinessGates: [{conditionType: APIServerPodHealthy}]
status:
  nodeRef: {name: my-cluster-control-plane-abcde}
  initialization: {infrastructureProvisioned: true, bootstrapDataSecretCreated: true}
  addresses: [{type: InternalIP, address: 172.18.0.4}]
  phase: Running
  nodeInfo: {kubeletVersion: v1.36.0}
"#,
    )
    .unwrap();
    assert!(machine.is_control_plane());
    assert_eq!(machine.cluster_name(), Some("my-cluster"));
    assert_eq!(
        machine.bootstrap_data_secret_name(),
        Some("my-cluster-control-plane-abcde")
    );
    assert_eq!(machine.node_name(), Some("my-cluster-control-plane-abcde"));
    assert_eq!(machine.version(), Some("v1.36.0"));
    assert_eq!(machine.failure_domain(), Some("fd1"));
    assert!(machine
        .spec
        .infrastructure_ref
        .is_kind("infrastructure.cluster.x-k8s.io", "DockerMachine"));
}

#[test]
fn machine_view_before_bootstrap_data() {
    let machine: Machine = serde_yaml_ng::from_str(
        "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Machine\nmetadata:\n  name: m\n  labels: {cluster.x-k8s.io/cluster-name: c}\nspec:\n  bootstrap: {configRef: {apiGroup: bootstrap.cluster.x-k8s.io, kind: KubeadmConfig, name: x}}\n",
    )
    .unwrap();
    assert!(!machine.is_control_plane());
    assert_eq!(machine.cluster_name(), Some("c"));
    assert_eq!(machine.bootstrap_data_secret_name(), None);
    assert_eq!(machine.node_name(), None);
    assert_eq!(machine.version(), None);
}
