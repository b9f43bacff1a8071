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
//! 7. self-hosted, as Cluster API's self-hosted spec: the images loaded into the
//!    workload nodes (`kind load`, which finds them by the kind labels CAPD sets),
//!    `clusterctl init` (v0.1.1) on the workload cluster, `clusterctl move` into it (the
//!    same Machines and containers adopted, nothing left behind), the workers scaled
//!    1 → 2 by the moved providers, and `clusterctl move` back;
//! 8. both workload clusters deleted: no container or infrastructure object left;
//! 9. the kind cluster deleted: no container of it left.
//!
//! `CAPD_E2E_KEEP=1` keeps the kind cluster (`CAPD_E2E_KIND_CLUSTER` names it).

use anyhow::{anyhow, bail, Context, Result};
use capd_e2e::artifacts::{build_image, manager_binary};
use capd_e2e::certs;
use capd_e2e::cmd::{clusterctl, kubectl, run, stdout};
use capd_e2e::kind::{build_binary_image, capi_binary_for, deployment_images, KindCluster};
use capd_e2e::steps::Steps;
use capd_e2e::workload::{
    containers_of, generate, render_repo_from, render_repo_version, wait_ready_nodes,
    workload_client, PreviousRelease, REPO_VERSION,
};
use capd_e2e::yaml::{apply, parse_docs, read_docs};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
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

fn v1beta2(client: &kube::Client, ns: &str, group: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1beta2", kind)),
    )
}

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

    // 7. Self-hosted, as Cluster API's self-hosted spec: the workload cluster becomes
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

    // 8. Delete the workload clusters.
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

    // 9. Delete the management cluster.
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
