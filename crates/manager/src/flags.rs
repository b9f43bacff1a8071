//! Flags: every flag of CAPD v1.14.0's manager (test/infrastructure/docker/main.go, the
//! manager options of util/flags, component-base's logging flags, the feature gates and
//! controller-runtime's `--kubeconfig`), with Go's syntax, so a Deployment copied from
//! CAPD starts unchanged. A few are ours (`--docker-network`, `--webhook-url`), and a few
//! of CAPD's have nothing to act on here; `Flags::inert` names those so the log says so.

use clap::{ArgAction, Parser, ValueEnum};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Parser, Debug, Clone)]
// args_override_self: a repeated flag takes the last value, as Go's pflag does.
#[command(
    name = "capd-manager",
    version,
    about = "Cluster API infrastructure provider for Docker, in Rust",
    args_override_self = true
)]
pub struct Flags {
    /// Use a Lease so that only one manager instance reconciles at a time.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub leader_elect: bool,
    /// How long a leader's Lease is valid without renewal.
    #[arg(long, default_value = "15s", value_parser = go_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates retry to acquire the Lease.
    #[arg(long, default_value = "2s", value_parser = go_duration)]
    pub leader_elect_retry_period: Duration,
    /// Name of the Lease; CAPD's, so CAPD and capd-rs can never both lead one management cluster.
    #[arg(long, default_value = "controller-leader-election-capd")]
    pub leader_election_id: String,
    /// Namespace of the Lease and of the webhook certificate Secret (default: $POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// Only watch and reconcile objects in this namespace (default: all).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only reconcile objects whose `cluster.x-k8s.io/watch-filter` label has this value.
    #[arg(long)]
    pub watch_filter: Option<String>,
    /// CAPD's pprof address; capd-rs has no Go profiler (accepted, logged as unused).
    #[arg(long, default_value = "")]
    pub profiler_address: String,
    /// CAPD's Go block profiling; accepted, logged as unused.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub contention_profiling: bool,

    #[arg(long, default_value_t = 50)]
    pub dockercluster_concurrency: u16,
    #[arg(long, default_value_t = 100)]
    pub dockermachine_concurrency: u16,
    #[arg(long, default_value_t = 50)]
    pub dockermachinetemplate_concurrency: u16,
    #[arg(long, default_value_t = 50)]
    pub dockermachinepool_concurrency: u16,
    #[arg(long, default_value_t = 50)]
    pub devcluster_concurrency: u16,
    #[arg(long, default_value_t = 50)]
    pub devmachine_concurrency: u16,
    #[arg(long, default_value_t = 50)]
    pub devmachinetemplate_concurrency: u16,
    #[arg(long, default_value_t = 100)]
    pub devmachinepool_concurrency: u16,
    /// Workers of CAPD's workload-cluster connection cache.
    #[arg(long, default_value_t = 100)]
    pub clustercache_concurrency: u16,
    /// Requests per second to each workload cluster's API server.
    #[arg(long, default_value_t = 20.0)]
    pub clustercache_client_qps: f64,
    #[arg(long, default_value_t = 30)]
    pub clustercache_client_burst: u32,
    /// CAPD's CRD migrator phases to skip (StorageVersionMigration, CleanupManagedFields).
    #[arg(long, value_delimiter = ',', value_parser = ["StorageVersionMigration", "CleanupManagedFields"])]
    pub skip_crd_migration_phases: Vec<String>,

    /// Every object is reconciled again at least this often.
    #[arg(long, default_value = "10m", value_parser = go_duration)]
    pub sync_period: Duration,
    /// Sustained rate of requests to the Kubernetes API (token bucket; CAPD's default).
    #[arg(long, default_value_t = 100.0)]
    pub kube_api_qps: f64,
    /// Burst of requests to the Kubernetes API above the sustained rate (CAPD's default).
    #[arg(long, default_value_t = 200)]
    pub kube_api_burst: u32,

    /// Port of the webhook server (CRD conversion).
    #[arg(long, default_value_t = 9443)]
    pub webhook_port: u16,
    /// Directory of a serving certificate someone else manages (cert-manager). When it holds
    /// no certificate, the manager issues its own and puts its CA into the CRDs' caBundle.
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs/")]
    pub webhook_cert_dir: std::path::PathBuf,
    #[arg(long, default_value = "tls.crt")]
    pub webhook_cert_name: String,
    #[arg(long, default_value = "tls.key")]
    pub webhook_key_name: String,
    /// Ours: where the API server reaches the conversion webhook when the manager runs outside
    /// the cluster (e.g. `https://127.0.0.1:9443`); the CRDs are pointed there. Default: the
    /// CRDs' Service.
    #[arg(long)]
    pub webhook_url: Option<String>,

    /// Address of the health endpoints (/healthz, /readyz).
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,
    /// Address of the diagnostics endpoint (/metrics): HTTPS, callers authenticated and
    /// authorized through the API server, unless --insecure-diagnostics.
    #[arg(long, default_value = ":8443")]
    pub diagnostics_address: String,
    /// Serve /metrics over plain HTTP without authentication.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub insecure_diagnostics: bool,
    /// Minimum TLS version of the webhook and metrics servers (VersionTLS12, VersionTLS13;
    /// VersionTLS10/11 are accepted and served as TLS 1.2, rustls' floor).
    #[arg(long, default_value = "VersionTLS12", value_parser = ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"])]
    pub tls_min_version: String,
    /// Cipher suites by their IANA names (default: rustls' own).
    #[arg(long, value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,

    /// Feature gates, `Name=bool,...`, as Cluster API's manager takes them.
    #[arg(long, default_value = "", value_parser = feature_gates)]
    pub feature_gates: FeatureGates,

    /// Log verbosity as klog counts it (CAPD's default 2); 5+ adds debug, 7+ trace.
    #[arg(short = 'v', long = "v", default_value_t = 2)]
    pub verbosity: u8,
    /// component-base's per-file verbosity; accepted, logged as unused (use RUST_LOG).
    #[arg(long, default_value = "")]
    pub vmodule: String,
    /// Log format (component-base's `--logging-format`; `--log-format` kept as an alias).
    #[arg(long = "logging-format", alias = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// component-base's flush interval; our logs are written unbuffered.
    #[arg(long, default_value = "5s", value_parser = go_duration)]
    pub log_flush_frequency: Duration,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub log_text_split_stream: bool,
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub log_json_split_stream: bool,
    #[arg(long, default_value = "0")]
    pub log_text_info_buffer_size: String,
    #[arg(long, default_value = "0")]
    pub log_json_info_buffer_size: String,

    /// Path of a kubeconfig (default: $KUBECONFIG, then the in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Docker network for load balancers and nodes.
    #[arg(long, env = "CAPD_DOCKER_NETWORK", default_value = "kind")]
    pub docker_network: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Cluster API's feature gates (sigs.k8s.io/cluster-api/feature, v1.14.0) with their defaults.
const GATES: [(&str, bool); 11] = [
    ("MachinePool", true),
    ("ClusterTopology", false),
    ("RuntimeSDK", false),
    ("KubeadmBootstrapFormatIgnition", false),
    ("MachineSetPreflightChecks", true),
    ("MachineWaitForVolumeDetachConsiderVolumeAttachments", true),
    ("PriorityQueue", true),
    ("ReconcilerRateLimiting", true),
    ("InPlaceUpdates", false),
    ("MachineTaintPropagation", false),
    // component-base's own, which CAPD's flag also accepts.
    ("LoggingAlphaOptions", false),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureGates(BTreeMap<&'static str, bool>);

fn feature_gates(s: &str) -> Result<FeatureGates, String> {
    let mut gates: BTreeMap<&'static str, bool> = GATES.into_iter().collect();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("missing bool value for {pair}"))?;
        let name = name.trim();
        let (known, _) = GATES
            .iter()
            .find(|(g, _)| *g == name)
            .ok_or_else(|| format!("unrecognized feature gate: {name}"))?;
        let value = go_bool(value.trim())
            .map_err(|e| format!("invalid value of {name}={value}, err: {e}"))?;
        gates.insert(known, value);
    }
    Ok(FeatureGates(gates))
}

/// Go's strconv.ParseBool.
fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's time.ParseDuration (without the sign), as CAPD's duration flags read it.
fn go_duration(s: &str) -> Result<Duration, String> {
    capd_api::docker_machine::parse_go_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?} (e.g. 15s, 10m, 1h30m)"))
}

impl Flags {
    /// Parses the command line as pflag does with Kubernetes' word-separator normalization
    /// (`--leader_elect` is `--leader-elect`). An empty `--namespace=`/`--watch-filter=` means
    /// "not set", as in CAPD.
    pub fn parse_normalized() -> Self {
        Self::try_parse_normalized(std::env::args()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_parse_normalized<I: IntoIterator<Item = String>>(
        args: I,
    ) -> Result<Self, clap::Error> {
        Self::try_parse_from(normalize(args)).map(Self::cleaned)
    }

    fn cleaned(mut self) -> Self {
        self.namespace = self.namespace.filter(|s| !s.is_empty());
        self.watch_filter = self.watch_filter.filter(|s| !s.is_empty());
        self
    }

    /// CAPD flags set to something capd-rs has nothing to act on, for one log line at start.
    pub fn inert(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.profiler_address.is_empty() {
            out.push(format!(
                "--profiler-address={} (no Go profiler)",
                self.profiler_address
            ));
        }
        if self.contention_profiling {
            out.push("--contention-profiling (no Go profiler)".into());
        }
        if !self.vmodule.is_empty() {
            out.push(format!("--vmodule={} (use RUST_LOG)", self.vmodule));
        }
        if !self.skip_crd_migration_phases.is_empty() {
            out.push(format!(
                "--skip-crd-migration-phases={} (capd-rs runs no CRD migrator)",
                self.skip_crd_migration_phases.join(",")
            ));
        }
        if self.log_text_split_stream || self.log_json_split_stream {
            out.push("--log-*-split-stream (logs go to stderr)".into());
        }
        out
    }

    /// The tracing filter for `--v`, unless RUST_LOG says otherwise.
    pub fn log_filter(&self) -> &'static str {
        match self.verbosity {
            0..=4 => "info,kube_lease_manager=warn",
            5..=6 => "info,capd_controllers=debug,capd_manager=debug,capd_runtime=debug,capd_loadbalancer=debug,kube_lease_manager=warn",
            _ => "debug,capd_controllers=trace,capd_manager=trace,capd_runtime=trace,capd_loadbalancer=trace",
        }
    }
}

fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix("--") {
            Some(rest) if !rest.is_empty() => {
                let (name, value) = rest
                    .split_once('=')
                    .map(|(n, v)| (n, Some(v)))
                    .unwrap_or((rest, None));
                let name = name.replace('_', "-");
                match value {
                    Some(v) => format!("--{name}={v}"),
                    None => format!("--{name}"),
                }
            }
            _ => a,
        })
        .collect()
}

/// `:9440` → `0.0.0.0:9440`, as Go's listeners read it.
pub fn listen_addr(flag: &str) -> String {
    if flag.starts_with(':') {
        format!("0.0.0.0{flag}")
    } else {
        flag.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_normalized(
            std::iter::once("capd-manager")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    #[test]
    fn capd_style_flags_parse() {
        let f = parse(&[
            "--leader-elect",
            "--namespace",
            "ns",
            "--watch-filter",
            "x",
            "--dockercluster-concurrency",
            "3",
            "--sync-period",
            "5m",
            "--kube-api-qps",
            "50",
            "--kube-api-burst",
            "100",
            "--health-addr",
            "127.0.0.1:1",
            "--diagnostics-address",
            ":2",
            "--log-format",
            "json",
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

    /// A deployment copied from CAPD sets none of these and must get CAPD's values
    /// (CAPD v1.14.0, test/infrastructure/docker/main.go).
    #[test]
    fn defaults_are_capds() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.dockercluster_concurrency, 50);
        assert_eq!(f.dockermachine_concurrency, 100);
        assert_eq!(f.devmachinepool_concurrency, 100);
        assert_eq!(f.kube_api_qps, 100.0);
        assert_eq!(f.kube_api_burst, 200);
        assert_eq!(f.sync_period, Duration::from_secs(600));
        assert_eq!(f.health_addr, ":9440");
        assert_eq!(f.diagnostics_address, ":8443");
        assert!(
            !f.insecure_diagnostics,
            "CAPD serves metrics over HTTPS by default"
        );
        assert_eq!(f.webhook_port, 9443);
        assert_eq!(f.leader_election_id, "controller-leader-election-capd");
        assert_eq!(
            (f.leader_elect_renew_deadline, f.leader_elect_retry_period),
            (Duration::from_secs(10), Duration::from_secs(2))
        );
        assert_eq!(f.verbosity, 2);
        assert!(f.feature_gates.0["MachinePool"] && !f.feature_gates.0["ClusterTopology"]);
    }

    /// The exact argument list of CAPD v1.14.0's config/manager/manager.yaml, variables at
    /// their defaults, plus the other flags in Go's syntax.
    #[test]
    fn capds_deployment_args_parse() {
        let f = parse(&[
            "--leader-elect",
            "--diagnostics-address=:8443",
            "--insecure-diagnostics=false",
            "--feature-gates=MachinePool=true,ClusterTopology=false,PriorityQueue=true,ReconcilerRateLimiting=true",
            "--v=4",
            "--leader-elect-lease-duration=1m30s",
            "--webhook-cert-dir=/tmp/certs",
            "--tls-min-version=VersionTLS13",
            "--skip-crd-migration-phases=StorageVersionMigration",
            "--logging-format=json",
        ])
        .unwrap();
        assert!(f.leader_elect && !f.insecure_diagnostics);
        assert_eq!(f.verbosity, 4);
        assert_eq!(f.leader_elect_lease_duration, Duration::from_secs(90));
        assert!(
            !f.feature_gates.0["ClusterTopology"] && f.feature_gates.0["ReconcilerRateLimiting"]
        );
        assert_eq!(f.log_format, LogFormat::Json);
        assert_eq!(f.inert().len(), 1, "{:?}", f.inert());

        let f = parse(&[
            "--insecure-diagnostics=true",
            "--leader-elect=false",
            "-v",
            "6",
            "--feature-gates=ClusterTopology=true",
            "--v=3",
            "--leader-elect",
        ])
        .unwrap();
        assert!(f.insecure_diagnostics && f.leader_elect && f.feature_gates.0["ClusterTopology"]);
        assert_eq!(
            f.verbosity, 3,
            "a repeated flag takes the last value, as in Go"
        );
    }

    #[test]
    fn underscores_are_dashes_as_in_kubernetes_components() {
        let f = parse(&["--leader_elect", "--kube_api_qps=7", "--watch-filter="]).unwrap();
        assert!(f.leader_elect);
        assert_eq!(f.kube_api_qps, 7.0);
        assert_eq!(f.watch_filter, None, "an empty filter is no filter");
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for (args, needle) in [
            (
                &["--feature-gates=NoSuchGate=true"][..],
                "unrecognized feature gate: NoSuchGate",
            ),
            (&["--feature-gates=MachinePool"][..], "missing bool value"),
            (
                &["--insecure-diagnostics=maybe"][..],
                "--insecure-diagnostics",
            ),
            (&["--sync-period=10"][..], "--sync-period"),
            (&["--tls-min-version=VersionTLS99"][..], "--tls-min-version"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }
}
