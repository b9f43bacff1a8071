//! The load balancer against the real engine of the test environment.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use capd_loadbalancer::labels::{CLUSTER_LABEL, CLUSTER_UID_LABEL, ROLE_LABEL, ROLE_LOAD_BALANCER};
use capd_loadbalancer::{
    config, BackendServer, ConfigData, Error, LoadBalancer, LoadBalancerSpec, CONFIG_PATH,
    DEFAULT_TEMPLATE,
};
use capd_runtime::{ContainerSpec, ContainerState, ExecRequest, LabelFilter};
use capd_testenv::{poll_until, unique_name};
use common::*;

fn lb_spec(cluster: &str, image: &str, network: &str, uid: &str) -> LoadBalancerSpec {
    LoadBalancerSpec {
        cluster_uid: Some(uid.to_string()),
        image: image.to_string(),
        network: network.to_string(),
        labels: BTreeMap::from([(TEST_LABEL.to_string(), "true".to_string())]),
        ..LoadBalancerSpec::new(cluster)
    }
}

async fn lb_containers(rt: &dyn capd_runtime::ContainerRuntime, cluster: &str) -> Vec<String> {
    rt.list_containers(
        &LabelFilter::new()
            .with(CLUSTER_LABEL, cluster)
            .with(ROLE_LABEL, ROLE_LOAD_BALANCER),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.id)
    .collect()
}

/// Answers seen over `n` fresh connections.
async fn answers(
    tls: &tokio_rustls::TlsConnector,
    port: u16,
    n: usize,
) -> Result<Vec<String>, String> {
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        seen.push(fetch(tls, port).await?);
    }
    Ok(seen)
}

#[tokio::test]
async fn balances_across_backends_and_follows_reconfiguration() {
    let e = engine();
    let rt = e.rt.as_ref();
    let network = test_network(rt).await;
    let cluster = unique_name("lb");
    let image = e.env.state.images.haproxy.clone();
    let (cert_der, pem) = test_certificate();
    let tls = tls_connector(&cert_der);
    let a = format!("{cluster}-cp-a");
    let b = format!("{cluster}-cp-b");
    let lb = LoadBalancer::new(e.rt.clone(), lb_spec(&cluster, &image, &network, "uid-1"));
    let names = [a.clone(), b.clone(), lb.container_name()];

    with_cleanup(rt, &names, async {
        for n in [&a, &b] {
            rt.run_container(&backend_spec(n, &cluster, &image, &network, &pem))
                .await
                .unwrap();
        }
        let status = lb.ensure().await.unwrap();
        let lb_id = status.container_id.clone();
        assert_eq!(status.state, ContainerState::Running);
        assert!(status.ip.is_some_and(|ip| ip.is_ipv4()), "{status:?}");
        let port = status.host_port.expect("6443 published on the host");
        assert_eq!(lb.ip().await.unwrap(), status.ip.unwrap());

        // The backends CAPD would configure: both control-plane containers.
        let backends = lb
            .control_plane_backends(&BTreeMap::from([(a.clone(), 50)]))
            .await
            .unwrap();
        assert_eq!(
            backends.keys().cloned().collect::<Vec<_>>(),
            [a.clone(), b.clone()]
        );
        assert_eq!(backends[&a].weight, 50);
        assert_eq!(backends[&b].weight, 100);
        assert!(
            lb.update_backends(&backends).await.unwrap(),
            "first configuration applies"
        );
        let live = String::from_utf8(
            rt.read_file(&lb.container_name(), CONFIG_PATH)
                .await
                .unwrap(),
        )
        .unwrap();
        assert!(
            live.contains(&format!(
                "server {a} {}:6443 weight 50",
                backends[&a].address
            )),
            "{live}"
        );

        poll_until(
            "answers from both backends through the load balancer",
            Duration::from_secs(30),
            || async {
                let seen: BTreeSet<String> = answers(&tls, port, 6).await?.into_iter().collect();
                if seen.len() == 2 {
                    Ok(seen)
                } else {
                    Err(format!("only {seen:?}"))
                }
            },
        )
        .await
        .unwrap();
        assert!(
            !lb.update_backends(&backends).await.unwrap(),
            "unchanged configuration is not reloaded"
        );

        // One backend goes away: reconfigure, and every new connection reaches the other.
        rt.remove_container(&a).await.unwrap();
        let remaining = lb.control_plane_backends(&BTreeMap::new()).await.unwrap();
        assert_eq!(
            remaining.keys().cloned().collect::<Vec<_>>(),
            std::slice::from_ref(&b)
        );
        assert!(lb.update_backends(&remaining).await.unwrap());
        poll_until(
            "ten connections in a row reaching the remaining backend",
            Duration::from_secs(30),
            || async {
                let seen = answers(&tls, port, 10).await?;
                if seen.iter().all(|s| *s == b) {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        )
        .await
        .unwrap();
        let after = answers(&tls, port, 20).await.unwrap();
        assert!(after.iter().all(|s| *s == b), "{after:?}");

        // Same container throughout, and ensure() keeps adopting it.
        assert_eq!(lb.status().await.unwrap().unwrap().container_id, lb_id);
        assert_eq!(lb.ensure().await.unwrap().container_id, lb_id);
        assert_eq!(
            lb_containers(rt, &cluster).await,
            std::slice::from_ref(&lb_id)
        );

        lb.delete().await.unwrap();
        assert!(lb.status().await.unwrap().is_none());
        lb.delete().await.unwrap();
        assert!(matches!(
            lb.update_backends(&remaining).await,
            Err(Error::Missing { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn ensure_is_idempotent_and_replaces_stale_containers() {
    let e = engine();
    let rt = e.rt.as_ref();
    let network = test_network(rt).await;
    let cluster = unique_name("lbstale");
    let image = e.env.state.images.haproxy.clone();
    let lb = LoadBalancer::new(e.rt.clone(), lb_spec(&cluster, &image, &network, "uid-1"));
    let name = lb.container_name();

    with_cleanup(rt, std::slice::from_ref(&name), async {
        // Twice (and concurrently) gives one container.
        let (first, second) = tokio::join!(lb.ensure(), lb.ensure());
        let id = first.unwrap().container_id;
        assert_eq!(second.unwrap().container_id, id);
        assert_eq!(lb.ensure().await.unwrap().container_id, id);
        assert_eq!(lb_containers(rt, &cluster).await, std::slice::from_ref(&id));

        // Our own container, stopped (engine restart, reboot): started again, same one.
        rt.stop_container(&name, Duration::from_secs(5))
            .await
            .unwrap();
        let restarted = lb.ensure().await.unwrap();
        assert_eq!(restarted.container_id, id);
        assert_eq!(restarted.state, ContainerState::Running);

        // An exited container of that name left by an earlier cluster: replaced.
        rt.remove_container(&name).await.unwrap();
        let stale = ContainerSpec::new(&name, &image)
            .label(TEST_LABEL, "true")
            .label(CLUSTER_LABEL, &cluster)
            .label(ROLE_LABEL, ROLE_LOAD_BALANCER)
            .network(&network)
            .entrypoint(["sh", "-c", "exit 0"]);
        let stale_id = rt.run_container(&stale).await.unwrap();
        poll_until(
            "stale container to exit",
            Duration::from_secs(20),
            || async {
                match rt
                    .inspect_container(&name)
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|i| i.state)
                {
                    Some(ContainerState::Exited) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
        .unwrap();
        let replaced = lb.ensure().await.unwrap();
        assert_ne!(replaced.container_id, stale_id);
        assert_eq!(replaced.state, ContainerState::Running);
        let info = rt.inspect_container(&name).await.unwrap().unwrap();
        assert_eq!(info.label(CLUSTER_UID_LABEL), Some("uid-1"));
        assert_eq!(
            lb_containers(rt, &cluster).await,
            std::slice::from_ref(&replaced.container_id)
        );

        // Running, but another cluster object's (same name, other UID): left alone.
        let other = LoadBalancer::new(e.rt.clone(), lb_spec(&cluster, &image, &network, "uid-2"));
        assert!(
            matches!(other.ensure().await, Err(Error::Foreign { .. })),
            "adopted a foreign LB"
        );
        assert!(
            matches!(other.delete().await, Err(Error::Foreign { .. })),
            "deleted a foreign LB"
        );
        assert!(rt.inspect_container(&name).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn custom_templates_are_checked_by_haproxy_before_reload() {
    let e = engine();
    let rt = e.rt.as_ref();
    let network = test_network(rt).await;
    let cluster = unique_name("lbtpl");
    let image = e.env.state.images.haproxy.clone();
    let spec = lb_spec(&cluster, &image, &network, "uid-1");
    let lb = LoadBalancer::new(e.rt.clone(), spec.clone());
    let name = lb.container_name();
    let backends = BTreeMap::from([(
        "n1".to_string(),
        BackendServer {
            address: "10.99.0.1".into(),
            weight: 100,
        },
    )]);

    with_cleanup(rt, std::slice::from_ref(&name), async {
        lb.ensure().await.unwrap();
        assert!(lb.update_backends(&backends).await.unwrap());
        let before = rt.read_file(&name, CONFIG_PATH).await.unwrap();

        // A template that renders but that HAProxy refuses: reported, nothing changed.
        let broken = LoadBalancer::new(
            e.rt.clone(),
            LoadBalancerSpec {
                config_template: Some(Arc::new(format!("{DEFAULT_TEMPLATE}  no-such-directive\n"))),
                ..spec.clone()
            },
        );
        match broken.update_backends(&backends).await {
            Err(Error::InvalidConfig { output, .. }) => {
                assert!(output.contains("no-such-directive"), "{output}")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        assert_eq!(rt.read_file(&name, CONFIG_PATH).await.unwrap(), before);

        // A good custom template is applied.
        let custom = LoadBalancer::new(
            e.rt.clone(),
            LoadBalancerSpec {
                config_template: Some(Arc::new(format!("# custom\n{DEFAULT_TEMPLATE}"))),
                ..spec.clone()
            },
        );
        assert!(custom.update_backends(&backends).await.unwrap());
        let live = String::from_utf8(rt.read_file(&name, CONFIG_PATH).await.unwrap()).unwrap();
        assert!(live.starts_with("# custom\n"), "{live}");
        assert_eq!(
            rt.inspect_container(&name).await.unwrap().unwrap().state,
            ContainerState::Running
        );

        // The IPv6 flavour of the default template is valid HAProxy configuration.
        let v6 = config::render(
            &ConfigData {
                ipv6: true,
                backend_servers: BTreeMap::from([(
                    "n1".to_string(),
                    BackendServer {
                        address: "fd00::10".into(),
                        weight: 100,
                    },
                )]),
                ..ConfigData::default()
            },
            None,
        )
        .unwrap();
        rt.write_file(&name, "/tmp/v6.cfg", v6.as_bytes(), 0o644)
            .await
            .unwrap();
        rt.exec_checked(
            &name,
            ExecRequest::new(["haproxy", "-c", "-f", "/tmp/v6.cfg"]),
        )
        .await
        .unwrap();
    })
    .await;
}
