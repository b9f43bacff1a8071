//! The Docker engine: use one that answers; otherwise install Debian's docker.io and
//! start dockerd. If privileged containers fail with "unable to apply caps" (this
//! sandbox can't grant CAP_SYS_RESOURCE), restart the dockerd we own with the runc
//! shim as its default runtime. A machine where privileged containers work is left alone.

use crate::support::docker::{docker, docker_host, SOCKET};
use crate::support::procs;
use crate::support::steps::{wait_for, Outcome, StepLog};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// Label on every container the environment (or a test) creates, so `down` finds them.
pub use capd_testenv::TEST_LABEL;
/// Label the provider puts on every container it creates.
pub const PROVIDER_LABEL: &str = "io.x-k8s.capd-rs.provider";

/// What the environment knows about the engine it uses.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Default)]
pub struct Engine {
    pub docker_host: String,
    /// Set when this tool started dockerd (then `down` stops it).
    pub dockerd_pid: Option<u32>,
    pub with_shim: bool,
    pub version: String,
}

fn server_version() -> Option<String> {
    let out = docker()
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn marker() -> PathBuf {
    crate::support::paths::cache_dir().join("engine-needs-runc-shim")
}

/// Makes sure an engine answers. `known` is what an earlier `up` recorded.
pub fn ensure_running(log: &StepLog, known: Option<&Engine>) -> Result<Outcome<Engine>> {
    if let Some(version) = server_version() {
        let mut e = known.cloned().unwrap_or_default();
        e.docker_host = docker_host();
        e.version = version.clone();
        if e.dockerd_pid.is_some_and(|p| !procs::alive(p, DOCKERD)) {
            e.dockerd_pid = None;
        }
        return Ok(Outcome::Skipped(
            e,
            format!("Docker {version} answers at {}", docker_host()),
        ));
    }
    if std::env::var("DOCKER_HOST").is_ok_and(|h| h != format!("unix://{SOCKET}")) {
        bail!(
            "DOCKER_HOST={} does not answer; unset it to let the environment start its own dockerd",
            docker_host()
        );
    }
    if !Path::new(DOCKERD).exists() {
        log.line("dockerd not found: installing Debian's docker.io");
        log.run(Command::new("apt-get").arg("update"))?;
        log.run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "docker.io"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    let with_shim = marker().exists();
    let pid = start_dockerd(with_shim)?;
    let version =
        server_version().ok_or_else(|| anyhow!("dockerd started but `docker version` fails"))?;
    Ok(Outcome::Done(Engine {
        docker_host: docker_host(),
        dockerd_pid: Some(pid),
        with_shim,
        version,
    }))
}

fn start_dockerd(with_shim: bool) -> Result<u32> {
    let log = crate::support::paths::log_dir().join("dockerd.log");
    let mut args = vec![
        format!("--host=unix://{SOCKET}"),
        "--pidfile=/var/run/docker.pid".to_string(),
    ];
    if with_shim {
        install_shim()?;
        args.push(format!(
            "--add-runtime=capd-runc={}",
            crate::environment::shim::install_path().display()
        ));
        args.push("--default-runtime=capd-runc".to_string());
    }
    // A stale pidfile from a killed dockerd makes the new one refuse to start.
    let _ = std::fs::remove_file("/var/run/docker.pid");
    let pid = procs::spawn(Path::new(DOCKERD), &args, &[], &log)?;
    wait_for(
        &format!("dockerd to answer on {SOCKET} (log: {})", log.display()),
        Duration::from_secs(60),
        || {
            if !procs::alive(pid, DOCKERD) {
                bail!("dockerd exited; see {}", log.display());
            }
            Ok(server_version())
        },
    )?;
    Ok(pid)
}

fn install_shim() -> Result<()> {
    let target = crate::environment::shim::install_path();
    let me = std::env::current_exe().context("locating the xtask binary")?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Copy to a temp name and rename, so a running dockerd never sees a half-written file.
    let tmp = target.with_extension("new");
    std::fs::copy(&me, &tmp)
        .with_context(|| format!("copying {} to {}", me.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("installing {}", target.display()))?;
    Ok(())
}

/// Runs a privileged probe container from `image`; on "unable to apply caps", restarts
/// the dockerd we own with the runc shim and probes again.
pub fn ensure_privileged(log: &StepLog, engine: &mut Engine, image: &str) -> Result<Outcome<()>> {
    let probe = || -> Result<std::result::Result<(), String>> {
        let out = docker()
            .args([
                "run",
                "--rm",
                "--privileged",
                "--label",
                &format!("{TEST_LABEL}=probe"),
                image,
                "true",
            ])
            .output()
            .context("running docker")?;
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        log.line(&format!("privileged probe: {} {}", out.status, err.trim()));
        Ok(if out.status.success() {
            Ok(())
        } else {
            Err(err)
        })
    };
    match probe()? {
        Ok(()) if engine.with_shim => {
            return Ok(Outcome::Skipped(
                (),
                "privileged containers work (through the runc shim)".into(),
            ))
        }
        Ok(()) => return Ok(Outcome::Skipped((), "privileged containers work".into())),
        Err(e) if !e.contains("unable to apply caps") => {
            bail!("privileged probe container failed: {}", e.trim())
        }
        Err(_) => {}
    }
    let Some(pid) = engine.dockerd_pid else {
        bail!(
            "privileged containers fail with \"unable to apply caps\" on a dockerd this tool did not start; \
             restart it with `--add-runtime capd-runc={} --default-runtime capd-runc` (run `cargo xtask up` once with it stopped to install the shim)",
            crate::environment::shim::install_path().display()
        );
    };
    log.line("restarting dockerd with the runc shim as default runtime");
    procs::stop(pid, DOCKERD, Duration::from_secs(20))?;
    std::fs::create_dir_all(crate::support::paths::cache_dir())?;
    std::fs::write(
        marker(),
        "privileged containers need the runc shim on this machine\n",
    )?;
    engine.dockerd_pid = Some(start_dockerd(true)?);
    engine.with_shim = true;
    match probe()? {
        Ok(()) => Ok(Outcome::Done(())),
        Err(e) => bail!(
            "privileged probe still fails with the runc shim: {}",
            e.trim()
        ),
    }
}

/// Removes every container carrying the project's labels. Returns how many.
pub fn remove_project_containers(log: &StepLog) -> Result<usize> {
    let mut ids = Vec::new();
    for label in [TEST_LABEL, PROVIDER_LABEL] {
        let out =
            log.output(docker().args(["ps", "-aq", "--filter", &format!("label={label}")]))?;
        ids.extend(
            out.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        log.run(docker().args(["rm", "-f", "-v"]).args(&ids))?;
    }
    Ok(ids.len())
}

pub fn answers() -> bool {
    server_version().is_some()
}

/// Kernel limits real Kubernetes nodes need on the host, raised (never lowered) to at
/// least these. Every kubelet, containerd and systemd in a node container takes inotify
/// instances from the host's per-user budget (128 by default): at about six nodes the
/// kubelets fail with "inotify_init: too many open files" and never register (kind's
/// known issue; kind recommends 512 instances and 524288 watches).
pub const HOST_LIMITS: [(&str, u64); 2] = [
    ("fs/inotify/max_user_instances", 8192),
    ("fs/inotify/max_user_watches", 524288),
];

/// The value to write, if the current one is below `want`.
pub fn raise_to(current: &str, want: u64) -> Option<u64> {
    match current.trim().parse::<u64>() {
        Ok(v) if v >= want => None,
        _ => Some(want),
    }
}

/// Raises [`HOST_LIMITS`]; returns what it changed.
pub fn ensure_host_limits(log: &StepLog) -> Result<Outcome<Vec<String>>> {
    let mut changed = Vec::new();
    for (key, want) in HOST_LIMITS {
        let path = Path::new("/proc/sys").join(key);
        let current = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if let Some(v) = raise_to(&current, want) {
            // Not fatal: only clusters of about six real nodes or more need it, and a host
            // may not let us (not root, read-only /proc/sys); say so instead.
            match std::fs::write(&path, v.to_string()) {
                Ok(()) => {
                    log.line(&format!(
                        "{}: {} -> {v}",
                        key.replace('/', "."),
                        current.trim()
                    ));
                    changed.push(key.replace('/', "."));
                }
                Err(e) => {
                    let msg = format!("could not raise {} from {} to {v} ({e}); workload clusters of about six nodes or more may fail with 'too many open files'", path.display(), current.trim());
                    log.line(&msg);
                    eprintln!("    warning: {msg}");
                }
            }
        }
    }
    Ok(if changed.is_empty() {
        Outcome::Skipped(changed, "already high enough".into())
    } else {
        Outcome::Done(changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_only_raised() {
        assert_eq!(raise_to("128\n", 8192), Some(8192));
        assert_eq!(raise_to("8192", 8192), None);
        assert_eq!(raise_to("1048576", 524288), None, "a higher limit is kept");
        assert_eq!(raise_to("garbage", 512), Some(512));
    }
}
