//! The `workload` scenario: W clusters of the default flavour (templates/cluster-template.yaml:
//! Cluster, KubeadmControlPlane of one machine, MachineDeployment of one worker,
//! DockerCluster/DockerMachineTemplates, KubeadmConfigTemplate, and the pod network through
//! a ClusterResourceSet) created at once; done when every Node of every workload cluster
//! is Ready, read through the cluster's `<cluster>-kubeconfig` Secret. Needs the kubeadm
//! bootstrap and control-plane managers on the plane (`Plane::start(.., kubeadm: true)`).

mod nodes;
mod stats;
pub mod template;

use crate::scenario::{self, Objects, KIND_CLUSTER_LABEL, MACHINE_VERSION};
use anyhow::{bail, Context, Result};
use capd_runtime::{ContainerRuntime, LabelFilter};
use kube::api::ListParams;
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use template::Flavour;

/// Machines per cluster, as `--control-plane-machine-count 1 --worker-machine-count 1`.
pub const CONTROL_PLANE_MACHINES: usize = 1;
pub const WORKER_MACHINES: usize = 1;
pub const NODES_PER_CLUSTER: usize = CONTROL_PLANE_MACHINES + WORKER_MACHINES;

/// The node's role label, as kind and both providers set it.
const ROLE_LABEL: &str = "io.x-k8s.kind.role";

/// Images the flavour uses without naming them (the providers' defaults): the node image
/// from `Machine.spec.version` and CAPD's default load balancer. There is no registry, so
/// both must be in the engine (`cargo xtask up` builds and tags them).
pub fn required_images() -> [String; 2] {
    [
        format!("kindest/node:{MACHINE_VERSION}"),
        capd_loadbalancer::DEFAULT_IMAGE.to_string(),
    ]
}

/// Fails early, with a hint, when an image the flavour needs is not in the engine.
pub async fn check_images(rt: &dyn ContainerRuntime) -> Result<()> {
    for image in required_images() {
        if !rt
            .image_present(&image)
            .await
            .with_context(|| format!("looking for image {image}"))?
        {
            bail!("workload: image {image} is not in the engine (`cargo xtask up` builds and tags it)");
        }
    }
    Ok(())
}

/// Renders the flavour for `size` clusters and applies them all at once.
pub async fn create(objs: &Objects, size: usize) -> Result<()> {
    let path = capd_testenv::workspace_root().join(template::TEMPLATE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let creates = (0..size).map(|i| {
        let (name, text) = (objs.cluster_name(i), &text);
        async move {
            let flavour = Flavour {
                cluster: &name,
                namespace: &objs.ns,
                kubernetes_version: MACHINE_VERSION,
                control_plane: CONTROL_PLANE_MACHINES,
                workers: WORKER_MACHINES,
            };
            let mut docs = flavour.render(text)?;
            with_portable_haproxy_config(&mut docs, &name, &objs.ns);
            capd_testenv::manifests::apply(&objs.client, "capd-bench", &docs)
                .await
                .with_context(|| format!("creating cluster {}/{name}", objs.ns))
        }
    });
    futures::future::try_join_all(creates).await?;
    Ok(())
}

/// Both providers' load balancers get the same HAProxy configuration: capd-rs's default
/// template (written in CAPD's template variables), through the DockerCluster's
/// `spec.loadBalancer.customHAProxyConfigTemplateRef`. CAPD's own default asks for
/// `maxconn 100000` without `no strict-limits`, so where the engine cannot raise a
/// container's open-file limit (this environment's runc shim keeps 20000) HAProxy refuses
/// to load it ("Cannot raise FD limit") and the control plane is never reachable; on a
/// stock Docker host both load. The same template for both keeps the comparison fair.
pub fn with_portable_haproxy_config(docs: &mut Vec<serde_json::Value>, cluster: &str, ns: &str) {
    let name = format!("{cluster}-haproxy");
    for d in docs.iter_mut().filter(|d| d["kind"] == "DockerCluster") {
        d["spec"]["loadBalancer"]["customHAProxyConfigTemplateRef"] =
            serde_json::json!({"name": name});
    }
    docs.insert(
        0,
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"value": capd_loadbalancer::DEFAULT_TEMPLATE},
        }),
    );
}

/// When, since the first create, the milestones of a run were reached.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    /// Every DockerCluster owned by its Cluster.
    pub owned: Duration,
    /// Every Cluster with `status.initialization.controlPlaneInitialized`.
    pub control_plane: Duration,
    /// Every Node of every workload cluster Ready.
    pub ready: Duration,
}

/// Waits (bounded) until every workload cluster has [`NODES_PER_CLUSTER`] Nodes, all
/// Ready; polls every second. A failed bootstrap is an error.
pub async fn wait_ready(
    objs: &Objects,
    size: usize,
    start: Instant,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<Times> {
    let deadline = Instant::now() + timeout;
    let names: Vec<String> = (0..size).map(|i| objs.cluster_name(i)).collect();
    let mut clients: BTreeMap<String, kube::Client> = BTreeMap::new();
    let mut ready: BTreeSet<String> = BTreeSet::new();
    let (mut owned_at, mut cp_at) = (None, None);
    let mut last = BTreeMap::new();
    let lp = ListParams::default();
    loop {
        alive()?;
        scenario::bootstrap_failures(
            &objs
                .api(&scenario::docker_machines())
                .list(&lp)
                .await?
                .items,
        )?;
        if owned_at.is_none() {
            let dcs = objs.api(&scenario::docker_clusters()).list(&lp).await?;
            let owned = dcs
                .items
                .iter()
                .filter(|o| o.owner_references().iter().any(|r| r.kind == "Cluster"))
                .count();
            if owned >= size {
                owned_at = Some(start.elapsed());
            }
        }
        if cp_at.is_none() {
            let cs = objs.api(&scenario::clusters()).list(&lp).await?;
            let initialized = cs
                .items
                .iter()
                .filter(|c| {
                    c.data["status"]["initialization"]["controlPlaneInitialized"].as_bool()
                        == Some(true)
                })
                .count();
            if initialized >= size {
                cp_at = Some(start.elapsed());
            }
        }
        for name in &names {
            if !clients.contains_key(name) {
                if let Some(c) = nodes::workload_client(&objs.client, &objs.ns, name).await? {
                    clients.insert(name.clone(), c);
                }
            }
        }
        // The clusters still pending, asked at once (an API server that does not answer
        // yet costs up to the request timeout).
        let pending = clients.iter().filter(|(n, _)| !ready.contains(*n));
        let answers = futures::future::join_all(
            pending.map(|(n, c)| async move { (n.clone(), nodes::ready_nodes(c).await) }),
        )
        .await;
        for (name, answer) in answers {
            match answer {
                Ok((n, r)) if n >= NODES_PER_CLUSTER && r == n => {
                    ready.insert(name);
                }
                Ok((n, r)) => {
                    last.insert(name, format!("{r} of {n} Nodes Ready"));
                }
                Err(e) => {
                    last.insert(name, format!("{e:#}"));
                }
            }
        }
        if ready.len() >= size {
            let t = start.elapsed();
            return Ok(Times {
                owned: owned_at.unwrap_or(t),
                control_plane: cp_at.unwrap_or(t),
                ready: t,
            });
        }
        if Instant::now() > deadline {
            let waiting: Vec<String> = names
                .iter()
                .filter(|n| !ready.contains(*n))
                .map(|n| {
                    format!(
                        "{n}: {}",
                        last.get(n)
                            .map(String::as_str)
                            .unwrap_or("no kubeconfig Secret yet")
                    )
                })
                .collect();
            bail!(
                "workload: {} of {size} clusters with every Node Ready after {timeout:?} (control planes initialized: {}); {}",
                ready.len(),
                if cp_at.is_some() { "all" } else { "not all" },
                waiting.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Memory (MiB, as `docker stats` shows it) of the control-plane node container of `cluster`.
pub async fn node_memory_mib(
    rt: &dyn ContainerRuntime,
    docker_host: &str,
    cluster: &str,
) -> Result<f64> {
    let filter = LabelFilter::new()
        .with(KIND_CLUSTER_LABEL, cluster)
        .with(ROLE_LABEL, "control-plane");
    let list = rt.list_containers(&filter).await?;
    let Some(c) = list.first() else {
        bail!("no control-plane node container of cluster {cluster}")
    };
    stats::container_memory_mib(docker_host, &c.id)
        .await
        .with_context(|| format!("memory of node container {}", c.name))
}

/// Sizes (MiB) of [`required_images`] as the engine reports them; an image it cannot
/// size is left out with a message (a figure, not the run).
pub async fn image_sizes(docker_host: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for image in required_images() {
        let size = tokio::process::Command::new("docker")
            .env("DOCKER_HOST", docker_host)
            .args(["image", "inspect", "--format", "{{.Size}}", &image])
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        match size.map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).trim().parse::<u64>(),
            )
        }) {
            Ok((true, Ok(bytes))) => out.push((image, bytes as f64 / (1024.0 * 1024.0))),
            other => eprintln!("    size of image {image}: {other:?}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_load_balancers_get_the_same_portable_template() {
        let mut docs = vec![
            serde_json::json!({"kind": "DockerCluster", "metadata": {"name": "c"}, "spec": {}}),
            serde_json::json!({"kind": "Cluster"}),
        ];
        with_portable_haproxy_config(&mut docs, "c", "ns");
        assert_eq!(
            docs[0]["kind"], "ConfigMap",
            "the ConfigMap first, so it exists when the DockerCluster is reconciled"
        );
        assert!(docs[0]["data"]["value"]
            .as_str()
            .unwrap()
            .contains("no strict-limits"));
        assert_eq!(
            docs[1]["spec"]["loadBalancer"]["customHAProxyConfigTemplateRef"]["name"],
            "c-haproxy"
        );
        assert!(docs[2]["spec"].is_null());
    }

    #[test]
    fn the_flavour_images_are_the_providers_defaults() {
        let [node, lb] = required_images();
        assert_eq!(node, "kindest/node:v1.36.3");
        assert_eq!(lb, "kindest/haproxy:v20230606-42a2262b");
    }
}
