//! An IPv6 cluster against the real engine, on a network of its own with an IPv4 and an
//! IPv6 subnet: as CAPD, the load balancer listens on IPv6 and balances to the nodes'
//! IPv6 addresses, its IPv6 address is the control-plane endpoint, nodes get IPv6
//! enabled, and a machine reports its IPv6 address only.

mod common;

use capd_api::{DockerMachine, HasConditions, MachineAddressType};
use capd_testenv::{poll_until, unique_name, TestEnv};
use common::*;
use serde_json::json;
use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime};

const BOOTSTRAP: &str = "#cloud-config\nruncmd:\n- echo ok > /var/ok\n";
const CONFIG: &str = "/usr/local/etc/haproxy/haproxy.cfg";

fn docker(env: &TestEnv, args: &[&str]) -> Result<String, String> {
    let out = env
        .docker()
        .args(args)
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A dual-subnet network for this test; removed at the end, whatever happened, after
/// every container left on it (a failed test leaves the cluster's).
struct Network<'a> {
    env: &'a TestEnv,
    name: String,
}

impl<'a> Network<'a> {
    /// Random subnets, picked again when they overlap another network's.
    fn create(env: &'a TestEnv) -> Self {
        let name = unique_name("ipv6-net");
        let mut seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ u64::from(std::process::id())
            | 1;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut last = String::new();
        for _ in 0..16 {
            let r = next();
            let v4 = format!("172.{}.{}.0/24", 24 + r % 8, (r >> 8) % 256);
            let v6 = format!(
                "fd00:{:x}:{:x}::/64",
                (r >> 16) & 0xffff,
                (r >> 32) & 0xffff
            );
            match docker(
                env,
                &[
                    "network", "create", "--ipv6", "--subnet", &v4, "--subnet", &v6, &name,
                ],
            ) {
                Ok(_) => {
                    eprintln!("network {name}: {v4} {v6}");
                    return Self { env, name };
                }
                Err(e) if e.contains("overlap") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free subnet pair: {last}");
    }
}

impl Drop for Network<'_> {
    fn drop(&mut self) {
        // Never panic here (a panic while unwinding aborts the test binary).
        let filter = format!("network={}", self.name);
        if let Ok(ids) = docker(self.env, &["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = docker(
                    self.env,
                    &[&["rm", "-f", "-v"][..], ids.as_slice()].concat(),
                );
            }
        }
        if let Err(e) = docker(self.env, &["network", "rm", &self.name]) {
            eprintln!("clean-up of network {}: {e}", self.name);
        }
    }
}

/// The container's global IPv6 address on `network`.
fn ipv6_of(env: &TestEnv, container: &str, network: &str) -> Ipv6Addr {
    let format =
        format!("{{{{(index .NetworkSettings.Networks \"{network}\").GlobalIPv6Address}}}}");
    let out = docker(env, &["inspect", "--format", &format, container]).unwrap();
    out.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{container} on {network}: IPv6 address {out:?}: {e}"))
}

fn haproxy_cfg(env: &TestEnv, lb: &str) -> Result<String, String> {
    docker(env, &["exec", lb, "cat", CONFIG])
}

/// A Cluster whose pods and services are IPv6, and its DockerCluster.
async fn create_ipv6_cluster(f: &Fixture, name: &str) {
    f.create_cluster_with(
        name,
        json!({}),
        json!({"spec": {"clusterNetwork": {
            "pods": {"cidrBlocks": ["fd00:10::/48"]},
            "services": {"cidrBlocks": ["fd00:20::/108"]}
        }}}),
    )
    .await
}

fn provisioned(dm: &DockerMachine) -> bool {
    dm.is_provisioned() && capd_api::conditions::is_true(dm.conditions(), "Ready")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ipv6_cluster_balances_over_ipv6_and_reports_ipv6_addresses() {
    let f = Fixture::new("ipv6").await;
    // Declared after the fixture and before the manager: dropped after the manager stops,
    // so nothing is re-created on the network while it is removed.
    let net = Network::create(&f.env);
    let _m = f.manager(&["--docker-network", &net.name]).await;
    let name = unique_name("v6");
    create_ipv6_cluster(&f, &name).await;

    let dc = f.wait_provisioned(&name, LONG).await;
    let lb = format!("{name}-lb");
    let lb_v6 = ipv6_of(&f.env, &lb, &net.name);
    let host = &dc.spec.control_plane_endpoint.host;
    assert_eq!(
        host.parse::<Ipv6Addr>().ok(),
        Some(lb_v6),
        "the endpoint {host:?} is the load balancer's IPv6 address"
    );
    let cfg = haproxy_cfg(&f.env, &lb).unwrap();
    assert!(cfg.contains("bind :::6443 v6only"), "{cfg}");

    f.machine(&name, "cp0", true, BOOTSTRAP, None).await;
    let dm = f
        .wait_machine("cp0", "provisioned and Ready", LONG, provisioned)
        .await;
    let node = format!("{name}-cp0");
    let node_v6 = ipv6_of(&f.env, &node, &net.name);

    let addresses: Vec<(MachineAddressType, String)> = dm
        .status
        .as_ref()
        .map(|s| s.addresses.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.type_ != MachineAddressType::Hostname)
        .map(|a| (a.type_, a.address))
        .collect();
    assert_eq!(
        addresses,
        [
            (MachineAddressType::InternalIp, node_v6.to_string()),
            (MachineAddressType::ExternalIp, node_v6.to_string()),
        ],
        "only the IPv6 address"
    );

    let sysctls: serde_json::Value = serde_json::from_str(
        &docker(
            &f.env,
            &["inspect", "--format", "{{json .HostConfig.Sysctls}}", &node],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(sysctls["net.ipv6.conf.all.disable_ipv6"], "0", "{sysctls}");
    assert_eq!(sysctls["net.ipv6.conf.all.forwarding"], "1", "{sysctls}");

    let backend = format!("server {node} [{node_v6}]:6443 ");
    poll_until(
        "the load balancer to balance to the node's IPv6 address",
        Duration::from_secs(30),
        || {
            let cfg = haproxy_cfg(&f.env, &lb);
            let backend = backend.clone();
            async move {
                match cfg {
                    Ok(cfg) if cfg.contains(&backend) => Ok(()),
                    Ok(cfg) => Err(cfg),
                    Err(e) => Err(e),
                }
            }
        },
    )
    .await
    .unwrap();

    // HAProxy accepts connections on the endpoint's IPv6 address (from inside the node,
    // on the cluster network).
    let connect = format!("exec 3<>/dev/tcp/{lb_v6}/6443");
    poll_until(
        "a TCP connection to [endpoint]:6443",
        Duration::from_secs(30),
        || {
            let r = docker(
                &f.env,
                &["exec", &node, "timeout", "5", "bash", "-c", &connect],
            );
            async move { r.map(|_| ()) }
        },
    )
    .await
    .unwrap();

    f.delete_namespace().await;
}
