//! What callers ask the engine to create: containers and networks.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// A container to create and start. Build it with [`ContainerSpec::new`] and the
/// chained setters; every field is public so tests can inspect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Defaults to the container name when `None` (CAPD makes them match).
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// Host paths bind-mounted into the container.
    pub mounts: Vec<Mount>,
    /// Anonymous volumes (e.g. `/var` on nodes), removed with the container.
    pub volumes: Vec<String>,
    /// Container path to tmpfs mount options (`""` for defaults).
    pub tmpfs: BTreeMap<String, String>,
    pub ports: Vec<PortPublish>,
    pub privileged: bool,
    /// e.g. `seccomp=unconfined`, `apparmor=unconfined`.
    pub security_opts: Vec<String>,
    pub restart: RestartPolicy,
    /// Network to attach to; the engine's default network when `None`.
    pub network: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// e.g. `SIGRTMIN+3` for systemd nodes.
    pub stop_signal: Option<String>,
    /// Allocate a TTY (kind nodes log their boot through it).
    pub tty: bool,
    pub sysctls: BTreeMap<String, String>,
    /// Run in a private cgroup namespace (`--cgroupns=private`) instead of the
    /// engine's default (the host's namespace on cgroup v1). kind >= 0.20 node images
    /// expect it; on cgroup v1 kubelet inside a node only finds its cgroups with it.
    pub cgroupns_private: bool,
}

impl ContainerSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            hostname: None,
            labels: BTreeMap::new(),
            env: BTreeMap::new(),
            mounts: Vec::new(),
            volumes: Vec::new(),
            tmpfs: BTreeMap::new(),
            ports: Vec::new(),
            privileged: false,
            security_opts: Vec::new(),
            restart: RestartPolicy::No,
            network: None,
            entrypoint: None,
            cmd: None,
            stop_signal: None,
            tty: false,
            sysctls: BTreeMap::new(),
            cgroupns_private: false,
        }
    }

    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.labels
            .extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    pub fn volume(mut self, container_path: impl Into<String>) -> Self {
        self.volumes.push(container_path.into());
        self
    }

    pub fn tmpfs(mut self, container_path: impl Into<String>, options: impl Into<String>) -> Self {
        self.tmpfs.insert(container_path.into(), options.into());
        self
    }

    pub fn publish(mut self, port: PortPublish) -> Self {
        self.ports.push(port);
        self
    }

    /// Privileged with seccomp and AppArmor unconfined: what nested containers need.
    pub fn privileged_unconfined(mut self) -> Self {
        self.privileged = true;
        for opt in ["seccomp=unconfined", "apparmor=unconfined"] {
            if !self.security_opts.iter().any(|o| o == opt) {
                self.security_opts.push(opt.to_string());
            }
        }
        self
    }

    pub fn restart(mut self, restart: RestartPolicy) -> Self {
        self.restart = restart;
        self
    }

    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    pub fn entrypoint<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    pub fn cmd<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    pub fn stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.stop_signal = Some(signal.into());
        self
    }

    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    pub fn sysctl(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.insert(key.into(), value.into());
        self
    }

    /// A private cgroup namespace (`true`) or the engine's default (`false`).
    pub fn cgroupns_private(mut self, private: bool) -> Self {
        self.cgroupns_private = private;
        self
    }
}

/// A host path bind-mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl Mount {
    pub fn new(source: impl Into<String>, target: impl Into<String>, read_only: bool) -> Self {
        Self {
            source: source.into(),
            target: target.into(),
            read_only,
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPublish {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: IpAddr,
    /// `None` lets the engine pick a free port.
    pub host_port: Option<u16>,
}

impl PortPublish {
    /// TCP `container_port` on 127.0.0.1 at a port the engine picks: reachable from
    /// the host only, and never clashing with another cluster.
    pub fn loopback_random(container_port: u16) -> Self {
        Self {
            container_port,
            protocol: Protocol::Tcp,
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            host_port: None,
        }
    }
}

/// When the engine restarts a container on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    OnFailure { max_retries: u32 },
    UnlessStopped,
    Always,
}

/// A network to make sure of (created when missing, left alone when present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// `bridge` when `None`.
    pub driver: Option<String>,
    pub ipv6: bool,
    /// Subnets in CIDR notation; the engine picks when empty.
    pub subnets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl NetworkSpec {
    pub fn bridge(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            driver: None,
            ipv6: false,
            subnets: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}
