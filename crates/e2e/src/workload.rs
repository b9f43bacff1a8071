//! What the workload-cluster tests (default flavour, the book's quick start) share: the
//! containers of a cluster, and a guard that removes them whatever happened.

use crate::cmd::docker;
use capd_testenv::TestEnv;

/// IDs of every container, running or not, labelled `io.x-k8s.kind.cluster=<cluster>`.
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
