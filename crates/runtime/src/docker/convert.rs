//! Translation between our engine-neutral types and the Docker API models.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary as ApiSummary,
    EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigCgroupnsModeEnum, NetworkingConfig,
    PortBinding, PortMap, RestartPolicy as ApiRestart, RestartPolicyNameEnum,
};

use crate::info::{
    ContainerInfo, ContainerState, ContainerSummary, LabelFilter, NetworkAddresses, PublishedPort,
};
use crate::spec::{ContainerSpec, Protocol, RestartPolicy};

/// A network endpoint, with `address` as its fixed IPv4 address when given.
pub fn endpoint(address: Option<std::net::Ipv4Addr>) -> EndpointSettings {
    EndpointSettings {
        ipam_config: address.map(|a| EndpointIpamConfig {
            ipv4_address: Some(a.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The create request for `spec`; `address`, when given, is its fixed IPv4 address on
/// its network.
pub fn create_body(
    spec: &ContainerSpec,
    address: Option<std::net::Ipv4Addr>,
) -> ContainerCreateBody {
    let mut port_bindings: PortMap = HashMap::new();
    let mut exposed = Vec::new();
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.to_string()),
                // An empty port asks the engine for a free one.
                host_port: Some(p.host_port.map(|n| n.to_string()).unwrap_or_default()),
            });
    }

    let binds: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| {
            if m.read_only {
                format!("{}:{}:ro", m.source, m.target)
            } else {
                format!("{}:{}", m.source, m.target)
            }
        })
        .collect();

    let (name, maximum_retry_count) = match spec.restart {
        RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
        RestartPolicy::OnFailure { max_retries } => (
            RestartPolicyNameEnum::ON_FAILURE,
            Some(i64::from(max_retries)),
        ),
        RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
    };

    let host_config = HostConfig {
        privileged: Some(spec.privileged),
        security_opt: non_empty(spec.security_opts.clone()),
        tmpfs: non_empty_map(&spec.tmpfs),
        binds: non_empty(binds),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        restart_policy: Some(ApiRestart {
            name: Some(name),
            maximum_retry_count,
        }),
        network_mode: spec.network.clone(),
        sysctls: non_empty_map(&spec.sysctls),
        init: Some(false),
        // Unset leaves the engine's default (host on cgroup v1, private on v2).
        cgroupns_mode: spec
            .cgroupns_private
            .then_some(HostConfigCgroupnsModeEnum::PRIVATE),
        ..Default::default()
    };

    let networking_config = spec.network.as_ref().map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(n.clone(), endpoint(address))])),
    });

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.hostname.clone().unwrap_or_else(|| spec.name.clone())),
        labels: Some(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        env: non_empty(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        exposed_ports: non_empty(exposed),
        volumes: non_empty(spec.volumes.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        stop_signal: spec.stop_signal.clone(),
        tty: Some(spec.tty),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Docker's list filters for a [`LabelFilter`].
pub fn list_filters(filter: &LabelFilter) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    let labels: Vec<String> = filter
        .labels
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    if !labels.is_empty() {
        filters.insert("label".to_string(), labels);
    }
    if let Some(name) = &filter.name {
        // The engine matches names as regular expressions; anchor it.
        filters.insert(
            "name".to_string(),
            vec![format!("^/?{}$", regex_escape(name))],
        );
    }
    filters
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn summary(c: ApiSummary) -> ContainerSummary {
    ContainerSummary {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        labels: c
            .labels
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
        state: c
            .state
            .map(|s| ContainerState::parse(s.as_ref()))
            .unwrap_or_else(|| ContainerState::Unknown(String::new())),
        status: c.status.unwrap_or_default(),
    }
}

pub fn info(c: ContainerInspectResponse) -> ContainerInfo {
    let state = c.state.as_ref();
    let settings = c.network_settings.as_ref();
    let networks = settings
        .and_then(|s| s.networks.as_ref())
        .map(|nets| {
            nets.iter()
                .map(|(name, ep)| {
                    let addrs = NetworkAddresses {
                        ipv4: ep.ip_address.as_deref().and_then(|a| a.parse().ok()),
                        ipv6: ep
                            .global_ipv6_address
                            .as_deref()
                            .and_then(|a| a.parse().ok()),
                    };
                    (name.clone(), addrs)
                })
                .collect()
        })
        .unwrap_or_default();
    let ports = settings
        .and_then(|s| s.ports.as_ref())
        .map(published_ports)
        .unwrap_or_default();
    ContainerInfo {
        id: c.id.clone().unwrap_or_default(),
        name: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: c
            .config
            .as_ref()
            .and_then(|cfg| cfg.image.clone())
            .or_else(|| c.image.clone())
            .unwrap_or_default(),
        labels: c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.clone())
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
        state: state
            .and_then(|s| s.status)
            .map(|s| ContainerState::parse(s.as_ref()))
            .unwrap_or_else(|| ContainerState::Unknown(String::new())),
        exit_code: state.and_then(|s| s.exit_code),
        restart_count: c.restart_count.unwrap_or(0),
        finished_at: state
            .and_then(|s| s.finished_at.as_deref())
            .and_then(timestamp),
        networks,
        ports,
    }
}

/// An engine timestamp (RFC 3339); `None` for the engine's "never" (year 1).
fn timestamp(text: &str) -> Option<std::time::SystemTime> {
    let t: jiff::Timestamp = text.parse().ok()?;
    std::time::SystemTime::try_from(t)
        .ok()
        .filter(|t| *t > std::time::UNIX_EPOCH)
}

fn published_ports(map: &PortMap) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for (key, bindings) in map {
        let Some((port, proto)) = key.split_once('/') else {
            continue;
        };
        let (Ok(container_port), Some(protocol)) = (port.parse::<u16>(), Protocol::parse(proto))
        else {
            continue;
        };
        for b in bindings.iter().flatten() {
            let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            out.push(PublishedPort {
                container_port,
                protocol,
                host_ip: b
                    .host_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<IpAddr>().ok()),
                host_port,
            });
        }
    }
    out.sort_by_key(|p| (p.container_port, p.protocol, p.host_port));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Mount, PortPublish};

    #[test]
    fn engine_timestamps_and_never() {
        let t = timestamp("2026-11-30T13:07:55.123456789Z").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_796_044_075
        );
        assert_eq!(timestamp("0001-01-01T00:00:00Z"), None);
        assert_eq!(timestamp("not a time"), None);
    }

    #[test]
    fn create_body_carries_the_node_shape() {
        let spec = ContainerSpec::new("c1-cp-0", "node:v1")
            .label("io.x-k8s.kind.cluster", "c1")
            .env("KUBECONFIG", "/etc/kubernetes/admin.conf")
            .mount(Mount::new("/lib/modules", "/lib/modules", true))
            .volume("/var")
            .tmpfs("/tmp", "")
            .tmpfs("/run", "")
            .publish(PortPublish::loopback_random(6443))
            .privileged_unconfined()
            .restart(RestartPolicy::OnFailure { max_retries: 1 })
            .network("kind")
            .stop_signal("SIGRTMIN+3")
            .cgroupns_private(true);
        let body = create_body(&spec, None);
        assert_eq!(body.hostname.as_deref(), Some("c1-cp-0"));
        assert_eq!(
            body.env,
            Some(vec!["KUBECONFIG=/etc/kubernetes/admin.conf".to_string()])
        );
        assert_eq!(body.exposed_ports, Some(vec!["6443/tcp".to_string()]));
        assert_eq!(body.volumes, Some(vec!["/var".to_string()]));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.privileged, Some(true));
        assert_eq!(
            hc.security_opt,
            Some(vec![
                "seccomp=unconfined".to_string(),
                "apparmor=unconfined".to_string()
            ])
        );
        assert_eq!(
            hc.binds,
            Some(vec!["/lib/modules:/lib/modules:ro".to_string()])
        );
        let binding = &hc.port_bindings.unwrap()["6443/tcp"];
        assert_eq!(
            binding,
            &Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new())
            }])
        );
        assert_eq!(hc.restart_policy.unwrap().maximum_retry_count, Some(1));
        assert_eq!(hc.network_mode.as_deref(), Some("kind"));
        assert!(body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap()
            .contains_key("kind"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    }

    #[test]
    fn cgroupns_private_only_when_asked() {
        let spec = ContainerSpec::new("c", "img").cgroupns_private(true);
        let hc = create_body(&spec, None).host_config.unwrap();
        assert_eq!(hc.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::PRIVATE));
        // What the engine receives: `"CgroupnsMode": "private"`.
        let json = serde_json::to_value(&hc).unwrap();
        assert_eq!(json["CgroupnsMode"], "private");

        let default = create_body(&ContainerSpec::new("c", "img"), None)
            .host_config
            .unwrap();
        assert_eq!(default.cgroupns_mode, None);
        assert!(serde_json::to_value(&default)
            .unwrap()
            .get("CgroupnsMode")
            .is_none());
    }

    #[test]
    fn list_filters_anchor_names() {
        let f = list_filters(&LabelFilter::new().with("a", "b").has("c").named("x.y-lb"));
        assert_eq!(f["label"], vec!["a=b".to_string(), "c".to_string()]);
        assert_eq!(f["name"], vec!["^/?x\\.y-lb$".to_string()]);
    }

    #[test]
    fn published_ports_skip_unbound() {
        let map: PortMap = HashMap::from([
            (
                "6443/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("32768".into()),
                }]),
            ),
            ("8404/tcp".to_string(), None),
        ]);
        let ports = published_ports(&map);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].host_port, 32768);
    }
}
