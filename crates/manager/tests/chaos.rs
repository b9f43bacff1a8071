//! Faults injected into real provisioning (issue 15's promise: whatever fails, no
//! duplicate container, no second bootstrap, no orphan, and a status that tells the
//! truth). One run, three faults in a row, each counted:
//!
//! 1. the leader SIGKILLed at random moments (`CHAOS_KILLS`, default 6) while 5 clusters
//!    × 2 machines provision under two leader-electing managers;
//! 2. the engine restarted (dockerd stopped, started again by `cargo xtask up`) with all
//!    of them provisioned: every container back with its ID, every object Ready again;
//! 3. every Cluster deleted: no container or volume left.
//!
//! Each fault prints a row of the table in docs/reliability.md; `cargo xtask chaos` runs
//! this test with more kills.

mod common;

use capd_api::{DockerMachine, HasConditions};
use capd_testenv::{poll_until, unique_name};
use common::faults::*;
use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

const CLUSTERS: usize = 5;
const MACHINES: usize = 2;
const LEASE: &str = "controller-leader-election-capd";
const RECOVERY_BOUND: Duration = Duration::from_secs(300);

fn kills() -> usize {
    std::env::var("CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// A small xorshift generator seeded from the clock: kill moments differ run to run,
/// and the seed is printed so a run can be told apart.
struct Jitter(u64);

impl Jitter {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

/// Removes the test's network at the end, whatever happened.
struct NetworkCleanup<'a>(&'a Fixture, String);

impl Drop for NetworkCleanup<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .env
            .docker()
            .args(["network", "rm", &self.1])
            .output();
    }
}

/// Each container's IPv4 address on `network`, by name.
fn addresses(f: &Fixture, clusters: &[String], network: &str) -> BTreeMap<String, String> {
    container_ids(f, clusters)
        .into_keys()
        .map(|name| {
            let ip = container_ip(&f.env, &name, network);
            (name, ip)
        })
        .collect()
}

/// [`all_ready`] for the machines; for each cluster, Ready when its load balancer is at the
/// endpoint's address, else LoadBalancerAvailable=False saying so. Returns how many
/// load balancers are at their endpoint.
async fn truthful_after_restart(
    f: &Fixture,
    clusters: &[String],
    network: &str,
) -> Result<usize, String> {
    let dms = Api::<DockerMachine>::namespaced(f.client.clone(), &f.ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let machines_ready = dms
        .items
        .iter()
        .all(|d| d.is_provisioned() && capd_api::conditions::is_true(d.conditions(), "Ready"));
    let stopped: Vec<String> = container_ids(f, clusters)
        .into_iter()
        .filter(|(_, v)| !v.ends_with("running"))
        .map(|(k, _)| k)
        .collect();
    if !machines_ready || !stopped.is_empty() {
        return Err(format!(
            "machines ready: {machines_ready}; not running {stopped:?}"
        ));
    }
    let mut at_endpoint = 0;
    for dc in f
        .dockerclusters()
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        let name = dc.metadata.name.clone().unwrap_or_default();
        let ip = container_ip(&f.env, &format!("{name}-lb"), network);
        let lb = capd_api::conditions::get(dc.conditions(), "LoadBalancerAvailable").cloned();
        if ip == dc.spec.control_plane_endpoint.host {
            if !capd_api::conditions::is_true(dc.conditions(), "Ready") {
                return Err(format!(
                    "{name}: load balancer at its endpoint but not Ready"
                ));
            }
            at_endpoint += 1;
        } else if !lb.as_ref().is_some_and(|c| {
            c.status == "False" && c.message.contains(&dc.spec.control_plane_endpoint.host)
        }) {
            return Err(format!(
                "{name}: load balancer at {ip}, endpoint {}, status says {lb:?}",
                dc.spec.control_plane_endpoint.host
            ));
        }
    }
    Ok(at_endpoint)
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_leader_kills_engine_restart_and_delete() {
    let f = Fixture::new("chaos").await;
    // A network of its own, made by the provider (so with a subnet it chose, where
    // containers get fixed addresses), whatever made the shared `kind` network.
    let network = unique_name("chaos-net");
    let _network_cleanup = NetworkCleanup(&f, network.clone());
    let lease_args = [
        "--docker-network",
        &network,
        "--leader-elect",
        "--leader-elect-lease-duration",
        "4s",
        "--leader-elect-renew-deadline",
        "3s",
    ];
    let mut managers = vec![f.manager(&lease_args).await, f.manager(&lease_args).await];
    let clusters: Vec<String> = (0..CLUSTERS)
        .map(|i| unique_name(&format!("ch{i}")))
        .collect();
    if let Ok(mut n) = f.cluster_names.lock() {
        n.extend(clusters.iter().cloned());
    }
    let mut machines = Vec::new();
    for c in &clusters {
        f.create_cluster(c, false, json!({})).await;
        for j in 0..MACHINES {
            let m = format!("{c}-m{j}");
            f.machine(c, &m, j == 0, BOOTSTRAP, None).await;
            machines.push(m);
        }
    }

    // 1. SIGKILL the leader at random moments while everything provisions.
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut jitter = Jitter(seed);
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns);
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(60 * kills() as u64);
    while killed < kills() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(jitter.next_ms(1000, 6000))).await;
        let holder = leases
            .get_opt(LEASE)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
            .unwrap_or_default();
        let Some(i) = managers
            .iter()
            .position(|m| holder.ends_with(&format!("_{}", m.pid())))
        else {
            continue;
        };
        managers[i].kill();
        managers.remove(i);
        killed += 1;
        managers.push(f.manager(&lease_args).await);
    }
    assert_eq!(killed, kills(), "every kill found a leader (seed {seed})");
    let after_kills = Instant::now();
    poll_until(
        "everything provisioned after the kills",
        RECOVERY_BOUND,
        || all_ready(&f, &clusters, MACHINES),
    )
    .await
    .unwrap();
    let kill_row = Row {
        fault: "leader SIGKILL while 5 clusters × 2 machines provision".into(),
        trials: killed,
        duplicates: duplicates(&f, &clusters, MACHINES),
        second_bootstraps: second_bootstraps(&f, &machines),
        orphans: 0,
        recovery: after_kills.elapsed(),
        seen: "machines kept provisioning under the next leader".into(),
    };
    kill_row.print();
    assert_eq!(
        (kill_row.duplicates, kill_row.second_bootstraps),
        (0, 0),
        "seed {seed}"
    );

    // 2. Restart the engine with everything provisioned.
    let before = container_ids(&f, &clusters);
    let addresses_before = addresses(&f, &clusters, &network);
    let pid = std::fs::read_to_string("/var/run/docker.pid")
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        !pid.is_empty(),
        "the environment's dockerd writes /var/run/docker.pid"
    );
    // From here until the engine answers again, a failing assertion must not leave
    // the machine without an engine: the guard brings it back on the way out.
    let mut engine_guard = EngineGuard::new();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map(|s| s.success())
        .unwrap_or(false));
    poll_until("dockerd to exit", Duration::from_secs(90), || {
        let state = proc_state(&pid);
        async move {
            if exited_state(&state) {
                Ok(())
            } else {
                Err(format!("still running (state {state})"))
            }
        }
    })
    .await
    .unwrap();
    engine_guard.start_up();
    poll_until(
        "the engine to answer again",
        Duration::from_secs(120),
        || {
            let ok = docker_out(&f, &["version"]).0;
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("no answer".to_string())
                }
            }
        },
    )
    .await
    .unwrap();
    let engine_back = Instant::now();
    // Back means: every container running, every machine Ready, and every cluster's
    // status true to what the engine did: Ready where its load balancer is still at the
    // endpoint's address, LoadBalancerAvailable=False naming both addresses where not.
    poll_until(
        "every object back, and truthful, after the engine restart",
        RECOVERY_BOUND,
        || truthful_after_restart(&f, &clusters, &network),
    )
    .await
    .unwrap();
    let recovery = engine_back.elapsed();
    assert!(
        engine_guard.wait_up(),
        "`cargo xtask up` brought the environment back"
    );
    let after = container_ids(&f, &clusters);
    let at_endpoint = truthful_after_restart(&f, &clusters, &network)
        .await
        .unwrap_or_default();
    let dcs = f
        .dockerclusters()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let same_ids = before
        .iter()
        .filter(|(n, v)| after.get(*n).map(|a| a.split(' ').next()) == Some(v.split(' ').next()))
        .count();
    let addresses_after = addresses(&f, &clusters, &network);
    let same_addresses = addresses_before
        .iter()
        .filter(|(n, a)| addresses_after.get(*n) == Some(a))
        .count();
    let restart_row = Row {
        fault: "engine restart (dockerd stopped and started)".into(),
        trials: 1,
        duplicates: duplicates(&f, &clusters, MACHINES) + after.len().saturating_sub(before.len()),
        second_bootstraps: second_bootstraps(&f, &machines),
        orphans: 0,
        recovery,
        seen: format!(
            "{same_ids} of {} containers back with the same ID and {same_addresses} with the same address, every machine Ready; {at_endpoint} of {} load balancers at their endpoint's address",
            before.len(),
            dcs.len()
        ),
    };
    restart_row.print();
    assert_eq!(
        same_ids,
        before.len(),
        "every container came back by its restart policy: {before:?} → {after:?}"
    );
    assert_eq!(
        (restart_row.duplicates, restart_row.second_bootstraps),
        (0, 0)
    );
    // Fixed addresses: nothing moved, every endpoint still leads to its own cluster.
    assert_eq!(
        addresses_after, addresses_before,
        "container addresses before and after the engine restart"
    );
    assert_eq!(at_endpoint, dcs.len(), "load balancers at their endpoint");

    // 3. Delete everything: nothing left behind.
    let mut volumes = Vec::new();
    for m in &machines {
        let (_, v) = docker_out(
            &f,
            &[
                "inspect",
                "--format",
                "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
                m,
            ],
        );
        volumes.extend(v.split_whitespace().map(String::from));
    }
    let deleted = delete_all(&f, &clusters, RECOVERY_BOUND).await;
    let orphan_volumes = volumes
        .iter()
        .filter(|v| docker_out(&f, &["volume", "inspect", v]).0)
        .count();
    let delete_row = Row {
        fault: "delete all after the faults".into(),
        trials: CLUSTERS,
        duplicates: 0,
        second_bootstraps: 0,
        orphans: orphan_volumes,
        recovery: deleted,
        seen: format!(
            "0 containers, {orphan_volumes} of {} node volumes left",
            volumes.len()
        ),
    };
    delete_row.print();
    assert!(
        !volumes.is_empty(),
        "nodes have /var volumes (the check must see them)"
    );
    assert_eq!(orphan_volumes, 0);
    for mut m in managers {
        m.kill();
    }
    f.delete_namespace().await;
}
