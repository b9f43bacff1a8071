//! The kind suite: the way Cluster API developers run a Docker provider, with nothing
//! pulled from anywhere.
//!
//! 1. two releases of the provider in one local clusterctl repository: v0.1.0, the
//!    previous release (`cargo xtask previous-release`: manifests, templates and manager of
//!    a pinned earlier commit), and v0.1.1, this build; their images (repository
//!    Dockerfile, offline path) and Cluster API's core, kubeadm bootstrap and
//!    control-plane images (the environment's v1.14.0 builds);
//! 2. a kind management cluster (kind v0.32.0, the version Cluster API v1.14.0 pins)
//!    from the project's node image `kindest/node:v1.36.3`, the host's Docker socket
//!    mounted (e2e/kind-config.yaml);
//! 3. `kind load docker-image` of those images;
//! 4. `clusterctl init --infrastructure docker:v0.1.0` from the local repository, every
//!    provider running as a Pod in kind. cert-manager is the one part not built here: its
//!    CRDs are installed so clusterctl finds it, and the suite issues what its
//!    Certificates ask for (`capd_e2e::certs`);
//! 5. the Cluster API book's quick start under the previous release: `clusterctl generate
//!    cluster --flavor development`, applied, and beside it (own namespace) a cluster of
//!    the default flavour (Docker* kinds); each: both Nodes Ready, the Cluster Available
//!    and every Machine Ready (`clusterctl describe cluster` printed);
//! 6. `clusterctl upgrade apply` to v0.1.1 (this build) with both clusters running: this
//!    build's image runs, the inventory says v0.1.1, every container and Machine is the
//!    same and both clusters stay Available;
//! 7. MachineHealthCheck remediation on the default-flavour cluster: a
//!    MachineHealthCheck on its MachineDeployment's Machines (Node Ready Unknown or
//!    False for 20 s), the worker's node container removed by hand (`docker rm -f`):
//!    the Machine remediated (deleted) and replaced by a new one with a new, running
//!    container, two Nodes Ready again, nothing of the old Machine left, the
//!    control-plane container the same, the Cluster Available; the MachineHealthCheck
//!    deleted afterwards;
//! 8. self-hosted, as Cluster API's self-hosted spec: the images loaded into the
//!    workload nodes (`kind load`, which finds them by the kind labels CAPD sets),
//!    `clusterctl init` (v0.1.1) on the workload cluster, `clusterctl move` into it (the
//!    same Machines and containers adopted, nothing left behind), the workers scaled
//!    1 → 2 by the moved providers, and `clusterctl move` back;
//! 9. both workload clusters deleted: no container or infrastructure object left;
//! 10. the kind cluster deleted: no container of it left.
//!
//! `CAPD_E2E_KEEP=1` keeps the kind cluster (`CAPD_E2E_KIND_CLUSTER` names it).

use anyhow::{anyhow, bail, Context, Result};
use capd_e2e::artifacts::{build_image, manager_binary};
use capd_e2e::certs;
use capd_e2e::cmd::{clusterctl, kubectl, run, stdout};
use capd_e2e::kind::{build_binary_image, capi_binary_for, deployment_images, KindCluster};
use capd_e2e::steps::Steps;
use capd_e2e::workload::{
    containers_of, generate, render_repo_from, render_repo_version, v1beta2, wait_ready_nodes,
    workload_client, PreviousRelease, REPO_VERSION,
};
use capd_e2e::yaml::{apply, parse_docs, read_docs};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::ResourceExt;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const KUBERNETES_VERSION: &str = "v1.36.3";
/// This build, released as v0.1.1: what the management clusters are upgraded to.
const PROVIDER_IMAGE: &str = "localhost/capd-rs/capd-manager:e2e-kind";
const VERSION: &str = "v0.1.1";
/// The previous release (`cargo xtask previous-release`, a pinned earlier commit) as
/// v0.1.0: what `clusterctl init` installs first and the quick start runs under.
const PREVIOUS_IMAGE: &str = "localhost/capd-rs/capd-manager:e2e-kind-previous";
/// CAPI's own e2e bounds: control plane 10 minutes, workers 5.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(900);
const CERT_MANAGER_TEST_CRDS: &str = include_str!("../fixtures/cert-manager-test-crds.yaml");

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread")]
async fn kind_management_cluster_quick_start_and_self_hosted() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let mut steps = Steps::default();
    let res = suite(&env, &mut steps).await;
    eprintln!("{}", steps.summary());
    if let Err(e) = res {
        panic!("{e:#}");
    }
}

async fn suite(env: &TestEnv, steps: &mut Steps) -> Result<()> {
    let dir = capd_e2e::scratch_dir("kind")?;
    let name = std::env::var("CAPD_E2E_KIND_CLUSTER").unwrap_or_else(|_| "capd-rs-e2e".into());
    let kubeconfig = dir.join("kubeconfig");
    let config_home = dir.join("xdg");

    // 1. Images, and the repository with two releases of the provider: the previous one
    // (a pinned earlier commit: its manifests, templates and manager) and this build.
    let previous = steps
        .run("the previous release built from its commit", async {
            PreviousRelease::ensure()
        })
        .await?;
    if previous.version != REPO_VERSION {
        bail!(
            "the previous release is {}, the suites' repository version {REPO_VERSION}",
            previous.version
        );
    }
    let repo_config = render_repo_from(
        &dir.join("repo"),
        &previous.version,
        Some(PREVIOUS_IMAGE),
        Some(&previous.source),
    )?;
    render_repo_version(&dir.join("repo"), VERSION, Some(PROVIDER_IMAGE))?;
    let images = steps
        .run("build the provider's and Cluster API's images", async {
            build_image(env, PROVIDER_IMAGE, &manager_binary()?)?;
            build_image(env, PREVIOUS_IMAGE, &previous.manager)?;
            let mut images = vec![PROVIDER_IMAGE.to_string(), PREVIOUS_IMAGE.to_string()];
            let repo = repo_config
                .parent()
                .ok_or_else(|| anyhow!("{}: no directory", repo_config.display()))?;
            for file in [
                "cluster-api/v1.14.0/core-components.yaml",
                "bootstrap-kubeadm/v1.14.0/bootstrap-components.yaml",
                "control-plane-kubeadm/v1.14.0/control-plane-components.yaml",
            ] {
                for image in deployment_images(&read_docs(&repo.join(file))?) {
                    let bin = capi_binary_for(&image).ok_or_else(|| {
                        anyhow!("{file}: no Cluster API binary for image {image}")
                    })?;
                    build_binary_image(env, &image, &env.bin(bin))?;
                    images.push(image);
                }
            }
            Ok(images)
        })
        .await?;

    // 2. The management cluster.
    let config = capd_e2e::repo_root().join("e2e/kind-config.yaml");
    let image = format!("kindest/node:{KUBERNETES_VERSION}");
    let cluster = steps
        .run("kind create cluster from the project's node image", async {
            KindCluster::create(env, &name, &image, &config, &kubeconfig)
        })
        .await?;
    let client = capd_testenv::client_from_kubeconfig_yaml(
        &std::fs::read_to_string(&kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?,
        "the kind cluster's kubeconfig",
    )
    .await?;

    // 3. The images, into the kind node's containerd.
    steps
        .run("kind load docker-image", async { cluster.load(&images) })
        .await?;

    // 4. clusterctl init, with the previous release of the provider.
    steps
        .run(
            "clusterctl init --infrastructure docker:v0.1.0 (local repository, the previous release)",
            async {
                clusterctl_init(
                    env,
                    &client,
                    &kubeconfig,
                    &config_home,
                    &repo_config,
                    (REPO_VERSION, PREVIOUS_IMAGE),
                )
                .await
            },
        )
        .await?;

    // 5. The quick start.
    // The development flavour (Dev* kinds, ClusterClass) in `default`, as the book
    // does; the default flavour (Docker* kinds, KubeadmControlPlane + MachineDeployment)
    // beside it in a namespace of its own, so `clusterctl move -n default` leaves it.
    let ns = "default";
    let workload = unique_name("quick-start");
    let classic_ns = "default-flavour";
    let classic = unique_name("classic");
    steps
        .run(
            "clusterctl generate cluster: --flavor development and the default flavour, applied",
            async {
                run(kubectl(env, &kubeconfig).args(["create", "namespace", classic_ns]))?;
                for (name, namespace, flavour) in
                    [(&workload, ns, "development"), (&classic, classic_ns, "")]
                {
                    let yaml = generate(
                        env,
                        &kubeconfig,
                        &repo_config,
                        name,
                        namespace,
                        flavour,
                        KUBERNETES_VERSION,
                        1,
                    )?;
                    apply(
                        &client,
                        "capd-e2e",
                        &parse_docs(&yaml, &format!("the {flavour:?} flavour"))?,
                    )
                    .await?;
                }
                Ok(())
            },
        )
        .await?;
    let cleanup = [&workload, &classic].map(|c| capd_e2e::workload::Cleanup {
        env,
        cluster: c.clone(),
    });
    steps
        .run("workload Nodes Ready", async {
            let wl = workload_client(
                env,
                &kubeconfig,
                &config_home,
                &workload,
                ns,
                None,
                WORKLOAD_TIMEOUT,
            )
            .await?;
            wait_ready_nodes(env, &workload, &Api::<Node>::all(wl), 2, WORKLOAD_TIMEOUT).await?;
            let wl = workload_client(
                env,
                &kubeconfig,
                &config_home,
                &classic,
                classic_ns,
                None,
                WORKLOAD_TIMEOUT,
            )
            .await?;
            wait_ready_nodes(env, &classic, &Api::<Node>::all(wl), 2, WORKLOAD_TIMEOUT).await
        })
        .await?;
    steps
        .run(
            "Cluster Available, every Machine Ready (clusterctl describe)",
            async {
                cluster_available(
                    env,
                    &client,
                    &kubeconfig,
                    &config_home,
                    ns,
                    &workload,
                    2,
                    "DevMachine",
                )
                .await?;
                cluster_available(
                    env,
                    &client,
                    &kubeconfig,
                    &config_home,
                    classic_ns,
                    &classic,
                    2,
                    "DockerMachine",
                )
                .await
            },
        )
        .await?;

    // 6. clusterctl upgrade from the previous release to this build, with both workload
    // clusters running: they are taken over as they are.
    steps
        .run("clusterctl upgrade apply v0.1.0 → v0.1.1 (this build): the clusters untouched", async {
            let before = (
                [node_containers(env, &workload)?, node_containers(env, &classic)?],
                machine_names(&client, ns, &workload).await?,
            );
            let out = run(clusterctl(env, &kubeconfig, &config_home)
                .args(["upgrade", "apply", "--config"])
                .arg(&repo_config)
                .args(["--infrastructure", &format!("capd-system/docker:{VERSION}")])
                .args(["--wait-providers", "--wait-provider-timeout", "300"]))?;
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            let image = provider_image(&client).await?;
            if image != PROVIDER_IMAGE {
                bail!("after the upgrade capd-controller-manager runs {image:?}, not {PROVIDER_IMAGE}");
            }
            let inventory = stdout(kubectl(env, &kubeconfig).args([
                "-n",
                "capd-system",
                "get",
                "providers.clusterctl.cluster.x-k8s.io",
                "infrastructure-docker",
                "-o",
                "jsonpath={.version}",
            ]))?;
            if inventory != VERSION {
                bail!("clusterctl's inventory says infrastructure-docker {inventory:?}");
            }
            // The upgraded provider takes the running clusters over as they are.
            cluster_available(env, &client, &kubeconfig, &config_home, classic_ns, &classic, 2, "DockerMachine").await?;
            cluster_available(env, &client, &kubeconfig, &config_home, ns, &workload, 2, "DevMachine").await?;
            let after = (
                [node_containers(env, &workload)?, node_containers(env, &classic)?],
                machine_names(&client, ns, &workload).await?,
            );
            if after != before {
                bail!("the upgrade changed the clusters: (containers, Machines) {before:?} → {after:?}");
            }
            Ok(())
        })
        .await?;

    // 7. MachineHealthCheck remediation on the default-flavour cluster: its worker's
    // node container removed behind the provider's back, the Machine replaced.
    steps
        .run(
            "MachineHealthCheck: the worker's node container removed, the Machine remediated",
            async {
                mhc_remediation(
                    env,
                    &client,
                    &kubeconfig,
                    &config_home,
                    classic_ns,
                    &classic,
                )
                .await
            },
        )
        .await?;

    // 8. Self-hosted, as Cluster API's self-hosted spec: the workload cluster becomes
    // its own management cluster and keeps managing itself.
    let wl_kubeconfig = dir.join("workload.kubeconfig");
    let wl_client = steps
        .run(
            "self-hosted: clusterctl init on the workload cluster",
            async {
                let text = stdout(clusterctl(env, &kubeconfig, &config_home).args([
                    "get",
                    "kubeconfig",
                    &workload,
                    "-n",
                    ns,
                ]))?;
                std::fs::write(&wl_kubeconfig, &text)
                    .with_context(|| format!("writing {}", wl_kubeconfig.display()))?;
                // The workload nodes are labelled as kind's (CAPD's convention), so
                // `kind load` finds them by the cluster's name.
                run(capd_e2e::kind::kind(env)
                    .args(["load", "docker-image", "--name", &workload])
                    .args(&images))?;
                let wl =
                    capd_testenv::client_from_kubeconfig_yaml(&text, "the workload kubeconfig")
                        .await?;
                clusterctl_init(
                    env,
                    &wl,
                    &wl_kubeconfig,
                    &config_home,
                    &repo_config,
                    (VERSION, PROVIDER_IMAGE),
                )
                .await?;
                Ok(wl)
            },
        )
        .await?;
    let before_move = node_containers(env, &workload)?;
    let machines_before = machine_names(&client, ns, &workload).await?;
    steps
        .run(
            "self-hosted: clusterctl move into the workload cluster",
            async {
                move_cluster(
                    env,
                    &kubeconfig,
                    &wl_kubeconfig,
                    &config_home,
                    &repo_config,
                    ns,
                )?;
                let left = v1beta2(&client, ns, "cluster.x-k8s.io", "Cluster")
                    .list(&ListParams::default())
                    .await?
                    .items
                    .len();
                if left != 0 {
                    bail!("{left} Cluster(s) left in the kind cluster after the move");
                }
                // Adopted, not re-created: the same Machines, the same containers.
                let machines = machine_names(&wl_client, ns, &workload).await?;
                if machines != machines_before {
                    bail!("Machines after the move {machines:?}, before {machines_before:?}");
                }
                cluster_available(
                    env,
                    &wl_client,
                    &wl_kubeconfig,
                    &config_home,
                    ns,
                    &workload,
                    2,
                    "DevMachine",
                )
                .await?;
                let after = node_containers(env, &workload)?;
                if after != before_move {
                    bail!("containers after the move {after:?}, before {before_move:?}");
                }
                Ok(())
            },
        )
        .await?;
    steps
        .run("self-hosted: scale the workers 1 → 2 from inside", async {
            run(kubectl(env, &wl_kubeconfig).args([
                "-n",
                ns,
                "patch",
                "cluster",
                &workload,
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/topology/workers/machineDeployments/0/replicas","value":2}]"#,
            ]))?;
            wait_ready_nodes(env, &workload, &Api::<Node>::all(wl_client.clone()), 3, WORKLOAD_TIMEOUT)
                .await?;
            cluster_available(env, &wl_client, &wl_kubeconfig, &config_home, ns, &workload, 3, "DevMachine")
                .await?;
            let after = node_containers(env, &workload)?;
            if !before_move.iter().all(|c| after.contains(c)) || after.len() != before_move.len() + 1 {
                bail!("containers after scaling {after:?}, before {before_move:?}: want the same plus one");
            }
            Ok(())
        })
        .await?;
    steps
        .run(
            "self-hosted: clusterctl move back to the kind cluster",
            async {
                move_cluster(
                    env,
                    &wl_kubeconfig,
                    &kubeconfig,
                    &config_home,
                    &repo_config,
                    ns,
                )?;
                cluster_available(
                    env,
                    &client,
                    &kubeconfig,
                    &config_home,
                    ns,
                    &workload,
                    3,
                    "DevMachine",
                )
                .await
            },
        )
        .await?;

    // 9. Delete the workload clusters.
    steps
        .run(
            "delete the workload clusters: nothing of them left",
            async {
                for (name, namespace, prefix) in
                    [(&workload, ns, "Dev"), (&classic, classic_ns, "Docker")]
                {
                    run(kubectl(env, &kubeconfig).args([
                        "-n",
                        namespace,
                        "delete",
                        "cluster",
                        name,
                        "--timeout",
                        "10m",
                    ]))?;
                    let left = containers_of(env, name);
                    if !left.is_empty() {
                        bail!("containers of {name} left: {left:?}");
                    }
                    for kind in ["Cluster", "Machine"].map(|k| format!("{prefix}{k}")) {
                        let objs =
                            v1beta2(&client, namespace, "infrastructure.cluster.x-k8s.io", &kind)
                                .list(&ListParams::default())
                                .await?
                                .items;
                        if !objs.is_empty() {
                            bail!("{} {kind}(s) of {name} left", objs.len());
                        }
                    }
                }
                Ok(())
            },
        )
        .await?;
    drop(cleanup);

    // 10. Delete the management cluster.
    steps
        .run("kind delete cluster: nothing of it left", async {
            if std::env::var_os("CAPD_E2E_KEEP").is_some() {
                return Ok(());
            }
            cluster.delete()?;
            let left = containers_of(env, &name);
            if !left.is_empty() {
                bail!("containers of kind cluster {name} left: {left:?}");
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// cert-manager's CRDs, so clusterctl takes cert-manager as installed; then `clusterctl
/// init` with the suite issuing Certificates while it runs; then the provider's Pod
/// Ready with the image built here.
async fn clusterctl_init(
    env: &TestEnv,
    client: &kube::Client,
    kubeconfig: &Path,
    config_home: &Path,
    repo_config: &Path,
    (version, image): (&str, &str),
) -> Result<()> {
    apply(
        client,
        "capd-e2e",
        &parse_docs(
            CERT_MANAGER_TEST_CRDS,
            "fixtures/cert-manager-test-crds.yaml",
        )?,
    )
    .await?;
    capd_e2e::yaml::wait_established(
        client,
        &["issuers.cert-manager.io", "certificates.cert-manager.io"],
    )
    .await?;
    // clusterctl checks once: the kinds must be in discovery, not only established.
    poll_until(
        "cert-manager.io kinds in discovery",
        Duration::from_secs(60),
        || {
            let out = kubectl(env, kubeconfig)
                .args(["api-resources", "--api-group=cert-manager.io", "-o", "name"])
                .output();
            async move {
                let text =
                    String::from_utf8_lossy(&out.map_err(|e| e.to_string())?.stdout).into_owned();
                if text.contains("issuers.cert-manager.io")
                    && text.contains("certificates.cert-manager.io")
                {
                    Ok(())
                } else {
                    Err(text)
                }
            }
        },
    )
    .await?;

    let issuer = {
        let client = client.clone();
        tokio::spawn(async move {
            // Until clusterctl init returns: providers are installed one after another.
            loop {
                match certs::issue_pending(&client).await {
                    Ok(p) if p != certs::Pass::default() => eprintln!("    issued: {p:?}"),
                    Ok(_) => {}
                    Err(e) => eprintln!("    issuing certificates: {e:#}"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let init = tokio::task::spawn_blocking({
        let mut cmd = clusterctl(env, kubeconfig, config_home);
        cmd.arg("init")
            .arg("--config")
            .arg(repo_config)
            .args(["--infrastructure", &format!("docker:{version}")])
            .args(["--wait-providers", "--wait-provider-timeout", "600"])
            .env("CLUSTER_TOPOLOGY", "true");
        move || run(&mut cmd)
    })
    .await?;
    // One last pass for objects installed after the previous one, then stop.
    let last = certs::issue_pending(client).await;
    issuer.abort();
    let init = init?;
    eprintln!("{}", String::from_utf8_lossy(&init.stderr));
    last?;

    // Every provider's Deployment available, the provider's with the image built here.
    for (ns, name) in [
        ("capi-system", "capi-controller-manager"),
        (
            "capi-kubeadm-bootstrap-system",
            "capi-kubeadm-bootstrap-controller-manager",
        ),
        (
            "capi-kubeadm-control-plane-system",
            "capi-kubeadm-control-plane-controller-manager",
        ),
        ("capd-system", "capd-controller-manager"),
    ] {
        let d = Api::<Deployment>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .with_context(|| format!("Deployment {ns}/{name}"))?;
        let available = d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if available < 1 {
            bail!(
                "Deployment {ns}/{name}: no available replica: {:?}",
                d.status
            );
        }
    }
    let running = provider_image(client).await?;
    if running != image {
        bail!("capd-controller-manager runs {running:?}, not {image}");
    }
    Ok(())
}

/// The Cluster's Available condition True and every Machine's Ready True, and every
/// infrastructure machine (`infra_machine`: DevMachine, DockerMachine) provisioned;
/// `clusterctl describe cluster` printed either way.
#[allow(clippy::too_many_arguments)]
async fn cluster_available(
    env: &TestEnv,
    client: &kube::Client,
    kubeconfig: &Path,
    config_home: &Path,
    ns: &str,
    workload: &str,
    machines_wanted: usize,
    infra_machine: &str,
) -> Result<()> {
    let clusters = v1beta2(client, ns, "cluster.x-k8s.io", "Cluster");
    let machines = v1beta2(client, ns, "cluster.x-k8s.io", "Machine");
    let res = poll_until(
        "Cluster Available and every Machine Ready",
        Duration::from_secs(300),
        || {
            let (clusters, machines) = (clusters.clone(), machines.clone());
            let workload = workload.to_string();
            async move {
                let c = clusters.get(&workload).await.map_err(|e| e.to_string())?;
                let ms = machines
                    .list(
                        &ListParams::default()
                            .labels(&format!("cluster.x-k8s.io/cluster-name={workload}")),
                    )
                    .await
                    .map_err(|e| e.to_string())?
                    .items;
                let available = condition(&c.data, "Available");
                let ready: Vec<(String, Option<String>)> = ms
                    .iter()
                    .map(|m| {
                        (
                            m.metadata.name.clone().unwrap_or_default(),
                            condition(&m.data, "Ready"),
                        )
                    })
                    .collect();
                if available.as_deref() == Some("True")
                    && ready.len() == machines_wanted
                    && ready.iter().all(|(_, r)| r.as_deref() == Some("True"))
                {
                    Ok(())
                } else {
                    Err(format!(
                        "Cluster Available={available:?}; Machines Ready {ready:?}"
                    ))
                }
            }
        },
    )
    .await;
    let describe = stdout(
        clusterctl(env, kubeconfig, config_home).args(["describe", "cluster", workload, "-n", ns]),
    )
    .unwrap_or_else(|e| format!("{e:#}"));
    eprintln!("{describe}");
    res.map_err(|e| anyhow!("{e}"))?;
    // The provider did the work: every DevMachine provisioned with a docker providerID.
    let dms = v1beta2(client, ns, "infrastructure.cluster.x-k8s.io", infra_machine)
        .list(&ListParams::default())
        .await?
        .items;
    if dms.len() != machines_wanted
        || !dms.iter().all(|m| {
            m.data["status"]["initialization"]["provisioned"] == true
                && m.data["spec"]["providerID"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("docker:////"))
        })
    {
        bail!(
            "{infra_machine}s not all provisioned: {:?}",
            dms.iter().map(|m| &m.data["status"]).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// How long the worker's Node may be Ready=Unknown (kubelet gone: the workload
/// kube-controller-manager marks it after its node-monitor grace period, 50 s by default)
/// or Ready=False before the MachineHealthCheck calls its Machine unhealthy.
///
/// Node conditions only, no `unhealthyMachineConditions`: the Machine condition that
/// reflects a vanished container, InfrastructureReady (the DockerMachine's Ready,
/// mirrored), is False the same way on every new Machine until it is provisioned, so a
/// short timeout on it would remediate the replacement too, over and over. Nor would it
/// be faster: nothing tells the provider a container went away; it sees it at the next
/// reconcile of the DockerMachine, and the Machine's status-only changes (NodeHealthy
/// Unknown) do not bring one (the provider's Machine event filter), so in practice that
/// is the Machine's deletion by this remediation, or the periodic resync.
const MHC_NODE_TIMEOUT_SECONDS: i64 = 20;
/// Node gone quiet (node-monitor grace period), the MachineHealthCheck's timeout, drain
/// (skipped for an unreachable Node), DockerMachine and Node deletion: about 90 s.
const REMEDIATION_TIMEOUT: Duration = Duration::from_secs(240);
/// A new worker: container, `kubeadm join`, the Node Ready with its pod network.
const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// The container CAPD names for a machine: the machine's name when it starts with the
/// cluster's, else `<cluster>-<machine>` (`capd_controllers::node::container_name`).
fn machine_container(cluster: &str, machine: &str) -> String {
    if machine.starts_with(&format!("{cluster}-")) {
        machine.to_string()
    } else {
        format!("{cluster}-{machine}")
    }
}

/// The container's ID if it is running.
fn running_container(env: &TestEnv, name: &str) -> Result<String> {
    let out = stdout(capd_e2e::cmd::docker(env).args([
        "inspect",
        "-f",
        "{{.State.Running}} {{.Id}}",
        name,
    ]))?;
    match out.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["true", id] => Ok(id.to_string()),
        _ => bail!("container {name} is not running: {}", out.trim()),
    }
}

/// IDs of every container, running or not, named exactly `name`.
fn containers_named(env: &TestEnv, name: &str) -> Result<Vec<String>> {
    Ok(stdout(capd_e2e::cmd::docker(env).args([
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("name=^/{name}$"),
    ]))?
    .split_whitespace()
    .map(String::from)
    .collect())
}

/// The one Machine selected by `labels`, with its infrastructure machine's name.
async fn only_machine(
    machines: &Api<DynamicObject>,
    labels: &str,
) -> Result<(DynamicObject, String)> {
    let list = machines
        .list(&ListParams::default().labels(labels))
        .await?
        .items;
    let [m] = list.as_slice() else {
        bail!(
            "want one Machine with {labels}, found {:?}",
            list.iter().map(|m| m.name_any()).collect::<Vec<_>>()
        );
    };
    let infra = m.data["spec"]["infrastructureRef"]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("Machine {}: no spec.infrastructureRef.name", m.name_any()))?
        .to_string();
    Ok((m.clone(), infra))
}

/// `condition` with its reason, `Type=Status (Reason)`, for a timeline.
fn condition_with_reason(obj: &Value, type_: &str) -> Option<String> {
    let c = obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    Some(format!(
        "{type_}={} ({})",
        c["status"].as_str().unwrap_or("?"),
        c["reason"].as_str().unwrap_or("")
    ))
}

/// A MachineHealthCheck on the cluster's MachineDeployment's Machines; the worker's node
/// container removed with `docker rm -f`; Cluster API remediates: the Machine deleted,
/// a new one made by the MachineSet, the cluster whole again. What happened when is
/// printed as a timeline.
async fn mhc_remediation(
    env: &TestEnv,
    client: &kube::Client,
    kubeconfig: &Path,
    config_home: &Path,
    ns: &str,
    cluster: &str,
) -> Result<()> {
    let machines = v1beta2(client, ns, "cluster.x-k8s.io", "Machine");
    let docker_machines = v1beta2(
        client,
        ns,
        "infrastructure.cluster.x-k8s.io",
        "DockerMachine",
    );
    let mhcs = v1beta2(client, ns, "cluster.x-k8s.io", "MachineHealthCheck");
    let nodes = Api::<Node>::all(
        workload_client(
            env,
            kubeconfig,
            config_home,
            cluster,
            ns,
            None,
            WORKLOAD_TIMEOUT,
        )
        .await?,
    );

    // The MachineDeployment, its worker, and the control plane as they are.
    let mds = v1beta2(client, ns, "cluster.x-k8s.io", "MachineDeployment")
        .list(&ListParams::default().labels(&format!("cluster.x-k8s.io/cluster-name={cluster}")))
        .await?
        .items;
    let [md] = mds.as_slice() else {
        bail!(
            "want one MachineDeployment of {cluster}, found {:?}",
            mds.iter().map(|m| m.name_any()).collect::<Vec<_>>()
        );
    };
    let md = md.name_any();
    let worker_selector = format!("cluster.x-k8s.io/deployment-name={md}");
    let (old, old_dm) = only_machine(&machines, &worker_selector).await?;
    let old_name = old.name_any();
    let old_node = old.data["status"]["nodeRef"]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("Machine {old_name}: no status.nodeRef"))?
        .to_string();
    let old_container = machine_container(cluster, &old_dm);
    let old_id = running_container(env, &old_container)?;
    let (_, cp_dm) = only_machine(
        &machines,
        &format!("cluster.x-k8s.io/cluster-name={cluster},cluster.x-k8s.io/control-plane"),
    )
    .await?;
    let cp_container = machine_container(cluster, &cp_dm);
    let cp_id = running_container(env, &cp_container)?;
    let before = node_containers(env, cluster)?;
    eprintln!(
        "    worker: Machine {old_name}, DockerMachine {old_dm}, Node {old_node}, container {old_container}"
    );

    // The MachineHealthCheck, and the worker seen healthy by it before anything breaks.
    let mhc_name = format!("{md}-unhealthy-node");
    let mhc: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2",
        "kind": "MachineHealthCheck",
        "metadata": { "name": mhc_name, "namespace": ns },
        "spec": {
            "clusterName": cluster,
            "selector": { "matchLabels": { "cluster.x-k8s.io/deployment-name": md } },
            "checks": {
                "nodeStartupTimeoutSeconds": 600,
                "unhealthyNodeConditions": [
                    { "type": "Ready", "status": "Unknown", "timeoutSeconds": MHC_NODE_TIMEOUT_SECONDS },
                    { "type": "Ready", "status": "False", "timeoutSeconds": MHC_NODE_TIMEOUT_SECONDS },
                ],
            },
            "remediation": { "triggerIf": { "unhealthyLessThanOrEqualTo": "100%" } },
        },
    }))?;
    mhcs.create(&PostParams::default(), &mhc)
        .await
        .with_context(|| format!("creating MachineHealthCheck {ns}/{mhc_name}"))?;
    let mhc_healthy = || {
        let (mhcs, machines) = (mhcs.clone(), machines.clone());
        let (mhc_name, selector) = (mhc_name.clone(), worker_selector.clone());
        async move {
            let m = mhcs.get(&mhc_name).await.map_err(|e| e.to_string())?;
            let (expected, healthy) = (
                &m.data["status"]["expectedMachines"],
                &m.data["status"]["currentHealthy"],
            );
            let checked: Vec<_> = machines
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .map(|w| (w.name_any(), condition(&w.data, "HealthCheckSucceeded")))
                .collect();
            if *expected == 1
                && *healthy == 1
                && checked.len() == 1
                && checked[0].1.as_deref() == Some("True")
            {
                Ok(())
            } else {
                Err(format!(
                    "MachineHealthCheck expectedMachines {expected}, currentHealthy {healthy}; Machines HealthCheckSucceeded {checked:?}"
                ))
            }
        }
    };
    poll_until(
        "the MachineHealthCheck sees the worker healthy",
        Duration::from_secs(60),
        &mhc_healthy,
    )
    .await?;

    // The worker's node container removed behind everyone's back.
    run(capd_e2e::cmd::docker(env).args(["rm", "-f", &old_container]))?;
    let broken = std::time::Instant::now();
    let timeline = std::sync::Mutex::new(vec![(
        Duration::ZERO,
        format!("docker rm -f {old_container}"),
    )]);
    let note = |what: String| {
        let mut t = timeline.lock().unwrap();
        if !t.iter().any(|(_, w)| *w == what) {
            t.push((broken.elapsed(), what));
        }
    };

    // Remediation: the old Machine unhealthy, then deleted.
    let res = poll_until(
        &format!("Machine {old_name} remediated (deleted)"),
        REMEDIATION_TIMEOUT,
        || {
            let (machines, docker_machines, nodes) =
                (machines.clone(), docker_machines.clone(), nodes.clone());
            let (old_name, old_dm, old_node) = (old_name.clone(), old_dm.clone(), old_node.clone());
            let note = &note;
            async move {
                if let Ok(Some(n)) = nodes.get_opt(&old_node).await {
                    if let Some(r) = n
                        .status
                        .and_then(|s| s.conditions)
                        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"))
                    {
                        note(format!(
                            "Node {old_node} Ready={} ({})",
                            r.status,
                            r.reason.unwrap_or_default()
                        ));
                    }
                }
                if let Ok(Some(dm)) = docker_machines.get_opt(&old_dm).await {
                    for c in ["ContainerProvisioned", "Ready"] {
                        if let Some(s) = condition_with_reason(&dm.data, c) {
                            note(format!("DockerMachine {s}"));
                        }
                    }
                }
                let Some(m) = machines
                    .get_opt(&old_name)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    note(format!("Machine {old_name} gone"));
                    return Ok(());
                };
                let seen: Vec<String> = [
                    "InfrastructureReady",
                    "NodeHealthy",
                    "HealthCheckSucceeded",
                    "OwnerRemediated",
                ]
                .iter()
                .filter_map(|c| condition_with_reason(&m.data, c))
                .collect();
                for s in &seen {
                    note(format!("Machine {s}"));
                }
                if m.metadata.deletion_timestamp.is_some() {
                    note(format!(
                        "Machine deleting: {}",
                        condition_with_reason(&m.data, "Deleting").unwrap_or_default()
                    ));
                }
                Err(format!("Machine {old_name}: {seen:?}"))
            }
        },
    )
    .await;
    let print_timeline = || {
        for (at, what) in timeline.lock().unwrap().iter() {
            eprintln!("    {:>6.1}s  {what}", at.as_secs_f64());
        }
    };
    if let Err(e) = res {
        print_timeline();
        let describe = stdout(
            clusterctl(env, kubeconfig, config_home)
                .args(["describe", "cluster", cluster, "-n", ns]),
        )
        .unwrap_or_else(|e| format!("{e:#}"));
        let mhc = mhcs.get(&mhc_name).await.map(|m| m.data["status"].clone());
        bail!("{e}\nMachineHealthCheck status: {mhc:?}\n{describe}");
    }

    // The replacement: a new Machine Ready with a new, running node container.
    let (new_name, new_container, new_id) = poll_until(
        "a new worker Machine Ready with a running node container",
        REPLACEMENT_TIMEOUT,
        || {
            let machines = machines.clone();
            let (selector, old_name) = (worker_selector.clone(), old_name.clone());
            async move {
                let ws = machines
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|e| e.to_string())?
                    .items;
                let states: Vec<_> = ws
                    .iter()
                    .map(|w| (w.name_any(), condition(&w.data, "Ready")))
                    .collect();
                let [w] = ws.as_slice() else {
                    return Err(format!("worker Machines {states:?}"));
                };
                if w.name_any() == old_name
                    || condition(&w.data, "Ready").as_deref() != Some("True")
                {
                    return Err(format!("worker Machines {states:?}"));
                }
                let dm = w.data["spec"]["infrastructureRef"]["name"]
                    .as_str()
                    .ok_or("no spec.infrastructureRef.name")?;
                let container = machine_container(cluster, dm);
                let id = running_container(env, &container).map_err(|e| format!("{e:#}"))?;
                Ok((w.name_any(), container, id))
            }
        },
    )
    .await?;
    note(format!(
        "Machine {new_name} Ready, container {new_container} running"
    ));
    wait_ready_nodes(env, cluster, &nodes, 2, REPLACEMENT_TIMEOUT).await?;
    note("2 Nodes Ready".into());
    print_timeline();

    // Nothing of the old Machine left; the control plane and load balancer untouched.
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    if names.contains(&old_node) {
        bail!("Node {old_node} of the remediated Machine is still there: {names:?}");
    }
    let left = containers_named(env, &old_container)?;
    if new_container != old_container && !left.is_empty() {
        bail!("container(s) {left:?} of the remediated Machine left");
    }
    if docker_machines.get_opt(&old_dm).await?.is_some() {
        bail!("DockerMachine {old_dm} of the remediated Machine left");
    }
    if new_id == old_id {
        bail!("the new Machine {new_name} runs in the old container {old_id}");
    }
    let cp_now = running_container(env, &cp_container)?;
    if cp_now != cp_id {
        bail!("the control-plane container {cp_container} changed: {cp_id} → {cp_now}");
    }
    let mut want: Vec<String> = before.iter().filter(|c| **c != old_id).cloned().collect();
    want.push(new_id.clone());
    want.sort();
    let after = node_containers(env, cluster)?;
    if after != want {
        bail!(
            "containers {after:?}; want the ones before {before:?} without {old_id}, with {new_id}"
        );
    }
    cluster_available(
        env,
        client,
        kubeconfig,
        config_home,
        ns,
        cluster,
        2,
        "DockerMachine",
    )
    .await?;
    poll_until(
        "the MachineHealthCheck sees the new worker healthy",
        // Its controller looks again on its own schedule; a loaded machine is slower.
        Duration::from_secs(180),
        &mhc_healthy,
    )
    .await?;

    // The later steps see the cluster as it was: no MachineHealthCheck.
    mhcs.delete(&mhc_name, &DeleteParams::default()).await?;
    poll_until(
        "the MachineHealthCheck deleted",
        Duration::from_secs(60),
        || {
            let (mhcs, mhc_name) = (mhcs.clone(), mhc_name.clone());
            async move {
                match mhcs.get_opt(&mhc_name).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(_) => Err("still there".to_string()),
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// IDs of the workload cluster's containers (load balancer and nodes), sorted.
fn node_containers(env: &TestEnv, cluster: &str) -> Result<Vec<String>> {
    let mut ids: Vec<String> = stdout(capd_e2e::cmd::docker(env).args([
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={cluster}"),
    ]))?
    .split_whitespace()
    .map(String::from)
    .collect();
    ids.sort();
    Ok(ids)
}

/// Names of the cluster's Machines, sorted.
async fn machine_names(client: &kube::Client, ns: &str, cluster: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = v1beta2(client, ns, "cluster.x-k8s.io", "Machine")
        .list(&ListParams::default().labels(&format!("cluster.x-k8s.io/cluster-name={cluster}")))
        .await?
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

/// `clusterctl move` of namespace `ns` from one management cluster to another.
fn move_cluster(
    env: &TestEnv,
    from: &Path,
    to: &Path,
    config_home: &Path,
    repo_config: &Path,
    ns: &str,
) -> Result<()> {
    let out = run(clusterctl(env, from, config_home)
        .arg("move")
        .arg("--config")
        .arg(repo_config)
        .arg("--kubeconfig")
        .arg(from)
        .arg("--to-kubeconfig")
        .arg(to)
        .args(["-n", ns]))?;
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// The image of the provider's Deployment.
async fn provider_image(client: &kube::Client) -> Result<String> {
    let d = Api::<Deployment>::namespaced(client.clone(), "capd-system")
        .get("capd-controller-manager")
        .await
        .context("Deployment capd-system/capd-controller-manager")?;
    Ok(d.spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()))
        .unwrap_or_default())
}
