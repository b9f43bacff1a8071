//! `env` and `status`.

use crate::environment::{engine, lifecycle};
use crate::support::{paths, procs};
use anyhow::{anyhow, Result};

/// Like `println!`, but a closed pipe (`| head`) ends the output quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub fn print_env() -> Result<()> {
    let s = lifecycle::load_state()
        .ok_or_else(|| anyhow!("no test environment; run `cargo xtask up` first"))?;
    out!("export KUBECONFIG={}", s.kubeconfig.display());
    out!("export DOCKER_HOST={}", s.docker_host);
    out!("export CAPD_TESTENV_DIR={}", paths::state_dir().display());
    out!("export PATH={}:$PATH", s.bin_dir.display());
    Ok(())
}

pub fn status() -> Result<()> {
    let Some(s) = lifecycle::load_state() else {
        out!(
            "test environment: down (no {})",
            paths::env_file().display()
        );
        return Ok(());
    };
    let docker = if engine::answers() {
        "answers"
    } else {
        "NOT ANSWERING"
    };
    out!("docker engine   {} ({docker})", s.docker_host);
    out!(
        "kube-apiserver  {}  kubeconfig {}",
        s.api_server_url,
        s.kubeconfig.display()
    );
    out!(
        "images          haproxy {}  node {}  base {}",
        s.images.haproxy,
        s.images.node,
        s.images.base
    );
    out!("logs            {}\n", s.log_dir.display());
    out!(
        "{:<46} {:<8} {:<10} {:<8} ports",
        "component",
        "pid",
        "version",
        "state"
    );
    let mut all_up = true;
    for c in &s.components {
        let bin = s.bin_dir.join(match c.name.as_str() {
            "capi-controller-manager" => "capi-manager",
            "capi-kubeadm-bootstrap-controller-manager" => "capi-kubeadm-bootstrap-manager",
            "capi-kubeadm-control-plane-controller-manager" => "capi-kubeadm-control-plane-manager",
            n => n,
        });
        let alive = procs::alive(c.pid, &bin.to_string_lossy());
        all_up &= alive;
        let ports: Vec<String> = c.ports.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out!(
            "{:<46} {:<8} {:<10} {:<8} {}",
            c.name,
            c.pid,
            c.version,
            if alive { "running" } else { "STOPPED" },
            ports.join(" ")
        );
    }
    if !all_up {
        out!("\nsome components are stopped: `cargo xtask up` restarts them");
    }
    Ok(())
}
