//! The node container of a DockerMachine: its name, image, CAPD's run options, and
//! when it is ready for anything to run in it.

use crate::ip_family::IpFamily;
use capd_api::consts::label;
use capd_api::DockerMachine;
use capd_runtime::{ContainerSpec, ExecOutput, Mount, PortPublish, RestartPolicy};

/// Where a Kubernetes API server listens inside a control-plane node.
pub const API_SERVER_PORT: u16 = 6443;
/// Container label carrying `Machine.spec.failureDomain` (CAPD's key).
pub const FAILURE_DOMAIN_LABEL: &str = "io.x-k8s.cluster.failureDomain";
/// kind's node image repository, CAPD's default.
pub const DEFAULT_NODE_IMAGE: &str = "kindest/node";

/// `<cluster>-<machine>`, unless the machine's name already starts with `<cluster>-`
/// (as CAPD names it, so MachineDeployment names don't repeat the cluster twice).
pub fn container_name(cluster: &str, machine: &str) -> String {
    if machine.starts_with(&format!("{cluster}-")) {
        machine.to_string()
    } else {
        format!("{cluster}-{machine}")
    }
}

/// `customImage`, else `kindest/node:<version>` (with the `v` kind tags carry).
pub fn image(custom_image: &str, version: Option<&str>) -> Option<String> {
    if !custom_image.is_empty() {
        return Some(custom_image.to_string());
    }
    let v = version?.trim();
    if v.is_empty() {
        return None;
    }
    let v = if v.starts_with('v') {
        v.to_string()
    } else {
        format!("v{v}")
    };
    Some(format!("{DEFAULT_NODE_IMAGE}:{v}"))
}

pub struct NodeParams<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    pub image: &'a str,
    pub network: &'a str,
    pub control_plane: bool,
    pub failure_domain: Option<&'a str>,
    /// The cluster's IP family.
    pub family: IpFamily,
}

/// CAPD's (kind's) run options: privileged and unconfined, tmpfs on /tmp and /run,
/// an anonymous volume on /var, /lib/modules read-only, a private cgroup namespace,
/// hostname = name, the API server port published on 127.0.0.1 for control-plane nodes,
/// IPv6 enabled and forwarding for an IPv6 or dual-stack cluster.
pub fn spec(dm: &DockerMachine, p: &NodeParams<'_>) -> ContainerSpec {
    let role = if p.control_plane {
        label::ROLE_CONTROL_PLANE
    } else {
        label::ROLE_WORKER
    };
    let mut spec = ContainerSpec::new(p.name, p.image)
        .hostname(p.name)
        .label(label::KIND_CLUSTER, p.cluster)
        .label(label::KIND_ROLE, role)
        .label(crate::PROVIDER_LABEL, "capd-rs")
        .privileged_unconfined()
        .tmpfs("/tmp", "")
        .tmpfs("/run", "")
        .volume("/var")
        .mount(Mount::new("/lib/modules", "/lib/modules", true))
        .network(p.network)
        // Survive an engine restart or a reboot (CAPD issues 5020, 5026).
        .restart(RestartPolicy::UnlessStopped)
        .stop_signal("SIGRTMIN+3")
        .tty(true)
        // CAPD sets it for kind >= 0.20 images; on a cgroup v1 host kubelet inside the
        // node fails without it (missing `kubelet.slice/kubelet-kubepods.slice` paths).
        .cgroupns_private(true)
        .env("container", "docker");
    if p.family.node_ipv6() {
        // Docker disables IPv6 inside containers by default; kubelet, kube-proxy and the
        // CNI need it on, and forwarding for pod traffic.
        spec = spec
            .sysctl("net.ipv6.conf.all.disable_ipv6", "0")
            .sysctl("net.ipv6.conf.all.forwarding", "1");
    }
    if let Some(fd) = p.failure_domain.filter(|f| !f.is_empty()) {
        spec = spec.label(FAILURE_DOMAIN_LABEL, fd);
    }
    if p.control_plane {
        // kind's and CAPD's: `kubectl` in a control-plane node talks to its cluster.
        spec = spec
            .publish(PortPublish::loopback_random(API_SERVER_PORT))
            .env("KUBECONFIG", "/etc/kubernetes/admin.conf");
    }
    for m in &dm.spec.extra_mounts {
        spec = spec.mount(Mount::new(&m.host_path, &m.container_path, m.read_only));
    }
    spec
}

/// Whether the manager runs with any proxy variable set (then [`proxy_env`] is wanted,
/// and the network's subnets for it).
pub fn proxy_configured(lookup: impl Fn(&str) -> Option<String>) -> bool {
    ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"].iter().any(|n| {
        lookup(n)
            .or_else(|| lookup(&n.to_lowercase()))
            .is_some_and(|v| !v.is_empty())
    })
}

/// The proxy variables CAPD passes into a node: `HTTP_PROXY`, `HTTPS_PROXY` and
/// `NO_PROXY` (upper or lower case) from the manager's environment, each under both
/// names; when any is set, `NO_PROXY` also gets the network's subnets, the node's name and
/// the cluster-local DNS suffixes, so traffic inside the cluster never goes to the proxy.
/// Empty when no proxy is set.
pub fn proxy_env(
    lookup: impl Fn(&str) -> Option<String>,
    subnets: &[String],
    node: &str,
) -> Vec<(String, String)> {
    let get = |name: &str| {
        lookup(name)
            .or_else(|| lookup(&name.to_lowercase()))
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY"] {
        if let Some(v) = get(name) {
            out.push((name.to_string(), v.clone()));
            out.push((name.to_lowercase(), v));
        }
    }
    let no_proxy = get("NO_PROXY");
    if out.is_empty() && no_proxy.is_none() {
        return out;
    }
    let mut list: Vec<String> = subnets.to_vec();
    list.extend(no_proxy);
    list.push(node.to_string());
    list.extend([".svc", ".svc.cluster", ".svc.cluster.local"].map(String::from));
    let joined = list.join(",");
    out.push(("NO_PROXY".into(), joined.clone()));
    out.push(("no_proxy".into(), joined));
    out
}

/// Exits 0 once systemd (PID 1 of the node) has reached `multi-user.target`, the
/// moment kind and CAPD wait for ("Reached target Multi-User System" in the log).
/// Not `--quiet`: the state it prints (`inactive`, ...) goes into the condition message.
pub const SYSTEMD_READY_COMMAND: [&str; 3] = ["systemctl", "is-active", "multi-user.target"];
/// Returns once systemd has finished booting (whatever the outcome: `degraded` exits
/// non-zero too): waited on, bounded, while multi-user.target is not active yet, so the
/// next look comes the moment the node is up rather than at the next poll.
pub const SYSTEMD_BOOT_WAIT_COMMAND: [&str; 3] = ["systemctl", "is-system-running", "--wait"];
/// CAPD's second check: the CRI (containerd) answers, so kubeadm's preflight finds it.
pub const CRI_READY_COMMAND: [&str; 2] = ["crictl", "ps"];

/// How one readiness probe (an exec of one of the commands above) went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The command ran and exited; `output` is the tail of its stderr and stdout.
    Exited { code: i64, output: String },
    /// It had not ended within the probe's time bound.
    TimedOut,
    /// The engine would not run it now (the container is restarting, paused, ...).
    NotRun(String),
}

impl Probe {
    /// Sorts an exec result: what a booting node can answer is a [`Probe`]; anything
    /// else (engine unreachable, container gone) stays an error for the reconcile.
    pub fn from_exec(
        result: Result<ExecOutput, capd_runtime::Error>,
    ) -> Result<Probe, capd_runtime::Error> {
        match result {
            Ok(out) => {
                let text = capd_runtime::join_streams(out.stderr_lossy(), &out.stdout_lossy());
                Ok(Probe::Exited {
                    code: out.exit_code,
                    output: capd_runtime::output_tail(text.trim(), 3, 300),
                })
            }
            Err(capd_runtime::Error::Timeout { .. }) => Ok(Probe::TimedOut),
            Err(e @ capd_runtime::Error::Conflict { .. }) => Ok(Probe::NotRun(e.to_string())),
            Err(e) => Err(e),
        }
    }

    pub fn succeeded(&self) -> bool {
        matches!(self, Probe::Exited { code: 0, .. })
    }

    /// Ran and said no: for `systemctl is-active multi-user.target`, systemd is still booting.
    pub fn said_no(&self) -> bool {
        matches!(self, Probe::Exited { code, .. } if *code != 0)
    }

    /// Why it did not succeed, for a condition message; `None` when it did.
    fn failure(&self) -> Option<String> {
        match self {
            Probe::Exited { code: 0, .. } => None,
            Probe::Exited { code, output } => {
                let output = output.split_whitespace().collect::<Vec<_>>().join(" ");
                // 126/127: the engine could not start it, usually not in the image.
                let hint = if matches!(code, 126 | 127) {
                    " (is it installed in the node image?)"
                } else {
                    ""
                };
                Some(if output.is_empty() {
                    format!("exit code {code}{hint}")
                } else {
                    format!("exit code {code}{hint}: {output}")
                })
            }
            Probe::TimedOut => Some("no answer in time".to_string()),
            Probe::NotRun(why) => Some(why.clone()),
        }
    }
}

/// Whether the node may get images loaded and its bootstrap run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet (a normal state while the node boots): the message says what is awaited.
    Waiting(String),
}

/// The verdict from the systemd probe and, once that succeeded, the CRI probe
/// (`None` when it was not run).
pub fn readiness(systemd: &Probe, cri: Option<&Probe>) -> Readiness {
    if let Some(why) = systemd.failure() {
        return Readiness::Waiting(format!(
            "waiting for systemd to reach multi-user.target (`{}`: {why})",
            SYSTEMD_READY_COMMAND.join(" ")
        ));
    }
    let Some(cri) = cri else {
        return Readiness::Waiting(format!(
            "waiting for `{}` to succeed",
            CRI_READY_COMMAND.join(" ")
        ));
    };
    match cri.failure() {
        Some(why) => Readiness::Waiting(format!(
            "waiting for the container runtime to answer (`{}`: {why})",
            CRI_READY_COMMAND.join(" ")
        )),
        None => Readiness::Ready,
    }
}

#[cfg(test)]
mod proxy_tests {
    use super::*;

    #[test]
    fn no_proxy_set_means_no_variables() {
        assert!(proxy_env(|_| None, &["172.18.0.0/16".into()], "n").is_empty());
        assert!(!proxy_configured(|_| None));
        assert!(proxy_configured(
            |k| (k == "no_proxy").then(|| "x".to_string())
        ));
    }

    #[test]
    fn proxies_under_both_names_and_no_proxy_covers_the_cluster() {
        let env = |k: &str| match k {
            "https_proxy" => Some("http://proxy:3128".to_string()),
            "NO_PROXY" => Some("example.org".to_string()),
            _ => None,
        };
        let got = proxy_env(env, &["172.18.0.0/16".into()], "c-md-0-x");
        let get = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HTTPS_PROXY"), Some("http://proxy:3128"));
        assert_eq!(get("https_proxy"), Some("http://proxy:3128"));
        assert_eq!(get("HTTP_PROXY"), None);
        assert_eq!(
            get("NO_PROXY"),
            Some("172.18.0.0/16,example.org,c-md-0-x,.svc,.svc.cluster,.svc.cluster.local")
        );
        assert_eq!(get("no_proxy"), get("NO_PROXY"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerMachineSpec;

    fn exited(code: i64, output: &str) -> Probe {
        Probe::Exited {
            code,
            output: output.into(),
        }
    }

    #[test]
    fn ready_only_when_systemd_and_crictl_succeed() {
        assert_eq!(
            readiness(&exited(0, "active"), Some(&exited(0, "CONTAINER IMAGE"))),
            Readiness::Ready
        );

        let Readiness::Waiting(m) = readiness(&exited(3, "inactive"), None) else {
            panic!("systemd not ready")
        };
        assert!(
            m.contains("multi-user.target") && m.contains("exit code 3: inactive"),
            "{m}"
        );

        let Readiness::Waiting(m) = readiness(&exited(0, "active"), None) else {
            panic!("crictl not run")
        };
        assert!(m.contains("crictl ps"), "{m}");

        let refused = "validate service connection: dial unix /run/containerd/containerd.sock: connect: no such file or directory";
        let Readiness::Waiting(m) = readiness(&exited(0, "active"), Some(&exited(1, refused)))
        else {
            panic!("crictl failed")
        };
        assert!(
            m.contains("crictl ps") && m.contains("containerd.sock"),
            "{m}"
        );

        let Readiness::Waiting(m) = readiness(&exited(0, "active"), Some(&Probe::TimedOut)) else {
            panic!("crictl hung")
        };
        assert!(m.contains("no answer in time"), "{m}");
    }

    #[test]
    fn systemd_not_yet_pid_1_or_missing_tools_are_waits_with_a_hint() {
        let early = exited(1, "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down");
        let Readiness::Waiting(m) = readiness(&early, None) else {
            panic!()
        };
        assert!(
            m.contains("Failed to connect to bus") && !m.contains('\n'),
            "{m}"
        );

        let missing = exited(
            127,
            "OCI runtime exec failed: exec: \"crictl\": executable file not found in $PATH",
        );
        let Readiness::Waiting(m) = readiness(&exited(0, "active"), Some(&missing)) else {
            panic!()
        };
        assert!(
            m.contains("installed in the node image") && m.contains("executable file not found"),
            "{m}"
        );

        let Readiness::Waiting(m) = readiness(
            &Probe::NotRun("exec: conflict: container is restarting".into()),
            None,
        ) else {
            panic!()
        };
        assert!(m.contains("restarting"), "{m}");
    }

    #[test]
    fn exec_results_become_probes_or_stay_errors() {
        let out = ExecOutput {
            stdout: b"inactive\n".to_vec(),
            stderr: Vec::new(),
            exit_code: 3,
        };
        assert_eq!(Probe::from_exec(Ok(out)).unwrap(), exited(3, "inactive"));
        let both = ExecOutput {
            stdout: b"out".to_vec(),
            stderr: b"err".to_vec(),
            exit_code: 1,
        };
        assert_eq!(Probe::from_exec(Ok(both)).unwrap(), exited(1, "err\nout"));
        let timeout = capd_runtime::Error::Timeout {
            operation: "exec",
            after: std::time::Duration::from_secs(10),
        };
        assert_eq!(Probe::from_exec(Err(timeout)).unwrap(), Probe::TimedOut);
        let conflict = capd_runtime::Error::Conflict {
            operation: "exec",
            message: "container x is not running".into(),
        };
        assert!(
            matches!(Probe::from_exec(Err(conflict)).unwrap(), Probe::NotRun(m) if m.contains("not running"))
        );
        let gone = capd_runtime::Error::NotFound {
            kind: capd_runtime::ObjectKind::Container,
            name: "x".into(),
        };
        assert!(Probe::from_exec(Err(gone)).is_err());
        assert!(
            exited(0, "").succeeded() && !exited(3, "").succeeded() && !Probe::TimedOut.succeeded()
        );
    }

    #[test]
    fn names_like_capd() {
        assert_eq!(container_name("c1", "m1"), "c1-m1");
        assert_eq!(container_name("c1", "c1-md-0-abc"), "c1-md-0-abc");
    }

    #[test]
    fn image_from_custom_or_version() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        assert_eq!(
            image(&dm.spec.custom_image, Some("v1.36.3")).as_deref(),
            Some("kindest/node:v1.36.3")
        );
        assert_eq!(
            image(&dm.spec.custom_image, Some("1.36.3")).as_deref(),
            Some("kindest/node:v1.36.3")
        );
        assert_eq!(image(&dm.spec.custom_image, None), None);
        dm.spec.custom_image = "my/node:x".into();
        assert_eq!(
            image(&dm.spec.custom_image, None).as_deref(),
            Some("my/node:x")
        );
    }

    #[test]
    fn control_plane_publishes_api_port_and_mounts_extra() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        dm.spec.extra_mounts.push(capd_api::Mount {
            container_path: "/data".into(),
            host_path: "/srv".into(),
            read_only: true,
        });
        let p = NodeParams {
            name: "c-m",
            cluster: "c",
            image: "img",
            network: "kind",
            control_plane: true,
            failure_domain: Some("fd1"),
            family: IpFamily::V4,
        };
        let s = spec(&dm, &p);
        assert!(s.sysctls.is_empty(), "IPv4: the engine's defaults");
        assert_eq!(
            s.labels.get("io.x-k8s.kind.role").map(String::as_str),
            Some("control-plane")
        );
        assert_eq!(
            s.labels.get(FAILURE_DOMAIN_LABEL).map(String::as_str),
            Some("fd1")
        );
        assert!(s.privileged);
        assert_eq!(s.ports.len(), 1);
        assert!(s.mounts.iter().any(|m| m.target == "/data" && m.read_only));
        assert!(s.tmpfs.contains_key("/run") && s.tmpfs.contains_key("/tmp"));
        assert!(s.cgroupns_private);
        let w = NodeParams {
            control_plane: false,
            ..p
        };
        assert!(spec(&dm, &w).ports.is_empty());
        assert_eq!(
            s.env.get("KUBECONFIG").map(String::as_str),
            Some("/etc/kubernetes/admin.conf")
        );
        assert!(
            !spec(&dm, &w).env.contains_key("KUBECONFIG"),
            "workers have no admin.conf"
        );
        assert!(
            spec(&dm, &w).cgroupns_private,
            "workers get a private cgroup namespace too"
        );
    }

    #[test]
    fn ipv6_and_dual_stack_nodes_get_ipv6_on_and_forwarding() {
        let dm = DockerMachine::new("m", DockerMachineSpec::default());
        for family in [IpFamily::V6, IpFamily::Dual] {
            let p = NodeParams {
                name: "c-m",
                cluster: "c",
                image: "img",
                network: "kind",
                control_plane: false,
                failure_domain: None,
                family,
            };
            let sysctls = spec(&dm, &p).sysctls;
            assert_eq!(
                sysctls
                    .get("net.ipv6.conf.all.disable_ipv6")
                    .map(String::as_str),
                Some("0"),
                "{family:?}"
            );
            assert_eq!(
                sysctls
                    .get("net.ipv6.conf.all.forwarding")
                    .map(String::as_str),
                Some("1"),
                "{family:?}"
            );
            assert_eq!(sysctls.len(), 2, "{family:?}");
        }
    }
}
