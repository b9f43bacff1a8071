//! What the tests build: the `capd-manager` binary (with cargo) and its container image
//! (with the repository's Dockerfile, offline).

use crate::cmd::{docker, run, show, stdout};
use anyhow::{anyhow, bail, Context, Result};
use capd_testenv::TestEnv;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds a binary of a workspace package with cargo and returns its path (cargo's own
/// report, so `CARGO_TARGET_DIR` and profiles are honoured). Release builds strip symbols.
pub fn cargo_build(package: &str, bin: &str, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::repo_root()).args([
        "build",
        "-p",
        package,
        "--bin",
        bin,
        "--message-format=json-render-diagnostics",
    ]);
    if release {
        cmd.arg("--release")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    let shown = show(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` exited with {} (compiler output above)",
            out.status
        );
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin {
            if let Some(exe) = msg["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    Err(anyhow!("`{shown}` reported no executable for {bin}"))
}

/// The debug `capd-manager`, built once per test binary.
pub fn manager_binary() -> Result<PathBuf> {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .map_err(|_| anyhow!("manager build lock poisoned"))?;
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let p = cargo_build("capd-manager", "capd-manager", false)?;
    *built = Some(p.clone());
    Ok(p)
}

/// An image built from the repository's Dockerfile.
#[derive(Debug, Clone)]
pub struct Image {
    pub tag: String,
    pub id: String,
    pub size_bytes: u64,
    pub build_time: Duration,
}

/// The image's id, if the tag exists.
pub fn image_id(env: &TestEnv, tag: &str) -> Option<String> {
    let out = docker(env)
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds `tag` from the repository's Dockerfile the offline way: the classic builder
/// (`DOCKER_BUILDKIT=0`), the environment's base image as builder and runtime image,
/// and `binary` (built on the host by cargo) handed in through `PREBUILT`. The build
/// context is a directory holding only that binary. A previous image of the same tag
/// is removed once replaced, so repeated runs don't pile up layers.
pub fn build_image(env: &TestEnv, tag: &str, binary: &Path) -> Result<Image> {
    let root = crate::repo_root();
    let ctx = crate::scratch_dir(&format!("image-context-{}", tag.replace(['/', ':'], "_")))?;
    let staged = ctx.join("capd-manager");
    std::fs::copy(binary, &staged)
        .with_context(|| format!("copying {} to {}", binary.display(), staged.display()))?;
    let base = &env.state.images.base;
    let previous = image_id(env, tag);
    let start = Instant::now();
    let mut cmd = docker(env);
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--force-rm", "-t", tag])
        .args(["--label", &format!("{}=image", capd_testenv::TEST_LABEL)])
        .arg("-f")
        .arg(root.join("Dockerfile"))
        .args(["--build-arg", &format!("BUILDER_IMAGE={base}")])
        .args(["--build-arg", &format!("RUNTIME_IMAGE={base}")])
        .args(["--build-arg", "PREBUILT=capd-manager"])
        .arg(&ctx);
    run(&mut cmd)?;
    let build_time = start.elapsed();
    let id = image_id(env, tag)
        .ok_or_else(|| anyhow!("docker build succeeded but image {tag} is not there"))?;
    if let Some(old) = previous.filter(|old| *old != id) {
        // Fails harmlessly if a container still uses it.
        let _ = docker(env)
            .args(["image", "rm", &old])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let size = stdout(docker(env).args(["image", "inspect", "--format", "{{.Size}}", tag]))?;
    let size_bytes = size
        .trim()
        .parse()
        .with_context(|| format!("image {tag}: size {size:?} is not a number"))?;
    let _ = std::fs::remove_dir_all(&ctx);
    Ok(Image {
        tag: tag.to_string(),
        id,
        size_bytes,
        build_time,
    })
}

/// The tag the tests give the manager image.
pub const TEST_IMAGE: &str = "localhost/capd-rs/capd-manager:e2e";

/// Human-readable bytes (MB = 10^6, as `docker images` prints them).
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
