//! `cargo xtask bench`: capd-rs side by side with CAPD (Cluster API's Go Docker
//! provider) and with raw Docker. This side builds what the benchmark runs (CAPD from
//! Go modules, on demand and never in `up`; the capd-rs manager and the `capd-bench`
//! driver in release mode) and hands over to `capd-bench` (crates/bench), which starts a
//! private management plane per provider and measures. All arguments are passed on:
//! `cargo xtask bench --help` prints the driver's options.

use crate::builds::gobuild::{CAPD, CLUSTER_API};
use crate::support::paths;
use crate::support::steps::{Outcome, Steps};
use anyhow::{bail, Context, Result};
use std::process::Command;

pub fn bench(args: &[String]) -> Result<()> {
    let root = paths::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let driver = target.join("release/capd-bench");
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // Help needs neither CAPD nor the manager: build the driver only and ask it.
        let status = Command::new("cargo")
            .current_dir(&root)
            .args(["build", "--quiet", "--release", "-p", "capd-bench"])
            .status()?;
        if !status.success() {
            bail!("building capd-bench failed");
        }
        Command::new(&driver)
            .args(["run", "--help"])
            .status()
            .with_context(|| format!("starting {}", driver.display()))?;
        return Ok(());
    }
    let mut steps = Steps::default();
    let capd_bin = steps.run("go build capd", |log| {
        let out = CAPD.ensure(log)?;
        let bin = CAPD
            .binaries()
            .into_iter()
            .next()
            .context("the CAPD set names no binary")?;
        Ok(match out {
            Outcome::Done(()) => Outcome::Done(bin),
            Outcome::Skipped((), why) => Outcome::Skipped(bin, why),
        })
    })?;
    let (capd_module, capi_module) = steps.run("module sources", |log| {
        Ok(Outcome::Done((
            CAPD.module_dir(log)?,
            CLUSTER_API.module_dir(log)?,
        )))
    })?;
    steps.run("build capd-manager and capd-bench (release)", |log| {
        log.run(Command::new("cargo").current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "capd-manager",
            "-p",
            "capd-bench",
        ]))?;
        Ok(Outcome::Done(()))
    })?;
    let manager = target.join("release/capd-manager");
    let mut cmd = Command::new(&driver);
    cmd.current_dir(&root)
        .arg("run")
        .arg("--capd-bin")
        .arg(&capd_bin)
        .arg("--capd-module")
        .arg(&capd_module)
        .arg("--capi-module")
        .arg(&capi_module)
        .arg("--manager-bin")
        .arg(&manager)
        // clusters/machines/churn bootstrap plain systemd nodes (files and commands, no
        // kubelet): the light node image, not the Kubernetes one, whose 716 MiB /var (the
        // preloaded images) every node's /var volume would copy (50 nodes: 35 GiB of disk).
        .arg("--node-image")
        .arg(crate::builds::images::NODE.tag())
        .args(args);
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", driver.display()))?;
    if !status.success() {
        bail!("capd-bench exited with {status}");
    }
    Ok(())
}
