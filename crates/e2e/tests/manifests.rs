//! The deployment manifests as Cluster API's tools read them: every object labelled, the
//! ClusterRole free of wildcards, the Deployment's arguments accepted by the real
//! manager after clusterctl's variable substitution, and tilt-provider.yaml consistent
//! with what Cluster API's Tilt (tilt-prepare) does with a provider.

use capd_e2e::artifacts::manager_binary;
use capd_e2e::cmd::{clusterctl, kubectl, run, stdout};
use capd_e2e::yaml::{describe, find, parse_docs, read_docs};
use capd_testenv::TestEnv;
use serde_json::Value;
use std::process::Command;

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run `cargo xtask up`)")
}

fn kustomized(env: &TestEnv) -> Vec<Value> {
    let out = stdout(
        kubectl(env, &env.state.kubeconfig)
            .arg("kustomize")
            .arg(capd_e2e::repo_root().join("manifests/default")),
    )
    .unwrap();
    parse_docs(&out, "kubectl kustomize manifests/default").unwrap()
}

#[test]
fn every_object_is_labelled_and_the_cluster_role_has_no_wildcards() {
    let env = env();
    let docs = kustomized(&env);
    for d in &docs {
        assert_eq!(
            d["metadata"]["labels"]["cluster.x-k8s.io/provider"],
            "infrastructure-docker",
            "{} lacks the provider label",
            describe(d)
        );
        if d["metadata"]["namespace"].is_string() {
            assert_eq!(d["metadata"]["namespace"], "capd-system", "{}", describe(d));
        }
    }
    for kind in ["ClusterRole", "Role"] {
        for role in docs.iter().filter(|d| d["kind"] == kind) {
            for rule in role["rules"].as_array().unwrap() {
                for field in ["apiGroups", "resources", "verbs"] {
                    let values = rule[field].as_array().unwrap_or_else(|| {
                        panic!("{}: rule without {field}: {rule}", describe(role))
                    });
                    assert!(
                        values.iter().all(|v| v != "*"),
                        "{}: wildcard in {field}: {rule}",
                        describe(role)
                    );
                }
                assert!(
                    rule.get("nonResourceURLs").is_none(),
                    "{}: {rule}",
                    describe(role)
                );
                // Deleting is granted for exactly one job: a machine pool's machines and the
                // Machines of a pool scaling down (crates/controllers/src/backends/docker/machine_pool.rs).
                let resources: Vec<&str> = rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|r| r.as_str())
                    .collect();
                let pool_machines = resources
                    .iter()
                    .all(|r| ["dockermachines", "devmachines", "machines"].contains(r));
                for v in rule["verbs"].as_array().unwrap() {
                    assert!(
                        !(v == "delete" && !pool_machines),
                        "{}: verb {v} in {rule}",
                        describe(role)
                    );
                    assert!(
                        !["deletecollection", "escalate", "bind", "impersonate"]
                            .contains(&v.as_str().unwrap()),
                        "{}: verb {v} in {rule}",
                        describe(role)
                    );
                }
            }
        }
    }
    // Bindings name the ServiceAccount the Deployment runs as.
    let d = find(&docs, "Deployment", None).unwrap();
    let sa = d["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    find(&docs, "ServiceAccount", Some(sa)).unwrap();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in docs.iter().filter(|d| d["kind"] == kind) {
            assert_eq!(b["subjects"][0]["name"], sa, "{}", describe(b));
            assert_eq!(
                b["subjects"][0]["namespace"],
                "capd-system",
                "{}",
                describe(b)
            );
            find(
                &docs,
                b["roleRef"]["kind"].as_str().unwrap(),
                b["roleRef"]["name"].as_str(),
            )
            .unwrap();
        }
    }
}

#[test]
fn deployment_runs_the_manager_as_cluster_api_expects() {
    let env = env();
    let root = capd_e2e::repo_root();
    // clusterctl's own substitution of the Deployment's `${VAR:=default}`s.
    let config_home = capd_e2e::scratch_dir("manifests-clusterctl").unwrap();
    let yaml = stdout(
        clusterctl(&env, &env.state.kubeconfig, &config_home)
            .args(["generate", "yaml", "--from"])
            .arg(root.join("manifests/manager/manager.yaml")),
    )
    .unwrap();
    let d = parse_docs(
        &yaml,
        "clusterctl generate yaml --from manifests/manager/manager.yaml",
    )
    .unwrap()
    .remove(0);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["name"], "manager",
        "clusterctl and Cluster API's Tilt find the container by this name"
    );
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert!(args.contains(&"--leader-elect".to_string()), "{args:?}");
    assert!(
        args.contains(&"--health-addr=:9440".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--diagnostics-address=:8443".to_string()),
        "{args:?}"
    );

    // The real manager accepts every argument (clap checks each value before acting on --version).
    let out = run(Command::new(manager_binary().unwrap())
        .args(&args)
        .arg("--version"))
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    let env_value = |n: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == n)
            .cloned()
    };
    assert_eq!(env_value("CAPD_DOCKER_NETWORK").unwrap()["value"], "kind");
    assert!(env_value("DOCKER_HOST").is_some());
    assert_eq!(
        env_value("POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace",
        "the Lease goes to the Pod's namespace"
    );

    let port = |name: &str| {
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].clone())
    };
    assert_eq!(port("healthz"), Some(Value::from(9440)));
    assert_eq!(port("metrics"), Some(Value::from(8443)));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "healthz");

    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/run/docker.sock")
        .expect("docker socket mount");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["hostPath"]["path"], "/var/run/docker.sock");
}

#[test]
fn tilt_provider_is_what_cluster_api_tilt_loads() {
    let env = env();
    let root = capd_e2e::repo_root();
    let p = read_docs(&root.join("tilt-provider.yaml"))
        .unwrap()
        .remove(0);
    assert_eq!(
        p["name"], "docker",
        "replaces CAPD's entry in Cluster API's Tiltfile"
    );
    let config = &p["config"];
    assert!(
        config["label"].as_str().is_some_and(|l| !l.is_empty()),
        "Cluster API's Tiltfile names resources after `label`"
    );
    // An `image` makes Cluster API's Tiltfile run `go build`; live_reload_deps make tilt-prepare
    // start `sh /start.sh /manager`, a helper this image does not have.
    assert!(config.get("image").is_none(), "{config}");
    assert!(
        config
            .get("live_reload_deps")
            .is_none_or(|d| d.as_array().is_some_and(|a| a.is_empty())),
        "{config}"
    );
    let folder = root.join(config["kustomize_folder"].as_str().unwrap());
    assert!(
        folder.join("kustomization.yaml").is_file(),
        "{} has no kustomization.yaml",
        folder.display()
    );
    assert!(folder.ends_with("manifests/default"));

    // What tilt-prepare looks for in the kustomize output: the Namespace carrying the
    // provider label (it derives the provider's name and type from it) and the labelled
    // Deployment with a `manager` container whose image the repository's Dockerfile makes.
    let docs = kustomized(&env);
    let ns = find(&docs, "Namespace", None).unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["cluster.x-k8s.io/provider"],
        "infrastructure-docker"
    );
    let d = find(&docs, "Deployment", None).unwrap();
    assert!(d["metadata"]["labels"]["cluster.x-k8s.io/provider"].is_string());
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "manager");
    assert_eq!(c["image"], "localhost/capd-rs/capd-manager:dev");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY --from=builder /out/manager /manager"),
        "tilt-prepare starts /manager"
    );
}
