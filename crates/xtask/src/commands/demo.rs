//! `demo`: the README's main job. Brings the environment up, installs the provider's
//! CRDs, runs the manager (as an environment component, so `down` stops it), renders the
//! default flavour with clusterctl (kubeadm control plane, one worker, the pod network),
//! waits until the workload cluster's Nodes are Ready and shows it.

use crate::environment::lifecycle;
use crate::environment::manager::{self, MANAGER};
use crate::support::paths;
use crate::support::steps::{wait_for_every, Outcome, Steps};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Duration;

const NAMESPACE: &str = "capd-demo";
const CLUSTER: &str = "demo";
/// The sample workload (a Deployment and a Service) and the pod that asks it.
const HELLO: &str = include_str!("../../demo/hello.yaml");
const TOOLBOX: &str = crate::builds::nodeimage::TOOLBOX_IMAGE;
const CLIENT: &str = "hello-client";
/// Bounded retries: the Service's endpoints and DNS settle a moment after the rollout.
const CLIENT_SCRIPT: &str = "for i in $(seq 30); do timeout 3 busybox wget -qO- http://hello && exit 0; sleep 1; done; exit 1";

pub fn demo() -> Result<()> {
    let mut state = lifecycle::up()?;
    let mut steps = Steps::default();
    let root = paths::workspace_root();
    let client = lifecycle::client()?;
    steps.run("provider CRDs", |_| {
        crate::block_on(async { Ok(capd_testenv::install_provider_manifests(&client).await?) })?;
        Ok(Outcome::Done(()))
    })?;
    steps.run("build capd-manager", |log| {
        log.run(
            Command::new("cargo")
                .current_dir(&root)
                .args(["build", "-p", "capd-manager"]),
        )?;
        Ok(Outcome::Done(()))
    })?;
    let manager = steps.run("start capd-manager", |_| {
        Ok(Outcome::Done(manager::start(&state)?))
    })?;
    state.components.retain(|c| c.name != MANAGER);
    state.components.push(manager);
    crate::support::steps::write_file(&paths::env_file(), serde_json::to_vec_pretty(&state)?)?;

    let clusterctl = |args: &[&str]| -> Command {
        let mut c = Command::new(state.bin_dir.join("clusterctl"));
        c.env("KUBECONFIG", &state.kubeconfig)
            .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
            .args(args);
        c
    };
    steps.run("sample cluster", |log| {
        // As a user would: the default flavour, rendered by clusterctl.
        let template = root.join("templates/cluster-template.yaml");
        let rendered = log.output(
            clusterctl(&["generate", "cluster", CLUSTER, "--target-namespace", NAMESPACE])
                .args(["--kubernetes-version", crate::builds::pins::KUBERNETES])
                .args(["--control-plane-machine-count", "1", "--worker-machine-count", "1", "--from"])
                .arg(&template),
        )?;
        let mut docs = vec![serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
        docs.extend(capd_testenv::manifests::parse_docs(&rendered, "templates/cluster-template.yaml")?);
        crate::environment::capi::apply(&client, &docs)?;
        Ok(Outcome::Done(()))
    })?;
    let workload_kubeconfig = state
        .log_dir
        .parent()
        .unwrap_or(&state.log_dir)
        .join(format!("{CLUSTER}.kubeconfig"));
    steps.run("wait for the control plane", |_| {
        wait_for_every(
            "the workload cluster's kubeconfig (control plane initialized)",
            Duration::from_secs(600),
            Duration::from_secs(3),
            || {
                let out = clusterctl(&["get", "kubeconfig", CLUSTER, "-n", NAMESPACE]).output()?;
                if out.status.success() && !out.stdout.is_empty() {
                    crate::support::steps::write_file(&workload_kubeconfig, &out.stdout)?;
                    return Ok(Some(()));
                }
                Ok(None)
            },
        )?;
        Ok(Outcome::Done(()))
    })?;
    steps.run("wait for every Node Ready", |_| {
        wait_for_every("2 Ready Nodes in the workload cluster", Duration::from_secs(900), Duration::from_secs(3), || {
            let out = Command::new(state.bin_dir.join("kubectl"))
                .env("KUBECONFIG", &workload_kubeconfig)
                .args(["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let ready: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            Ok((ready.len() == 2 && ready.iter().all(|s| *s == "True")).then_some(()))
        })?;
        Ok(Outcome::Done(()))
    })?;
    let kubectl_wl = |args: &[&str]| -> Command {
        let mut c = Command::new(state.bin_dir.join("kubectl"));
        c.env("KUBECONFIG", &workload_kubeconfig).args(args);
        c
    };
    let answer = steps.run("sample workload", |log| {
        let manifest = state
            .log_dir
            .parent()
            .unwrap_or(&state.log_dir)
            .join("demo-hello.yaml");
        crate::support::steps::write_file(&manifest, HELLO)?;
        log.run(kubectl_wl(&["apply", "-f"]).arg(&manifest))?;
        log.run(&mut kubectl_wl(&[
            "rollout",
            "status",
            "deployment/hello",
            "--timeout=300s",
        ]))?;
        log.run(&mut kubectl_wl(&[
            "delete",
            "pod",
            CLIENT,
            "--ignore-not-found",
            "--wait",
        ]))?;
        log.run(&mut kubectl_wl(&[
            "run",
            CLIENT,
            "--image",
            TOOLBOX,
            "--image-pull-policy=Never",
            "--restart=Never",
            "--command",
            "--",
            "sh",
            "-c",
            CLIENT_SCRIPT,
        ]))?;
        log.run(&mut kubectl_wl(&[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            &format!("pod/{CLIENT}"),
            "--timeout=180s",
        ]))?;
        Ok(Outcome::Done(
            log.output(&mut kubectl_wl(&["logs", CLIENT]))?
                .trim()
                .to_string(),
        ))
    })?;
    // Machine and control-plane health checks settle a little after the Nodes are
    // Ready: show the cluster once Cluster API says it is Available, not before.
    steps.run("wait for the Cluster to be Available", |_| {
        wait_for_every(
            "Cluster demo Available",
            Duration::from_secs(300),
            Duration::from_secs(3),
            || {
                let out = Command::new(state.bin_dir.join("kubectl"))
                    .env("KUBECONFIG", &state.kubeconfig)
                    .args([
                        "get",
                        "cluster",
                        CLUSTER,
                        "-n",
                        NAMESPACE,
                        "-o",
                        "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
                    ])
                    .output()?;
                Ok((String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(()))
            },
        )?;
        Ok(Outcome::Done(()))
    })?;
    eprintln!("\n{}", steps.summary());
    let show = |args: &[&str]| -> Result<()> {
        let bin = if args[0] == "clusterctl" {
            "clusterctl"
        } else {
            "kubectl"
        };
        eprintln!("$ {}", args.join(" "));
        let st = Command::new(state.bin_dir.join(bin))
            .env("KUBECONFIG", &state.kubeconfig)
            .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
            .args(&args[1..])
            .status()?;
        if !st.success() {
            bail!("`{}` failed", args.join(" "));
        }
        Ok(())
    };
    show(&[
        "kubectl",
        "get",
        "clusters,dockerclusters,machines,dockermachines",
        "-n",
        NAMESPACE,
    ])?;
    show(&[
        "clusterctl",
        "describe",
        "cluster",
        CLUSTER,
        "-n",
        NAMESPACE,
    ])?;
    let wl = workload_kubeconfig.display().to_string();
    show(&["kubectl", "--kubeconfig", &wl, "get", "nodes", "-o", "wide"])?;
    show(&[
        "kubectl",
        "--kubeconfig",
        &wl,
        "get",
        "pods",
        "-A",
        "-o",
        "wide",
    ])?;
    eprintln!("$ kubectl --kubeconfig {wl} run {CLIENT} ... -- busybox wget -qO- http://hello   # the sample workload, through its Service");
    eprintln!("{answer}");
    eprintln!("\nthe workload cluster's kubeconfig: {wl}");
    eprintln!(
        "\nthe manager keeps running (log: {}); `cargo xtask down` stops everything",
        state.log_dir.join("capd-manager.log").display()
    );
    Ok(())
}
