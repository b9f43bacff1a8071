//! CAPD v1.14's Dev* kinds (DevCluster, DevMachine with `spec.backend.docker`) reconciled
//! by the same flows as the Docker* kinds, against the real management plane, Cluster API
//! and Docker engine; and the cost of an unchanged object.

mod common;

use capd_api::capi::Machine;
use capd_api::dev::{DevCluster, DevMachine};
use capd_api::HasConditions;
use capd_testenv::{b64, http_get, poll_until, unique_name};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;

/// The value of an unlabelled (or the first matching) sample of `metric` in a
/// Prometheus text exposition.
fn sample(body: &str, metric: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(metric) && l[metric.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_cluster_and_dev_machine_provision_through_the_docker_backend() {
    let f = Fixture::new("dev").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("dev");
    if let Ok(mut n) = f.cluster_names.lock() {
        n.push(name.clone());
    }
    let (repo, tag) = f.lb_image();
    let devclusters: Api<DevCluster> = Api::namespaced(f.client.clone(), &f.ns);
    let devmachines: Api<DevMachine> = Api::namespaced(f.client.clone(), &f.ns);
    let dc: DevCluster = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevCluster",
        "metadata": {"name": name},
        "spec": {"backend": {"docker": {"loadBalancer": {"imageRepository": repo, "imageTag": tag}}}}
    }))
    .unwrap();
    devclusters
        .create(&PostParams::default(), &dc)
        .await
        .unwrap();
    let cluster = json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DevCluster", "name": name}}
    });
    f.clusters()
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster).unwrap(),
        )
        .await
        .unwrap();

    let dc = poll_until("DevCluster provisioned and Ready", LONG, || {
        let (api, name) = (devclusters.clone(), name.clone());
        async move {
            let dc = api.get(&name).await.map_err(|e| e.to_string())?;
            let provisioned = dc
                .status
                .as_ref()
                .and_then(|s| s.initialization.provisioned)
                == Some(true);
            if provisioned && capd_api::conditions::is_true(dc.conditions(), "Ready") {
                Ok(dc)
            } else {
                Err(format!("{:?}", dc.status))
            }
        }
    })
    .await
    .unwrap();
    let lb = containers_of(&f.env, &name);
    assert_eq!(
        lb.iter()
            .map(|c| (c.0.as_str(), c.2.as_str()))
            .collect::<Vec<_>>(),
        [(format!("{name}-lb").as_str(), "external-load-balancer")]
    );
    assert_eq!(
        dc.spec.control_plane_endpoint.host,
        container_ip(&f.env, &lb[0].0, "kind")
    );
    assert_eq!(dc.spec.control_plane_endpoint.port, 6443);
    assert!(
        dc.finalizers()
            .iter()
            .any(|x| x == "dockercluster.infrastructure.cluster.x-k8s.io"),
        "CAPD's finalizer on DevClusters too"
    );
    // What the backend wrote went back into the DevCluster's own shape.
    let raw = serde_json::to_value(&dc).unwrap();
    assert!(
        raw["status"].get("ready").is_none(),
        "no DockerCluster-only field on a DevCluster: {}",
        raw["status"]
    );
    assert!(raw["spec"]["backend"]["docker"]["loadBalancer"]["imageTag"] == tag);

    // A DevMachine bootstraps a node container.
    let machine = format!("{name}-m0");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{machine}-bootstrap"), "labels": {"cluster.x-k8s.io/cluster-name": name}},
        "data": {"value": b64(b"#cloud-config\nruncmd:\n- echo dev > /var/lib/dev-marker\n")}
    }))
    .unwrap();
    Api::<Secret>::namespaced(f.client.clone(), &f.ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let labels = json!({"cluster.x-k8s.io/cluster-name": name});
    let dm: DevMachine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachine",
        "metadata": {"name": machine, "labels": labels},
        "spec": {"backend": {"docker": {"customImage": f.env.state.images.node, "bootstrapTimeout": "3m"}}}
    }))
    .unwrap();
    devmachines
        .create(&PostParams::default(), &dm)
        .await
        .unwrap();
    let m: Machine = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
        "metadata": {"name": machine, "labels": labels},
        "spec": {"clusterName": name, "version": "v1.36.3", "bootstrap": {"dataSecretName": format!("{machine}-bootstrap")},
                 "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DevMachine", "name": machine}}
    }))
    .unwrap();
    Api::<Machine>::namespaced(f.client.clone(), &f.ns)
        .create(&PostParams::default(), &m)
        .await
        .unwrap();
    let dm = poll_until(
        "DevMachine provisioned and Ready",
        Duration::from_secs(240),
        || {
            let (api, machine) = (devmachines.clone(), machine.clone());
            async move {
                let dm = api.get(&machine).await.map_err(|e| e.to_string())?;
                let provisioned = dm
                    .status
                    .as_ref()
                    .and_then(|s| s.initialization.provisioned)
                    == Some(true);
                if provisioned && capd_api::conditions::is_true(dm.conditions(), "Ready") {
                    Ok(dm)
                } else {
                    Err(format!("{:?}", dm.status))
                }
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(dm.spec.provider_id, format!("docker:////{machine}"));
    for c in [
        "ContainerProvisioned",
        "CGroupsReady",
        "PreLoadedImagesReady",
        "BootstrapCompleted",
    ] {
        assert!(
            capd_api::conditions::is_true(dm.conditions(), c),
            "{c}: {:?}",
            dm.status
        );
    }
    let out = f
        .env
        .docker()
        .args(["exec", &machine, "cat", "/var/lib/dev-marker"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "dev",
        "the bootstrap ran in the DevMachine's container"
    );

    // Deleting the Cluster removes both containers and lets both objects go.
    f.clusters()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        "the Dev* objects and their containers to be gone",
        LONG,
        || {
            let (dcs, dms, env, name) = (
                devclusters.clone(),
                devmachines.clone(),
                f.env.clone(),
                name.clone(),
            );
            async move {
                let left = dcs
                    .list(&Default::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len()
                    + dms
                        .list(&Default::default())
                        .await
                        .map_err(|e| e.to_string())?
                        .items
                        .len();
                let containers = containers_of(&env, &name);
                if left == 0 && containers.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{left} objects, containers {containers:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_memory_backend_is_refused_at_admission_with_a_message() {
    let f = Fixture::new("dev-inmem").await;
    let devclusters: Api<DevCluster> = Api::namespaced(f.client.clone(), &f.ns);
    let dc: DevCluster = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevCluster",
        "metadata": {"name": "in-memory"}, "spec": {"backend": {"inMemory": {}}}
    }))
    .unwrap();
    let err = devclusters
        .create(&PostParams::default(), &dc)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.backend") && err.contains("inMemory is not supported"),
        "{err}"
    );
    let devmachines: Api<DevMachine> = Api::namespaced(f.client.clone(), &f.ns);
    let dm: DevMachine = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DevMachine",
        "metadata": {"name": "in-memory"}, "spec": {"backend": {"inMemory": {"vm": {"provisioning": {"startupDuration": "1s"}}}}}
    }))
    .unwrap();
    let err = devmachines
        .create(&PostParams::default(), &dm)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("inMemory is not supported"), "{err}");
    // Nothing half-created.
    assert!(devclusters
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(devmachines
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_provisioned_cluster_costs_no_api_request_per_reconcile() {
    let f = Fixture::new("dc-quiet").await;
    // Resync every 2 s: each is a full reconcile of an object that has not changed.
    let m = f.manager(&["--sync-period", "2s"]).await;
    let name = unique_name("quiet");
    f.create_cluster(&name, false, json!({})).await;
    f.wait_provisioned(&name, LONG).await;
    let read = || {
        let (_, body) = http_get(m.metrics_port, "/metrics").unwrap();
        let reconciles =
            sample(&body, "capd_reconcile_total{controller=\"dockercluster\"}").unwrap_or(0.0);
        let requests = sample(&body, "capd_kube_api_requests_total").unwrap_or(0.0);
        (reconciles, requests)
    };
    // Let the writes of provisioning (and Cluster API's follow-ups) settle: two reconciles
    // in a row that sent nothing.
    let settled = poll_until("two quiet reconciles", Duration::from_secs(60), || {
        let before = read();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let now = read();
                if now.0 >= before.0 + 2.0 {
                    return if now.1 == before.1 {
                        Ok(now)
                    } else {
                        Err(format!(
                            "{} requests during {} reconciles",
                            now.1 - before.1,
                            now.0 - before.0
                        ))
                    };
                }
                if tokio::time::Instant::now() > deadline {
                    return Err("no resync reconciles".to_string());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
    .await
    .unwrap();
    // And then over several more resyncs: still not a single request.
    let after = poll_until(
        "three more resync reconciles",
        Duration::from_secs(30),
        || {
            let now = read();
            async move {
                if now.0 >= settled.0 + 3.0 {
                    Ok(now)
                } else {
                    Err(format!("{now:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        after.1,
        settled.1,
        "API requests while reconciling an unchanged, provisioned DockerCluster {} times",
        after.0 - settled.0
    );
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn machine_templates_report_the_engine_hosts_capacity() {
    let f = Fixture::new("tmpl-cap").await;
    let _m = f.manager(&[]).await;
    // What the engine says of its host, as `docker info` prints it.
    let out = f
        .env
        .docker()
        .args(["info", "--format", "{{.NCPU}} {{.MemTotal}}"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().unwrap());
    let (cpus, memory) = (it.next().unwrap(), it.next().unwrap());
    let want = capd_controllers::template::capacity(capd_runtime::HostCapacity {
        cpus,
        memory_bytes: memory,
    });
    let spec = json!({"template": {"spec": {"customImage": "img"}}});
    let dev_spec = json!({"template": {"spec": {"backend": {"docker": {"customImage": "img"}}}}});
    for (kind, spec) in [
        ("DockerMachineTemplate", spec),
        ("DevMachineTemplate", dev_spec),
    ] {
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            f.client.clone(),
            &f.ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "infrastructure.cluster.x-k8s.io",
                "v1beta2",
                kind,
            )),
        );
        let obj = serde_json::from_value(json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": kind,
            "metadata": {"name": "t"}, "spec": spec
        }))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
        let got = poll_until(&format!("{kind} status.capacity"), LONG, || {
            let api = api.clone();
            async move {
                let t = api.get("t").await.map_err(|e| e.to_string())?;
                let cap = t.data["status"]["capacity"].clone();
                if cap.is_object() {
                    Ok(cap)
                } else {
                    Err(format!("status {}", t.data["status"]))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(
            got,
            serde_json::to_value(&want).unwrap(),
            "{kind}: cpu {cpus}, memory {memory} bytes"
        );
    }
    f.delete_namespace().await;
}
