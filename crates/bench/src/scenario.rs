//! The scenarios as Cluster API objects on a plane: what is created, what "done" means,
//! and the cleanup. The same objects serve both providers (same group, kinds, fields).

use anyhow::{anyhow, bail, Context, Result};
use capd_runtime::{ContainerRuntime, LabelFilter};
use capd_testenv::b64;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::ResourceExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Clusters,
    Machines,
    Churn,
    /// The default flavour (kubeadm control plane, one worker, the pod network) until
    /// every Node of every workload cluster is Ready; see `workload`.
    Workload,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Clusters => "clusters",
            Scenario::Machines => "machines",
            Scenario::Churn => "churn",
            Scenario::Workload => "workload",
        }
    }
    /// Short tag in object and container names.
    pub fn tag(self) -> &'static str {
        match self {
            Scenario::Clusters => "c",
            Scenario::Machines => "m",
            Scenario::Churn => "k",
            Scenario::Workload => "w",
        }
    }
    pub fn size_name(self) -> &'static str {
        match self {
            Scenario::Clusters => "N",
            Scenario::Machines => "M",
            Scenario::Churn => "K",
            Scenario::Workload => "W",
        }
    }
}

/// The bootstrap data every machine gets: a few files (plain, base64, with owner and
/// permissions) and a few commands (argv and shell forms).
pub const CLOUD_CONFIG: &str = r#"#cloud-config
write_files:
- path: /etc/capd-bench/hello.txt
  content: hello from the benchmark
- path: /etc/capd-bench/config.yaml
  owner: root:root
  permissions: '0600'
  content: |
    a: 1
    b: two
- path: /etc/capd-bench/data.txt
  encoding: b64
  content: aGVsbG8gd29ybGQK
runcmd:
- [ sh, -c, 'echo ok > /etc/capd-bench/ran' ]
- 'mkdir -p /var/lib/capd-bench && touch /var/lib/capd-bench/done'
- [ cat, /etc/capd-bench/hello.txt ]
"#;

/// Kubernetes version on the Machines (CAPD reads it for its kind fixups).
pub const MACHINE_VERSION: &str = "v1.36.3";

/// Where and how the scenario's objects are created.
pub struct Objects {
    pub client: kube::Client,
    pub ns: String,
    /// Cluster names start with it; containers are found by it.
    pub prefix: String,
    pub lb_repo: String,
    pub lb_tag: String,
    pub node_image: String,
}

fn ar(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

pub fn docker_clusters() -> ApiResource {
    ar(
        "infrastructure.cluster.x-k8s.io",
        "v1beta2",
        "DockerCluster",
    )
}
pub fn docker_machines() -> ApiResource {
    ar(
        "infrastructure.cluster.x-k8s.io",
        "v1beta2",
        "DockerMachine",
    )
}
pub fn clusters() -> ApiResource {
    ar("cluster.x-k8s.io", "v1beta2", "Cluster")
}
fn machines() -> ApiResource {
    ar("cluster.x-k8s.io", "v1beta2", "Machine")
}

/// `capd-rs/haproxy:r-x` → (`capd-rs`, `r-x`): CAPD composes `<repository>/haproxy:<tag>`.
pub fn lb_repo_tag(image: &str) -> Result<(String, String)> {
    let (repo_name, tag) = image
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("haproxy image {image} has no tag"))?;
    let (repo, name) = repo_name
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("haproxy image {image} has no repository"))?;
    if name != "haproxy" {
        bail!("haproxy image {image}: CAPD can only name images `<repository>/haproxy:<tag>`");
    }
    Ok((repo.to_string(), tag.to_string()))
}

impl Objects {
    pub fn api(&self, r: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns, r)
    }

    async fn create(&self, r: &ApiResource, v: Value) -> Result<()> {
        let obj: DynamicObject = serde_json::from_value(v)?;
        let name = obj.name_any();
        self.api(r)
            .create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating {} {}/{name}", r.kind, self.ns))?;
        Ok(())
    }

    pub async fn create_namespace(&self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": self.ns}}))?;
        api.create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {}", self.ns))?;
        Ok(())
    }

    pub fn cluster_name(&self, i: usize) -> String {
        format!("{}-{i:02}", self.prefix)
    }

    /// A DockerCluster (load balancer from the environment's image) and its Cluster.
    pub async fn cluster(&self, name: &str) -> Result<()> {
        self.create(
            &docker_clusters(),
            json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster",
                "metadata": {"name": name, "namespace": self.ns},
                "spec": {"loadBalancer": {"imageRepository": self.lb_repo, "imageTag": self.lb_tag}}
            }),
        )
        .await?;
        self.create(
            &clusters(),
            json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
                "metadata": {"name": name, "namespace": self.ns},
                "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name}}
            }),
        )
        .await
    }

    /// Bootstrap Secret + DockerMachine (the node image) + worker Machine.
    pub async fn machine(&self, cluster: &str, name: &str) -> Result<()> {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-bootstrap"), "namespace": self.ns, "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
            "type": "cluster.x-k8s.io/secret",
            "data": {"value": b64(CLOUD_CONFIG), "format": b64("cloud-config")}
        }))?;
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await
            .context("creating a bootstrap Secret")?;
        let labels = json!({"cluster.x-k8s.io/cluster-name": cluster});
        self.create(
            &docker_machines(),
            json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachine",
                "metadata": {"name": name, "namespace": self.ns, "labels": labels},
                "spec": {"customImage": self.node_image}
            }),
        )
        .await?;
        self.create(
            &machines(),
            json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                "metadata": {"name": name, "namespace": self.ns, "labels": labels},
                "spec": {
                    "clusterName": cluster,
                    "version": MACHINE_VERSION,
                    "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
                    "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": name}
                }
            }),
        )
        .await
    }

    /// Creates what the scenario needs: clusters, or machines and their clusters.
    pub async fn create_all(&self, sc: Scenario, size: usize) -> Result<()> {
        match sc {
            Scenario::Clusters => {
                let creates = (0..size).map(|i| {
                    let name = self.cluster_name(i);
                    async move { self.cluster(&name).await }
                });
                futures::future::try_join_all(creates).await?;
            }
            Scenario::Machines => {
                let cluster = self.cluster_name(0);
                self.cluster(&cluster).await?;
                let creates = (0..size).map(|i| {
                    let (cluster, name) = (cluster.clone(), format!("{cluster}-m{i:02}"));
                    async move { self.machine(&cluster, &name).await }
                });
                futures::future::try_join_all(creates).await?;
            }
            Scenario::Churn => {
                let creates = (0..size).map(|i| {
                    let cluster = self.cluster_name(i);
                    async move {
                        self.cluster(&cluster).await?;
                        self.machine(&cluster, &format!("{cluster}-m00")).await
                    }
                });
                futures::future::try_join_all(creates).await?;
            }
            Scenario::Workload => crate::workload::create(self, size).await?,
        }
        Ok(())
    }

    /// How many of the scenario's infrastructure objects are done, and how many have
    /// their owner (set by Cluster API's core controllers, which the providers wait
    /// for): DockerClusters provisioned and Ready; DockerMachines provisioned with
    /// BootstrapCompleted. A failed bootstrap is an error (the run would never finish).
    pub async fn count_done(&self, sc: Scenario) -> Result<(usize, usize)> {
        let lp = ListParams::default();
        let owned = |o: &DynamicObject, kind: &str| {
            o.metadata
                .owner_references
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|r| r.kind == kind))
        };
        match sc {
            Scenario::Clusters => {
                let list = self.api(&docker_clusters()).list(&lp).await?;
                let done = list
                    .items
                    .iter()
                    .filter(|o| provisioned(&o.data) && condition(&o.data, "Ready").0 == "True")
                    .count();
                Ok((
                    done,
                    list.items.iter().filter(|o| owned(o, "Cluster")).count(),
                ))
            }
            Scenario::Machines | Scenario::Churn => {
                let list = self.api(&docker_machines()).list(&lp).await?;
                bootstrap_failures(&list.items)?;
                let done = list
                    .items
                    .iter()
                    .filter(|o| {
                        provisioned(&o.data) && condition(&o.data, "BootstrapCompleted").0 == "True"
                    })
                    .count();
                Ok((
                    done,
                    list.items.iter().filter(|o| owned(o, "Machine")).count(),
                ))
            }
            Scenario::Workload => bail!("workload: Nodes are counted by workload::wait_ready"),
        }
    }

    /// Waits (bounded) until `want` objects are done; polls every 200 ms. Returns when
    /// (since `start`) the last of them got its owner.
    pub async fn wait_done(
        &self,
        sc: Scenario,
        want: usize,
        start: Instant,
        timeout: Duration,
        mut alive: impl FnMut() -> Result<()>,
    ) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let mut all_owned = None;
        loop {
            alive()?;
            let (n, owned) = self.count_done(sc).await?;
            if owned >= want && all_owned.is_none() {
                all_owned = Some(start.elapsed());
            }
            if n >= want {
                return Ok(all_owned.unwrap_or_else(|| start.elapsed()));
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: only {n} of {want} done ({owned} owned) after {timeout:?}",
                    sc.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deletes every Cluster of the namespace (the providers then remove their containers).
    pub async fn delete_clusters(&self) -> Result<()> {
        let api = self.api(&clusters());
        for c in api.list(&ListParams::default()).await?.items {
            api.delete(&c.name_any(), &DeleteParams::default())
                .await
                .with_context(|| format!("deleting Cluster {}", c.name_any()))?;
        }
        Ok(())
    }

    /// Infrastructure objects left in the namespace.
    pub async fn infra_left(&self) -> Result<usize> {
        let lp = ListParams::default();
        Ok(self.api(&docker_clusters()).list(&lp).await?.items.len()
            + self.api(&docker_machines()).list(&lp).await?.items.len())
    }

    /// Waits (bounded) until no container of this prefix and no infrastructure object is left.
    pub async fn wait_gone(
        &self,
        rt: &dyn ContainerRuntime,
        timeout: Duration,
        mut alive: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            alive()?;
            let containers = containers_with_prefix(rt, &self.prefix).await?.len();
            let objects = self.infra_left().await?;
            if containers == 0 && objects == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{containers} containers and {objects} infrastructure objects left after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Fails on a DockerMachine whose bootstrap failed (the run would never finish).
pub fn bootstrap_failures(machines: &[DynamicObject]) -> Result<()> {
    for o in machines {
        let (status, reason, message) = condition(&o.data, "BootstrapCompleted");
        if status == "False" && reason.contains("Failed") {
            bail!(
                "DockerMachine {} failed to bootstrap: {message}",
                o.name_any()
            );
        }
    }
    Ok(())
}

pub fn provisioned(o: &Value) -> bool {
    o["status"]["initialization"]["provisioned"].as_bool() == Some(true)
}

/// (status, reason, message) of a v1beta2 condition; empty strings when absent.
pub fn condition(o: &Value, type_: &str) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"].as_str() == Some(type_)))
        .map(|c| (s(&c["status"]), s(&c["reason"]), s(&c["message"])))
        .unwrap_or_default()
}

/// Which containers a prefix selects, by their `io.x-k8s.kind.cluster` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// One scenario's clusters: `<prefix>-NN`.
    Clusters,
    /// Everything of a run: every scenario prefix starts with `b<run id>`.
    Run,
}

impl Match {
    pub fn selects(self, prefix: &str, cluster_label: &str) -> bool {
        match (self, cluster_label.strip_prefix(prefix)) {
            (_, None) => false,
            (Match::Clusters, Some(rest)) => rest.starts_with('-'),
            (Match::Run, Some(_)) => true,
        }
    }
}

/// Containers whose `io.x-k8s.kind.cluster` label is `<prefix>-...`: (id, name).
pub async fn containers_with_prefix(
    rt: &dyn ContainerRuntime,
    prefix: &str,
) -> Result<Vec<(String, String)>> {
    containers_matching(rt, prefix, Match::Clusters).await
}

pub async fn containers_matching(
    rt: &dyn ContainerRuntime,
    prefix: &str,
    how: Match,
) -> Result<Vec<(String, String)>> {
    let list = rt
        .list_containers(&LabelFilter::new().has(KIND_CLUSTER_LABEL))
        .await?;
    Ok(list
        .into_iter()
        .filter(|c| {
            c.labels
                .get(KIND_CLUSTER_LABEL)
                .is_some_and(|v| how.selects(prefix, v))
        })
        .map(|c| (c.id, c.name))
        .collect())
}

/// Removes (force, with volumes) every container of `prefix`; returns how many.
pub async fn remove_containers(rt: &dyn ContainerRuntime, prefix: &str) -> Result<usize> {
    remove_matching(rt, prefix, Match::Clusters).await
}

/// Removes (force, with volumes) every container `how` selects; returns how many.
pub async fn remove_matching(rt: &dyn ContainerRuntime, prefix: &str, how: Match) -> Result<usize> {
    let list = containers_matching(rt, prefix, how).await?;
    let n = list.len();
    futures::future::try_join_all(list.iter().map(|(id, _)| rt.remove_container(id))).await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_select_a_scenario_or_the_whole_run() {
        // A run `d5ad`, capd-rs, workload, W=1: clusters `bd5adcgw1-00`, `bd5adcgw1-01`.
        assert!(Match::Clusters.selects("bd5adcgw1", "bd5adcgw1-00"));
        assert!(!Match::Clusters.selects("bd5adcgw1", "bd5adcgw10-00"));
        assert!(
            !Match::Clusters.selects("bd5ad", "bd5adcgw1-00"),
            "a run prefix is not a scenario prefix"
        );
        assert!(Match::Run.selects("bd5ad", "bd5adcgw1-00"));
        assert!(Match::Run.selects("bd5ad", "bd5adkc3r1-02"));
        assert!(!Match::Run.selects("bd5ad", "be000cgw1-00"));
        assert!(!Match::Run.selects("bd5ad", "kind"));
    }
}
