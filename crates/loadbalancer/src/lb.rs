//! Lifecycle of a cluster's load-balancer container: create (or adopt, or replace
//! a stale one), report address and port, reconfigure, delete.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use capd_runtime::{
    ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, ExecRequest, LabelFilter,
    NetworkSpec, PortPublish, Protocol, RestartPolicy,
};
use tracing::Instrument;

use crate::config::{
    self, BackendServer, ConfigData, TemplateSource, CONFIG_PATH, CONTROL_PLANE_PORT,
    DEFAULT_TEMPLATE, DEFAULT_WEIGHT, STATS_PORT,
};
use crate::error::{Error, Result};
use crate::labels::{
    CLUSTER_LABEL, CLUSTER_UID_LABEL, ROLE_CONTROL_PLANE, ROLE_LABEL, ROLE_LOAD_BALANCER,
};

/// CAPD v1.14's default load-balancer image.
pub const DEFAULT_IMAGE: &str = "kindest/haproxy:v20230606-42a2262b";

/// CAPD's default container network.
pub const DEFAULT_NETWORK: &str = "kind";

/// Where the last configuration HAProxy was told to load is recorded, so an
/// unchanged configuration is not reloaded on every reconcile (each reload forks a
/// worker that lingers while old connections such as watches stay open).
const APPLIED_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg.applied";

/// What the applied configuration was rendered from (template, ports, backends). While
/// it matches, nothing is rendered, so a custom template is not even read. Emptied
/// before the live configuration changes: it never describes a configuration that is
/// not the applied one.
const INPUTS_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg.inputs";

/// Where a custom template's output is checked before it replaces the live file.
const CANDIDATE_PATH: &str = "/usr/local/etc/haproxy/haproxy.cfg.candidate";

/// How long to wait for HAProxy's master to be ready for a reload signal.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopped load balancer's start is tried again while the engine answers
/// with server errors (see `LoadBalancer::start_stopped`), and how often.
const RESTART_GRACE: Duration = Duration::from_secs(10);
const RESTART_RETRY: Duration = Duration::from_millis(500);

/// SIGHUP (signal 1) is bit 0 of /proc/PID/status `SigCgt`.
const SIGHUP_MASK: u64 = 1;

/// What a cluster's load balancer looks like.
#[derive(Debug, Clone)]
pub struct LoadBalancerSpec {
    /// Cluster name; the container is `<cluster>-lb`.
    pub cluster: String,
    /// UID of the owning cluster object. When set, it is recorded on the container
    /// and a container carrying another UID is never adopted or deleted.
    pub cluster_uid: Option<String>,
    pub image: String,
    pub network: String,
    /// Listen on IPv6 too and balance to the nodes' IPv6 addresses.
    pub ipv6: bool,
    /// Host address the control-plane and stats ports are published on.
    pub publish_address: IpAddr,
    /// Frontend port inside the container (`.FrontendControlPlanePort`).
    pub frontend_port: u16,
    /// API server port on the nodes (`.BackendControlPlanePort`).
    pub backend_port: u16,
    /// Extra container labels.
    pub labels: BTreeMap<String, String>,
    /// A Go template replacing [`crate::DEFAULT_TEMPLATE`] (CAPD's
    /// `customHAProxyConfigTemplateRef`), with the same variables; read only when a
    /// configuration is rendered.
    pub config_template: Option<Arc<dyn TemplateSource>>,
}

impl LoadBalancerSpec {
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            cluster_uid: None,
            image: DEFAULT_IMAGE.to_string(),
            network: DEFAULT_NETWORK.to_string(),
            ipv6: false,
            publish_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            frontend_port: CONTROL_PLANE_PORT,
            backend_port: CONTROL_PLANE_PORT,
            labels: BTreeMap::new(),
            config_template: None,
        }
    }

    pub fn container_name(&self) -> String {
        format!("{}-lb", self.cluster)
    }

    /// The container this spec asks for (before its configuration is written).
    pub fn container_spec(&self) -> ContainerSpec {
        let publish = |port| PortPublish {
            container_port: port,
            protocol: Protocol::Tcp,
            host_ip: self.publish_address,
            host_port: None,
        };
        let mut spec = ContainerSpec::new(self.container_name(), &self.image)
            .labels(self.labels.clone())
            .label(CLUSTER_LABEL, &self.cluster)
            .label(ROLE_LABEL, ROLE_LOAD_BALANCER)
            .publish(publish(self.frontend_port))
            .publish(publish(STATS_PORT))
            .network(&self.network)
            // Master-worker mode: SIGHUP reloads without dropping the listener.
            .entrypoint(["haproxy", "-W", "-db", "-f", CONFIG_PATH])
            // Survive engine restarts and reboots (CAPD's on-failure:1 does not).
            .restart(RestartPolicy::UnlessStopped);
        if let Some(uid) = &self.cluster_uid {
            spec = spec.label(CLUSTER_UID_LABEL, uid);
        }
        spec
    }
}

/// Where the load balancer can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerStatus {
    pub container_id: String,
    pub name: String,
    pub state: ContainerState,
    /// Address on the cluster network (the family of the spec); `None` while stopped.
    pub ip: Option<IpAddr>,
    /// Host port the control-plane frontend is published on.
    pub host_port: Option<u16>,
    /// Host port of the HAProxy statistics page.
    pub stats_host_port: Option<u16>,
}

/// How an existing container of our name relates to the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Ours and running: use it.
    Adopt,
    /// Ours (same cluster UID) but stopped: start it again, keeping its config.
    Restart,
    /// Left from an earlier cluster, or broken: remove and create anew.
    Replace(String),
    /// Someone else's: never touch.
    Foreign(String),
}

fn judge(spec: &LoadBalancerSpec, info: &ContainerInfo) -> Verdict {
    if info.label(CLUSTER_LABEL) != Some(spec.cluster.as_str())
        || info.label(ROLE_LABEL) != Some(ROLE_LOAD_BALANCER)
    {
        // The name is ours by convention; a container of that name without our
        // labels is debris (e.g. a hand-made one), not another cluster's LB.
        return Verdict::Replace(format!(
            "labels {}={:?}, {}={:?} are not this cluster's load balancer",
            CLUSTER_LABEL,
            info.label(CLUSTER_LABEL),
            ROLE_LABEL,
            info.label(ROLE_LABEL)
        ));
    }
    let same_owner = match (&spec.cluster_uid, info.label(CLUSTER_UID_LABEL)) {
        (Some(want), Some(have)) if want != have => {
            return if info.state.is_running() {
                Verdict::Foreign(format!("cluster UID {have}, not {want}"))
            } else {
                Verdict::Replace(format!("stopped and left by cluster UID {have}"))
            };
        }
        (Some(_), Some(_)) => true,
        _ => false,
    };
    match info.state {
        ContainerState::Running => Verdict::Adopt,
        // The engine is restarting it by policy; wait rather than fight it.
        ContainerState::Restarting => Verdict::Adopt,
        // Ours and stopped after running: start it again with its configuration.
        // One stuck in Created may never have been configured; it is replaced below.
        ContainerState::Exited if same_owner => Verdict::Restart,
        ref other => Verdict::Replace(format!(
            "state {other:?} and not known to be this cluster's"
        )),
    }
}

/// A cluster's HAProxy load balancer, driven through any [`ContainerRuntime`].
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    runtime: Arc<dyn ContainerRuntime>,
    spec: LoadBalancerSpec,
}

impl LoadBalancer {
    pub fn new(runtime: Arc<dyn ContainerRuntime>, spec: LoadBalancerSpec) -> Self {
        Self { runtime, spec }
    }

    pub fn spec(&self) -> &LoadBalancerSpec {
        &self.spec
    }

    pub fn container_name(&self) -> String {
        self.spec.container_name()
    }

    /// Makes sure the load-balancer container exists and runs. Idempotent: an
    /// existing container of this cluster is adopted (or started again), a stale
    /// one of an earlier cluster is replaced, another cluster's is refused.
    pub async fn ensure(&self) -> Result<LoadBalancerStatus> {
        let name = self.container_name();
        async {
            let mut existing = self.runtime.inspect_container(&name).await?;
            if existing.as_ref().is_some_and(|i| i.state == ContainerState::Created) {
                // Probably another reconcile between create and start: let it finish.
                existing = self.await_concurrent_create(&name).await?;
            }
            if let Some(info) = existing {
                match judge(&self.spec, &info) {
                    Verdict::Adopt => return self.status_of(&info),
                    Verdict::Foreign(reason) => return Err(Error::Foreign { name, reason }),
                    Verdict::Restart => {
                        tracing::info!(container = %name, "starting this cluster's stopped load balancer");
                        // A stopped container does not hold its network: it may be gone.
                        self.ensure_network().await?;
                        match self.start_stopped(&name).await {
                            Ok(()) => return self.require_status().await,
                            Err(e) if e.is_unreachable() => return Err(e.into()),
                            Err(e) => {
                                tracing::warn!(container = %name, error = %e, "could not start it; replacing it");
                                self.runtime.remove_container(&name).await?;
                            }
                        }
                    }
                    Verdict::Replace(reason) => {
                        tracing::info!(container = %name, %reason, "replacing stale load balancer container");
                        self.runtime.remove_container(&name).await?;
                    }
                }
            }
            tracing::info!(container = %name, image = %self.spec.image, "creating load balancer container");
            // Rendered first: a template that cannot be read leaves no container behind.
            let initial = self.config_data(&BTreeMap::new());
            let rendered = self.render(&initial).await?;
            self.ensure_network().await?;
            match self.runtime.create_container(&self.spec.container_spec()).await {
                Ok(id) => self.start_configured(&id, &initial, &rendered).await?,
                // Another reconcile is creating it right now.
                Err(e) if e.is_conflict() => {
                    let info = self.await_concurrent_create(&name).await?.ok_or(e)?;
                    if let Verdict::Foreign(reason) = judge(&self.spec, &info) {
                        return Err(Error::Foreign { name, reason });
                    }
                }
                Err(e) => return Err(e.into()),
            }
            self.require_status().await
        }
        .instrument(tracing::info_span!("ensure_load_balancer", cluster = %self.spec.cluster, ipv6 = self.spec.ipv6))
        .await
    }

    /// Creates the network when missing. Only before a container is created or started:
    /// a running container holds its network, and the load balancer of a provisioned
    /// cluster is looked at again periodically.
    async fn ensure_network(&self) -> Result<()> {
        let spec = NetworkSpec {
            ipv6: self.spec.ipv6,
            ..NetworkSpec::bridge(&self.spec.network)
        };
        Ok(self.runtime.ensure_network(&spec).await?)
    }

    /// Starts this cluster's stopped container. An engine that has just come back can
    /// refuse a start with a server error for a moment (its network store not restored
    /// yet); those are tried again within [`RESTART_GRACE`] before the container is
    /// given up and replaced, which would cost it its address and so the cluster's
    /// control-plane endpoint.
    async fn start_stopped(&self, name: &str) -> std::result::Result<(), capd_runtime::Error> {
        let deadline = tokio::time::Instant::now() + RESTART_GRACE;
        loop {
            match self.runtime.start_container(name).await {
                Err(e) if e.is_server_error() && tokio::time::Instant::now() < deadline => {
                    tracing::info!(container = %name, error = %e, "the engine refused the start; trying again");
                    tokio::time::sleep(RESTART_RETRY).await;
                }
                done => return done,
            }
        }
    }

    /// Waits for a container someone else is creating under our name: the engine
    /// reserves the name before the container can be inspected, and the creator
    /// still has to configure and start it.
    async fn await_concurrent_create(&self, name: &str) -> Result<Option<ContainerInfo>> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let info = self.runtime.inspect_container(name).await?;
            let settled = info
                .as_ref()
                .is_some_and(|i| i.state != ContainerState::Created);
            if settled || tokio::time::Instant::now() >= deadline {
                return Ok(info);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes the configuration without backends (`rendered` from `data`) into the
    /// created container, then starts it. HAProxy thus never runs the image's placeholder
    /// configuration, and no reload signal can reach it while it is still starting. A
    /// container that cannot be prepared is removed so the next attempt starts clean.
    async fn start_configured(&self, id: &str, data: &ConfigData, rendered: &str) -> Result<()> {
        let prepared = async {
            // Nothing runs yet that could check a custom template's output; if HAProxy
            // rejects it the container exits, and update_backends reports why.
            // One archive, one engine request: all three live in HAProxy's directory.
            let inputs = self.inputs(data);
            self.runtime
                .write_files(
                    id,
                    &[
                        (CONFIG_PATH, rendered.as_bytes(), 0o644),
                        (APPLIED_PATH, rendered.as_bytes(), 0o644),
                        (INPUTS_PATH, inputs.as_bytes(), 0o644),
                    ],
                )
                .await?;
            self.runtime.start_container(id).await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = prepared {
            if let Err(rm) = self.runtime.remove_container(id).await {
                tracing::warn!(container = %id, error = %rm, "could not remove load balancer that failed to start");
            }
            return Err(e);
        }
        Ok(())
    }

    fn config_data(&self, backends: &BTreeMap<String, BackendServer>) -> ConfigData {
        ConfigData {
            frontend_control_plane_port: self.spec.frontend_port,
            backend_control_plane_port: self.spec.backend_port,
            backend_servers: backends.clone(),
            ipv6: self.spec.ipv6,
        }
    }

    /// Renders `data`, reading the custom template if there is one.
    async fn render(&self, data: &ConfigData) -> Result<String> {
        let Some(source) = &self.spec.config_template else {
            return Ok(config::render(data, None)?);
        };
        let custom = source
            .load()
            .await
            .map_err(|source_error| Error::TemplateSource {
                origin: source.origin(),
                source: source_error,
            })?;
        // A custom template that fails while rendering: name where it came from.
        config::render(data, Some(&custom)).map_err(|e| Error::CustomTemplate {
            origin: source.origin(),
            source: e,
        })
    }

    /// Everything the configuration of `data` is rendered from, as text to record.
    fn inputs(&self, data: &ConfigData) -> String {
        let template = match &self.spec.config_template {
            Some(source) => source.origin(),
            // This release's default: a new default is applied at the next update.
            None => format!("default #{:016x}", config::fingerprint(DEFAULT_TEMPLATE)),
        };
        let mut text = format!(
            "template {template}\nfrontend {}\nbackend {}\nipv6 {}\n",
            data.frontend_control_plane_port, data.backend_control_plane_port, data.ipv6
        );
        for (name, server) in &data.backend_servers {
            text.push_str(&format!(
                "server {name} {} {}\n",
                server.address, server.weight
            ));
        }
        text
    }

    /// Where the load balancer is, or `None` when its container does not exist.
    pub async fn status(&self) -> Result<Option<LoadBalancerStatus>> {
        match self
            .runtime
            .inspect_container(&self.container_name())
            .await?
        {
            Some(info) => self.status_of(&info).map(Some),
            None => Ok(None),
        }
    }

    async fn require_status(&self) -> Result<LoadBalancerStatus> {
        self.status().await?.ok_or_else(|| Error::Missing {
            name: self.container_name(),
        })
    }

    fn status_of(&self, info: &ContainerInfo) -> Result<LoadBalancerStatus> {
        if let Verdict::Foreign(reason) = judge(&self.spec, info) {
            return Err(Error::Foreign {
                name: info.name.clone(),
                reason,
            });
        }
        let addrs = info
            .addresses(Some(&self.spec.network))
            .or_else(|| info.addresses(None));
        let ip = addrs.and_then(|a| {
            if self.spec.ipv6 {
                a.ipv6.map(IpAddr::V6)
            } else {
                a.ipv4.map(IpAddr::V4)
            }
        });
        Ok(LoadBalancerStatus {
            container_id: info.id.clone(),
            name: info.name.clone(),
            state: info.state.clone(),
            ip,
            host_port: info.host_port(self.spec.frontend_port),
            stats_host_port: info.host_port(STATS_PORT),
        })
    }

    /// The address the control-plane endpoint should use: the container's IP on
    /// the network. An error while it has none (stopped, or still starting).
    pub async fn ip(&self) -> Result<IpAddr> {
        let status = self.require_status().await?;
        status.ip.ok_or_else(|| Error::NoAddress {
            name: status.name,
            network: self.spec.network.clone(),
            family: if self.spec.ipv6 { "IPv6" } else { "IPv4" },
        })
    }

    /// The backends CAPD would configure: every control-plane container of the
    /// cluster that has an address of our family, weighted by `weights` (default 100).
    pub async fn control_plane_backends(
        &self,
        weights: &BTreeMap<String, i64>,
    ) -> Result<BTreeMap<String, BackendServer>> {
        let filter = LabelFilter::new()
            .with(CLUSTER_LABEL, &self.spec.cluster)
            .with(ROLE_LABEL, ROLE_CONTROL_PLANE);
        let mut backends = BTreeMap::new();
        for node in self.runtime.list_containers(&filter).await? {
            let Some(info) = self.runtime.inspect_container(&node.name).await? else {
                continue;
            };
            let addrs = info
                .addresses(Some(&self.spec.network))
                .or_else(|| info.addresses(None));
            let address = addrs.and_then(|a| {
                if self.spec.ipv6 {
                    a.ipv6.map(|ip| ip.to_string())
                } else {
                    a.ipv4.map(|ip| ip.to_string())
                }
            });
            let Some(address) = address else {
                tracing::debug!(node = %node.name, state = ?info.state, "control-plane node has no address yet; left out");
                continue;
            };
            let weight = weights.get(&node.name).copied().unwrap_or(DEFAULT_WEIGHT);
            backends.insert(node.name, BackendServer { address, weight });
        }
        Ok(backends)
    }

    /// Points the load balancer at `backends`: renders the configuration (from the
    /// spec's template), writes it, reads it back to be sure it landed, then sends
    /// SIGHUP. Returns `false` when that configuration was already live; then the
    /// template is not read when its inputs were recorded as unchanged.
    pub async fn update_backends(
        &self,
        backends: &BTreeMap<String, BackendServer>,
    ) -> Result<bool> {
        let name = self.container_name();
        async {
            let info = self
                .runtime
                .inspect_container(&name)
                .await?
                .ok_or_else(|| Error::Missing { name: name.clone() })?;
            if let Verdict::Foreign(reason) = judge(&self.spec, &info) {
                return Err(Error::Foreign { name, reason });
            }

            let data = self.config_data(backends);
            let inputs = self.inputs(&data);
            if self.holds(&name, INPUTS_PATH, &inputs).await? {
                tracing::debug!(container = %name, "backends and template unchanged; no reload");
                return Ok(false);
            }
            let rendered = self.render(&data).await?;
            if self.holds(&name, APPLIED_PATH, &rendered).await? {
                // Applied without a record of its inputs (an older release, or cut short).
                self.runtime.write_file(&name, INPUTS_PATH, inputs.as_bytes(), 0o644).await?;
                tracing::debug!(container = %name, "configuration unchanged; no reload");
                return Ok(false);
            }
            // From here on the live configuration changes: the old record must not match.
            self.runtime.write_file(&name, INPUTS_PATH, b"", 0o644).await?;
            if self.spec.config_template.is_some() {
                self.check_config(&name, &rendered).await?;
            }
            self.runtime
                .write_file(&name, CONFIG_PATH, rendered.as_bytes(), 0o644)
                .await?;
            // Reloading on a file that is not fully there makes HAProxy fail
            // (CAPD issue 10356): only signal once it reads back identically.
            let read = self.runtime.read_file(&name, CONFIG_PATH).await?;
            if read != rendered.as_bytes() {
                return Err(Error::ConfigNotApplied {
                    name,
                    written: rendered.len(),
                    read: read.len(),
                });
            }
            self.wait_reload_ready(&name).await?;
            self.reload(&name).await?;
            // The record of what is live, and last (in the same archive) its inputs.
            self.runtime
                .write_files(
                    &name,
                    &[
                        (APPLIED_PATH, rendered.as_bytes(), 0o644),
                        (INPUTS_PATH, inputs.as_bytes(), 0o644),
                    ],
                )
                .await?;
            tracing::info!(container = %name, backends = backends.len(), "load balancer reconfigured");
            Ok(true)
        }
        .instrument(tracing::info_span!("update_load_balancer", cluster = %self.spec.cluster))
        .await
    }

    /// Whether the file at `path` in the container holds exactly `expected`.
    async fn holds(&self, name: &str, path: &str, expected: &str) -> Result<bool> {
        match self.runtime.read_file(name, path).await {
            Ok(found) => Ok(found == expected.as_bytes()),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// SIGHUP to HAProxy's master, sent from inside the container: Docker 20.10 marks a
    /// container signalled through its kill API as manually stopped, and then does not
    /// restart it after an engine restart despite `unless-stopped`.
    async fn reload(&self, name: &str) -> Result<()> {
        // The shell's builtin: the image need not carry procps' kill.
        let out = self
            .runtime
            .exec(name, ExecRequest::new(["/bin/sh", "-c", "kill -s HUP 1"]))
            .await?;
        if out.success() {
            return Ok(());
        }
        let text = format!("{}{}", out.stdout_lossy(), out.stderr_lossy());
        Err(Error::ReloadFailed {
            name: name.to_string(),
            output: capd_runtime::output_tail(&text, 10, 2048),
        })
    }

    /// Lets HAProxy judge a configuration before it replaces the live one.
    async fn check_config(&self, name: &str, rendered: &str) -> Result<()> {
        self.runtime
            .write_file(name, CANDIDATE_PATH, rendered.as_bytes(), 0o644)
            .await?;
        let out = self
            .runtime
            .exec(
                name,
                ExecRequest::new(["haproxy", "-c", "-f", CANDIDATE_PATH]),
            )
            .await?;
        if out.success() {
            return Ok(());
        }
        let text = format!("{}{}", out.stdout_lossy(), out.stderr_lossy());
        Err(Error::InvalidConfig {
            name: name.to_string(),
            output: capd_runtime::output_tail(&text, 10, 2048),
        })
    }

    /// Waits until PID 1 handles SIGHUP. Right after start (and during a reload's
    /// re-exec) HAProxy's master has not installed its handler yet, and SIGHUP's
    /// default action would kill it (CAPD issue 8641). Images whose PID 1 is not
    /// HAProxy are signalled anyway once the wait is over.
    async fn wait_reload_ready(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let out = self
                .runtime
                .exec(
                    name,
                    ExecRequest::new(["cp", "/proc/1/status", "/dev/stdout"]),
                )
                .await?;
            if out.success() && catches_sighup(&out.stdout_lossy()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(container = %name, "PID 1 does not catch SIGHUP; signalling anyway");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes the load-balancer container. Succeeds when it is already gone;
    /// refuses to remove another cluster's.
    pub async fn delete(&self) -> Result<()> {
        let name = self.container_name();
        if let Some(info) = self.runtime.inspect_container(&name).await? {
            if let Verdict::Foreign(reason) = judge(&self.spec, &info) {
                return Err(Error::Foreign { name, reason });
            }
            tracing::info!(container = %name, "deleting load balancer container");
            self.runtime.remove_container(&name).await?;
        }
        Ok(())
    }
}

/// Whether a /proc/PID/status text shows SIGHUP caught.
fn catches_sighup(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & SIGHUP_MASK != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_runtime::NetworkAddresses;

    fn info(labels: &[(&str, &str)], state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            id: "abc".into(),
            name: "c1-lb".into(),
            image: DEFAULT_IMAGE.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state,
            exit_code: None,
            restart_count: 0,
            finished_at: None,
            networks: BTreeMap::from([(
                "kind".to_string(),
                NetworkAddresses {
                    ipv4: Some("172.18.0.2".parse().unwrap()),
                    ipv6: Some("fc00::2".parse().unwrap()),
                },
            )]),
            ports: Vec::new(),
        }
    }

    const OURS: [(&str, &str); 2] = [(CLUSTER_LABEL, "c1"), (ROLE_LABEL, ROLE_LOAD_BALANCER)];

    #[test]
    fn running_container_of_the_cluster_is_adopted() {
        let spec = LoadBalancerSpec::new("c1");
        assert_eq!(
            judge(&spec, &info(&OURS, ContainerState::Running)),
            Verdict::Adopt
        );
    }

    #[test]
    fn stopped_container_without_known_owner_is_replaced() {
        let spec = LoadBalancerSpec::new("c1");
        assert!(matches!(
            judge(&spec, &info(&OURS, ContainerState::Exited)),
            Verdict::Replace(_)
        ));
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        assert!(matches!(
            judge(&spec, &info(&OURS, ContainerState::Exited)),
            Verdict::Replace(_)
        ));
    }

    #[test]
    fn stopped_container_of_the_same_cluster_object_is_restarted() {
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let labels = [OURS[0], OURS[1], (CLUSTER_UID_LABEL, "u1")];
        assert_eq!(
            judge(&spec, &info(&labels, ContainerState::Exited)),
            Verdict::Restart
        );
    }

    #[test]
    fn container_stuck_in_created_is_replaced() {
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let labels = [OURS[0], OURS[1], (CLUSTER_UID_LABEL, "u1")];
        assert!(matches!(
            judge(&spec, &info(&labels, ContainerState::Created)),
            Verdict::Replace(_)
        ));
    }

    #[test]
    fn another_cluster_objects_running_container_is_foreign() {
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let labels = [OURS[0], OURS[1], (CLUSTER_UID_LABEL, "u0")];
        assert!(matches!(
            judge(&spec, &info(&labels, ContainerState::Running)),
            Verdict::Foreign(_)
        ));
        assert!(matches!(
            judge(&spec, &info(&labels, ContainerState::Exited)),
            Verdict::Replace(_)
        ));
    }

    #[test]
    fn unlabelled_container_of_our_name_is_replaced() {
        let spec = LoadBalancerSpec::new("c1");
        assert!(matches!(
            judge(&spec, &info(&[], ContainerState::Running)),
            Verdict::Replace(_)
        ));
        let wrong_role = [(CLUSTER_LABEL, "c1"), (ROLE_LABEL, ROLE_CONTROL_PLANE)];
        assert!(matches!(
            judge(&spec, &info(&wrong_role, ContainerState::Running)),
            Verdict::Replace(_)
        ));
    }

    #[test]
    fn container_spec_matches_capd_shape() {
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let c = spec.container_spec();
        assert_eq!(c.name, "c1-lb");
        assert_eq!(c.labels[CLUSTER_LABEL], "c1");
        assert_eq!(c.labels[ROLE_LABEL], ROLE_LOAD_BALANCER);
        assert_eq!(c.labels[CLUSTER_UID_LABEL], "u1");
        assert_eq!(c.ports[0], PortPublish::loopback_random(6443));
        assert_eq!(c.ports[1], PortPublish::loopback_random(8404));
        assert_eq!(c.network.as_deref(), Some("kind"));
        assert!(!c.privileged);
    }

    #[tokio::test]
    async fn the_network_is_ensured_only_before_a_create_or_start() {
        let rt = Arc::new(capd_runtime::memory::MemoryRuntime::new());
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let lb = LoadBalancer::new(rt.clone(), spec);
        let network_calls = || {
            rt.calls()
                .into_iter()
                .filter(|c| c.starts_with("network "))
                .collect::<Vec<_>>()
        };

        lb.ensure().await.unwrap();
        let calls = rt.calls();
        let network = calls.iter().position(|c| c == "network kind");
        let create = calls.iter().position(|c| c == "create c1-lb");
        assert!(
            network.is_some() && network < create,
            "the network first: {calls:?}"
        );

        let status = lb.ensure().await.unwrap();
        assert!(status.state.is_running());
        assert_eq!(
            network_calls().len(),
            1,
            "a running load balancer needs no network call: {:?}",
            rt.calls()
        );

        rt.stop_container("c1-lb", Duration::ZERO).await.unwrap();
        assert!(lb.ensure().await.unwrap().state.is_running());
        assert_eq!(
            network_calls().len(),
            2,
            "a stopped one is started on its network: {:?}",
            rt.calls()
        );
    }

    /// A template that counts its reads, or fails when `text` is `None`.
    #[derive(Debug)]
    struct Counted {
        text: Option<String>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Counted {
        fn new(text: Option<&str>) -> Arc<Self> {
            Arc::new(Self {
                text: text.map(str::to_string),
                reads: Default::default(),
            })
        }

        fn reads(&self) -> usize {
            self.reads.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl TemplateSource for Counted {
        fn origin(&self) -> String {
            "counted".into()
        }

        fn load(&self) -> crate::TemplateFuture<'_> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let text = self.text.clone().ok_or_else(|| "no such template".into());
            Box::pin(std::future::ready(text))
        }
    }

    fn memory_runtime() -> Arc<capd_runtime::memory::MemoryRuntime> {
        let rt = Arc::new(capd_runtime::memory::MemoryRuntime::new());
        // HAProxy's master catches SIGHUP: a reload need not wait.
        let status = b"Name:\thaproxy\nSigCgt:\t0000000000004001\n".to_vec();
        rt.answer(
            "cp /proc/1/status /dev/stdout",
            capd_runtime::ExecOutput {
                stdout: status,
                stderr: vec![],
                exit_code: 0,
            },
        );
        rt
    }

    #[tokio::test]
    async fn a_stopped_load_balancer_refused_by_a_returning_engine_is_started_not_replaced() {
        let rt = memory_runtime();
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            ..LoadBalancerSpec::new("c1")
        };
        let lb = LoadBalancer::new(rt.clone(), spec);
        let first = lb.ensure().await.unwrap();
        rt.stop_container("c1-lb", Duration::from_secs(1))
            .await
            .unwrap();
        // The engine has just come back: its first two answers to a start are 500s.
        rt.refuse_starts("c1-lb", 2);
        let again = lb.ensure().await.unwrap();
        assert_eq!(again.container_id, first.container_id, "the same container");
        let starts = rt.calls().iter().filter(|c| *c == "start c1-lb").count();
        assert_eq!(starts, 3, "started on the third try: {:?}", rt.calls());
        assert!(
            rt.calls().iter().all(|c| !c.starts_with("remove")),
            "nothing removed: {:?}",
            rt.calls()
        );
    }

    #[tokio::test]
    async fn a_custom_template_is_read_only_when_a_configuration_is_rendered() {
        let rt = memory_runtime();
        let template = Counted::new(Some(&format!("# custom\n{DEFAULT_TEMPLATE}")));
        let spec = LoadBalancerSpec {
            cluster_uid: Some("u1".into()),
            config_template: Some(template.clone()),
            ..LoadBalancerSpec::new("c1")
        };
        let lb = LoadBalancer::new(rt.clone(), spec);
        let server = |address: &str| BackendServer {
            address: address.into(),
            weight: DEFAULT_WEIGHT,
        };
        let one = BTreeMap::from([("c1-cp0".to_string(), server("172.18.0.5"))]);
        let two = BTreeMap::from([
            ("c1-cp0".to_string(), server("172.18.0.5")),
            ("c1-cp1".to_string(), server("172.18.0.6")),
        ]);

        lb.ensure().await.unwrap();
        assert_eq!(template.reads(), 1, "a new container is configured from it");
        let live = rt.read_file("c1-lb", CONFIG_PATH).await.unwrap();
        assert!(live.starts_with(b"# custom\n"));
        lb.ensure().await.unwrap();
        assert_eq!(
            template.reads(),
            1,
            "looking at a running load balancer does not read it"
        );

        assert!(lb.update_backends(&one).await.unwrap());
        assert_eq!(template.reads(), 2, "new backends are rendered");
        assert!(!lb.update_backends(&one).await.unwrap());
        assert_eq!(template.reads(), 2, "unchanged backends are not");
        assert!(lb.update_backends(&two).await.unwrap());
        assert_eq!(template.reads(), 3);

        // Configured by a release that kept no record of the inputs: rendered and
        // compared once, not reloaded, then recorded.
        rt.write_file("c1-lb", INPUTS_PATH, b"", 0o644)
            .await
            .unwrap();
        let reloads = || {
            rt.calls()
                .iter()
                .filter(|c| c.ends_with("kill -s HUP 1"))
                .count()
        };
        let before = reloads();
        assert!(!lb.update_backends(&two).await.unwrap());
        assert!(!lb.update_backends(&two).await.unwrap());
        assert_eq!((template.reads(), reloads()), (4, before));
    }

    #[tokio::test]
    async fn a_template_that_cannot_be_read_is_reported_and_leaves_no_container() {
        let rt = memory_runtime();
        let spec = LoadBalancerSpec {
            config_template: Some(Counted::new(None)),
            ..LoadBalancerSpec::new("c1")
        };
        let lb = LoadBalancer::new(rt.clone(), spec);
        match lb.ensure().await {
            Err(Error::TemplateSource { origin, source }) => {
                assert_eq!(origin, "counted");
                assert_eq!(source.to_string(), "no such template");
            }
            other => panic!("expected TemplateSource, got {other:?}"),
        }
        assert!(rt.container_names().is_empty(), "{:?}", rt.calls());
    }

    #[test]
    fn sighup_mask_is_read_from_proc_status() {
        assert!(catches_sighup(
            "Name:\thaproxy\nSigCgt:\t0000000180014a03\n"
        ));
        assert!(!catches_sighup("Name:\tsh\nSigCgt:\t0000000000010002\n"));
        assert!(!catches_sighup("garbage"));
    }
}
