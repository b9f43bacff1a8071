//! API server and etcd outages while clusters provision (issue 15): reconciles resume
//! within seconds of the API answering again, a manager that lost its Lease has stopped
//! (and its restart, as its Deployment would do, takes over cleanly), and nothing is
//! duplicated, bootstrapped twice or left behind. One round per fault, each on two new
//! clusters caught in the middle of provisioning:
//!
//! 1. kube-apiserver paused (SIGSTOP) for 30 s, then resumed: a network partition;
//! 2. kube-apiserver SIGKILLed and started again by `cargo xtask up`;
//! 3. etcd SIGKILLed and started again by `cargo xtask up`.
//!
//! Each round prints a row of docs/reliability.md's table. A binary of its own: cargo
//! runs test binaries one at a time, so no other test sees the outages.

mod common;

use capd_testenv::{poll_until, unique_name, TestEnv};
use common::faults::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const PER_ROUND: usize = 2;
const MACHINES: usize = 1;
const OUTAGE: Duration = Duration::from_secs(30);
/// From the API answering again to every object of every round provisioned.
const RESUME_BOUND: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
enum Fault {
    PauseApiServer,
    KillApiServer,
    KillEtcd,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::PauseApiServer => {
                "kube-apiserver paused 30 s (SIGSTOP/SIGCONT) during provisioning"
            }
            Fault::KillApiServer => "kube-apiserver SIGKILLed and restarted during provisioning",
            Fault::KillEtcd => "etcd SIGKILLed and restarted during provisioning",
        }
    }

    fn component(self) -> &'static str {
        match self {
            Fault::PauseApiServer | Fault::KillApiServer => "kube-apiserver",
            Fault::KillEtcd => "etcd",
        }
    }
}

/// Resumes a paused process whatever happens to the test.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pid_of(component: &str) -> u32 {
    let env = TestEnv::load().expect("test environment");
    env.state
        .components
        .iter()
        .find(|c| c.name == component)
        .map(|c| c.pid)
        .unwrap_or_else(|| panic!("{component} in the environment's state"))
}

async fn api_answers(client: &kube::Client) -> Result<(), String> {
    client
        .apiserver_version()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn api_server_and_etcd_outages_during_provisioning() {
    let f = Fixture::new("outage").await;
    // CAPD's Lease timing (15 s lease, 10 s renew deadline): a 30 s outage loses it.
    let lease_args = ["--leader-elect"];
    let mut manager = f.manager(&lease_args).await;
    let mut clusters: Vec<String> = Vec::new();
    let mut machines: Vec<String> = Vec::new();
    let mut rows = Vec::new();

    for (round, fault) in [Fault::PauseApiServer, Fault::KillApiServer, Fault::KillEtcd]
        .into_iter()
        .enumerate()
    {
        let batch: Vec<String> = (0..PER_ROUND)
            .map(|i| unique_name(&format!("out{round}{i}")))
            .collect();
        if let Ok(mut n) = f.cluster_names.lock() {
            n.extend(batch.iter().cloned());
        }
        for c in &batch {
            f.create_cluster(c, false, json!({})).await;
            let m = format!("{c}-m0");
            f.machine(c, &m, true, BOOTSTRAP, None).await;
            machines.push(m);
        }
        clusters.extend(batch.iter().cloned());
        // In the middle of provisioning: the first load balancer exists, the rest not yet.
        poll_until("a load balancer of the round", LONG, || {
            let n = containers_of(&f.env, &batch[0]).len();
            async move {
                if n > 0 {
                    Ok(())
                } else {
                    Err("none yet".to_string())
                }
            }
        })
        .await
        .unwrap();

        // The fault. `xtask up` afterwards restarts whatever stopped (what kubelet and
        // systemd do for a real control plane), Cluster API's managers included.
        let pid = pid_of(fault.component());
        let mut env_guard = EngineGuard::new();
        match fault {
            Fault::PauseApiServer => {
                assert!(signal(pid, "STOP"), "SIGSTOP kube-apiserver {pid}");
                let resume = Resume(pid);
                // The fault itself lasts 30 s; nothing to wait for.
                tokio::time::sleep(OUTAGE).await;
                drop(resume);
            }
            Fault::KillApiServer | Fault::KillEtcd => {
                assert!(signal(pid, "KILL"), "SIGKILL {} {pid}", fault.component());
                poll_until("the process to exit", Duration::from_secs(30), || {
                    let state = proc_state(&pid.to_string());
                    async move {
                        if exited_state(&state) {
                            Ok(())
                        } else {
                            Err(state)
                        }
                    }
                })
                .await
                .unwrap();
            }
        }
        env_guard.start_up();
        poll_until("the API server to answer", Duration::from_secs(120), || {
            api_answers(&f.client)
        })
        .await
        .unwrap();
        let back = Instant::now();

        // Without its Lease the manager must not go on reconciling: it exits (maybe a
        // little after the API answers: it releases the Lease first) and is started
        // again, as its Deployment would start it.
        let mut exited = None;
        let deadline = Instant::now() + RESUME_BOUND;
        loop {
            if let Some(status) = manager.child.try_wait().ok().flatten() {
                let log = std::fs::read_to_string(&manager.log).unwrap_or_default();
                assert!(
                    log.contains("lost leader election Lease"),
                    "the manager exited ({status}) for another reason than its Lease: {}",
                    manager.log.display()
                );
                exited = Some(status);
                manager = f.manager(&lease_args).await;
            }
            match all_ready(&f, &clusters, MACHINES).await {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    panic!("every cluster provisioned after: {}: {e}", fault.describe())
                }
                // Polled, with the deadline above.
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let recovery = back.elapsed();
        // The rest of the plane (Cluster API's managers) may still be coming back.
        assert!(env_guard.wait_up(), "`cargo xtask up` after the fault");
        let row = Row {
            fault: fault.describe().into(),
            trials: 1,
            duplicates: duplicates(&f, &clusters, MACHINES),
            second_bootstraps: second_bootstraps(&f, &machines),
            orphans: 0,
            recovery,
            seen: format!(
                "{} clusters provisioned; the manager {}",
                clusters.len(),
                if exited.is_some() {
                    "lost its Lease and exited; its restart took over"
                } else {
                    "kept its Lease"
                }
            ),
        };
        row.print();
        assert_eq!((row.duplicates, row.second_bootstraps), (0, 0), "{fault:?}");
        rows.push(row);
    }

    // Delete everything: nothing left behind.
    let deleted = delete_all(&f, &clusters, LONG).await;
    Row {
        fault: "delete all after the outages".into(),
        trials: clusters.len(),
        duplicates: 0,
        second_bootstraps: 0,
        orphans: 0,
        recovery: deleted,
        seen: "0 containers left".into(),
    }
    .print();
    drop(manager);
    f.delete_namespace().await;
}
