//! The provider's manager (`capd-manager`, built by cargo) as an environment component:
//! recorded in `env.json` beside the others, so `up` keeps it recorded while it runs and
//! `down` stops it. `demo` starts it; `test` stops it so the tests run their own.

use crate::support::paths;
use crate::support::procs;
use crate::support::steps::wait_for;
use anyhow::{bail, Result};
use capd_testenv::{Component, EnvState};
use std::time::Duration;

pub const MANAGER: &str = "capd-manager";
const HEALTH_PORT: u16 = 16481;
const METRICS_PORT: u16 = 16491;
const WEBHOOK_PORT: u16 = 16501;

/// Starts (always restarts) the manager built at `target/debug`, waits for its `/readyz`.
pub fn start(state: &EnvState) -> Result<Component> {
    let root = paths::workspace_root();
    let built = root.join("target/debug").join(MANAGER);
    let link = state.bin_dir.join(MANAGER);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&built, &link)?;
    if let Some(old) = state.components.iter().find(|c| c.name == MANAGER) {
        // Always restart: the binary may have been rebuilt since.
        procs::stop(old.pid, &link.to_string_lossy(), Duration::from_secs(15))?;
    }
    for port in [
        paths::port(HEALTH_PORT),
        paths::port(METRICS_PORT),
        paths::port(WEBHOOK_PORT),
    ] {
        if procs::port_open(port) {
            bail!("127.0.0.1:{port} is taken; capd-manager needs it");
        }
    }
    let log = state.log_dir.join(format!("{MANAGER}.log"));
    let args = vec![
        format!("--health-addr=127.0.0.1:{}", paths::port(HEALTH_PORT)),
        format!(
            "--diagnostics-address=127.0.0.1:{}",
            paths::port(METRICS_PORT)
        ),
        "--leader-elect".to_string(),
        "--insecure-diagnostics".to_string(),
        // The environment's certificate: it serves the webhook but leaves the shared CRDs as
        // installed (their Service form; crates/manager/tests/conversion.rs covers v1beta1 on a plane of its own).
        format!("--webhook-port={}", paths::port(WEBHOOK_PORT)),
        format!(
            "--webhook-cert-dir={}",
            state.pki_dir.join("webhook").display()
        ),
    ];
    let envs = [
        ("KUBECONFIG", state.kubeconfig.display().to_string()),
        ("DOCKER_HOST", state.docker_host.clone()),
    ];
    let pid = procs::spawn(&link, &args, &envs, &log)?;
    wait_for("capd-manager /readyz", Duration::from_secs(30), || {
        if !procs::alive(pid, &link.to_string_lossy()) {
            bail!("capd-manager exited; see {}", log.display());
        }
        Ok(matches!(
            procs::http_get(paths::port(HEALTH_PORT), "/readyz"),
            Ok((200, _))
        )
        .then_some(()))
    })?;
    Ok(Component {
        name: MANAGER.into(),
        pid,
        version: env!("CARGO_PKG_VERSION").into(),
        ports: [
            ("health".to_string(), paths::port(HEALTH_PORT)),
            ("metrics".to_string(), paths::port(METRICS_PORT)),
            ("webhook".to_string(), paths::port(WEBHOOK_PORT)),
        ]
        .into(),
        log,
    })
}
