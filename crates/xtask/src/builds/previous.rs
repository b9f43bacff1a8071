//! The provider's previous release, for `clusterctl upgrade` tests: the source of a pinned
//! earlier commit (from this repository's history) and its `capd-manager`, built once and
//! cached under `~/.cache/capd-rs/previous-release/<commit>/`.
//!
//! There is no published earlier release to download, so the release is made from the
//! commit the pin names: its `manifests/` and `templates/` become the v0.1.0 components
//! (rendered by `clusterctl-repo --source`), its manager the v0.1.0 image.

use crate::builds::pins;
use crate::support::paths;
use crate::support::steps::show;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What [`ensure`] made.
pub struct Previous {
    pub version: &'static str,
    pub commit: &'static str,
    /// The commit's source tree.
    pub source: PathBuf,
    /// Its `capd-manager` (debug build, as the test environment's own).
    pub manager: PathBuf,
}

/// The cached release, built first when missing.
pub fn ensure(repo: &Path) -> Result<Previous> {
    let (version, commit) = pins::PREVIOUS_RELEASE;
    let dir = paths::cache_dir().join("previous-release").join(commit);
    let source = dir.join("src");
    let manager = dir.join("capd-manager");
    let done = dir.join(".complete");
    // `cargo xtask test` builds it in the background while the kind suite may ask for
    // it: the second caller waits for the first (an exclusive lock beside the directory).
    std::fs::create_dir_all(paths::cache_dir().join("previous-release"))
        .context("creating the previous-release cache")?;
    let lock_path = dir.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if done.exists() && manager.exists() && source.is_dir() {
        return Ok(Previous {
            version,
            commit,
            source,
            manager,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&source).with_context(|| format!("creating {}", source.display()))?;
    extract(repo, commit, &source)?;

    // A target directory of its own: the workspace's must keep the current build's
    // binaries. Removed afterwards; only the binary is kept.
    let target = dir.join("target");
    let mut build = Command::new("cargo");
    build
        .current_dir(&source)
        .args(["build", "--locked", "-p", "capd-manager"])
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_INCREMENTAL", "0");
    eprintln!("previous release {version} ({commit}): {}", show(&build));
    let status = build
        .status()
        .with_context(|| format!("running {}", show(&build)))?;
    if !status.success() {
        bail!("{} in {}: {status}", show(&build), source.display());
    }
    let built = target.join("debug/capd-manager");
    std::fs::copy(&built, &manager)
        .with_context(|| format!("copying {} to {}", built.display(), manager.display()))?;
    std::fs::remove_dir_all(&target).with_context(|| format!("removing {}", target.display()))?;
    std::fs::write(&done, commit).with_context(|| format!("writing {}", done.display()))?;
    Ok(Previous {
        version,
        commit,
        source,
        manager,
    })
}

/// `git archive <commit>` of `repo`, unpacked into `into`; the commit is fetched from
/// `origin` first when the checkout lacks it (a shallow clone).
fn extract(repo: &Path, commit: &str, into: &Path) -> Result<()> {
    let git = |args: &[&str]| {
        let mut c = Command::new("git");
        c.arg("-C").arg(repo).args(args);
        c
    };
    let have = git(&["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        let mut fetch = git(&["fetch", "--quiet", "origin", commit]);
        let fetched = fetch.status().map(|s| s.success()).unwrap_or(false);
        if !fetched {
            bail!(
                "the previous release's commit {commit} (builds/pins.rs PREVIOUS_RELEASE) is not in {} and `{}` could not fetch it; a shallow clone needs `git fetch --unshallow`",
                repo.display(),
                show(&fetch)
            );
        }
    }
    let archive = git(&["archive", "--format=tar", commit])
        .output()
        .with_context(|| format!("running git archive {commit}"))?;
    if !archive.status.success() {
        bail!(
            "git archive {commit}: {}",
            String::from_utf8_lossy(&archive.stderr).trim()
        );
    }
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("-C").arg(into).stdin(Stdio::piped());
    let mut child = tar.spawn().context("running tar")?;
    let written = {
        use std::io::Write;
        match child.stdin.take() {
            Some(mut stdin) => stdin
                .write_all(&archive.stdout)
                .map_err(anyhow::Error::from),
            None => Err(anyhow!("tar has no stdin")),
        }
    };
    // Waited for in every case (a tar that exits early breaks the pipe).
    let status = child.wait().context("waiting for tar")?;
    written.context("writing the archive to tar")?;
    if !status.success() {
        bail!("tar -x -C {}: {status}", into.display());
    }
    Ok(())
}
