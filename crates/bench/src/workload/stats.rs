//! Memory of a node container as `docker stats` defines it: the container's cgroup usage
//! less its inactive file cache (docker's `calculateMemUsageUnixNoCache`).
//!
//! Read from the cgroup files, not from `docker stats`: under the runc shim the test
//! environment's engine may use (docs/testenv.md), the engine's stats API answers 0 B for
//! every container although the cgroup is there and accounts normally.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The container's memory in MiB. `docker_host` must be this machine's engine (the
/// cgroup files are read locally).
pub async fn container_memory_mib(docker_host: &str, container: &str) -> Result<f64> {
    let out = tokio::process::Command::new("docker")
        .env("DOCKER_HOST", docker_host)
        .args(["inspect", "--format", "{{.Id}} {{.State.Pid}}", container])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running `docker inspect`")?;
    if !out.status.success() {
        bail!(
            "docker inspect {container}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (id, pid) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| anyhow!("docker inspect {container}: no ID and PID in {text:?}"))?;
    let pid: u32 = pid
        .parse()
        .map_err(|_| anyhow!("docker inspect {container}: no PID in {text:?}"))?;
    if pid == 0 {
        bail!("container {container} is not running");
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("reading /proc/{pid}/cgroup of {container}"))?;
    let dir = memory_cgroup_dir(Path::new("/sys/fs/cgroup"), &cgroup, id)
        .ok_or_else(|| anyhow!("{container}: no memory cgroup of {id} in /proc/{pid}/cgroup"))?;
    let bytes = usage_without_cache(&dir)?;
    Ok(bytes as f64 / (1024.0 * 1024.0))
}

/// Which files hold the usage: cgroup v1 (memory controller) or v2 (unified).
#[derive(Debug, PartialEq)]
pub struct MemoryCgroup {
    pub dir: PathBuf,
    pub v2: bool,
}

/// The memory cgroup directory of container `id`, from the `/proc/<pid>/cgroup` of its
/// first process (as the host sees it): the `memory` controller's line on v1, the `0::`
/// line on v2, cut after the component naming the container. A node's systemd runs in a
/// child (`.../<id>/init.scope`); the container's usage is the whole subtree.
pub fn memory_cgroup_dir(
    root: &Path,
    proc_cgroup: &str,
    container_id: &str,
) -> Option<MemoryCgroup> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some(at) = parts.iter().position(|p| p.contains(container_id)) else {
            continue;
        };
        let rel = parts[..=at].join("/");
        if controllers.split(',').any(|c| c == "memory") {
            return Some(MemoryCgroup {
                dir: root.join("memory").join(&rel),
                v2: false,
            });
        }
        if hierarchy == "0" && controllers.is_empty() {
            v2 = Some(MemoryCgroup {
                dir: root.join(rel),
                v2: true,
            });
        }
    }
    v2
}

fn usage_without_cache(cg: &MemoryCgroup) -> Result<u64> {
    let read = |name: &str| {
        let p = cg.dir.join(name);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let (usage_file, inactive_key) = if cg.v2 {
        ("memory.current", "inactive_file")
    } else {
        ("memory.usage_in_bytes", "total_inactive_file")
    };
    let usage: u64 = read(usage_file)?
        .trim()
        .parse()
        .map_err(|_| anyhow!("{}: not a number", cg.dir.join(usage_file).display()))?;
    let inactive = stat_value(&read("memory.stat")?, inactive_key).unwrap_or(0);
    Ok(usage.saturating_sub(inactive))
}

/// The value of `key` in a `memory.stat` file.
pub fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_memory_cgroup_on_v1_and_v2() {
        // A node's systemd sits in init.scope below the container's cgroup.
        let v1 = "12:pids:/docker/abc/init.scope\n4:memory:/docker/abc/init.scope\n0::/docker/abc/init.scope\n";
        assert_eq!(
            memory_cgroup_dir(Path::new("/sys/fs/cgroup"), v1, "abc"),
            Some(MemoryCgroup {
                dir: "/sys/fs/cgroup/memory/docker/abc".into(),
                v2: false
            })
        );
        let v2 = "0::/system.slice/docker-abc.scope/init.scope\n";
        assert_eq!(
            memory_cgroup_dir(Path::new("/sys/fs/cgroup"), v2, "abc"),
            Some(MemoryCgroup {
                dir: "/sys/fs/cgroup/system.slice/docker-abc.scope".into(),
                v2: true
            })
        );
        assert_eq!(
            memory_cgroup_dir(Path::new("/x"), "3:cpu:/a\n", "abc"),
            None
        );
        assert_eq!(
            memory_cgroup_dir(Path::new("/x"), "4:memory:/other\n", "abc"),
            None
        );
    }

    #[test]
    fn usage_less_inactive_file_as_docker_computes_it() {
        let dir = std::env::temp_dir().join(format!("capd-bench-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.usage_in_bytes"), "10485760\n").unwrap();
        std::fs::write(
            dir.join("memory.stat"),
            "cache 100\ntotal_inactive_file_x 1\ntotal_inactive_file 2097152\n",
        )
        .unwrap();
        let bytes = usage_without_cache(&MemoryCgroup {
            dir: dir.clone(),
            v2: false,
        })
        .unwrap();
        assert_eq!(bytes, 8 * 1024 * 1024);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            stat_value("inactive_file 5\nactive_file 7\n", "active_file"),
            Some(7)
        );
    }
}
