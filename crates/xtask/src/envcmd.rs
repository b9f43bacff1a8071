//! `env` and `status`.

use crate::{engine, paths, procs, up};
use anyhow::{anyhow, Result};

pub fn print_env() -> Result<()> {
    let s = up::load_state().ok_or_else(|| anyhow!("no test environment; run `cargo xtask up` first"))?;
    println!("export KUBECONFIG={}", s.kubeconfig.display());
    println!("export DOCKER_HOST={}", s.docker_host);
    println!("export CAPD_TESTENV_DIR={}", paths::state_dir().display());
    println!("export PATH={}:$PATH", s.bin_dir.display());
    Ok(())
}

pub fn status() -> Result<()> {
    let Some(s) = up::load_state() else {
        println!("test environment: down (no {})", paths::env_file().display());
        return Ok(());
    };
    let docker = if engine::answers() { "answers" } else { "NOT ANSWERING" };
    println!("docker engine   {} ({docker})", s.docker_host);
    println!("kube-apiserver  {}  kubeconfig {}", s.api_server_url, s.kubeconfig.display());
    println!("images          haproxy {}  node {}  base {}", s.images.haproxy, s.images.node, s.images.base);
    println!("logs            {}\n", s.log_dir.display());
    println!("{:<46} {:<8} {:<10} {:<8} ports", "component", "pid", "version", "state");
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
        println!(
            "{:<46} {:<8} {:<10} {:<8} {}",
            c.name,
            c.pid,
            c.version,
            if alive { "running" } else { "STOPPED" },
            ports.join(" ")
        );
    }
    if !all_up {
        println!("\nsome components are stopped: `cargo xtask up` restarts them");
    }
    Ok(())
}
