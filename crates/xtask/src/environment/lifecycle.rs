//! `up` and `down`: every step in order, each skipped when already done, and on a
//! failure everything this run started is stopped again.

use crate::builds::gobuild::{self, GoSet};
use crate::builds::images;
use crate::environment::engine::{self, Engine};
use crate::environment::manager::MANAGER;
use crate::environment::pki::Pki;
use crate::environment::{capi, plane};
use crate::support::paths;
use crate::support::procs;
use crate::support::steps::{Outcome, StepLog, Steps};
use anyhow::{anyhow, Context, Result};
use capd_testenv::{Component, EnvState, Images};
use std::path::Path;
use std::time::{Duration, Instant};

fn engine_file() -> std::path::PathBuf {
    paths::state_dir().join("engine.json")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

pub fn load_state() -> Option<EnvState> {
    read_json(&paths::env_file())
}

fn components_file() -> std::path::PathBuf {
    paths::state_dir().join("components.json")
}

/// Every process recorded as started, written as soon as each one starts, so that even
/// a crashed `up` leaves a record for the next `up` or `down`.
pub fn load_components() -> Vec<Component> {
    let mut all: Vec<Component> = read_json(&components_file()).unwrap_or_default();
    for c in load_state().map(|s| s.components).unwrap_or_default() {
        if !all.iter().any(|a| a.name == c.name && a.pid == c.pid) {
            all.push(c);
        }
    }
    all
}

fn save_components(list: &[Component]) -> Result<()> {
    crate::support::steps::write_file(&components_file(), serde_json::to_vec_pretty(list)?)
}

/// Brings everything up; returns the state written to `env.json`.
pub fn up() -> Result<EnvState> {
    let start = Instant::now();
    std::fs::create_dir_all(paths::log_dir())?;
    let prev = load_components();
    let known_engine: Option<Engine> = read_json(&engine_file());
    let mut started: Vec<Component> = Vec::new();
    let mut started_dockerd = None;
    let res = up_inner(
        &prev,
        known_engine.as_ref(),
        &mut started,
        &mut started_dockerd,
    );
    match res {
        Ok((state, steps)) => {
            save_components(&state.components)?;
            eprintln!("\n{}", steps.summary());
            eprintln!(
                "environment up in {:.1}s; logs in {}",
                start.elapsed().as_secs_f64(),
                paths::log_dir().display()
            );
            eprintln!("use it with: eval \"$(cargo xtask env)\"");
            Ok(state)
        }
        Err(e) => {
            // Leave nothing half-started: stop what this run started, newest first.
            for c in started.iter().rev() {
                let _ = procs::stop(c.pid, &c.name_bin(), Duration::from_secs(10));
            }
            if let Some(pid) = started_dockerd {
                let _ = procs::stop(pid, engine::DOCKERD, Duration::from_secs(20));
                let _ = std::fs::remove_file(engine_file());
            }
            Err(e)
        }
    }
}

trait BinOf {
    fn name_bin(&self) -> String;
}

impl BinOf for Component {
    /// The binary a component runs, for the pid liveness check.
    fn name_bin(&self) -> String {
        let file = match self.name.as_str() {
            n if n == MANAGER => n.to_string(),
            n if n.starts_with("capi-") => capi::MANAGERS
                .iter()
                .find(|m| m.name == n)
                .map(|m| m.bin.to_string())
                .unwrap_or_else(|| n.to_string()),
            n => n.to_string(),
        };
        paths::bin_dir().join(file).to_string_lossy().into_owned()
    }
}

fn up_inner(
    prev: &[Component],
    known_engine: Option<&Engine>,
    started: &mut Vec<Component>,
    started_dockerd: &mut Option<u32>,
) -> Result<(EnvState, Steps)> {
    let mut steps = Steps::default();

    // Go builds are CPU-bound and image builds mostly I/O: run them side by side.
    let go = std::thread::spawn(|| -> Result<Steps> {
        let mut s = Steps::default();
        for set in gobuild::ALL {
            s.run(&format!("go build {}", set.name), |log| set.ensure(log))?;
        }
        Ok(s)
    });

    let images_res = (|| -> Result<(Engine, String, String, String, String)> {
        let mut eng = steps.run("docker engine", |log| {
            let r = engine::ensure_running(log, known_engine)?;
            if let Outcome::Done(e) = &r {
                *started_dockerd = e.dockerd_pid;
            }
            Ok(r)
        })?;
        steps.run("host limits", engine::ensure_host_limits)?;
        let base = steps.run("image base", |log| images::ensure(log, &images::BASE))?;
        steps.run("privileged containers", |log| {
            let r = engine::ensure_privileged(log, &mut eng, &base)?;
            if started_dockerd.is_some() || matches!(r, Outcome::Done(_)) {
                *started_dockerd = eng.dockerd_pid;
            }
            Ok(r)
        })?;
        std::fs::write(engine_file(), serde_json::to_vec_pretty(&eng)?)?;
        let haproxy = steps.run("image haproxy", |log| {
            let r = images::ensure(log, &images::HAPROXY)?;
            crate::builds::nodeimage::tag_default_haproxy(log, r.value())?;
            Ok(r)
        })?;
        let node = steps.run("image node", |log| images::ensure(log, &images::NODE))?;
        let net = steps.run("image net", |log| images::ensure(log, &images::NET))?;
        Ok((eng, haproxy, node, net, base))
    })();
    let go_res = go
        .join()
        .map_err(|_| anyhow!("the Go build thread panicked"))?;
    let (eng, haproxy, node_base, net, base) = images_res?;
    steps.done.extend(go_res?.done);
    // Needs the Go builds (kubelet, kubeadm, the control-plane binaries) and the images above.
    let node = steps.run("image kindest/node", |log| {
        crate::builds::nodeimage::ensure(log, &node_base, &base, &net)
    })?;
    let images = Images {
        haproxy,
        node,
        base,
    };

    link_binaries()?;
    let bin = paths::bin_dir();
    let pki = Pki {
        dir: paths::pki_dir(),
    };
    let regenerated = steps.run("certificates", |_| {
        if pki.complete() {
            return Ok(Outcome::Skipped(
                false,
                format!("present in {}", pki.dir.display()),
            ));
        }
        pki.generate()?;
        Ok(Outcome::Done(true))
    })?;
    // Components still running from before were started with the old certificates.
    let prev: &[Component] = if regenerated { &[] } else { prev };
    if regenerated {
        stop_components(&load_components());
    }

    let mut components = Vec::new();
    let mut keep = |c: Component, fresh: bool, started: &mut Vec<Component>| -> Result<()> {
        if fresh {
            started.push(c.clone());
        }
        components.push(c);
        let mut record: Vec<Component> = prev
            .iter()
            .filter(|p| !components.iter().any(|c| c.name == p.name))
            .cloned()
            .collect();
        record.extend(components.iter().cloned());
        save_components(&record)
    };
    let (c, fresh) = run_component(&mut steps, "etcd", |log| {
        plane::etcd(log, &bin.join("etcd"), prev)
    })?;
    keep(c, fresh, started)?;
    let (c, fresh) = run_component(&mut steps, "kube-apiserver", |log| {
        plane::apiserver(log, &bin.join("kube-apiserver"), &pki, prev)
    })?;
    keep(c, fresh, started)?;
    let (c, fresh) = run_component(&mut steps, "kube-controller-manager", |log| {
        plane::controller_manager(log, &bin.join("kube-controller-manager"), &pki, prev)
    })?;
    keep(c, fresh, started)?;

    let client = client()?;
    let module = steps.run("cluster-api module", |log| {
        Ok(Outcome::Done(gobuild::CLUSTER_API.module_dir(log)?))
    })?;
    steps.run("cluster-api CRDs", |log| {
        capi::apply_crds(log, &client, &module, &pki)
    })?;
    for m in &capi::MANAGERS {
        let (c, fresh) = run_component(&mut steps, m.name, |log| {
            capi::start_manager(log, m, &bin, &pki, prev)
        })?;
        keep(c, fresh, started)?;
    }
    steps.run("cluster-api webhooks", |log| {
        capi::apply_webhooks(log, &client, &module, &pki)
    })?;

    // Processes started by other commands (the demo's manager) stay recorded while alive.
    for c in prev.iter().filter(|c| c.name == MANAGER) {
        if procs::alive(c.pid, &c.name_bin()) {
            components.push(c.clone());
        }
    }
    let state = EnvState {
        kubeconfig: plane::kubeconfig_path(),
        api_server_url: plane::apiserver_url(),
        docker_host: eng.docker_host.clone(),
        bin_dir: bin,
        log_dir: paths::log_dir(),
        pki_dir: pki.dir.clone(),
        images,
        components,
    };
    crate::support::steps::write_file(&paths::env_file(), serde_json::to_vec_pretty(&state)?)?;
    Ok((state, steps))
}

fn run_component(
    steps: &mut Steps,
    name: &str,
    f: impl FnOnce(&StepLog) -> Result<Outcome<Component>>,
) -> Result<(Component, bool)> {
    let mut fresh = false;
    let c = steps.run(name, |log| {
        let r = f(log)?;
        fresh = matches!(r, Outcome::Done(_));
        Ok(r)
    })?;
    Ok((c, fresh))
}

pub fn client() -> Result<kube::Client> {
    crate::block_on(async {
        let kc = kube::config::Kubeconfig::read_from(plane::kubeconfig_path())?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(kube::Client::try_from(cfg)?)
    })
}

/// `<state>/bin/<name>` links to the cached binaries of the pinned versions.
fn link_binaries() -> Result<()> {
    let dir = paths::bin_dir();
    std::fs::create_dir_all(&dir)?;
    let sets: [&GoSet; 6] = gobuild::ALL;
    for set in sets {
        for b in set.binaries() {
            let name = b
                .file_name()
                .ok_or_else(|| anyhow!("binary without a name"))?;
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&b, &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
    }
    Ok(())
}

fn stop_components(components: &[Component]) {
    for c in components.iter().rev() {
        if let Err(e) = procs::stop(c.pid, &c.name_bin(), Duration::from_secs(15)) {
            eprintln!("    warning: stopping {} (pid {}): {e:#}", c.name, c.pid);
        }
    }
}

/// Stops every process `up` started and removes the project's containers.
pub fn down() -> Result<()> {
    let mut steps = Steps::default();
    let engine: Option<Engine> = read_json(&engine_file());
    steps.run("stop components", |_| {
        stop_components(&load_components());
        Ok(Outcome::Done(()))
    })?;
    steps.run("remove containers", |log| {
        if !engine::answers() {
            return Ok(Outcome::Skipped((), "no engine answers".into()));
        }
        let n = engine::remove_project_containers(log)?;
        log.line(&format!("removed {n} containers"));
        Ok(Outcome::Done(()))
    })?;
    steps.run("stop dockerd", |_| {
        match engine.as_ref().and_then(|e| e.dockerd_pid) {
            Some(pid) => {
                procs::stop(pid, engine::DOCKERD, Duration::from_secs(30))?;
                Ok(Outcome::Done(()))
            }
            None => Ok(Outcome::Skipped(
                (),
                "not started by this tool; left running".into(),
            )),
        }
    })?;
    // Objects in etcd would refer to containers that are gone: start clean next time.
    for p in [
        paths::env_file(),
        components_file(),
        engine_file(),
        paths::state_dir().join("etcd"),
    ] {
        if p.is_dir() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        } else if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    eprintln!("\n{}", steps.summary());
    Ok(())
}
