//! What every reconcile gets: clients, settings, metrics, events, backoff.

use crate::backoff::Backoff;
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
        Self { network: capd_loadbalancer::DEFAULT_NETWORK.to_string(), watch_filter: None, namespace: None }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub workload: WorkloadClients,
}

impl Context {
    pub fn new(client: kube::Client, runtime: Arc<dyn ContainerRuntime>, config: Config, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter { controller: "capd-rs-manager".into(), instance: std::env::var("POD_NAME").ok() };
        Self { recorder: Recorder::new(client.clone(), reporter), client, runtime, config, metrics, backoff: Backoff::default(), workload: WorkloadClients::default() }
    }
}
