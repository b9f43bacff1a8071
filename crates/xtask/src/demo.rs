//! `demo`: the README's main job. Brings the environment up, installs the provider's
//! CRDs, runs the manager (as an environment component, so `down` stops it), applies
//! the offline sample cluster and shows it provisioned.

use crate::steps::{wait_for, Outcome, Steps};
use crate::{paths, procs, up};
use anyhow::{bail, Context, Result};
use capd_testenv::{Component, EnvState};
use std::process::Command;
use std::time::Duration;

pub const MANAGER: &str = "capd-manager";
const HEALTH_PORT: u16 = 16481;
const METRICS_PORT: u16 = 16491;
const NAMESPACE: &str = "capd-demo";
const CLUSTER: &str = "demo";

/// Every YAML document in `dir` except kustomizations.
/// `${VAR}` substitution, as `clusterctl generate cluster` does; an unset variable is an error.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').with_context(|| "unterminated ${ in template")?;
        let name = &after[..end];
        let value = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).with_context(|| format!("template variable {name} is not set"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn start_manager(state: &EnvState) -> Result<Component> {
    let root = paths::workspace_root();
    let built = root.join("target/debug").join(MANAGER);
    let link = state.bin_dir.join(MANAGER);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&built, &link)?;
    if let Some(old) = state.components.iter().find(|c| c.name == MANAGER) {
        // Always restart: the binary may have been rebuilt since.
        procs::stop(old.pid, &link.to_string_lossy(), Duration::from_secs(15))?;
    }
    for port in [crate::paths::port(HEALTH_PORT), crate::paths::port(METRICS_PORT)] {
        if procs::port_open(port) {
            bail!("127.0.0.1:{port} is taken; capd-manager needs it");
        }
    }
    let log = state.log_dir.join(format!("{MANAGER}.log"));
    let args = vec![
        format!("--health-addr=127.0.0.1:{}", crate::paths::port(HEALTH_PORT)),
        format!("--diagnostics-address=127.0.0.1:{}", crate::paths::port(METRICS_PORT)),
        "--leader-elect".to_string(),
    ];
    let envs = [("KUBECONFIG", state.kubeconfig.display().to_string()), ("DOCKER_HOST", state.docker_host.clone())];
    let pid = procs::spawn(&link, &args, &envs, &log)?;
    wait_for("capd-manager /readyz", Duration::from_secs(30), || {
        if !procs::alive(pid, &link.to_string_lossy()) {
            bail!("capd-manager exited; see {}", log.display());
        }
        Ok(matches!(procs::http_get(crate::paths::port(HEALTH_PORT), "/readyz"), Ok((200, _))).then_some(()))
    })?;
    Ok(Component {
        name: MANAGER.into(),
        pid,
        version: env!("CARGO_PKG_VERSION").into(),
        ports: [("health".to_string(), crate::paths::port(HEALTH_PORT)), ("metrics".to_string(), crate::paths::port(METRICS_PORT))].into(),
        log,
    })
}

pub fn demo() -> Result<()> {
    let mut state = up::up()?;
    let mut steps = Steps::default();
    let root = paths::workspace_root();
    let client = up::client()?;
    steps.run("provider CRDs", |_| {
        crate::block_on(async { Ok(capd_testenv::install_provider_manifests(&client).await?) })?;
        Ok(Outcome::Done(()))
    })?;
    steps.run("build capd-manager", |log| {
        log.run(Command::new("cargo").current_dir(&root).args(["build", "-p", "capd-manager"]))?;
        Ok(Outcome::Done(()))
    })?;
    let manager = steps.run("start capd-manager", |_| Ok(Outcome::Done(start_manager(&state)?)))?;
    state.components.retain(|c| c.name != MANAGER);
    state.components.push(manager);
    crate::steps::write_file(&paths::env_file(), serde_json::to_vec_pretty(&state)?)?;

    steps.run("sample cluster", |_| {
        let (repo_name, tag) = state.images.haproxy.rsplit_once(':').context("haproxy image without a tag")?;
        let repo = repo_name.rsplit_once('/').map(|(r, _)| r).unwrap_or(repo_name);
        let template = std::fs::read_to_string(root.join("templates/cluster-template-offline.yaml"))?;
        let rendered = render(
            &template,
            &[
                ("CLUSTER_NAME", CLUSTER),
                ("NAMESPACE", NAMESPACE),
                ("KUBERNETES_VERSION", crate::pins::KUBERNETES),
                ("LB_IMAGE_REPOSITORY", repo),
                ("LB_IMAGE_TAG", tag),
                ("NODE_IMAGE", &state.images.node),
            ],
        )?;
        let mut docs = vec![serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
        docs.extend(capd_testenv::manifests::parse_docs(&rendered, "templates/cluster-template-offline.yaml")?);
        crate::capi::apply(&client, &docs)?;
        Ok(Outcome::Done(()))
    })?;
    steps.run("wait until provisioned", |_| {
        let get = |what: &str, path: &str| -> Result<String> {
            let out = Command::new(state.bin_dir.join("kubectl"))
                .env("KUBECONFIG", &state.kubeconfig)
                .args(["get", what, "-n", NAMESPACE, "-o", &format!("jsonpath={path}")])
                .output()?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        wait_for("the sample cluster and its machines to be provisioned", Duration::from_secs(300), || {
            let cluster = get(&format!("cluster/{CLUSTER}"), "{.status.initialization.infrastructureProvisioned}")?;
            let machines = get("dockermachines", "{.items[*].status.initialization.provisioned}")?;
            Ok((cluster == "true" && machines == "true true").then_some(()))
        })?;
        Ok(Outcome::Done(()))
    })?;
    eprintln!("\n{}", steps.summary());
    let show = |args: &[&str]| -> Result<()> {
        let bin = if args[0] == "clusterctl" { "clusterctl" } else { "kubectl" };
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
    show(&["kubectl", "get", "clusters,dockerclusters,machines,dockermachines", "-n", NAMESPACE])?;
    show(&["clusterctl", "describe", "cluster", CLUSTER, "-n", NAMESPACE])?;
    eprintln!("\nthe manager keeps running (log: {}); `cargo xtask down` stops everything", state.log_dir.join("capd-manager.log").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_rejects_unset_ones() {
        assert_eq!(render("a ${X} b ${Y}", &[("X", "1"), ("Y", "2")]).unwrap(), "a 1 b 2");
        let err = render("${MISSING}", &[]).unwrap_err().to_string();
        assert!(err.contains("MISSING"), "{err}");
    }
}
