//! `chaos`: the environment, then the fault tests of crates/manager/tests, one after the
//! other: chaos.rs with `--kills N` leader SIGKILLs (default 30, issue 15's count) and an
//! engine restart, outage.rs (API server and etcd), engine_unreachable.rs and soak.rs
//! for `--soak-minutes M` (default 30); then their table (the rows docs/reliability.md
//! records). Bounded: every wait in the run has a deadline,
//! and all traffic stays on this machine.

use crate::environment::lifecycle;
use crate::environment::manager::MANAGER;
use crate::support::paths;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The fault tests, in order, each a test binary of crates/manager.
const FAULT_TESTS: [&str; 4] = ["chaos", "outage", "engine_unreachable", "soak"];

pub fn chaos(kills: u32, soak_minutes: u32) -> Result<()> {
    let state = lifecycle::up()?;
    // The demo's manager would reconcile the run's objects beside the managers it starts.
    if let Some(m) = state.components.iter().find(|c| c.name == MANAGER) {
        crate::support::procs::stop(
            m.pid,
            &state.bin_dir.join(MANAGER).to_string_lossy(),
            std::time::Duration::from_secs(15),
        )?;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for test in FAULT_TESTS {
        let mut child = Command::new("cargo")
            .current_dir(paths::workspace_root())
            .args([
                "test",
                "-p",
                "capd-manager",
                "--test",
                test,
                "--",
                "--nocapture",
            ])
            .env("CHAOS_KILLS", kills.to_string())
            .env("SOAK_MINUTES", soak_minutes.to_string())
            .env("KUBECONFIG", &state.kubeconfig)
            .env("DOCKER_HOST", &state.docker_host)
            .env(capd_testenv::STATE_DIR_ENV, paths::state_dir())
            .env("PATH", format!("{}:{path}", state.bin_dir.display()))
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running the {test} test"))?;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.unwrap_or_default();
                println!("{line}");
                if let Some(row) = line.strip_prefix("CHAOS ") {
                    rows.push(row.to_string());
                }
            }
        }
        if !child.wait()?.success() {
            failed.push(test);
        }
    }
    println!("\n| fault | trials | duplicates | second bootstraps | orphans | recovery time | what the user saw |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    if !failed.is_empty() {
        bail!(
            "fault tests failed: {}; see the output above",
            failed.join(", ")
        );
    }
    Ok(())
}
