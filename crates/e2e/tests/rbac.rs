//! The real manager, authenticated as the `capd-manager` ServiceAccount with a token from
//! the TokenRequest API and holding exactly the permissions of `manifests/rbac`, runs
//! with `--leader-elect` (its Lease in capd-system, as in the Deployment), watches the
//! whole cluster, and provisions a Cluster + DockerCluster. The token is also checked
//! to be denied what the manager does not need.

use capd_api::capi::Cluster;
use capd_api::DockerCluster;
use capd_e2e::artifacts::manager_binary;
use capd_e2e::proc::{wait_http_ok, Proc};
use capd_e2e::rbac::{self, can_i};
use capd_testenv::{free_port, poll_until, unique_name, TestEnv};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(180);

#[tokio::test]
async fn manager_provisions_with_exactly_the_cluster_role() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let admin = env.kube_client().await.unwrap();
    capd_testenv::install_provider_manifests(&admin)
        .await
        .unwrap();
    rbac::install(&admin).await.unwrap();

    let dir = capd_e2e::scratch_dir(&unique_name("rbac")).unwrap();
    let kubeconfig = rbac::service_account_kubeconfig(
        &admin,
        &env.state.api_server_url,
        &env.state.pki_dir.join("ca.crt"),
        &dir.join("capd-manager.kubeconfig"),
    )
    .await
    .unwrap();
    let sa = rbac::client_from(&kubeconfig).await.unwrap();

    // Least privilege, as the API server sees it.
    let ns = unique_name("rbac");
    let allowed = [
        (
            "list",
            "infrastructure.cluster.x-k8s.io",
            "dockerclusters",
            None,
        ),
        (
            "watch",
            "infrastructure.cluster.x-k8s.io",
            "dockermachines",
            None,
        ),
        (
            "patch",
            "infrastructure.cluster.x-k8s.io",
            "dockerclusters/status",
            Some(ns.as_str()),
        ),
        (
            "patch",
            "infrastructure.cluster.x-k8s.io",
            "dockermachines/status",
            Some(ns.as_str()),
        ),
        (
            "update",
            "infrastructure.cluster.x-k8s.io",
            "dockerclusters/finalizers",
            Some(ns.as_str()),
        ),
        ("watch", "cluster.x-k8s.io", "machines", None),
        ("watch", "cluster.x-k8s.io", "machinepools", None),
        (
            "watch",
            "infrastructure.cluster.x-k8s.io",
            "devmachinepools",
            None,
        ),
        (
            "patch",
            "infrastructure.cluster.x-k8s.io",
            "dockermachinepools/status",
            Some(ns.as_str()),
        ),
        (
            "create",
            "infrastructure.cluster.x-k8s.io",
            "devmachines",
            Some(ns.as_str()),
        ),
        ("delete", "cluster.x-k8s.io", "machines", Some(ns.as_str())),
        (
            "patch",
            "infrastructure.cluster.x-k8s.io",
            "devmachinetemplates/status",
            Some(ns.as_str()),
        ),
        ("get", "", "secrets", Some(ns.as_str())),
        // The metadata-only watch of cluster-labelled Secrets (kubeconfigs); CAPD v1.14.0
        // has these too (and patch, which this provider does not need).
        ("list", "", "secrets", None),
        ("watch", "", "secrets", Some(ns.as_str())),
        ("get", "", "configmaps", Some(ns.as_str())),
        ("create", "events.k8s.io", "events", Some(ns.as_str())),
        ("patch", "", "events", Some(ns.as_str())),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            Some(rbac::NAMESPACE),
        ),
        ("create", "", "secrets", Some(rbac::NAMESPACE)),
        ("create", "authentication.k8s.io", "tokenreviews", None),
        (
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            None,
        ),
    ];
    for (verb, group, resource, namespace) in allowed {
        assert!(can_i(&sa, verb, group, resource, namespace).await.unwrap(), "capd-manager may not {verb} {group}/{resource} in {namespace:?}, but the manager needs it");
    }
    let denied = [
        ("patch", "", "secrets", Some(ns.as_str())),
        ("create", "", "secrets", Some(ns.as_str())),
        ("list", "", "pods", None),
        ("get", "", "nodes", None),
        (
            "create",
            "infrastructure.cluster.x-k8s.io",
            "dockerclusters",
            Some(ns.as_str()),
        ),
        (
            "delete",
            "infrastructure.cluster.x-k8s.io",
            "dockerclusters",
            Some(ns.as_str()),
        ),
        (
            "patch",
            "infrastructure.cluster.x-k8s.io",
            "dockermachinetemplates",
            Some(ns.as_str()),
        ),
        (
            "update",
            "infrastructure.cluster.x-k8s.io",
            "dockermachinetemplates",
            Some(ns.as_str()),
        ),
        ("patch", "cluster.x-k8s.io", "clusters", Some(ns.as_str())),
        ("delete", "cluster.x-k8s.io", "clusters", Some(ns.as_str())),
        (
            "patch",
            "cluster.x-k8s.io",
            "machinepools",
            Some(ns.as_str()),
        ),
        ("create", "coordination.k8s.io", "leases", Some("default")),
        ("create", "rbac.authorization.k8s.io", "clusterroles", None),
        (
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        ),
    ];
    for (verb, group, resource, namespace) in denied {
        assert!(
            !can_i(&sa, verb, group, resource, namespace).await.unwrap(),
            "capd-manager may {verb} {group}/{resource} in {namespace:?}: more than it needs"
        );
    }

    // The manager, cluster-wide (as deployed) but limited to this test's objects by a watch
    // filter, so it leaves other tests' clusters alone.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let filter = unique_name("rbacwf");
    let instance = unique_name("capd-manager-rbac");
    let lease_name = unique_name("capd-rbac-lease");
    let (health, metrics) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = Command::new(manager_binary().unwrap());
    cmd.args([
        "--leader-elect",
        "--leader-election-id",
        &lease_name,
        "--watch-filter",
        &filter,
    ])
    .args([
        "--health-addr",
        &format!("127.0.0.1:{health}"),
        "--diagnostics-address",
        &format!("127.0.0.1:{metrics}"),
    ])
    // No certificate given: it issues its own (Secret in capd-system) and points the CRDs
    // at its Service, with exactly the RBAC of manifests/.
    .args([
        "--webhook-port",
        &free_port().unwrap().to_string(),
        "--webhook-cert-dir",
        &dir.join("no-certs").display().to_string(),
    ])
    .env("KUBECONFIG", &kubeconfig)
    .env("POD_NAMESPACE", rbac::NAMESPACE)
    .env("POD_NAME", &instance)
    .env("DOCKER_HOST", env.docker_host())
    .env("RUST_LOG", "info,capd_controllers=debug");
    let mut manager = Proc::spawn(
        "capd-manager (ServiceAccount token)",
        cmd,
        &dir.join("manager.log"),
    )
    .unwrap();
    wait_http_ok(&mut manager, health, "/readyz", Duration::from_secs(30))
        .await
        .unwrap();

    // Leader election with the Role in capd-system.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), rbac::NAMESPACE);
    poll_until(
        &format!("Lease {}/{lease_name} held by {instance}", rbac::NAMESPACE),
        Duration::from_secs(30),
        || {
            let (leases, lease_name, instance) =
                (leases.clone(), lease_name.clone(), instance.clone());
            async move {
                let l = leases.get(&lease_name).await.map_err(|e| e.to_string())?;
                let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                if holder.starts_with(&instance) {
                    Ok(())
                } else {
                    Err(format!("holder {holder:?}"))
                }
            }
        },
    )
    .await
    .unwrap();

    // A cluster, as a user's manifest has it.
    let cluster_name = unique_name("rbac");
    let name = cluster_name.as_str();
    let (repo_name, tag) = env.state.images.haproxy.rsplit_once(':').unwrap();
    let repo = repo_name.rsplit_once('/').map(|(r, _)| r).unwrap_or("");
    let labels = json!({"cluster.x-k8s.io/watch-filter": filter});
    let dcs: Api<DockerCluster> = Api::namespaced(admin.clone(), &ns);
    let clusters: Api<Cluster> = Api::namespaced(admin.clone(), &ns);
    let dc: DockerCluster = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"loadBalancer": {"imageRepository": repo, "imageTag": tag}}
    }))
    .unwrap();
    dcs.create(&PostParams::default(), &dc).await.unwrap();
    let cluster: Cluster = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
        "metadata": {"name": name, "labels": labels},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name}}
    }))
    .unwrap();
    clusters
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();

    let provisioned = poll_until(
        &format!("DockerCluster {ns}/{name} provisioned and Ready"),
        LONG,
        || {
            let dcs = dcs.clone();
            let alive = manager.check_running().map_err(|e| e.to_string());
            async move {
                alive?;
                let dc = dcs.get(name).await.map_err(|e| e.to_string())?;
                let ready = capd_api::conditions::is_true(
                    capd_api::HasConditions::conditions(&dc),
                    "Ready",
                );
                if dc.is_provisioned() && ready && !dc.spec.control_plane_endpoint.host.is_empty() {
                    Ok(dc)
                } else {
                    Err(format!("status {:?}", dc.status))
                }
            }
        },
    )
    .await;
    if let Err(e) = &provisioned {
        panic!(
            "{e}\nmanager log {}:\n{}",
            manager.log.display(),
            manager.log_tail(40)
        );
    }
    poll_until(
        &format!("Cluster {ns}/{name} to report infrastructure provisioned"),
        LONG,
        || {
            let clusters = clusters.clone();
            async move {
                let c = serde_json::to_value(clusters.get(name).await.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                if c["status"]["initialization"]["infrastructureProvisioned"] == true {
                    Ok(())
                } else {
                    Err(format!("status {}", c["status"]))
                }
            }
        },
    )
    .await
    .unwrap();

    // This manager did it (not another one running in the environment): its Event,
    // written with the events.k8s.io permission, carries its instance name.
    let events: Api<Event> = Api::namespaced(admin.clone(), &ns);
    poll_until(
        &format!("an Event from {instance} on DockerCluster {ns}/{name}"),
        Duration::from_secs(30),
        || {
            let (events, instance) = (events.clone(), instance.clone());
            async move {
                let list = events
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let seen: Vec<String> = list
                    .items
                    .iter()
                    .map(|e| format!("{:?}/{:?}", e.reason, e.reporting_instance))
                    .collect();
                let mine = list.items.iter().any(|e| {
                    e.reporting_instance.as_deref() == Some(instance.as_str())
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                });
                if mine {
                    Ok(())
                } else {
                    Err(format!("events: {seen:?}"))
                }
            }
        },
    )
    .await
    .unwrap();

    // Deletion with the same permissions: the finalizer comes off, the container goes.
    clusters
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        &format!("DockerCluster {ns}/{name} to be gone"),
        LONG,
        || {
            let dcs = dcs.clone();
            async move {
                match dcs.get_opt(name).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(dc) => Err(format!(
                        "still there: finalizers {:?}, status {:?}",
                        dc.metadata.finalizers, dc.status
                    )),
                }
            }
        },
    )
    .await
    .unwrap();

    let left = capd_e2e::cmd::stdout(capd_e2e::cmd::docker(&env).args([
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
    ]))
    .unwrap();
    assert!(
        left.trim().is_empty(),
        "containers of cluster {name} left after deletion: {left}"
    );

    let log = manager.log_text();
    let hits: Vec<&str> = log
        .lines()
        .filter(|l| permission_error(l))
        .take(5)
        .collect();
    assert!(
        hits.is_empty(),
        "the manager hit a permission error:\n{}",
        hits.join("\n")
    );
    manager.stop(Duration::from_secs(15));
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}

/// Whether a manager log line reports a permission error: "forbidden", or a 403 status
/// standing as a number of its own — not digits inside the line's timestamp
/// (`…T14:30:48.403488Z`) or inside a generated name.
fn permission_error(line: &str) -> bool {
    // The first field is the timestamp.
    let rest = line.split_once(' ').map(|(_, r)| r).unwrap_or(line);
    if rest.to_lowercase().contains("forbidden") {
        return true;
    }
    let bytes = rest.as_bytes();
    rest.match_indices("403").any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 3).copied();
        let part_of_word =
            |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        !part_of_word(before) && !part_of_word(after)
    })
}

#[test]
fn permission_errors_are_told_from_digits_in_timestamps_and_names() {
    assert!(!permission_error(
        "2026-11-30T14:30:48.403488Z  INFO capd_manager::leader: waiting to become leader lease=capd-system/capd-rbac-lease-5e93b34"
    ));
    assert!(!permission_error(
        "2026-11-30T14:30:48.1Z INFO created rbac-403a1b"
    ));
    assert!(permission_error(
        "2026-11-30T14:30:48.1Z WARN reconcile failed error=ApiError: secrets is forbidden: User cannot get"
    ));
    assert!(permission_error(
        "2026-11-30T14:30:48.1Z WARN request failed status: 403"
    ));
    assert!(permission_error(
        "2026-11-30T14:30:48.1Z WARN (403) Forbidden"
    ));
}
