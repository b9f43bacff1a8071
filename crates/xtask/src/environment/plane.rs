//! The management plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager.
//! Each is reused when an earlier `up` left it running and healthy.

use crate::environment::pki::Pki;
use crate::support::procs;
use crate::support::steps::{wait_for, Outcome, StepLog};
use anyhow::{bail, Result};
use capd_testenv::Component;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ETCD_CLIENT_PORT: u16 = 23791;
const ETCD_PEER_PORT: u16 = 23801;
const APISERVER_PORT: u16 = 16443;
const KCM_PORT: u16 = 16257;

pub fn etcd_client_port() -> u16 {
    crate::support::paths::port(ETCD_CLIENT_PORT)
}

pub fn etcd_peer_port() -> u16 {
    crate::support::paths::port(ETCD_PEER_PORT)
}

/// How long a running but unready kube-apiserver gets before it is replaced.
const RUNNING_APISERVER_GRACE: Duration = Duration::from_secs(60);

pub fn apiserver_port() -> u16 {
    crate::support::paths::port(APISERVER_PORT)
}

pub fn kcm_port() -> u16 {
    crate::support::paths::port(KCM_PORT)
}

pub fn apiserver_url() -> String {
    format!("https://127.0.0.1:{}", apiserver_port())
}

pub fn kubeconfig_path() -> PathBuf {
    crate::support::paths::state_dir().join("admin.kubeconfig")
}

/// A component from the previous `up` that still runs, if any.
pub fn running<'a>(prev: &'a [Component], name: &str, bin: &Path) -> Option<&'a Component> {
    prev.iter()
        .find(|c| c.name == name && procs::alive(c.pid, &bin.to_string_lossy()))
}

fn component(name: &str, pid: u32, version: &str, ports: &[(&str, u16)], log: &Path) -> Component {
    Component {
        name: name.to_string(),
        pid,
        version: version.to_string(),
        ports: ports
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        log: log.to_path_buf(),
    }
}

fn log_of(name: &str) -> PathBuf {
    crate::support::paths::log_dir().join(format!("{name}.log"))
}

fn etcd_healthy() -> bool {
    matches!(procs::http_get(etcd_client_port(), "/health"), Ok((200, body)) if body.contains("true"))
}

/// Fails early, naming the port, when something else already listens there.
fn port_free(port: u16, what: &str) -> Result<()> {
    if procs::port_open(port) {
        bail!("127.0.0.1:{port} is taken by another process; {what} needs it (stop it, or `cargo xtask down`)");
    }
    Ok(())
}

pub fn etcd(_log: &StepLog, bin: &Path, prev: &[Component]) -> Result<Outcome<Component>> {
    if let Some(c) = running(prev, "etcd", bin) {
        if etcd_healthy() {
            return Ok(Outcome::Skipped(
                c.clone(),
                format!("running (pid {})", c.pid),
            ));
        }
    }
    port_free(etcd_client_port(), "etcd")?;
    port_free(etcd_peer_port(), "etcd")?;
    let data = crate::support::paths::state_dir().join("etcd");
    let client = format!("http://127.0.0.1:{}", etcd_client_port());
    let peer = format!("http://127.0.0.1:{}", etcd_peer_port());
    let args = vec![
        "--name=capd".to_string(),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=capd={peer}"),
        // Test data: durability is not worth the fsync latency.
        "--unsafe-no-fsync".to_string(),
        "--log-level=warn".to_string(),
    ];
    let log = log_of("etcd");
    let pid = procs::spawn(bin, &args, &[], &log)?;
    let c = component(
        "etcd",
        pid,
        crate::builds::pins::ETCD,
        &[("client", etcd_client_port()), ("peer", etcd_peer_port())],
        &log,
    );
    wait_for("etcd /health", Duration::from_secs(60), || {
        if !procs::alive(pid, &bin.to_string_lossy()) {
            bail!(
                "etcd (pid {pid}) exited; see {} [{}]",
                log.display(),
                procs::describe(pid)
            );
        }
        Ok(etcd_healthy().then_some(()))
    })?;
    Ok(Outcome::Done(c))
}

/// GET `path` on an HTTPS endpoint with the admin kubeconfig's credentials.
pub fn kube_get(
    kubeconfig: &Path,
    url: Option<&str>,
    insecure: bool,
    path: &str,
) -> Result<String> {
    crate::block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        if let Some(u) = url {
            cfg.cluster_url = u.parse()?;
        }
        cfg.accept_invalid_certs = insecure;
        cfg.connect_timeout = Some(Duration::from_secs(2));
        cfg.read_timeout = Some(Duration::from_secs(5));
        let client = kube::Client::try_from(cfg)?;
        let req = http::Request::get(path).body(Vec::new())?;
        Ok(client.request_text(req).await?)
    })
}

pub fn apiserver(
    _log: &StepLog,
    bin: &Path,
    pki: &Pki,
    prev: &[Component],
) -> Result<Outcome<Component>> {
    let kubeconfig = kubeconfig_path();
    crate::support::steps::write_file(
        &kubeconfig,
        crate::environment::pki::kubeconfig(pki, &apiserver_url())?,
    )?;
    if let Some(c) = running(prev, "kube-apiserver", bin) {
        // Running but not ready: right after etcd came back it needs a moment to
        // reconnect. Give it that; replace it only if it stays unready.
        let ready = wait_for(
            "the running kube-apiserver /readyz",
            RUNNING_APISERVER_GRACE,
            || {
                Ok(kube_get(&kubeconfig, None, false, "/readyz")
                    .ok()
                    .map(|_| ()))
            },
        );
        if ready.is_ok() {
            return Ok(Outcome::Skipped(
                c.clone(),
                format!("running (pid {})", c.pid),
            ));
        }
        procs::stop(c.pid, &bin.to_string_lossy(), Duration::from_secs(15))?;
    }
    port_free(apiserver_port(), "kube-apiserver")?;
    let args = capd_testenv::apiserver_flags(
        &pki.dir,
        &format!("http://127.0.0.1:{}", etcd_client_port()),
        None,
        apiserver_port(),
        &crate::support::paths::state_dir().join("apiserver"),
    );
    let log = log_of("kube-apiserver");
    let pid = procs::spawn(bin, &args, &[], &log)?;
    let c = component(
        "kube-apiserver",
        pid,
        crate::builds::pins::KUBERNETES,
        &[("secure", apiserver_port())],
        &log,
    );
    wait_for("kube-apiserver /readyz", Duration::from_secs(120), || {
        if !procs::alive(pid, &bin.to_string_lossy()) {
            bail!("kube-apiserver exited; see {}", log.display());
        }
        Ok(kube_get(&kubeconfig, None, false, "/readyz")
            .ok()
            .map(|_| ()))
    })?;
    Ok(Outcome::Done(c))
}

pub fn controller_manager(
    _log: &StepLog,
    bin: &Path,
    pki: &Pki,
    prev: &[Component],
) -> Result<Outcome<Component>> {
    let kubeconfig = kubeconfig_path();
    let url = format!("https://127.0.0.1:{}", kcm_port());
    let healthy = || kube_get(&kubeconfig, Some(&url), true, "/healthz").is_ok();
    if let Some(c) = running(prev, "kube-controller-manager", bin) {
        if healthy() {
            return Ok(Outcome::Skipped(
                c.clone(),
                format!("running (pid {})", c.pid),
            ));
        }
    }
    port_free(kcm_port(), "kube-controller-manager")?;
    let kc = kubeconfig.display().to_string();
    let args = vec![
        format!("--kubeconfig={kc}"),
        format!("--authentication-kubeconfig={kc}"),
        format!("--authorization-kubeconfig={kc}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={}", kcm_port()),
        format!(
            "--cert-dir={}",
            crate::support::paths::state_dir().join("kcm").display()
        ),
        "--leader-elect=false".into(),
        format!(
            "--service-account-private-key-file={}",
            pki.sa_key().display()
        ),
        format!("--root-ca-file={}", pki.ca_crt().display()),
        format!("--cluster-signing-cert-file={}", pki.ca_crt().display()),
        format!("--cluster-signing-key-file={}", pki.ca_key().display()),
        "--use-service-account-credentials=false".into(),
        "--v=1".into(),
    ];
    let log = log_of("kube-controller-manager");
    let pid = procs::spawn(bin, &args, &[], &log)?;
    let c = component(
        "kube-controller-manager",
        pid,
        crate::builds::pins::KUBERNETES,
        &[("secure", kcm_port())],
        &log,
    );
    wait_for(
        "kube-controller-manager /healthz",
        Duration::from_secs(60),
        || {
            if !procs::alive(pid, &bin.to_string_lossy()) {
                bail!("kube-controller-manager exited; see {}", log.display());
            }
            Ok(healthy().then_some(()))
        },
    )?;
    Ok(Outcome::Done(c))
}
