//! What the workload-cluster tests (default flavour, the book's quick start) share: the
//! containers of a cluster, and a guard that removes them whatever happened.

use crate::cmd::docker;
use capd_testenv::TestEnv;

/// IDs of every container, running or not, labelled `io.x-k8s.kind.cluster=<cluster>`.
/// A namespaced API for Cluster API objects of `group`/`kind` at v1beta2, untyped.
pub fn v1beta2(
    client: &kube::Client,
    ns: &str,
    group: &str,
    kind: &str,
) -> kube::Api<kube::api::DynamicObject> {
    kube::Api::namespaced_with(
        client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group, "v1beta2", kind,
        )),
    )
}

pub fn containers_of(env: &TestEnv, cluster: &str) -> Vec<String> {
    let out = docker(env)
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={cluster}"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace().map(String::from).collect()
}

/// Removes what a failed run left, so the next run starts clean.
pub struct Cleanup<'a> {
    pub env: &'a TestEnv,
    pub cluster: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = containers_of(self.env, &self.cluster);
        if !ids.is_empty() {
            let _ = docker(self.env)
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
    }
}

/// What a person debugging a stuck workload cluster looks at first, for a failure
/// message: each Node that is not Ready with its conditions, its kubelet's last log
/// lines and its containers; and how the load balancer sees its API server backends.
pub async fn diagnose(
    env: &TestEnv,
    cluster: &str,
    nodes: &kube::Api<k8s_openapi::api::core::v1::Node>,
) -> String {
    use kube::ResourceExt;
    let mut out = String::new();
    match nodes.list(&Default::default()).await {
        Err(e) => out.push_str(&format!("\nlisting Nodes: {e}")),
        Ok(list) => {
            for n in list.items {
                let conditions = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.clone())
                    .unwrap_or_default();
                if conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
                {
                    continue;
                }
                out.push_str(&format!("\nNode {} is not Ready:", n.name_any()));
                for c in &conditions {
                    out.push_str(&format!(
                        "\n  {} {} {}: {}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    ));
                }
                for (what, args) in [
                    (
                        "kubelet log",
                        vec![
                            "journalctl",
                            "-u",
                            "kubelet",
                            "--no-pager",
                            "-o",
                            "cat",
                            "-n",
                            "25",
                        ],
                    ),
                    ("containers", vec!["crictl", "ps", "-a"]),
                ] {
                    out.push_str(&format!(
                        "\n  {what}:\n{}",
                        indent(&exec_in(env, &n.name_any(), &args))
                    ));
                }
            }
        }
    }
    out.push_str(&format!(
        "\nload balancer backends:\n{}",
        indent(&load_balancer_backends(env, cluster))
    ));
    // A full disk stops kubelets and kubeadm in ways that look like anything else.
    let df = std::process::Command::new("df")
        .args(["-h", "/", "/var/lib/docker"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_else(|e| format!("(df: {e})"));
    out.push_str(&format!("\ndisk space on this host:\n{}", indent(&df)));
    out
}

fn exec_in(env: &TestEnv, container: &str, args: &[&str]) -> String {
    match docker(env).arg("exec").arg(container).args(args).output() {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("(docker exec {container}: {e})"),
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// HAProxy's own statistics (CSV) for the API server backends: name, status, last check.
fn load_balancer_backends(env: &TestEnv, cluster: &str) -> String {
    use std::io::{Read, Write};
    let lb = format!("{cluster}-lb");
    let ip = match docker(env)
        .args([
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            &lb,
        ])
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(e) => return format!("(docker inspect {lb}: {e})"),
    };
    let addr = format!("{ip}:8404");
    let fetch = || -> std::io::Result<String> {
        let sock: std::net::SocketAddr = addr
            .parse()
            .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(3))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
        s.write_all(b"GET /stats;csv HTTP/1.0\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    match fetch() {
        // pxname,svname,...: field 17 is the status, 18 the weight, 36 the last check.
        Ok(csv) => csv
            .lines()
            .filter(|l| l.starts_with("kube-apiservers,"))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!(
                    "{} status {} weight {} check {}\n",
                    f.get(1).unwrap_or(&""),
                    f.get(17).unwrap_or(&""),
                    f.get(18).unwrap_or(&""),
                    f.get(36).unwrap_or(&"")
                )
            })
            .collect(),
        Err(e) => format!("(HAProxy statistics at {addr}: {e})"),
    }
}

/// The version the suites give the provider's clusterctl repository.
pub const REPO_VERSION: &str = "v0.1.0";

/// Renders the provider's clusterctl repository (`cargo xtask clusterctl-repo`, Cluster
/// API's providers from the module cache) under `out`, its components naming `image`
/// when given; returns the `clusterctl.yaml` to pass as `--config`.
pub fn render_repo(
    out: &std::path::Path,
    image: Option<&str>,
) -> anyhow::Result<std::path::PathBuf> {
    render_repo_version(out, REPO_VERSION, image)
}

/// [`render_repo`] of the provider as `version`; versions rendered into the same `out`
/// sit side by side, as releases in a clusterctl repository do.
pub fn render_repo_version(
    out: &std::path::Path,
    version: &str,
    image: Option<&str>,
) -> anyhow::Result<std::path::PathBuf> {
    render_repo_from(out, version, image, None)
}

/// [`render_repo_version`] from the manifests and templates of the checkout `source`
/// (e.g. [`PreviousRelease::source`]) instead of this one.
pub fn render_repo_from(
    out: &std::path::Path,
    version: &str,
    image: Option<&str>,
    source: Option<&std::path::Path>,
) -> anyhow::Result<std::path::PathBuf> {
    use crate::cmd::{run, xtask};
    let out_s = out.display().to_string();
    let source_s = source.map(|s| s.display().to_string());
    let mut args = vec![
        "clusterctl-repo",
        "--version",
        version,
        "--out",
        &out_s,
        "--capi-from-module-cache",
    ];
    if let Some(image) = image {
        args.extend(["--image", image]);
    }
    if let Some(source) = &source_s {
        args.extend(["--source", source]);
    }
    run(&mut xtask(&args))?;
    Ok(out.join("clusterctl.yaml"))
}

/// The provider's previous release (`cargo xtask previous-release`: a pinned earlier
/// commit of this repository, built once and cached).
#[derive(Debug, Clone)]
pub struct PreviousRelease {
    pub version: String,
    pub commit: String,
    pub source: std::path::PathBuf,
    pub manager: std::path::PathBuf,
}

impl PreviousRelease {
    /// Builds it if needed; fails naming the command when it cannot.
    pub fn ensure() -> anyhow::Result<Self> {
        let out = crate::cmd::stdout(&mut crate::cmd::xtask(&["previous-release"]))?;
        Self::parse(&out)
    }

    /// `version commit source manager`, as the command prints it.
    fn parse(out: &str) -> anyhow::Result<Self> {
        let f: Vec<&str> = out.split_whitespace().collect();
        match f.as_slice() {
            [version, commit, source, manager] => Ok(Self {
                version: version.to_string(),
                commit: commit.to_string(),
                source: source.into(),
                manager: manager.into(),
            }),
            _ => anyhow::bail!(
                "cargo xtask previous-release printed {out:?}, not `version commit source manager`"
            ),
        }
    }
}

/// `clusterctl generate cluster <cluster> --flavor <flavour>` ("" for the default flavour) from the repository whose
/// `clusterctl.yaml` is `config`, against the management cluster of `kubeconfig`, as a
/// user of CAPD runs it: the YAML to apply.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    env: &TestEnv,
    kubeconfig: &std::path::Path,
    config: &std::path::Path,
    cluster: &str,
    ns: &str,
    flavour: &str,
    kubernetes_version: &str,
    workers: u32,
) -> anyhow::Result<String> {
    use crate::cmd::{clusterctl, stdout};
    let config_home = config
        .parent()
        .map(|d| d.join("xdg"))
        .unwrap_or_else(|| "xdg".into());
    let mut cmd = clusterctl(env, kubeconfig, &config_home);
    cmd.args(["generate", "cluster", cluster, "--config"])
        .arg(config)
        .args(["--infrastructure", &format!("docker:{REPO_VERSION}")])
        .args(["--target-namespace", ns]);
    // No flavour: the default one (cluster-template.yaml).
    if !flavour.is_empty() {
        cmd.args(["--flavor", flavour]);
    }
    stdout(
        cmd.args([
            "--kubernetes-version",
            kubernetes_version,
            "--control-plane-machine-count",
            "1",
        ])
        .args(["--worker-machine-count", &workers.to_string()]),
    )
}

/// [`render_repo`] under `out`, then [`generate`] against the test environment.
pub fn generate_from_repo(
    env: &TestEnv,
    out: &std::path::Path,
    cluster: &str,
    ns: &str,
    flavour: &str,
    kubernetes_version: &str,
    workers: u32,
) -> anyhow::Result<String> {
    let config = render_repo(out, None)?;
    generate(
        env,
        &env.state.kubeconfig,
        &config,
        cluster,
        ns,
        flavour,
        kubernetes_version,
        workers,
    )
}

/// The workload cluster's client through `clusterctl get kubeconfig` against the
/// management cluster of `kubeconfig`, once the control plane is up; fails early when
/// the out-of-cluster `manager`, if any, exits.
pub async fn workload_client(
    env: &TestEnv,
    kubeconfig: &std::path::Path,
    config_home: &std::path::Path,
    cluster: &str,
    ns: &str,
    mut manager: Option<&mut crate::proc::Proc>,
    timeout: std::time::Duration,
) -> anyhow::Result<kube::Client> {
    use crate::cmd::{clusterctl, stdout};
    let workload_kubeconfig = capd_testenv::poll_until("the workload kubeconfig", timeout, || {
        let c = stdout(clusterctl(env, kubeconfig, config_home).args([
            "get",
            "kubeconfig",
            cluster,
            "-n",
            ns,
        ]));
        let mgr = match manager.as_deref_mut() {
            Some(m) => m.check_running().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        async move {
            mgr?;
            c.map_err(|e| format!("{e:#}"))
        }
    })
    .await
    .map_err(|e| {
        let log = manager
            .as_deref()
            .map(|m| format!("\nmanager log:\n{}", m.log_tail(40)))
            .unwrap_or_default();
        anyhow::anyhow!("{e}{log}")
    })?;
    Ok(
        capd_testenv::client_from_kubeconfig_yaml(&workload_kubeconfig, "the workload kubeconfig")
            .await?,
    )
}

/// Waits until exactly `want` Nodes exist and all are Ready; on timeout the error says
/// what was seen and why the Nodes that are not Ready are not (see [`diagnose`]).
pub async fn wait_ready_nodes(
    env: &TestEnv,
    cluster: &str,
    nodes: &kube::Api<k8s_openapi::api::core::v1::Node>,
    want: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use kube::ResourceExt;
    let res = capd_testenv::poll_until(&format!("{want} Ready Nodes"), timeout, || {
        let nodes = nodes.clone();
        async move {
            let list = nodes
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let states: Vec<(String, bool)> = list
                .items
                .iter()
                .map(|n| (n.name_any(), node_ready(n)))
                .collect();
            if states.len() == want && states.iter().all(|s| s.1) {
                Ok(())
            } else {
                Err(format!("nodes {states:?}"))
            }
        }
    })
    .await;
    match res {
        Ok(()) => Ok(()),
        Err(e) => anyhow::bail!("{e}\n{}", diagnose(env, cluster, nodes).await),
    }
}

pub fn node_ready(n: &k8s_openapi::api::core::v1::Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::PreviousRelease;

    #[test]
    fn previous_release_line_is_parsed_and_anything_else_refused() {
        let p = PreviousRelease::parse("v0.1.0 abc /c/src /c/capd-manager\n").unwrap();
        assert_eq!((p.version.as_str(), p.commit.as_str()), ("v0.1.0", "abc"));
        assert_eq!(p.manager, std::path::PathBuf::from("/c/capd-manager"));
        let e = PreviousRelease::parse("building...\nv0.1.0 abc").unwrap_err();
        assert!(e.to_string().contains("previous-release printed"), "{e}");
    }
}
