//! What the engine reports back: container state, addresses, ports, exec results.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::spec::Protocol;

/// Lifecycle state of a container, engine-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Stopping,
    Unknown(String),
}

impl ContainerState {
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            "stopping" => Self::Stopping,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Self::Running)
    }
}

/// A host port a container port is published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
}

/// A container's addresses on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAddresses {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// The result of inspecting a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
    /// When it last stopped; `None` if it never did.
    pub finished_at: Option<std::time::SystemTime>,
    /// Network name to addresses; empty while the container is not running.
    pub networks: BTreeMap<String, NetworkAddresses>,
    pub ports: Vec<PublishedPort>,
}

impl ContainerInfo {
    /// Host port published for a TCP container port, if any. Prefers an IPv4 binding.
    pub fn host_port(&self, container_port: u16) -> Option<u16> {
        let mut bindings: Vec<&PublishedPort> = self
            .ports
            .iter()
            .filter(|p| p.container_port == container_port && p.protocol == Protocol::Tcp)
            .collect();
        bindings.sort_by_key(|p| !matches!(p.host_ip, Some(IpAddr::V4(_)) | None));
        bindings.first().map(|p| p.host_port)
    }

    /// Addresses on the named network, or on the only network when `network` is `None`
    /// (CAPD takes the first one it sees; a node sits on exactly one network).
    pub fn addresses(&self, network: Option<&str>) -> Option<&NetworkAddresses> {
        match network {
            Some(name) => self.networks.get(name),
            None => self.networks.values().next(),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// One line of a container listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// Human status such as `Up 3 minutes`.
    pub status: String,
}

/// Containers to list: every label condition must hold. Stopped containers are
/// included, as CAPD does, so stale ones are seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    /// Key with `Some(value)` must equal it; with `None` it must merely be present.
    pub labels: Vec<(String, Option<String>)>,
    /// Also match on the exact container name.
    pub name: Option<String>,
}

impl LabelFilter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), Some(value.into())));
        self
    }

    pub fn has(mut self, key: impl Into<String>) -> Self {
        self.labels.push((key.into(), None));
        self
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// True when `labels` satisfy every condition (used to re-check what the engine
    /// returned, since some engines treat `name` filters as substrings).
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
            && self.labels.iter().all(|(k, v)| match (labels.get(k), v) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }
}

/// A byte stream, for image archives and large stdin.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// What to feed a command's standard input.
pub enum Stdin {
    Bytes(Bytes),
    Stream(ByteStream),
}

impl std::fmt::Debug for Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stdin::Bytes(b) => write!(f, "Stdin::Bytes({} bytes)", b.len()),
            Stdin::Stream(_) => f.write_str("Stdin::Stream"),
        }
    }
}

/// A command to run inside a running container.
#[derive(Debug)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub stdin: Option<Stdin>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
}

impl ExecRequest {
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            stdin: None,
            user: None,
            working_dir: None,
        }
    }

    pub fn stdin(mut self, bytes: impl Into<Bytes>) -> Self {
        self.stdin = Some(Stdin::Bytes(bytes.into()));
        self
    }

    pub fn stdin_stream(mut self, stream: ByteStream) -> Self {
        self.stdin = Some(Stdin::Stream(stream));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The command line as one string, for logs and error messages.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Who answered at the engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// e.g. `Docker Engine - Community`, `Podman Engine`.
    pub product: String,
    pub version: String,
    /// API version in use after negotiation, e.g. `1.41`.
    pub api_version: String,
}

/// What the engine's host offers: CAPD reports it as a machine template's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    pub cpus: i64,
    pub memory_bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ports: Vec<PublishedPort>) -> ContainerInfo {
        ContainerInfo {
            id: "id".into(),
            name: "n".into(),
            image: "i".into(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            exit_code: None,
            restart_count: 0,
            finished_at: None,
            networks: BTreeMap::new(),
            ports,
        }
    }

    #[test]
    fn host_port_prefers_ipv4_binding() {
        let i = info(vec![
            PublishedPort {
                container_port: 6443,
                protocol: Protocol::Tcp,
                host_ip: Some("::1".parse().unwrap()),
                host_port: 2,
            },
            PublishedPort {
                container_port: 6443,
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 1,
            },
            PublishedPort {
                container_port: 8404,
                protocol: Protocol::Tcp,
                host_ip: None,
                host_port: 3,
            },
        ]);
        assert_eq!(i.host_port(6443), Some(1));
        assert_eq!(i.host_port(8404), Some(3));
        assert_eq!(i.host_port(22), None);
    }

    #[test]
    fn label_filter_matches_all_conditions() {
        let labels: BTreeMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into();
        assert!(LabelFilter::new()
            .with("a", "1")
            .has("b")
            .matches("x", &labels));
        assert!(!LabelFilter::new().with("a", "2").matches("x", &labels));
        assert!(!LabelFilter::new().has("c").matches("x", &labels));
        assert!(!LabelFilter::new().named("y").matches("x", &labels));
        assert!(LabelFilter::new().named("x").matches("x", &labels));
    }

    #[test]
    fn state_parses_engine_words() {
        assert!(ContainerState::parse("running").is_running());
        assert_eq!(ContainerState::parse("exited"), ContainerState::Exited);
        assert_eq!(
            ContainerState::parse("weird"),
            ContainerState::Unknown("weird".into())
        );
    }
}
