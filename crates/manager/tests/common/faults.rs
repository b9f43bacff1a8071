//! What the fault-injection tests (chaos.rs, outage.rs) share: the counts they report
//! (one row of docs/reliability.md's table each), the environment's own `xtask up` to
//! bring back what a fault stopped, and process-state checks.

use super::*;
use capd_api::{DockerCluster, DockerMachine, HasConditions};
use kube::api::ListParams;
use std::collections::BTreeMap;

/// Each step of the bootstrap leaves a line, so a step run twice shows
/// ([`second_bootstraps`]).
pub const BOOTSTRAP: &str = "#cloud-config\nruncmd:\n- echo run >> /var/chaos-runs\n- sleep 3\n- echo done >> /var/chaos-done\n";

pub struct Row {
    pub fault: String,
    pub trials: usize,
    pub duplicates: usize,
    pub second_bootstraps: usize,
    pub orphans: usize,
    pub recovery: Duration,
    pub seen: String,
}

impl Row {
    pub fn print(&self) {
        println!(
            "CHAOS | {} | {} | {} | {} | {} | {:.1} s | {} |",
            self.fault,
            self.trials,
            self.duplicates,
            self.second_bootstraps,
            self.orphans,
            self.recovery.as_secs_f64(),
            self.seen
        );
    }
}

/// The xtask binary itself, not `cargo xtask`: the `cargo test` running this holds
/// the build directory's lock.
pub fn xtask_binary() -> (std::path::PathBuf, std::path::PathBuf) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"));
    let xtask = target.join("debug/xtask");
    assert!(
        xtask.is_file(),
        "{} (built by `cargo xtask`)",
        xtask.display()
    );
    (xtask, root)
}

/// /proc's state letter for `pid` ("gone" when there is no such process).
pub fn proc_state(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .map(String::from)
        })
        .unwrap_or_else(|| "gone".to_string())
}

/// True for the /proc state of a process that has exited. A zombie has exited too: where the process that
/// adopted the detached dockerd does not reap (some CI init processes), its /proc
/// entry stays with state Z for good.
pub fn exited_state(state: &str) -> bool {
    matches!(state, "gone" | "Z" | "X")
}

/// Brings the engine back (`xtask up`) if the test ends, by a panic or otherwise,
/// while the engine it stopped does not answer, so the tests after this one still
/// have an engine.
pub struct EngineGuard {
    xtask: std::path::PathBuf,
    root: std::path::PathBuf,
    /// The `xtask up` started after the stop, if any.
    up: Option<std::process::Child>,
    /// An `xtask up` after the fault succeeded: nothing left to bring back.
    restored: bool,
}

impl EngineGuard {
    pub fn new() -> Self {
        let (xtask, root) = xtask_binary();
        EngineGuard {
            xtask,
            root,
            up: None,
            restored: false,
        }
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.xtask);
        cmd.arg("up")
            .current_dir(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    pub fn start_up(&mut self) {
        self.up = Some(self.command().spawn().unwrap());
    }

    /// Waits for the `xtask up` started by `start_up`; true when it succeeded.
    pub fn wait_up(&mut self) -> bool {
        let ok = self
            .up
            .take()
            .map(|mut child| child.wait().map(|s| s.success()).unwrap_or(false))
            .unwrap_or(false);
        self.restored |= ok;
        ok
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        // One `xtask up` at a time: let a running one finish first.
        self.wait_up();
        let answers = std::process::Command::new("docker")
            .arg("version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        // Ended before the environment was brought back (a failure between the fault and
        // `wait_up`): whatever was stopped (engine, API server, etcd) comes back here, so
        // the test binaries after this one still have an environment.
        if !answers || !self.restored {
            eprintln!(
                "the environment may be down after a fault: bringing it back with `xtask up`"
            );
            if let Err(e) = self.command().status() {
                eprintln!("xtask up: {e}");
            }
        }
    }
}

pub fn docker_out(f: &Fixture, args: &[&str]) -> (bool, String) {
    match f.env.docker().args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Container name → ID of every container of the clusters.
pub fn container_ids(f: &Fixture, clusters: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in clusters {
        let (_, text) = docker_out(
            f,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=io.x-k8s.kind.cluster={c}"),
                "--format",
                "{{.Names}} {{.ID}} {{.State}}",
            ],
        );
        for line in text.lines() {
            let mut p = line.split_whitespace();
            if let (Some(n), Some(id), Some(state)) = (p.next(), p.next(), p.next()) {
                out.insert(n.to_string(), format!("{id} {state}"));
            }
        }
    }
    out
}

/// Extra containers beyond one load balancer per cluster and `machines` nodes.
pub fn duplicates(f: &Fixture, clusters: &[String], machines: usize) -> usize {
    clusters
        .iter()
        .map(|c| {
            let cs = containers_of(&f.env, c);
            let lbs = cs
                .iter()
                .filter(|x| x.2 == "external-load-balancer")
                .count();
            let nodes = cs.len() - lbs;
            lbs.saturating_sub(1) + nodes.saturating_sub(machines)
        })
        .sum()
}

/// Bootstrap steps that ran more than once, over every node.
pub fn second_bootstraps(f: &Fixture, machines: &[String]) -> usize {
    machines
        .iter()
        .map(|m| {
            let (_, runs) = docker_out(f, &["exec", m, "cat", "/var/chaos-runs"]);
            let (_, done) = docker_out(f, &["exec", m, "cat", "/var/chaos-done"]);
            runs.lines().count().saturating_sub(1) + done.lines().count().saturating_sub(1)
        })
        .sum()
}

/// Every DockerCluster and DockerMachine in the namespace provisioned with Ready=True
/// (`clusters` of them, `machines` each), and every container of theirs running.
pub async fn all_ready(f: &Fixture, clusters: &[String], machines: usize) -> Result<(), String> {
    let dcs = f
        .dockerclusters()
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let dms = Api::<DockerMachine>::namespaced(f.client.clone(), &f.ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let not_ready: Vec<String> = dcs
        .items
        .iter()
        .filter(|d: &&DockerCluster| !capd_api::conditions::is_true(d.conditions(), "Ready"))
        .map(|d| {
            format!(
                "DockerCluster {}",
                d.metadata.name.clone().unwrap_or_default()
            )
        })
        .chain(
            dms.items
                .iter()
                .filter(|d| {
                    !(d.is_provisioned() && capd_api::conditions::is_true(d.conditions(), "Ready"))
                })
                .map(|d| {
                    format!(
                        "DockerMachine {}",
                        d.metadata.name.clone().unwrap_or_default()
                    )
                }),
        )
        .collect();
    let stopped: Vec<String> = container_ids(f, clusters)
        .into_iter()
        .filter(|(_, v)| !v.ends_with("running"))
        .map(|(k, _)| k)
        .collect();
    if dcs.items.len() == clusters.len()
        && dms.items.len() == clusters.len() * machines
        && not_ready.is_empty()
        && stopped.is_empty()
    {
        Ok(())
    } else {
        Err(format!(
            "{} clusters, {} machines; not ready {not_ready:?}; not running {stopped:?}",
            dcs.items.len(),
            dms.items.len()
        ))
    }
}

/// Deletes every Cluster of `clusters` and waits (bounded) until neither the objects nor
/// any of their containers are left; returns how long it took.
pub async fn delete_all(
    f: &Fixture,
    clusters: &[String],
    bound: std::time::Duration,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    for c in clusters {
        f.clusters()
            .delete(c, &kube::api::DeleteParams::default())
            .await
            .unwrap();
    }
    capd_testenv::poll_until("every cluster gone", bound, || {
        let left: usize = clusters
            .iter()
            .map(|c| containers_of(&f.env, c).len())
            .sum();
        let api = f.clusters();
        async move {
            let objects = api
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if objects == 0 && left == 0 {
                Ok(())
            } else {
                Err(format!("{objects} Clusters, {left} containers"))
            }
        }
    })
    .await
    .unwrap();
    start.elapsed()
}
