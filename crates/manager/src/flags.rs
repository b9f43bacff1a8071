//! Flags, named as CAPD's manager names them where CAPD has them.

use clap::{Parser, ValueEnum};
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
#[command(name = "capd-manager", version, about = "Cluster API infrastructure provider for Docker, in Rust")]
pub struct Flags {
    /// Use a Lease so that only one manager instance reconciles at a time.
    #[arg(long, default_value_t = false)]
    pub leader_elect: bool,
    /// How long a leader's Lease is valid without renewal.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "capd-rs-leader-election")]
    pub leader_election_id: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// Only watch and reconcile objects in this namespace (default: all).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only reconcile objects whose `cluster.x-k8s.io/watch-filter` label has this value.
    #[arg(long)]
    pub watch_filter: Option<String>,
    /// How many DockerClusters are reconciled at once (CAPD's default).
    #[arg(long, default_value_t = 50)]
    pub dockercluster_concurrency: u16,
    /// How many DockerMachines are reconciled at once (CAPD's default).
    #[arg(long, default_value_t = 100)]
    pub dockermachine_concurrency: u16,
    /// How many DevClusters are reconciled at once (CAPD's default).
    #[arg(long, default_value_t = 50)]
    pub devcluster_concurrency: u16,
    /// How many DevMachines are reconciled at once (CAPD's default).
    #[arg(long, default_value_t = 50)]
    pub devmachine_concurrency: u16,
    /// Every object is reconciled again at least this often.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub sync_period: Duration,
    /// Sustained rate of requests to the Kubernetes API (token bucket; CAPD's default).
    #[arg(long, default_value_t = 100.0)]
    pub kube_api_qps: f64,
    /// Burst of requests to the Kubernetes API above the sustained rate (CAPD's default).
    #[arg(long, default_value_t = 200)]
    pub kube_api_burst: u32,
    /// Address of the health endpoints (/healthz, /readyz).
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,
    /// Address of the metrics endpoint (/metrics, Prometheus text format, plain HTTP).
    #[arg(long, default_value = ":8443")]
    pub diagnostics_address: String,
    /// Accepted for compatibility with CAPD's flags; metrics are always served over plain HTTP.
    #[arg(long, default_value_t = true)]
    pub insecure_diagnostics: bool,
    /// Path of a kubeconfig (default: $KUBECONFIG, then the in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Docker network for load balancers and nodes.
    #[arg(long, env = "CAPD_DOCKER_NETWORK", default_value = "kind")]
    pub docker_network: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `:9440` → `0.0.0.0:9440`, as Go's listeners read it.
pub fn listen_addr(flag: &str) -> String {
    if flag.starts_with(':') { format!("0.0.0.0{flag}") } else { flag.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capd_style_flags_parse() {
        let f = Flags::try_parse_from([
            "capd-manager", "--leader-elect", "--namespace", "ns", "--watch-filter", "x", "--dockercluster-concurrency", "3",
            "--sync-period", "5m", "--kube-api-qps", "50", "--kube-api-burst", "100", "--health-addr", "127.0.0.1:1",
            "--diagnostics-address", ":2", "--log-format", "json",
        ])
        .unwrap();
        assert!(f.leader_elect);
        assert_eq!(f.namespace.as_deref(), Some("ns"));
        assert_eq!(f.sync_period, Duration::from_secs(300));
        assert_eq!(f.dockercluster_concurrency, 3);
        assert_eq!(f.log_format, LogFormat::Json);
        assert_eq!(listen_addr(&f.diagnostics_address), "0.0.0.0:2");
        assert_eq!(listen_addr(&f.health_addr), "127.0.0.1:1");
    }

    /// A deployment copied from CAPD's sets none of these and must get CAPD's limits
    /// (CAPD v1.14.0, test/infrastructure/docker/main.go).
    #[test]
    fn defaults_are_capds() {
        let f = Flags::try_parse_from(["capd-manager"]).unwrap();
        assert_eq!(f.dockercluster_concurrency, 50);
        assert_eq!(f.dockermachine_concurrency, 100);
        assert_eq!(f.kube_api_qps, 100.0);
        assert_eq!(f.kube_api_burst, 200);
        assert_eq!(f.sync_period, Duration::from_secs(600));
        assert_eq!(f.health_addr, ":9440");
        assert_eq!(f.diagnostics_address, ":8443");
    }
}
