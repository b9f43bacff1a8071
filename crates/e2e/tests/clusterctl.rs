//! The clusterctl local repository of `cargo xtask clusterctl-repo`, used by the real
//! clusterctl (the environment's build of Cluster API's clusterctl):
//!
//! - `clusterctl init` installs the provider into a scratch management plane (its own
//!   etcd and kube-apiserver), never into the shared environment: init installs
//!   cluster-wide objects (Cluster API's CRDs with conversion webhooks pointing at
//!   Services that have no Pods here, webhook configurations) that would break the
//!   out-of-cluster managers every other test relies on.
//! - `clusterctl generate cluster` renders each flavour and the shared environment's API
//!   server (with Cluster API's real webhooks) accepts the result in a server-side dry run.

use capd_e2e::cmd::{clusterctl, kubectl, run, stdout, xtask};
use capd_e2e::plane::ScratchPlane;
use capd_e2e::yaml::{apply, describe, find, parse_docs, read_docs};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const VERSION: &str = "v0.1.0";

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run `cargo xtask up`)")
}

/// Renders the repository (with Cluster API's providers from the module cache) into a
/// scratch directory; returns (output dir, clusterctl.yaml).
fn render_repo(name: &str) -> (PathBuf, PathBuf) {
    let out = capd_e2e::scratch_dir(name).unwrap();
    let out_s = out.display().to_string();
    run(&mut xtask(&[
        "clusterctl-repo",
        "--version",
        VERSION,
        "--out",
        &out_s,
        "--capi-from-module-cache",
    ]))
    .unwrap();
    let config = out.join("clusterctl.yaml");
    assert!(config.is_file(), "no {}", config.display());
    (out, config)
}

fn infra_dir(out: &Path) -> PathBuf {
    out.join("infrastructure-docker").join(VERSION)
}

#[test]
fn repository_layout_and_components() {
    let env = env();
    let (out, config) = render_repo("clusterctl-layout");
    let dir = infra_dir(&out);

    let metadata = read_docs(&dir.join("metadata.yaml")).unwrap();
    assert_eq!(
        metadata[0]["apiVersion"],
        "clusterctl.cluster.x-k8s.io/v1alpha3"
    );
    assert_eq!(metadata[0]["kind"], "Metadata");
    assert!(
        metadata[0]["releaseSeries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["major"] == 0 && s["minor"] == 1 && s["contract"] == "v1beta2"),
        "metadata.yaml: {}",
        metadata[0]
    );

    let components = read_docs(&dir.join("infrastructure-components.yaml")).unwrap();
    let namespaces: Vec<String> = components
        .iter()
        .filter(|d| d["kind"] == "Namespace")
        .map(describe)
        .collect();
    assert_eq!(
        namespaces,
        vec!["Namespace capd-system".to_string()],
        "exactly one Namespace"
    );
    for d in &components {
        assert_eq!(
            d["metadata"]["labels"]["cluster.x-k8s.io/provider"],
            "infrastructure-docker",
            "{} lacks the provider label",
            describe(d)
        );
    }
    for kind in [
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Deployment",
    ] {
        assert!(
            components.iter().any(|d| d["kind"] == kind),
            "no {kind} in the components"
        );
    }
    let deployment = find(&components, "Deployment", None).unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "manager");
    assert_eq!(
        container["image"],
        format!("localhost/capd-rs/capd-manager:{VERSION}")
    );

    // The substitution points users expect from CAPD, each with a default.
    let text = std::fs::read_to_string(dir.join("infrastructure-components.yaml")).unwrap();
    for var in [
        "${CAPD_DOCKER_NETWORK:=kind}",
        "${CAPD_DOCKER_HOST:=\"\"}",
        "${CAPI_DIAGNOSTICS_ADDRESS:=:8443}",
    ] {
        assert!(text.contains(var), "components lack {var}");
    }

    // The components are the kustomization's objects: what Cluster API's Tilt applies.
    let kustomized = stdout(
        kubectl(&env, &env.state.kubeconfig)
            .arg("kustomize")
            .arg(capd_e2e::repo_root().join("manifests/default")),
    )
    .unwrap();
    let kustomized = parse_docs(&kustomized, "kubectl kustomize manifests/default").unwrap();
    let key = |d: &Value| describe(d);
    let mut a: Vec<String> = components.iter().map(key).collect();
    let mut b: Vec<String> = kustomized.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "clusterctl-repo and kustomize disagree on the objects"
    );
    for k in &kustomized {
        let mut c = components
            .iter()
            .find(|c| key(c) == key(k))
            .unwrap()
            .clone();
        if c["kind"] == "Deployment" {
            c["spec"]["template"]["spec"]["containers"][0]["image"] =
                k["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        }
        assert_eq!(
            &c,
            k,
            "{} differs between the components and kustomize",
            key(k)
        );
    }

    // Every flavour and the ClusterClass travel with the release.
    for t in std::fs::read_dir(capd_e2e::repo_root().join("templates"))
        .unwrap()
        .flatten()
    {
        let n = t.file_name().to_string_lossy().into_owned();
        if n.starts_with("cluster-template") || n.starts_with("clusterclass-") {
            assert!(dir.join(&n).is_file(), "{n} missing from {}", dir.display());
        }
    }
    let cfg = read_docs(&config).unwrap();
    let providers = cfg[0]["providers"].as_array().unwrap();
    let names: Vec<String> = providers
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["type"].as_str().unwrap(),
                p["name"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "InfrastructureProvider/docker",
        "CoreProvider/cluster-api",
        "BootstrapProvider/kubeadm",
        "ControlPlaneProvider/kubeadm",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "clusterctl.yaml lacks {want}: {names:?}"
        );
    }
}

/// Just enough of cert-manager for clusterctl's check (it creates a test Issuer and
/// Certificate and skips installing cert-manager when that works).
const CERT_MANAGER_TEST_CRDS: &str = include_str!("../fixtures/cert-manager-test-crds.yaml");

#[tokio::test]
async fn clusterctl_init_installs_the_provider() {
    let env = env();
    let (out, config) = render_repo("clusterctl-init");
    let plane = ScratchPlane::start(&env, "clusterctl-init-plane")
        .await
        .unwrap();
    let client = plane.client().await.unwrap();
    apply(
        &client,
        "capd-e2e",
        &parse_docs(
            CERT_MANAGER_TEST_CRDS,
            "fixtures/cert-manager-test-crds.yaml",
        )
        .unwrap(),
    )
    .await
    .unwrap();
    capd_e2e::yaml::wait_established(
        &client,
        &["issuers.cert-manager.io", "certificates.cert-manager.io"],
    )
    .await
    .unwrap();
    // Established is not yet served to every client: wait until discovery lists them, or
    // clusterctl's one-shot check fails and it tries to download cert-manager.
    poll_until(
        "cert-manager.io kinds in discovery",
        Duration::from_secs(60),
        || {
            let out = kubectl(&env, &plane.kubeconfig)
                .args(["api-resources", "--api-group=cert-manager.io", "-o", "name"])
                .output();
            async move {
                let out = out.map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
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
    .await
    .unwrap();

    let config_home = out.join("xdg");
    // clusterctl logs to stderr.
    let init = run(clusterctl(&env, &plane.kubeconfig, &config_home)
        .args(["init", "--config"])
        .arg(&config)
        .args(["--infrastructure", &format!("docker:{VERSION}")]))
    .unwrap();
    let init = format!(
        "{}{}",
        String::from_utf8_lossy(&init.stderr),
        String::from_utf8_lossy(&init.stdout)
    );
    eprintln!("{init}");
    assert!(init.contains(&format!("Installing provider=\"infrastructure-docker\" version=\"{VERSION}\" targetNamespace=\"capd-system\"")), "{init}");

    // The CRDs, established.
    let crds = [
        "dockerclusters",
        "dockerclustertemplates",
        "dockermachines",
        "dockermachinetemplates",
    ]
    .map(|r| format!("{r}.infrastructure.cluster.x-k8s.io"));
    capd_e2e::yaml::wait_established(
        &client,
        &crds.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await
    .unwrap();

    // The provider inventory.
    let providers = stdout(kubectl(&env, &plane.kubeconfig).args([
        "get",
        "providers.clusterctl.cluster.x-k8s.io",
        "-A",
        "-o",
        "json",
    ]))
    .unwrap();
    let providers: Value = serde_json::from_str(&providers).unwrap();
    let infra = providers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "infrastructure-docker")
        .unwrap_or_else(|| panic!("no infrastructure-docker Provider: {providers}"));
    assert_eq!(infra["metadata"]["namespace"], "capd-system");
    assert_eq!(infra["type"], "InfrastructureProvider");
    assert_eq!(infra["providerName"], "docker");
    assert_eq!(infra["version"], VERSION);

    // The Deployment, with clusterctl's variable defaults substituted.
    let d = stdout(kubectl(&env, &plane.kubeconfig).args([
        "-n",
        "capd-system",
        "get",
        "deployment",
        "capd-controller-manager",
        "-o",
        "json",
    ]))
    .unwrap();
    let d: Value = serde_json::from_str(&d).unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "manager");
    let envs = c["env"].as_array().unwrap();
    let value = |n: &str| {
        envs.iter()
            .find(|e| e["name"] == n)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        value("CAPD_DOCKER_NETWORK"),
        Some(json!("kind")),
        "env: {envs:?}"
    );
    assert!(
        matches!(
            value("DOCKER_HOST"),
            Some(Value::Null) | Some(Value::String(_))
        ),
        "env: {envs:?}"
    );
    assert_eq!(
        value("DOCKER_HOST")
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        ""
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        args.contains(&"--leader-elect") && args.contains(&"--diagnostics-address=:8443"),
        "args: {args:?}"
    );
    assert!(
        args.iter().all(|a| !a.contains("${")),
        "unsubstituted args: {args:?}"
    );

    drop(plane);
}

/// Values for the variables a flavour requires, from the environment.
fn variable_value(env: &TestEnv, name: &str) -> Option<String> {
    let (repo_name, tag) = env.state.images.haproxy.rsplit_once(':')?;
    let repo = repo_name.rsplit_once('/').map(|(r, _)| r).unwrap_or("");
    match name {
        "LB_IMAGE_REPOSITORY" => Some(repo.to_string()),
        "LB_IMAGE_TAG" => Some(tag.to_string()),
        "NODE_IMAGE" | "CAPD_NODE_IMAGE" => Some(env.state.images.node.clone()),
        _ => None,
    }
}

/// `Required Variables:` of `clusterctl generate cluster --list-variables`.
fn required_variables(listing: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_required = false;
    for line in listing.lines() {
        let t = line.trim();
        if t.starts_with("Required Variables") {
            in_required = true;
        } else if t.starts_with("Optional Variables") {
            in_required = false;
        } else if in_required {
            if let Some(v) = t.strip_prefix("- ") {
                out.push(v.split_whitespace().next().unwrap_or(v).to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn generate_cluster_renders_every_flavour_and_the_api_server_accepts_it() {
    let env = env();
    let (out, config) = render_repo("clusterctl-generate");
    let client = env.kube_client().await.unwrap();
    capd_testenv::install_provider_manifests(&client)
        .await
        .unwrap();
    let ns = unique_name("flavours");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let config_home = out.join("xdg");

    let mut flavours: Vec<String> = std::fs::read_dir(infra_dir(&out))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let f = n
                .strip_prefix("cluster-template")?
                .strip_suffix(".yaml")?
                .to_string();
            Some(f.trim_start_matches('-').to_string())
        })
        .collect();
    flavours.sort();
    assert!(
        flavours.contains(&String::new()) && flavours.contains(&"topology".to_string()),
        "flavours: {flavours:?}"
    );

    let mut results = Vec::new();
    let mut classes_applied = std::collections::BTreeSet::new();
    for flavour in &flavours {
        let shown = if flavour.is_empty() {
            "default".to_string()
        } else {
            flavour.clone()
        };
        let cluster = unique_name("gen");
        let gen = |extra: &[&str]| {
            let mut c = clusterctl(&env, &env.state.kubeconfig, &config_home);
            c.args(["generate", "cluster", &cluster, "--config"])
                .arg(&config)
                .args([
                    "--infrastructure",
                    &format!("docker:{VERSION}"),
                    "--target-namespace",
                    &ns,
                ])
                .args([
                    "--kubernetes-version",
                    "v1.36.3",
                    "--control-plane-machine-count",
                    "1",
                    "--worker-machine-count",
                    "2",
                ])
                .args(extra);
            if !flavour.is_empty() {
                c.args(["--flavor", flavour]);
            }
            c
        };
        let listing = stdout(&mut gen(&["--list-variables"])).unwrap();
        let mut cmd = gen(&[]);
        for v in required_variables(&listing) {
            if [
                "CLUSTER_NAME",
                "NAMESPACE",
                "KUBERNETES_VERSION",
                "CONTROL_PLANE_MACHINE_COUNT",
                "WORKER_MACHINE_COUNT",
            ]
            .contains(&v.as_str())
            {
                continue;
            }
            let value = variable_value(&env, &v).unwrap_or_else(|| panic!("flavour {shown} requires {v}, which this test does not know how to fill:\n{listing}"));
            cmd.env(&v, value);
        }
        let yaml = stdout(&mut cmd).unwrap();
        let docs = parse_docs(&yaml, &format!("flavour {shown}")).unwrap();
        let c = find(&docs, "Cluster", Some(&cluster)).unwrap();
        assert_eq!(c["metadata"]["namespace"], ns.as_str(), "flavour {shown}");
        assert!(
            !yaml.contains("${"),
            "flavour {shown} left a variable unsubstituted:\n{yaml}"
        );

        if c["spec"]["topology"].is_object() {
            // The ClusterClass comes along; create it for real so the Cluster's topology is
            // validated against it (variables, class names), then dry-run the Cluster.
            let class = c["spec"]["topology"]["classRef"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            // clusterctl adds the class only while it is not in the namespace yet: the first
            // flavour of that class brings it, the next ones (same namespace) do not.
            if !classes_applied.contains(&class) {
                find(&docs, "ClusterClass", Some(&class))
                    .unwrap_or_else(|e| panic!("flavour {shown}: {e}"));
            }
            classes_applied.insert(class.clone());
            let mut rest: Vec<Value> = docs
                .iter()
                .filter(|d| d["kind"] != "Cluster")
                .cloned()
                .collect();
            for d in &mut rest {
                d["metadata"]["namespace"] = json!(ns);
            }
            apply(&client, "capd-e2e", &rest).await.unwrap();
            let ccs: Api<kube::api::DynamicObject> = Api::namespaced_with(
                client.clone(),
                &ns,
                &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                    "cluster.x-k8s.io",
                    "v1beta2",
                    "ClusterClass",
                )),
            );
            poll_until(
                &format!("ClusterClass {ns}/{class} to be reconciled (variables in status)"),
                Duration::from_secs(60),
                || {
                    let (ccs, class) = (ccs.clone(), class.clone());
                    async move {
                        let cc = ccs.get(&class).await.map_err(|e| e.to_string())?;
                        let st = &cc.data["status"];
                        let ok = st["variables"].as_array().is_some_and(|v| !v.is_empty())
                            && st["conditions"].as_array().is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c["type"] == "VariablesReady" && c["status"] == "True")
                            });
                        if ok {
                            Ok(())
                        } else {
                            Err(format!("status {st}"))
                        }
                    }
                },
            )
            .await
            .unwrap();
        }

        let file = out.join(format!("generated-{shown}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let applied = kubectl(&env, &env.state.kubeconfig)
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&applied.stdout),
            String::from_utf8_lossy(&applied.stderr)
        );
        assert!(
            applied.status.success(),
            "flavour {shown}: kubectl apply --dry-run=server rejected {}:\n{text}",
            file.display()
        );
        assert!(
            !text.contains("does not exist. Cluster topology has not been fully validated"),
            "flavour {shown}: {text}"
        );
        results.push(format!("{shown}: {} objects accepted", docs.len()));
    }
    eprintln!("{}", results.join("\n"));
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
