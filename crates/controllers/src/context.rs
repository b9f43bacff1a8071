//! What every reconcile gets: clients, settings, metrics, events, backoff.

use crate::backoff::Backoff;
use crate::caches::Caches;
use crate::metrics::Metrics;
use crate::workload::WorkloadClients;
use capd_runtime::ContainerRuntime;
use kube::runtime::events::{Recorder, Reporter};
use std::sync::Arc;

/// Settings from the manager's flags and environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Docker network for load balancers and nodes (`CAPD_DOCKER_NETWORK`, default `kind`).
    pub network: String,
    /// Only reconcile objects whose `cluster.x-k8s.io/watch-filter` label has this value.
    pub watch_filter: Option<String>,
    /// Only watch this namespace.
    pub namespace: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            network: capd_loadbalancer::DEFAULT_NETWORK.to_string(),
            watch_filter: None,
            namespace: None,
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    /// The watch caches the reconciles read from.
    pub caches: Caches,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub workload: WorkloadClients,
    /// One lock per cluster: concurrent control-plane reconciles must not interleave
    /// their load-balancer rewrites (each lists the nodes, then writes a config).
    pub lb_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bootstraps running in the background, one per node container.
    pub bootstraps: crate::bootstrap_tasks::BootstrapTasks,
}

impl Context {
    pub fn lb_lock(&self, cluster_key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.lb_locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(cluster_key.to_string()).or_default().clone()
    }
}

impl Context {
    pub fn new(
        client: kube::Client,
        caches: Caches,
        runtime: Arc<dyn ContainerRuntime>,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: "capd-rs-manager".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            caches,
            runtime,
            config,
            metrics,
            backoff: Backoff::default(),
            workload: WorkloadClients::default(),
            lb_locks: Default::default(),
            bootstraps: Default::default(),
        }
    }
}
