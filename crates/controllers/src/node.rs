//! The node container of a DockerMachine: its name, image and CAPD's run options.

use capd_api::consts::label;
use capd_api::DockerMachine;
use capd_runtime::{ContainerSpec, Mount, PortPublish, RestartPolicy};

/// Where a Kubernetes API server listens inside a control-plane node.
pub const API_SERVER_PORT: u16 = 6443;
/// Container label carrying `Machine.spec.failureDomain`.
pub const FAILURE_DOMAIN_LABEL: &str = "io.x-k8s.capd-rs.failure-domain";
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
pub fn image(dm: &DockerMachine, version: Option<&str>) -> Option<String> {
    if !dm.spec.custom_image.is_empty() {
        return Some(dm.spec.custom_image.clone());
    }
    let v = version?.trim();
    if v.is_empty() {
        return None;
    }
    let v = if v.starts_with('v') { v.to_string() } else { format!("v{v}") };
    Some(format!("{DEFAULT_NODE_IMAGE}:{v}"))
}

pub struct NodeParams<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    pub image: &'a str,
    pub network: &'a str,
    pub control_plane: bool,
    pub failure_domain: Option<&'a str>,
}

/// CAPD's (kind's) run options: privileged and unconfined, tmpfs on /tmp and /run,
/// an anonymous volume on /var, /lib/modules read-only, hostname = name, the API
/// server port published on 127.0.0.1 for control-plane nodes.
pub fn spec(dm: &DockerMachine, p: &NodeParams<'_>) -> ContainerSpec {
    let role = if p.control_plane { label::ROLE_CONTROL_PLANE } else { label::ROLE_WORKER };
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
        .env("container", "docker");
    if let Some(fd) = p.failure_domain.filter(|f| !f.is_empty()) {
        spec = spec.label(FAILURE_DOMAIN_LABEL, fd);
    }
    if p.control_plane {
        spec = spec.publish(PortPublish::loopback_random(API_SERVER_PORT));
    }
    for m in &dm.spec.extra_mounts {
        spec = spec.mount(Mount::new(&m.host_path, &m.container_path, m.read_only));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerMachineSpec;

    #[test]
    fn names_like_capd() {
        assert_eq!(container_name("c1", "m1"), "c1-m1");
        assert_eq!(container_name("c1", "c1-md-0-abc"), "c1-md-0-abc");
    }

    #[test]
    fn image_from_custom_or_version() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        assert_eq!(image(&dm, Some("v1.36.3")).as_deref(), Some("kindest/node:v1.36.3"));
        assert_eq!(image(&dm, Some("1.36.3")).as_deref(), Some("kindest/node:v1.36.3"));
        assert_eq!(image(&dm, None), None);
        dm.spec.custom_image = "my/node:x".into();
        assert_eq!(image(&dm, None).as_deref(), Some("my/node:x"));
    }

    #[test]
    fn control_plane_publishes_api_port_and_mounts_extra() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        dm.spec.extra_mounts.push(capd_api::Mount { container_path: "/data".into(), host_path: "/srv".into(), read_only: true });
        let p = NodeParams { name: "c-m", cluster: "c", image: "img", network: "kind", control_plane: true, failure_domain: Some("fd1") };
        let s = spec(&dm, &p);
        assert_eq!(s.labels.get("io.x-k8s.kind.role").map(String::as_str), Some("control-plane"));
        assert_eq!(s.labels.get(FAILURE_DOMAIN_LABEL).map(String::as_str), Some("fd1"));
        assert!(s.privileged);
        assert_eq!(s.ports.len(), 1);
        assert!(s.mounts.iter().any(|m| m.target == "/data" && m.read_only));
        assert!(s.tmpfs.contains_key("/run") && s.tmpfs.contains_key("/tmp"));
        let w = NodeParams { control_plane: false, ..p };
        assert!(spec(&dm, &w).ports.is_empty());
    }
}
