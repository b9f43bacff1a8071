//! The DockerCluster controller against the real management plane, Cluster API core
//! controller and Docker engine, through the real manager binary.

mod common;

use capd_api::HasConditions;
use capd_testenv::{http_get, poll_until, unique_name};
use common::*;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn provisions_load_balancer_and_cluster_api_copies_the_endpoint() {
    let f = Fixture::new("dc-prov").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("prov");
    f.create_cluster(&name, false, json!({})).await;

    let dc = f.wait_provisioned(&name, LONG).await;
    let lb = containers_of(&f.env, &name);
    assert_eq!(lb.len(), 1, "one load balancer container: {lb:?}");
    assert_eq!(lb[0].0, format!("{name}-lb"));
    assert_eq!(
        (lb[0].1.as_str(), lb[0].2.as_str()),
        ("running", "external-load-balancer")
    );
    assert_eq!(
        dc.spec.control_plane_endpoint.host,
        container_ip(&f.env, &lb[0].0, "kind")
    );
    assert_eq!(dc.spec.control_plane_endpoint.port, 6443);
    assert!(dc
        .finalizers()
        .iter()
        .any(|x| x == "dockercluster.infrastructure.cluster.x-k8s.io"));
    let st = dc.status.as_ref().unwrap();
    assert!(st.ready, "status.ready for v1beta1-contract readers");
    assert!(capd_api::conditions::is_true(
        dc.conditions(),
        "LoadBalancerAvailable"
    ));
    assert!(capd_api::conditions::is_false(dc.conditions(), "Paused"));

    // Cluster API copies the endpoint and reports the infrastructure provisioned.
    let clusters = f.clusters();
    let host = dc.spec.control_plane_endpoint.host.clone();
    poll_until(
        "Cluster API to copy the endpoint and see the infrastructure provisioned",
        LONG,
        || {
            let (clusters, name, host) = (clusters.clone(), name.clone(), host.clone());
            async move {
                let c = clusters.get(&name).await.map_err(|e| e.to_string())?;
                if c.spec.control_plane_endpoint.host == host
                    && c.spec.control_plane_endpoint.port == 6443
                    && c.infrastructure_provisioned()
                {
                    Ok(())
                } else {
                    Err(format!(
                        "endpoint {:?}, status {:?}",
                        c.spec.control_plane_endpoint, c.status
                    ))
                }
            }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_by_annotation_creates_nothing_until_unpaused() {
    let f = Fixture::new("dc-pause").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("pa");
    f.create_cluster(&name, false, json!({"cluster.x-k8s.io/paused": ""}))
        .await;

    // The controller saw the object (its Paused condition says so) and created nothing.
    let api = f.dockerclusters();
    poll_until("Paused=True on the DockerCluster", LONG, || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let dc = api.get(&name).await.map_err(|e| e.to_string())?;
            if capd_api::conditions::is_true(dc.conditions(), "Paused") {
                Ok(())
            } else {
                Err(format!("{:?}", dc.status))
            }
        }
    })
    .await
    .unwrap();
    let dc = api.get(&name).await.unwrap();
    assert!(
        containers_of(&f.env, &name).is_empty(),
        "nothing is created while paused"
    );
    assert!(dc.spec.control_plane_endpoint.host.is_empty());
    assert!(
        !dc.finalizers()
            .iter()
            .any(|x| x.starts_with("dockercluster.")),
        "not even the finalizer"
    );

    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"cluster.x-k8s.io/paused": null}}})),
    )
    .await
    .unwrap();
    let dc = f.wait_provisioned(&name, LONG).await;
    assert!(capd_api::conditions::is_false(dc.conditions(), "Paused"));
    assert_eq!(containers_of(&f.env, &name).len(), 1);
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_cluster_creates_nothing_until_unpaused() {
    let f = Fixture::new("dc-cpause").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("cp");
    f.create_cluster(&name, true, json!({})).await;
    // A paused Cluster is not reconciled by Cluster API either, so set the ownerRef it
    // would have set: our controller must still honour Cluster.spec.paused.
    let cluster = f.clusters().get(&name).await.unwrap();
    let owner = json!([{
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "name": name, "uid": cluster.uid().unwrap()
    }]);
    f.dockerclusters()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": owner}})),
        )
        .await
        .unwrap();
    let api = f.dockerclusters();
    poll_until("Paused=True on the DockerCluster", LONG, || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let dc = api.get(&name).await.map_err(|e| e.to_string())?;
            if capd_api::conditions::is_true(dc.conditions(), "Paused") {
                Ok(())
            } else {
                Err(format!("{:?}", dc.status))
            }
        }
    })
    .await
    .unwrap();
    assert!(
        containers_of(&f.env, &name).is_empty(),
        "nothing is created while the Cluster is paused"
    );

    // Unpausing the Cluster triggers a reconcile through the Cluster watch.
    f.set_cluster_paused(&name, false).await;
    f.wait_provisioned(&name, LONG).await;
    assert_eq!(containers_of(&f.env, &name).len(), 1);
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_cluster_removes_the_load_balancer_and_finalizer() {
    let f = Fixture::new("dc-del").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("del");
    f.create_cluster(&name, false, json!({})).await;
    f.wait_provisioned(&name, LONG).await;
    assert_eq!(containers_of(&f.env, &name).len(), 1);

    f.clusters()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let (clusters, dcs) = (f.clusters(), f.dockerclusters());
    poll_until("Cluster and DockerCluster to be gone", LONG, || {
        let (clusters, dcs, name) = (clusters.clone(), dcs.clone(), name.clone());
        async move {
            let c = clusters.get_opt(&name).await.map_err(|e| e.to_string())?;
            let d = dcs.get_opt(&name).await.map_err(|e| e.to_string())?;
            match (c, d) {
                (None, None) => Ok(()),
                (c, d) => Err(format!(
                    "cluster present: {}, dockercluster finalizers: {:?}",
                    c.is_some(),
                    d.map(|d| (d.finalizers().to_vec(), d.status))
                )),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        containers_of(&f.env, &name).is_empty(),
        "no container of the cluster is left"
    );
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn manager_killed_mid_reconcile_leaves_exactly_one_load_balancer() {
    let f = Fixture::new("dc-kill").await;
    let names: Vec<String> = (0..4).map(|_| unique_name("k")).collect();
    for n in &names {
        f.create_cluster(n, false, json!({})).await;
    }
    let mut m = f.manager(&[]).await;
    // Kill it as soon as the first container shows up, while others are being made.
    poll_until("a first load balancer container", LONG, || {
        let any = names.iter().any(|n| !containers_of(&f.env, n).is_empty());
        async move {
            if any {
                Ok(())
            } else {
                Err("none yet".into())
            }
        }
    })
    .await
    .unwrap();
    m.kill();

    let _m2 = f.manager(&[]).await;
    for n in &names {
        f.wait_provisioned(n, LONG).await;
        let c = containers_of(&f.env, n);
        assert_eq!(c.len(), 1, "exactly one load balancer for {n}: {c:?}");
        assert_eq!(c[0].1, "running");
    }
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_clusters_at_once_all_become_provisioned() {
    let f = Fixture::new("dc-ten").await;
    let _m = f.manager(&[]).await;
    let names: Vec<String> = (0..10).map(|_| unique_name("t")).collect();
    futures::future::join_all(names.iter().map(|n| f.create_cluster(n, false, json!({})))).await;
    for n in &names {
        f.wait_provisioned(n, Duration::from_secs(240)).await;
        assert_eq!(containers_of(&f.env, n).len(), 1);
    }
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_answer() {
    let f = Fixture::new("dc-metrics").await;
    let m = f.manager(&[]).await;
    let name = unique_name("m");
    f.create_cluster(&name, false, json!({})).await;
    f.wait_provisioned(&name, LONG).await;
    assert_eq!(http_get(m.health_port, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(m.health_port, "/readyz").unwrap().0, 200);
    let (code, body) = http_get(m.metrics_port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for metric in [
        "capd_reconcile_total{controller=\"dockercluster\"}",
        "capd_kube_api_requests_total",
        "capd_reconcile_duration_seconds_bucket",
    ] {
        assert!(
            body.contains(metric),
            "{metric} missing from /metrics:\n{body}"
        );
    }
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_election_standby_takes_over() {
    let f = Fixture::new("dc-leader").await;
    let lease_args = ["--leader-elect", "--leader-elect-lease-duration", "6s"];
    let mut a = f.manager(&lease_args).await;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(f.client.clone(), &f.ns);
    let holder = |pid: u32| {
        let leases = leases.clone();
        async move {
            let l = leases
                .get("controller-leader-election-capd")
                .await
                .map_err(|e| e.to_string())?;
            let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            if h.ends_with(&format!("_{pid}")) {
                Ok(())
            } else {
                Err(format!("holder {h:?}"))
            }
        }
    };
    poll_until("manager A to hold the Lease", LONG, || holder(a.pid()))
        .await
        .unwrap();
    let b = f.manager(&lease_args).await;

    let first = unique_name("la");
    f.create_cluster(&first, false, json!({})).await;
    f.wait_provisioned(&first, LONG).await;
    // The standby reconciled nothing.
    let (_, metrics_b) = http_get(b.metrics_port, "/metrics").unwrap();
    assert!(
        !metrics_b.contains("capd_reconcile_total{controller=\"dockercluster\"}"),
        "standby reconciled:\n{metrics_b}"
    );

    assert!(a.terminate().success(), "A exits cleanly on SIGTERM");
    poll_until("manager B to take the Lease over", LONG, || holder(b.pid()))
        .await
        .unwrap();
    let second = unique_name("lb");
    f.create_cluster(&second, false, json!({})).await;
    f.wait_provisioned(&second, LONG).await;
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_balancer_stopped_behind_our_back_is_started_again() {
    let f = Fixture::new("dc-lbstop").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("lbstop");
    f.create_cluster(&name, false, json!({})).await;
    f.wait_provisioned(&name, LONG).await;
    let lb = format!("{name}-lb");
    // `docker stop` marks it stopped by hand: the engine's restart policy will not bring it back.
    let out = f
        .env
        .docker()
        .args(["stop", "-t", "1", &lb])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(containers_of(&f.env, &name)[0].1, "exited");
    // No event concerns the DockerCluster; the periodic look (30 s) finds and starts it.
    poll_until(
        "the load balancer to run again",
        Duration::from_secs(90),
        || {
            let (env, name) = (f.env.clone(), name.clone());
            async move {
                let c = containers_of(&env, &name);
                if c.len() == 1 && c[0].1 == "running" {
                    Ok(())
                } else {
                    Err(format!("{c:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_only_endpoint_is_the_load_balancers_frontend_port() {
    let f = Fixture::new("dc-port").await;
    let _m = f.manager(&[]).await;
    let name = unique_name("port");
    if let Ok(mut n) = f.cluster_names.lock() {
        n.push(name.clone());
    }
    let (repo, tag) = f.lb_image();
    // CAPD accepts an endpoint with only a port: the host is the load balancer's address.
    let dc: capd_api::DockerCluster = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster",
        "metadata": {"name": name},
        "spec": {"controlPlaneEndpoint": {"port": 7777}, "loadBalancer": {"imageRepository": repo, "imageTag": tag}}
    }))
    .unwrap();
    f.dockerclusters()
        .create(&kube::api::PostParams::default(), &dc)
        .await
        .unwrap();
    let cluster: capd_api::capi::Cluster = serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster", "metadata": {"name": name},
        "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": name}}
    }))
    .unwrap();
    f.clusters()
        .create(&kube::api::PostParams::default(), &cluster)
        .await
        .unwrap();
    let dc = f.wait_provisioned(&name, LONG).await;
    let ip = container_ip(&f.env, &format!("{name}-lb"), "kind");
    assert_eq!(
        (
            dc.spec.control_plane_endpoint.host.as_str(),
            dc.spec.control_plane_endpoint.port
        ),
        (ip.as_str(), 7777)
    );
    // HAProxy listens on the endpoint's port, not on 6443.
    let connect = |port: u16| {
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    };
    poll_until("the load balancer to listen on 7777", LONG, || {
        let ok = connect(7777);
        async move {
            if ok {
                Ok(())
            } else {
                Err("connection refused".to_string())
            }
        }
    })
    .await
    .unwrap();
    assert!(
        !connect(6443),
        "nothing listens on 6443 when the endpoint says 7777"
    );
    f.delete_namespace().await;
}
