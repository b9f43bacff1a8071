//! Shared fixture of the manager's integration tests: a namespace of its own, the real
//! `capd-manager` binary running against the test environment and limited to that
//! namespace, and helpers to create Cluster API objects and look at containers.
#![allow(dead_code)]

pub mod faults;

use capd_api::capi::{Cluster, Machine};
use capd_api::{DockerCluster, DockerMachine};
use capd_testenv::b64;
use capd_testenv::{free_port, http_get, poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const LONG: Duration = Duration::from_secs(120);

pub struct Fixture {
    pub env: TestEnv,
    pub client: kube::Client,
    pub ns: String,
    /// Clusters this test created: their containers are removed on drop, even after a panic.
    pub cluster_names: std::sync::Mutex<Vec<String>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let names = self
            .cluster_names
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default();
        for name in names {
            // Never panic here: a panic in a destructor during unwinding aborts the
            // whole test binary (and with it the clean-up of every other test).
            let ids: Vec<String> = match try_containers_of(&self.env, &name) {
                Ok(found) => found.into_iter().map(|c| c.0).collect(),
                Err(e) => {
                    eprintln!("clean-up of cluster {name}: {e}");
                    continue;
                }
            };
            if !ids.is_empty() {
                let _ = self
                    .env
                    .docker()
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

pub struct Manager {
    pub child: Child,
    pub health_port: u16,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl Manager {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Fixture {
    pub async fn new(prefix: &str) -> Self {
        let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
        let client = env.kube_client().await.unwrap();
        capd_testenv::install_provider_manifests(&client)
            .await
            .unwrap();
        let ns = unique_name(prefix);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        Self {
            env,
            client,
            ns,
            cluster_names: Default::default(),
        }
    }

    /// Starts the manager, watching only this fixture's namespace.
    pub async fn manager(&self, extra: &[&str]) -> Manager {
        self.manager_env(extra, &[]).await
    }

    /// [`Fixture::manager`] with environment variables set over the defaults (e.g.
    /// another `DOCKER_HOST`).
    pub async fn manager_env(&self, extra: &[&str], envs: &[(&str, &str)]) -> Manager {
        let (health_port, metrics_port) = (free_port().unwrap(), free_port().unwrap());
        let log = self
            .env
            .state
            .log_dir
            .join(format!("manager-{}-{}.log", self.ns, health_port));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_capd-manager"))
            .args(["--namespace", &self.ns])
            .args(["--health-addr", &format!("127.0.0.1:{health_port}")])
            .args([
                "--diagnostics-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .args(["--leader-election-namespace", &self.ns])
            .args(capd_testenv::support::local_manager_flags(&self.env.state.pki_dir).unwrap())
            .args(extra)
            .env("KUBECONFIG", &self.env.state.kubeconfig)
            .env("DOCKER_HOST", self.env.docker_host())
            .env("RUST_LOG", "info,capd_controllers=debug")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let m = Manager {
            child,
            health_port,
            metrics_port,
            log,
        };
        poll_until("manager /healthz", Duration::from_secs(30), || {
            let r = http_get(health_port, "/healthz");
            async move {
                match r {
                    Ok((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await
        .unwrap();
        m
    }

    /// Bootstrap Secret + Machine + DockerMachine using the environment's node image.
    pub async fn machine(
        &self,
        cluster: &str,
        name: &str,
        control_plane: bool,
        bootstrap: &str,
        format: Option<&str>,
    ) {
        self.machine_bytes(cluster, name, control_plane, bootstrap.as_bytes(), format)
            .await
    }

    /// [`Fixture::machine`] with bootstrap data that need not be text.
    pub async fn machine_bytes(
        &self,
        cluster: &str,
        name: &str,
        control_plane: bool,
        bootstrap: &[u8],
        format: Option<&str>,
    ) {
        let mut data = json!({"value": b64(bootstrap)});
        if let Some(f) = format {
            data["format"] = json!(b64(f.as_bytes()));
        }
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-bootstrap"), "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
            "data": data
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let mut labels = json!({"cluster.x-k8s.io/cluster-name": cluster});
        if control_plane {
            labels["cluster.x-k8s.io/control-plane"] = json!("");
        }
        let dm: DockerMachine = serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerMachine",
            "metadata": {"name": name, "labels": labels},
            "spec": {"customImage": self.env.state.images.node, "bootstrapTimeout": "3m"}
        }))
        .unwrap();
        Api::<DockerMachine>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &dm)
            .await
            .unwrap();
        let m: Machine = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "clusterName": cluster,
                "version": "v1.36.3",
                "bootstrap": {"dataSecretName": format!("{name}-bootstrap")},
                "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": name}
            }
        }))
        .unwrap();
        Api::<Machine>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &m)
            .await
            .unwrap();
    }

    /// A provisioned Cluster + DockerCluster.
    pub async fn cluster(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.create_cluster(&name, false, json!({})).await;
        self.wait_provisioned(&name, LONG).await;
        name
    }

    pub fn dockermachines(&self) -> Api<DockerMachine> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn wait_machine<F>(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> DockerMachine
    where
        F: Fn(&DockerMachine) -> bool + Copy,
    {
        let api = self.dockermachines();
        poll_until(&format!("DockerMachine {name}: {what}"), timeout, || {
            let (api, name) = (api.clone(), name.to_string());
            async move {
                match api.get(&name).await {
                    Ok(dm) if check(&dm) => Ok(dm),
                    Ok(dm) => Err(format!("status {:?}", dm.status)),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap()
    }

    pub fn clusters(&self) -> Api<Cluster> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn dockerclusters(&self) -> Api<DockerCluster> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// `capd-rs/haproxy:r-...` → ("capd-rs", "r-..."): CAPD's imageRepository/imageTag.
    pub fn lb_image(&self) -> (String, String) {
        let image = &self.env.state.images.haproxy;
        let (repo_name, tag) = image.rsplit_once(':').unwrap();
        let repo = repo_name.rsplit_once('/').map(|(r, _)| r).unwrap_or("");
        (repo.to_string(), tag.to_string())
    }

    /// A Cluster and its DockerCluster, as a user's manifest would have them.
    pub async fn create_cluster(
        &self,
        name: &str,
        cluster_paused: bool,
        dc_annotations: serde_json::Value,
    ) {
        self.create_cluster_with(
            name,
            json!({"metadata": {"annotations": dc_annotations}}),
            json!({"spec": {"paused": cluster_paused}}),
        )
        .await
    }

    /// [`Fixture::create_cluster`] with `dc_extra` and `cluster_extra` merged into the
    /// DockerCluster and the Cluster (e.g. a custom template, a cluster network).
    pub async fn create_cluster_with(
        &self,
        name: &str,
        dc_extra: serde_json::Value,
        cluster_extra: serde_json::Value,
    ) {
        if let Ok(mut n) = self.cluster_names.lock() {
            n.push(name.to_string());
        }
        let (repo, tag) = self.lb_image();
        let mut dc = json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster",
            "metadata": {"name": name},
            "spec": {"loadBalancer": {"imageRepository": repo, "imageTag": tag}}
        });
        merge(&mut dc, dc_extra);
        let dc: DockerCluster = serde_json::from_value(dc).unwrap();
        self.dockerclusters()
            .create(&PostParams::default(), &dc)
            .await
            .unwrap();
        let mut cluster = json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {
                "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name}
            }
        });
        merge(&mut cluster, cluster_extra);
        let cluster: Cluster = serde_json::from_value(cluster).unwrap();
        self.clusters()
            .create(&PostParams::default(), &cluster)
            .await
            .unwrap();
    }

    /// Waits until the DockerCluster is provisioned and Ready; returns it.
    pub async fn wait_provisioned(&self, name: &str, timeout: Duration) -> DockerCluster {
        let api = self.dockerclusters();
        poll_until(
            &format!(
                "DockerCluster {}/{name} to be provisioned and Ready",
                self.ns
            ),
            timeout,
            || {
                let (api, name) = (api.clone(), name.to_string());
                async move {
                    let dc = api.get(&name).await.map_err(|e| e.to_string())?;
                    let ready = capd_api::conditions::is_true(
                        capd_api::HasConditions::conditions(&dc),
                        "Ready",
                    );
                    if dc.is_provisioned()
                        && ready
                        && !dc.spec.control_plane_endpoint.host.is_empty()
                    {
                        Ok(dc)
                    } else {
                        Err(format!("status {:?}", dc.status))
                    }
                }
            },
        )
        .await
        .unwrap()
    }

    /// Deletes every Cluster (while the test's manager still runs, so its finalizers
    /// clean up), waits a bounded time for the infrastructure objects to go, then
    /// deletes the namespace. Whatever is left, `Drop` removes from Docker.
    pub async fn delete_namespace(&self) {
        let clusters = self.clusters();
        if let Ok(list) = clusters.list(&Default::default()).await {
            for c in list.items {
                let _ = clusters
                    .delete(&c.name_any(), &DeleteParams::default())
                    .await;
            }
        }
        let dcs = self.dockerclusters();
        let dms: Api<capd_api::DockerMachine> = Api::namespaced(self.client.clone(), &self.ns);
        let _ = poll_until(
            "the test's infrastructure to be deleted",
            Duration::from_secs(60),
            || {
                let (dcs, dms) = (dcs.clone(), dms.clone());
                async move {
                    let n = dcs
                        .list(&Default::default())
                        .await
                        .map(|l| l.items.len())
                        .unwrap_or(0)
                        + dms
                            .list(&Default::default())
                            .await
                            .map(|l| l.items.len())
                            .unwrap_or(0);
                    if n == 0 {
                        Ok(())
                    } else {
                        Err(format!("{n} left"))
                    }
                }
            },
        )
        .await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
    }

    pub async fn set_cluster_paused(&self, name: &str, paused: bool) {
        self.clusters()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"paused": paused}})),
            )
            .await
            .unwrap();
    }
}

/// `docker ps -a` of containers with label `io.x-k8s.kind.cluster=<cluster>`: (name, state, role).
pub fn containers_of(env: &TestEnv, cluster: &str) -> Vec<(String, String, String)> {
    try_containers_of(env, cluster).unwrap_or_else(|e| panic!("{e}"))
}

/// (name, state, role) of every container of `cluster`, or why `docker ps` failed.
pub fn try_containers_of(
    env: &TestEnv,
    cluster: &str,
) -> Result<Vec<(String, String, String)>, String> {
    let out = env
        .docker()
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={cluster}"),
        ])
        .args([
            "--format",
            "{{.Names}}\t{{.State}}\t{{.Label \"io.x-k8s.kind.role\"}}",
        ])
        .output()
        .map_err(|e| format!("docker ps: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker ps: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut p = l.split('\t').map(String::from);
            (
                p.next().unwrap_or_default(),
                p.next().unwrap_or_default(),
                p.next().unwrap_or_default(),
            )
        })
        .collect())
}

/// The container's IPv4 address on `network`.
pub fn container_ip(env: &TestEnv, name: &str, network: &str) -> String {
    let out = env
        .docker()
        .args([
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            name,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Merges `extra` into `base`, objects key by key (JSON merge patch without deletions).
pub fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}
