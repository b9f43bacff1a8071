//! The end-to-end suite (see e2e/README.md). One test, two modes:
//!
//! - `kind` (a normal machine with kind, Docker and registry access): a kind management
//!   cluster with the Docker socket mounted, the image built and loaded into it,
//!   `clusterctl init` from the local repository, a workload cluster from the default
//!   template, waited for, deleted, and nothing left behind.
//! - `testenv` (these machines: no registry, no kind): the same provider image, run the
//!   way its Deployment runs it (arguments and environment taken from the Deployment,
//!   ServiceAccount token of the RBAC manifests, Docker socket mounted, read-only root,
//!   no capabilities), against the test environment; the offline flavour applied, the
//!   Cluster provisioned, `clusterctl describe cluster`, deleted, no container left.
//!
//! `CAPD_E2E_MODE=kind|testenv` picks one; by default the test environment when it is
//! up, else kind when installed. Every step of the other mode is printed as SKIPPED
//! with the reason, and the summary at the end lists them again.

use capd_e2e::artifacts::{build_image, manager_binary, TEST_IMAGE};
use capd_e2e::cmd::{clusterctl, docker, kubectl, run, show, stdout, tail};
use capd_e2e::steps::Steps;
use capd_e2e::yaml::{find, parse_docs};
use capd_testenv::{free_port, http_get, poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const KIND_STEPS: [&str; 9] = [
    "kind: build the manager image (Dockerfile, compiled in the builder image)",
    "kind: create the management cluster (Docker socket mounted)",
    "kind: load the image into the kind cluster",
    "kind: clusterctl init with the local repository",
    "kind: create a workload cluster from cluster-template.yaml",
    "kind: wait for the control plane and every Machine Running",
    "kind: delete the workload cluster",
    "kind: no container of the workload cluster left",
    "kind: delete the management cluster",
];

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

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn end_to_end() {
    let mut steps = Steps::default();
    let mode = std::env::var("CAPD_E2E_MODE").ok();
    let kind = which("kind");
    let env = TestEnv::load();
    let use_kind = match (mode.as_deref(), &env, &kind) {
        (Some("kind"), _, _) => true,
        (Some("testenv"), _, _) => false,
        (Some(other), _, _) => panic!("CAPD_E2E_MODE={other}: expected `kind` or `testenv`"),
        (None, Ok(_), _) => false,
        (None, Err(_), Some(_)) => true,
        (None, Err(e), None) => {
            panic!("no way to run the end-to-end suite: {e}; and `kind` is not on PATH")
        }
    };
    let res = if use_kind {
        for s in TESTENV_STEPS {
            steps.skip(s, "kind mode (CAPD_E2E_MODE=kind, or no test environment): the offline flavour runs against `cargo xtask up`'s environment");
        }
        kind_suite(&mut steps, kind).await
    } else {
        let why = match &kind {
            None => "`kind` is not on PATH; these machines have no kind and no registry to pull kindest/node or the Rust builder image from (run with CAPD_E2E_MODE=kind where they exist)",
            Some(_) => "the test environment is up and CAPD_E2E_MODE is not `kind`",
        };
        for s in KIND_STEPS {
            steps.skip(s, why);
        }
        let env = env.unwrap_or_else(|e| panic!("{e}"));
        testenv_suite(&mut steps, &env).await
    };
    eprintln!("{}", steps.summary());
    let skipped = steps.skipped().len();
    eprintln!("{skipped} step(s) skipped, reasons above");
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

// ---------------------------------------------------------------------------------
// kind mode (a normal machine)

/// Runs `kind delete cluster` when dropped, unless CAPD_E2E_KEEP is set.
struct KindCluster {
    kind: PathBuf,
    name: String,
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        if std::env::var_os("CAPD_E2E_KEEP").is_some() {
            eprintln!("CAPD_E2E_KEEP set: keeping kind cluster {}", self.name);
            return;
        }
        let _ = Command::new(&self.kind)
            .args(["delete", "cluster", "--name", &self.name])
            .status();
    }
}

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    which(name).ok_or_else(|| {
        anyhow::anyhow!(
            "`{name}` is not on PATH; the kind mode needs kind, kubectl, clusterctl and docker"
        )
    })
}

async fn kind_suite(steps: &mut Steps, kind: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::{anyhow, bail, Context};
    let kind = kind.ok_or_else(|| anyhow!("CAPD_E2E_MODE=kind but `kind` is not on PATH"))?;
    let (kubectl_bin, clusterctl_bin) = (tool("kubectl")?, tool("clusterctl")?);
    tool("docker")?;
    let root = capd_e2e::repo_root();
    let dir = capd_e2e::scratch_dir("kind")?;
    let name = std::env::var("CAPD_E2E_KIND_CLUSTER").unwrap_or_else(|_| "capd-rs-e2e".into());
    let kubeconfig = dir.join("kubeconfig");
    let image = "localhost/capd-rs/capd-manager:e2e-kind";
    let k = |args: &[&str]| {
        let mut c = Command::new(&kubectl_bin);
        c.env("KUBECONFIG", &kubeconfig).args(args);
        c
    };
    let cc = |args: &[&str]| {
        let mut c = Command::new(&clusterctl_bin);
        c.env("KUBECONFIG", &kubeconfig)
            .env("CLUSTER_TOPOLOGY", "true")
            .args(args);
        c
    };

    steps
        .run(KIND_STEPS[0], async {
            let mut c = Command::new("docker");
            c.current_dir(&root).args(["build", "-t", image]);
            if let Ok(b) = std::env::var("CAPD_E2E_BUILDER_IMAGE") {
                c.args(["--build-arg", &format!("BUILDER_IMAGE={b}")]);
            }
            run(c.arg(".")).map(|_| ())
        })
        .await?;
    let _cluster = steps
        .run(KIND_STEPS[1], async {
            let config = root.join("e2e/kind-config.yaml");
            run(Command::new(&kind)
                .args([
                    "create", "cluster", "--name", &name, "--wait", "5m", "--config",
                ])
                .arg(&config)
                .arg("--kubeconfig")
                .arg(&kubeconfig))?;
            Ok(KindCluster {
                kind: kind.clone(),
                name: name.clone(),
            })
        })
        .await?;
    steps
        .run(KIND_STEPS[2], async {
            run(Command::new(&kind).args(["load", "docker-image", image, "--name", &name]))
                .map(|_| ())
        })
        .await?;
    let repo = dir.join("repo");
    steps
        .run(KIND_STEPS[3], async {
            run(&mut capd_e2e::cmd::xtask(&[
                "clusterctl-repo",
                "--out",
                &repo.display().to_string(),
                "--image",
                image,
            ]))?;
            let out = run(&mut cc(&[
                "init",
                "--config",
                &repo.join("clusterctl.yaml").display().to_string(),
                "--infrastructure",
                "docker:v0.1.0",
                "--wait-providers",
                "--wait-provider-timeout",
                "600",
            ]))?;
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            Ok(())
        })
        .await?;
    let workload = unique_name("wl");
    steps
        .run(KIND_STEPS[4], async {
            let version: Value =
                serde_json::from_str(&stdout(&mut k(&["version", "-o", "json"]))?)?;
            let kv = version["serverVersion"]["gitVersion"]
                .as_str()
                .ok_or_else(|| anyhow!("no server version: {version}"))?
                .to_string();
            let yaml = stdout(&mut cc(&[
                "generate",
                "cluster",
                &workload,
                "--config",
                &repo.join("clusterctl.yaml").display().to_string(),
                "--infrastructure",
                "docker:v0.1.0",
                "--kubernetes-version",
                &kv,
                "--control-plane-machine-count",
                "1",
                "--worker-machine-count",
                "1",
                "--target-namespace",
                "default",
            ]))?;
            let file = dir.join("workload.yaml");
            std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))?;
            run(k(&["apply", "-f"]).arg(&file)).map(|_| ())
        })
        .await?;
    steps
        .run(KIND_STEPS[5], async {
            poll_until(&format!("workload cluster {workload}: control plane initialized and every Machine Running"), Duration::from_secs(1200), || {
                let c = k(&["get", "cluster", &workload, "-o", "json"]).output();
                let m = k(&["get", "machines", "-l", &format!("cluster.x-k8s.io/cluster-name={workload}"), "-o", "json"]).output();
                async move {
                    let c: Value = serde_json::from_slice(&c.map_err(|e| e.to_string())?.stdout).map_err(|e| e.to_string())?;
                    let m: Value = serde_json::from_slice(&m.map_err(|e| e.to_string())?.stdout).map_err(|e| e.to_string())?;
                    let items = m["items"].as_array().cloned().unwrap_or_default();
                    let phases: Vec<String> = items.iter().map(|i| format!("{}={}", i["metadata"]["name"], i["status"]["phase"])).collect();
                    let cp = c["status"]["initialization"]["controlPlaneInitialized"] == true;
                    if cp && items.len() >= 2 && items.iter().all(|i| i["status"]["phase"] == "Running") { Ok(()) } else { Err(format!("control plane initialized: {cp}; machines {phases:?}")) }
                }
            })
            .await?;
            eprintln!("{}", stdout(&mut cc(&["describe", "cluster", &workload]))?);
            Ok(())
        })
        .await?;
    steps
        .run(KIND_STEPS[6], async {
            run(&mut k(&[
                "delete",
                "cluster",
                &workload,
                "--timeout",
                "10m",
            ]))
            .map(|_| ())
        })
        .await?;
    steps
        .run(KIND_STEPS[7], async {
            let out = run(Command::new("docker").args([
                "ps",
                "-a",
                "--format",
                "{{.Names}}",
                "--filter",
                &format!("label=io.x-k8s.kind.cluster={workload}"),
            ]))?;
            let left = String::from_utf8_lossy(&out.stdout).into_owned();
            if !left.trim().is_empty() {
                bail!("containers of {workload} left: {}", tail(&left, 10));
            }
            Ok(())
        })
        .await?;
    steps
        .run(KIND_STEPS[8], async {
            drop(_cluster);
            let out = stdout(Command::new(&kind).args(["get", "clusters"]))?;
            if out.lines().any(|l| l.trim() == name) && std::env::var_os("CAPD_E2E_KEEP").is_none()
            {
                bail!("kind cluster {name} still there");
            }
            Ok(())
        })
        .await?;
    Ok(())
}
