//! Running tools with errors that say what ran and what it printed.

use anyhow::{bail, Context, Result};
use capd_testenv::TestEnv;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `prog arg arg ...`, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd`; an exit other than 0 is an error carrying the command line and the tail of
/// its stderr and stdout.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` exited with {}\nstderr: {}\nstdout: {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 40),
            tail(&String::from_utf8_lossy(&out.stdout), 20)
        );
    }
    Ok(out)
}

/// Runs `cmd` and returns its stdout as text.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    String::from_utf8(out.stdout)
        .with_context(|| format!("`{}` printed non-UTF-8 output", show(cmd)))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `docker` against the environment's engine.
pub fn docker(env: &TestEnv) -> Command {
    env.docker()
}

/// The environment's `kubectl` with `kubeconfig`.
pub fn kubectl(env: &TestEnv, kubeconfig: &Path) -> Command {
    let mut c = Command::new(env.bin("kubectl"));
    c.env("KUBECONFIG", kubeconfig);
    c
}

/// The environment's `clusterctl` with `kubeconfig`, no version check, and its config
/// directory (overrides, caches) kept under `config_home` instead of `~/.config`.
pub fn clusterctl(env: &TestEnv, kubeconfig: &Path, config_home: &Path) -> Command {
    let mut c = Command::new(env.bin("clusterctl"));
    c.env("KUBECONFIG", kubeconfig)
        .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
        .env("XDG_CONFIG_HOME", config_home);
    c
}

/// `cargo xtask <args>` from the repository root.
pub fn xtask(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(crate::repo_root())
        .args(["run", "-q", "-p", "xtask", "--"])
        .args(args);
    c
}
