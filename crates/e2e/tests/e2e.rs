//! The end-to-end suite against the test environment (see e2e/README.md): the
//! provider's image, run the way its Deployment runs it (arguments and environment taken
//! from the Deployment, ServiceAccount token of the RBAC manifests, Docker socket
//! mounted, read-only root, no capabilities); the offline flavour applied, the Cluster
//! provisioned, `clusterctl describe cluster`, deleted, no container left.
//!
//! The kind suite (a kind management cluster, `clusterctl init`, the quick start) is
//! `kind.rs`.

use capd_e2e::artifacts::{build_image, manager_binary, TEST_IMAGE};
use capd_e2e::cmd::{clusterctl, docker, kubectl, run, show, stdout};
use capd_e2e::steps::Steps;
use capd_e2e::yaml::{find, parse_docs};
use capd_testenv::{free_port, http_get, poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const TESTENV_STEPS: [&str; 10] = [
    "testenv: build capd-manager and its image (offline Dockerfile path)",
    "testenv: install CRDs, admission policies and RBAC from manifests/",
    "testenv: run the image as its Deployment does (ServiceAccount token)",
    "testenv: render the offline flavour (clusterctl generate cluster)",
    "testenv: apply it",
    "testenv: wait until the Cluster reports infrastructure provisioned",
    "testenv: wait until every DockerMachine is provisioned",
    "testenv: clusterctl describe cluster",
    "testenv: delete the Cluster",
    "testenv: no container with the cluster's label left",
];

#[tokio::test]
async fn end_to_end() {
    let mut steps = Steps::default();
    let env = TestEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let res = testenv_suite(&mut steps, &env).await;
    eprintln!("{}", steps.summary());
    if let Err(e) = res {
        panic!("{e:#}");
    }
}

// ---------------------------------------------------------------------------------
// testenv mode

/// The manager container; removed when dropped.
struct Container {
    docker_host: String,
    name: String,
}

impl Container {
    fn logs(&self) -> String {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.docker_host)
            .args(["logs", "--tail", "60", &self.name])
            .output();
        out.map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
    }

    fn running(&self) -> bool {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.docker_host)
            .args(["inspect", "--format", "{{.State.Running}}", &self.name])
            .output();
        matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "true")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .env("DOCKER_HOST", &self.docker_host)
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn cluster_value(env: &TestEnv, ns: &str, name: &str) -> Result<Value, String> {
    let out = kubectl(env, &env.state.kubeconfig)
        .args(["-n", ns, "get", "cluster", name, "-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

async fn testenv_suite(steps: &mut Steps, env: &TestEnv) -> anyhow::Result<()> {
    use anyhow::{anyhow, bail, Context};
    let admin = env.kube_client().await?;
    let root = capd_e2e::repo_root();
    let ns = unique_name("e2e");
    let cluster = unique_name("e2e");
    let dir = capd_e2e::scratch_dir(&ns)?;
    let config_home = dir.join("xdg");

    steps
        .run(TESTENV_STEPS[0], async {
            let bin = manager_binary()?;
            let image = build_image(env, TEST_IMAGE, &bin)?;
            eprintln!(
                "    {} {}",
                image.tag,
                capd_e2e::artifacts::mb(image.size_bytes)
            );
            Ok(())
        })
        .await?;
    steps
        .run(TESTENV_STEPS[1], async {
            capd_testenv::install_provider_manifests(&admin).await?;
            capd_e2e::rbac::install(&admin).await
        })
        .await?;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await
        .with_context(|| format!("creating namespace {ns}"))?;

    let container = steps
        .run(TESTENV_STEPS[2], async {
            let ca = env.state.pki_dir.join("ca.crt");
            let kubeconfig = capd_e2e::rbac::service_account_kubeconfig(
                &admin,
                &env.state.api_server_url,
                &ca,
                &dir.join("capd-manager.kubeconfig"),
            )
            .await?;
            // The Deployment's arguments and environment, after clusterctl's substitution.
            let yaml = stdout(
                clusterctl(env, &env.state.kubeconfig, &config_home)
                    .args(["generate", "yaml", "--from"])
                    .arg(root.join("manifests/manager/manager.yaml")),
            )?;
            let d = parse_docs(&yaml, "manifests/manager/manager.yaml")?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("no Deployment"))?;
            let c = &d["spec"]["template"]["spec"]["containers"][0];
            let (health, metrics) = (free_port()?, free_port()?);
            // Host network here instead of a Pod network: free ports on 127.0.0.1, and only this namespace.
            let mut args: Vec<String> = Vec::new();
            for a in c["args"]
                .as_array()
                .ok_or_else(|| anyhow!("Deployment without args"))?
            {
                let a = a.as_str().unwrap_or_default();
                if a.starts_with("--health-addr") {
                    args.push(format!("--health-addr=127.0.0.1:{health}"));
                } else if a.starts_with("--diagnostics-address") {
                    args.push(format!("--diagnostics-address=127.0.0.1:{metrics}"));
                } else {
                    args.push(a.to_string());
                }
            }
            // The webhook on a free port too; with no certificate in --webhook-cert-dir it issues its
            // own, as in a cluster without cert-manager.
            args.extend([
                "--namespace".to_string(),
                ns.clone(),
                format!("--webhook-port={}", free_port()?),
            ]);
            let name = format!("capd-e2e-manager-{}", ns);
            let mut envs: Vec<String> = Vec::new();
            for e in c["env"].as_array().into_iter().flatten() {
                let key = e["name"].as_str().unwrap_or_default();
                let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.namespace") => capd_e2e::rbac::NAMESPACE.to_string(),
                    Some("metadata.name") => name.clone(),
                    Some(other) => bail!("Deployment env {key}: fieldRef {other} not emulated"),
                    None => e["value"].as_str().unwrap_or_default().to_string(),
                };
                envs.push(format!("{key}={value}"));
            }
            let socket = env
                .docker_host()
                .strip_prefix("unix://")
                .ok_or_else(|| anyhow!("DOCKER_HOST {} is not a unix socket", env.docker_host()))?;
            let mut cmd = docker(env);
            cmd.args(["run", "-d", "--name", &name, "--network", "host"])
                .args([
                    "--read-only",
                    "--cap-drop",
                    "ALL",
                    "--security-opt",
                    "no-new-privileges",
                    "--user",
                    "0:0",
                ])
                .args(["--label", &format!("{}=e2e", capd_testenv::TEST_LABEL)])
                .args(["-v", &format!("{socket}:/var/run/docker.sock")])
                .args([
                    "-v",
                    &format!("{}:/etc/capd-rs/kubeconfig:ro", kubeconfig.display()),
                ])
                .args(["-v", &format!("{}:{}:ro", ca.display(), ca.display())])
                .args([
                    "-e",
                    "KUBECONFIG=/etc/capd-rs/kubeconfig",
                    "-e",
                    "RUST_LOG=info,capd_controllers=debug",
                ]);
            for e in &envs {
                cmd.args(["-e", e]);
            }
            cmd.arg(TEST_IMAGE).args(&args);
            eprintln!("    $ {}", show(&cmd));
            run(&mut cmd)?;
            let container = Container {
                docker_host: env.docker_host().to_string(),
                name,
            };
            // Ok(true): ready; Ok(false): the container exited (no point waiting).
            let ready = poll_until(
                &format!("{} /readyz on 127.0.0.1:{health}", container.name),
                Duration::from_secs(60),
                || {
                    let state = if container.running() {
                        http_get(health, "/readyz").map(|(code, _)| code)
                    } else {
                        Ok(0)
                    };
                    async move {
                        match state {
                            Ok(200) => Ok(true),
                            Ok(0) => Ok(false),
                            other => Err(format!("{other:?}")),
                        }
                    }
                },
            )
            .await;
            match ready {
                Ok(true) => {}
                Ok(false) => bail!("{} exited:\n{}", container.name, container.logs()),
                Err(e) => bail!("{e}\ncontainer logs:\n{}", container.logs()),
            }
            Ok(container)
        })
        .await?;

    let file = dir.join("cluster.yaml");
    steps
        .run(TESTENV_STEPS[3], async {
            let template = root.join("templates/cluster-template-offline.yaml");
            let gen = |extra: &[&str]| {
                let mut c = clusterctl(env, &env.state.kubeconfig, &config_home);
                c.args(["generate", "cluster", &cluster, "--from"])
                    .arg(&template)
                    .args(["--target-namespace", &ns, "--kubernetes-version", "v1.36.3"])
                    .args(extra);
                c
            };
            let listing = stdout(&mut gen(&["--list-variables"]))?;
            let (repo_name, tag) = env
                .state
                .images
                .haproxy
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("haproxy image without tag"))?;
            let repo = repo_name.rsplit_once('/').map(|(r, _)| r).unwrap_or("");
            let mut cmd = gen(&[]);
            cmd.env("LB_IMAGE_REPOSITORY", repo)
                .env("LB_IMAGE_TAG", tag)
                .env("NODE_IMAGE", &env.state.images.node);
            let yaml = stdout(&mut cmd)
                .with_context(|| format!("variables of the offline flavour:\n{listing}"))?;
            std::fs::write(&file, &yaml).with_context(|| format!("writing {}", file.display()))?;
            let docs = parse_docs(&yaml, "generated offline cluster")?;
            find(&docs, "Cluster", Some(&cluster))?;
            eprintln!(
                "    {} objects: {}",
                docs.len(),
                docs.iter()
                    .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        })
        .await?;

    steps
        .run(TESTENV_STEPS[4], async {
            run(kubectl(env, &env.state.kubeconfig)
                .args(["apply", "-f"])
                .arg(&file))
            .map(|_| ())
        })
        .await?;

    let waited = steps
        .run(TESTENV_STEPS[5], async {
            poll_until(
                &format!("Cluster {ns}/{cluster} infrastructure provisioned"),
                Duration::from_secs(180),
                || {
                    let v = cluster_value(env, &ns, &cluster);
                    async move {
                        let c = v?;
                        if c["status"]["initialization"]["infrastructureProvisioned"] == true {
                            Ok(())
                        } else {
                            Err(format!("status {}", c["status"]))
                        }
                    }
                },
            )
            .await
            .map_err(anyhow::Error::from)
        })
        .await;
    if let Err(e) = waited {
        bail!("{e:#}\nmanager logs:\n{}", container.logs());
    }

    let machines = steps
        .run(TESTENV_STEPS[6], async {
            poll_until(
                &format!("every DockerMachine in {ns} provisioned"),
                Duration::from_secs(300),
                || {
                    let out = kubectl(env, &env.state.kubeconfig)
                        .args(["-n", &ns, "get", "dockermachines", "-o", "json"])
                        .output();
                    async move {
                        let out = out.map_err(|e| e.to_string())?;
                        let v: Value =
                            serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
                        let items = v["items"].as_array().cloned().unwrap_or_default();
                        let pending: Vec<String> = items
                            .iter()
                            .filter(|m| m["status"]["initialization"]["provisioned"] != true)
                            .map(|m| {
                                format!("{}: {}", m["metadata"]["name"], m["status"]["conditions"])
                            })
                            .collect();
                        if pending.is_empty() {
                            Ok(items.len())
                        } else {
                            Err(pending.join("; "))
                        }
                    }
                },
            )
            .await
            .map_err(anyhow::Error::from)
        })
        .await;
    match machines {
        Ok(n) => eprintln!("    {n} DockerMachine(s) provisioned"),
        Err(e) => bail!("{e:#}\nmanager logs:\n{}", container.logs()),
    }
    // The container did the work (not another manager running in the environment): its
    // Events carry its Pod name as reporting instance.
    let events = stdout(kubectl(env, &env.state.kubeconfig).args([
        "-n",
        &ns,
        "get",
        "events.events.k8s.io",
        "-o",
        "json",
    ]))?;
    let events: Value = serde_json::from_str(&events)?;
    let mine: Vec<String> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reportingInstance"] == container.name.as_str())
        .map(|e| {
            format!(
                "{} {}/{}",
                e["reason"], e["regarding"]["kind"], e["regarding"]["name"]
            )
        })
        .collect();
    if !mine.iter().any(|e| e.contains("DockerCluster")) {
        bail!(
            "no Event from {} about the DockerCluster; events: {}",
            container.name,
            events["items"]
        );
    }
    eprintln!("    events from {}: {}", container.name, mine.join(", "));

    steps
        .run(TESTENV_STEPS[7], async {
            let out = stdout(
                clusterctl(env, &env.state.kubeconfig, &config_home)
                    .args(["describe", "cluster", &cluster, "-n", &ns]),
            )?;
            eprintln!("{out}");
            for want in [
                format!("Cluster {ns}/{cluster}"),
                format!("DockerCluster {ns}/{cluster}"),
            ] {
                if !out.lines().any(|l| l.contains(&want)) {
                    bail!("clusterctl describe does not show {want}:\n{out}");
                }
            }
            Ok(())
        })
        .await?;

    steps
        .run(TESTENV_STEPS[8], async {
            run(kubectl(env, &env.state.kubeconfig).args([
                "-n",
                &ns,
                "delete",
                "cluster",
                &cluster,
                "--wait=false",
            ]))?;
            poll_until(
                &format!("Cluster {ns}/{cluster} to be gone"),
                Duration::from_secs(240),
                || {
                    let v = cluster_value(env, &ns, &cluster);
                    async move {
                        match v {
                            Err(e) if e.contains("NotFound") || e.contains("not found") => Ok(()),
                            Err(e) => Err(e),
                            Ok(c) => Err(format!("still there: {}", c["status"]["conditions"])),
                        }
                    }
                },
            )
            .await
            .map_err(|e| anyhow!("{e}\nmanager logs:\n{}", container.logs()))
        })
        .await?;

    steps
        .run(TESTENV_STEPS[9], async {
            let filter = format!("label=io.x-k8s.kind.cluster={cluster}");
            let left = stdout(docker(env).args([
                "ps",
                "-a",
                "--format",
                "{{.Names}} {{.State}}",
                "--filter",
                &filter,
            ]))?;
            if !left.trim().is_empty() {
                bail!("containers of cluster {cluster} left: {left}");
            }
            Ok(())
        })
        .await?;

    drop(container);
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    Ok(())
}
