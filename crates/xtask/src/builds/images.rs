//! Images built offline from Debian packages: debootstrap a root file system, add a
//! few files, `docker import` it. Each is tagged with a hash of its recipe so it is
//! rebuilt only when the recipe (or the suite) changes; built images are also saved
//! as tarballs under `~/.cache/capd-rs/images` so a wiped engine reloads them fast.

use crate::support::docker::docker;
use crate::support::steps::{Outcome, StepLog};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, serde::Serialize)]
pub struct Recipe {
    pub name: &'static str,
    pub packages: &'static [&'static str],
    /// Files written into the root: (path, contents, mode).
    pub files: &'static [(&'static str, &'static str, u32)],
    /// systemd units masked (linked to /dev/null): nothing in a container to run them for.
    pub masked_units: &'static [&'static str],
    /// `docker import --change` instructions.
    pub changes: &'static [&'static str],
    /// Docker 20.10's `import` can't set STOPSIGNAL; a one-line `docker build` adds it.
    pub stop_signal: Option<&'static str>,
}

const HAPROXY_CFG: &str = "\
# Placeholder until the provider writes the real configuration and sends SIGHUP.
global
  log stdout format raw local0 info
  # Within this host's file-descriptor limit; the provider writes the real config.
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend stats
  mode http
  bind *:8404
  stats enable
  stats uri /stats
  http-request return status 200 content-type text/plain string ok if { path /healthz }
";

pub const HAPROXY: Recipe = Recipe {
    name: "haproxy",
    packages: &["haproxy", "ca-certificates"],
    files: &[("usr/local/etc/haproxy/haproxy.cfg", HAPROXY_CFG, 0o644)],
    masked_units: &[],
    // Master-worker mode (-W): SIGHUP reloads the configuration without dropping the frontend.
    changes: &[r#"CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]"#],
    // SIGUSR1 is HAProxy's soft stop: finish open connections, then exit.
    stop_signal: Some("SIGUSR1"),
};

pub const NODE: Recipe = Recipe {
    name: "node",
    packages: &[
        "systemd",
        "systemd-sysv",
        "dbus",
        "iproute2",
        "containerd",
        "runc",
        "ca-certificates",
        "iptables",
        "kmod",
        "procps",
        "conntrack",
        "ethtool",
        "socat",
        "util-linux",
        "mount",
        "e2fsprogs",
        "pigz",
        "gzip",
        "bash",
        "coreutils",
        // ptp, host-local, portmap, loopback in /usr/lib/cni, for the pod network.
        "containernetworking-plugins",
    ],
    files: &[
        // journald can't read the host's kmsg from inside a container.
        (
            "etc/systemd/journald.conf.d/10-container.conf",
            "[Journal]\nReadKMsg=no\nStorage=volatile\n",
            0o644,
        ),
        ("kind/version", "capd-rs offline node image\n", 0o644),
    ],
    masked_units: &[
        "systemd-udevd.service",
        "systemd-udevd-kernel.socket",
        "systemd-udevd-control.socket",
        "systemd-modules-load.service",
        "sys-kernel-debug.mount",
        "sys-kernel-tracing.mount",
        "getty@tty1.service",
        "console-getty.service",
        "systemd-logind.service",
    ],
    changes: &[r#"ENTRYPOINT ["/sbin/init"]"#, "ENV container=docker"],
    // systemd's "halt" signal: a clean shutdown of the units in the node.
    stop_signal: Some("SIGRTMIN+3"),
};

/// Base of the workload images that program the network (kube-proxy, the pod
/// network daemon): the same Debian iptables (nft backend) as the node.
pub const NET: Recipe = Recipe {
    name: "net",
    packages: &[
        "ca-certificates",
        "iptables",
        "iproute2",
        "conntrack",
        "ipset",
        "busybox",
    ],
    files: &[],
    masked_units: &[],
    changes: &[],
    stop_signal: None,
};

pub const BASE: Recipe = Recipe {
    name: "base",
    packages: &["ca-certificates"],
    files: &[],
    masked_units: &[],
    changes: &[],
    stop_signal: None,
};

/// Bumped when the build procedure itself changes.
const PROCEDURE: &str = "2";

impl Recipe {
    pub fn tag(&self) -> String {
        let mut h = Sha256::new();
        h.update(PROCEDURE);
        h.update(crate::builds::pins::DEBIAN_SUITE);
        h.update(serde_json::to_vec(self).unwrap_or_default());
        format!(
            "capd-rs/{}:r-{}",
            self.name,
            &hex::encode(h.finalize())[..12]
        )
    }
}

pub fn present(tag: &str) -> bool {
    docker()
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn tarball(tag: &str) -> PathBuf {
    crate::support::paths::cache_dir()
        .join("images")
        .join(format!("{}.tar", tag.replace(['/', ':'], "_")))
}

/// Ensures the image of `recipe` is in the engine; returns its tag.
pub fn ensure(log: &StepLog, recipe: &Recipe) -> Result<Outcome<String>> {
    let tag = recipe.tag();
    if present(&tag) {
        return Ok(Outcome::Skipped(tag.clone(), format!("{tag} present")));
    }
    if load_cached(log, &tag)? {
        return Ok(Outcome::Done(tag));
    }
    build(log, recipe, &tag)?;
    save_cached(log, &tag)?;
    Ok(Outcome::Done(tag))
}

/// Loads `tag` from its tarball under the cache; false when there is none.
pub fn load_cached(log: &StepLog, tag: &str) -> Result<bool> {
    let cached = tarball(tag);
    if !cached.exists() {
        return Ok(false);
    }
    log.run(docker().args(["load", "-i"]).arg(&cached))?;
    Ok(present(tag))
}

/// Saves `tag` as a tarball under the cache, so a wiped engine reloads it fast.
pub fn save_cached(log: &StepLog, tag: &str) -> Result<()> {
    let cached = tarball(tag);
    if let Some(dir) = cached.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = cached.with_extension("tmp");
    log.run(docker().args(["save", "-o"]).arg(&tmp).arg(tag))?;
    std::fs::rename(&tmp, &cached)?;
    // Older builds of the same image are dead weight (the node image is over 1 GB).
    let prefix = tarball(tag.split(':').next().unwrap_or(tag))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let (Some(dir), false) = (cached.parent(), prefix.is_empty()) {
        for e in std::fs::read_dir(dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path() != cached
                && name.starts_with(&format!("{}_r-", prefix.trim_end_matches(".tar")))
            {
                log.line(&format!("removing the older build {}", e.path().display()));
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn build(log: &StepLog, recipe: &Recipe, tag: &str) -> Result<()> {
    ensure_debootstrap(log)?;
    let mirror = debian_mirror()?;
    let work = crate::support::paths::cache_dir()
        .join("rootfs")
        .join(recipe.name);
    remove_rootfs(log, &work)?;
    std::fs::create_dir_all(&work)?;
    let debs = crate::support::paths::cache_dir()
        .join("debootstrap")
        .join(crate::builds::pins::DEBIAN_SUITE);
    std::fs::create_dir_all(&debs)?;
    log.run(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", recipe.packages.join(",")))
            .arg(format!("--cache-dir={}", debs.display()))
            .arg(crate::builds::pins::DEBIAN_SUITE)
            .arg(&work)
            .arg(&mirror),
    )?;
    for (path, contents, mode) in recipe.files {
        let p = work.join(path);
        crate::support::steps::write_file(&p, contents)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    for unit in recipe.masked_units {
        let p = work.join("etc/systemd/system").join(unit);
        let _ = std::fs::remove_file(&p);
        std::fs::create_dir_all(p.parent().unwrap_or(&work))?;
        std::os::unix::fs::symlink("/dev/null", &p)?;
    }
    // Package caches and lists only make the image bigger.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let d = work.join(dir);
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    import(log, &work, recipe, tag)?;
    remove_rootfs(log, &work)
}

/// Removes a build root, first unmounting what a debootstrap that was killed left
/// mounted in it (its /proc, /sys): removing through those would reach the host's.
fn remove_rootfs(log: &StepLog, work: &Path) -> Result<()> {
    if !work.exists() {
        return Ok(());
    }
    let mounts =
        std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    for mp in mounts_below(&mounts, work) {
        log.run(Command::new("umount").arg("-l").arg(&mp))?;
    }
    std::fs::remove_dir_all(work).with_context(|| format!("removing {}", work.display()))
}

/// Mount points at or below `dir` in /proc/self/mounts text, deepest first.
fn mounts_below(mounts: &str, dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // The kernel escapes space, tab, newline and backslash as octal.
        .map(|m| {
            m.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .map(std::path::PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

fn import(log: &StepLog, root: &Path, recipe: &Recipe, tag: &str) -> Result<()> {
    log.line(&format!(
        "$ tar -C {} -c . | docker import ... - {tag}",
        root.display()
    ));
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .stderr(log.file()?)
        .spawn()
        .context("starting tar")?;
    let stdout = tar
        .stdout
        .take()
        .ok_or_else(|| anyhow!("tar has no stdout"))?;
    let status = {
        // Scoped: the Command holds the pipe's read end until dropped, and tar would
        // block on a full pipe if docker import died early.
        let mut imp = docker();
        imp.arg("import");
        for c in recipe.changes {
            imp.arg("--change").arg(c);
        }
        imp.args([
            "--change",
            &format!("LABEL io.x-k8s.capd-rs.recipe={}", recipe.name),
        ]);
        imp.args(["-", tag])
            .stdin(stdout)
            .stdout(log.file()?)
            .stderr(log.file()?)
            .status()
    };
    let status = status.context("starting docker import")?;
    let tar_status = tar.wait()?;
    if !tar_status.success() || !status.success() {
        bail!("importing {tag} failed (tar: {tar_status}, docker import: {status})");
    }
    if let Some(sig) = recipe.stop_signal {
        add_stop_signal(log, tag, sig)?;
    }
    Ok(())
}

/// `FROM tag` + `STOPSIGNAL`, built from a Dockerfile on stdin (no context, no registry).
pub fn add_stop_signal(log: &StepLog, tag: &str, signal: &str) -> Result<()> {
    use std::io::Write;
    log.line(&format!("$ docker build -t {tag} - (STOPSIGNAL {signal})"));
    let mut child = docker()
        .args(["build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(log.file()?)
        .stderr(log.file()?)
        .spawn()
        .context("starting docker build")?;
    {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("docker build has no stdin"))?;
        write!(stdin, "FROM {tag}\nSTOPSIGNAL {signal}\n")?;
    }
    let st = child.wait()?;
    if !st.success() {
        bail!("adding STOPSIGNAL {signal} to {tag} failed ({st})");
    }
    Ok(())
}

fn ensure_debootstrap(log: &StepLog) -> Result<()> {
    if Command::new("debootstrap")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return Ok(());
    }
    log.run(Command::new("apt-get").arg("update"))?;
    log.run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "debootstrap"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The Debian mirror this machine's apt uses for the suite (never hard-coded).
pub fn debian_mirror() -> Result<String> {
    let suite = crate::builds::pins::DEBIAN_SUITE;
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in entries.flatten() {
            if e.path()
                .extension()
                .is_some_and(|x| x == "sources" || x == "list")
            {
                texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for text in &texts {
        if let Some(m) = mirror_in(text, suite) {
            return Ok(m);
        }
    }
    bail!("no Debian mirror for suite {suite} in /etc/apt/sources.list or /etc/apt/sources.list.d/")
}

/// Finds a URI serving exactly `suite` in deb822 (`.sources`) or one-line (`.list`) syntax.
fn mirror_in(text: &str, suite: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
            let is_deb = field("Types:")
                .map(|t| t.split_whitespace().any(|x| x == "deb"))
                .unwrap_or(true);
            if is_deb && suites.split_whitespace().any(|s| s == suite) {
                if let Some(u) = uris.split_whitespace().next() {
                    return Some(u.to_string());
                }
            }
        }
    }
    for line in text.lines() {
        let mut parts = line.split_whitespace().filter(|p| !p.starts_with('['));
        if parts.next() == Some("deb") {
            if let (Some(uri), Some(s)) = (parts.next(), parts.next()) {
                if s == suite {
                    return Some(uri.to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_left_in_a_build_root_deepest_first() {
        let mounts = "proc /proc proc rw 0 0\n\
            proc /c/rootfs/node/proc proc rw 0 0\n\
            sysfs /c/rootfs/node/sys sysfs rw 0 0\n\
            binfmt /c/rootfs/node/proc/sys/fs/binfmt_misc binfmt_misc rw 0 0\n\
            tmpfs /c/rootfs/node\\040x/run tmpfs rw 0 0\n\
            proc /c/rootfs/nodes/proc proc rw 0 0\n";
        let found = mounts_below(mounts, Path::new("/c/rootfs/node"));
        assert_eq!(
            found,
            [
                "/c/rootfs/node/proc/sys/fs/binfmt_misc",
                "/c/rootfs/node/proc",
                "/c/rootfs/node/sys"
            ]
            .map(std::path::PathBuf::from)
        );
        assert_eq!(
            mounts_below(mounts, Path::new("/c/rootfs/node x")),
            [std::path::PathBuf::from("/c/rootfs/node x/run")]
        );
    }

    #[test]
    fn mirror_from_deb822_skips_security_and_other_suites() {
        let text = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n\
                    Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            mirror_in(text, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn mirror_from_one_line_syntax() {
        let text = "# comment\ndeb [arch=amd64] http://m.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(text, "bookworm").as_deref(),
            Some("http://m.example/debian")
        );
        assert_eq!(mirror_in(text, "trixie"), None);
    }

    #[test]
    fn tag_changes_with_recipe() {
        assert_ne!(HAPROXY.tag(), BASE.tag());
        assert!(NODE.tag().starts_with("capd-rs/node:r-"));
    }
}
