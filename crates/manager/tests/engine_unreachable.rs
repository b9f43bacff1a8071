//! The container engine unreachable (issue 15): the manager points at a socket where
//! nothing answers yet. The DockerCluster's condition and a Warning Event name the
//! socket, nothing is created, the manager stays healthy; once the socket answers (a
//! proxy to the real engine appears there) the cluster is provisioned within seconds.
//! Permission denied is not reproducible here: the tests run as root, whom a socket's
//! file mode does not stop.

mod common;

use capd_testenv::{http_get, poll_until, unique_name};
use common::faults::Row;
use common::*;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Forwards connections on `listen` to the engine's socket, until dropped.
struct Proxy {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Proxy {
    fn start(listen: &PathBuf, engine: &str) -> Self {
        let listener = tokio::net::UnixListener::bind(listen).unwrap();
        let engine = engine.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let engine = engine.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::UnixStream::connect(&engine).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Proxy {
            task,
            path: listen.clone(),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_engine_is_named_nothing_is_made_and_work_resumes_when_it_answers() {
    let f = Fixture::new("no-engine").await;
    let engine = f
        .env
        .docker_host()
        .strip_prefix("unix://")
        .expect("the environment's engine listens on a unix socket")
        .to_string();
    let socket = std::env::temp_dir().join(format!("{}.sock", unique_name("capd-rs-engine")));
    let _ = std::fs::remove_file(&socket);
    let host = format!("unix://{}", socket.display());
    let m = f.manager_env(&[], &[("DOCKER_HOST", &host)]).await;

    let name = unique_name("ne");
    f.create_cluster(&name, false, json!({})).await;
    let api = f.dockerclusters();
    let socket_s = socket.display().to_string();
    let message = poll_until("the DockerCluster to name the socket", LONG, || {
        let (api, name, socket) = (api.clone(), name.clone(), socket_s.clone());
        async move {
            let dc = api.get(&name).await.map_err(|e| e.to_string())?;
            match capd_api::conditions::get(capd_api::HasConditions::conditions(&dc), "Ready") {
                Some(c) if c.status == "False" && c.message.contains(&socket) => {
                    Ok(c.message.clone())
                }
                other => Err(format!("Ready {other:?}")),
            }
        }
    })
    .await
    .unwrap();
    let events: Api<Event> = Api::namespaced(f.client.clone(), &f.ns);
    let note = poll_until("a Warning Event naming the socket", LONG, || {
        let (events, name, socket) = (events.clone(), name.clone(), socket_s.clone());
        async move {
            let list = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            list.items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("EngineUnreachable")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&name)
                        && e.type_.as_deref() == Some("Warning")
                })
                .and_then(|e| e.note)
                .filter(|n| n.contains(&socket))
                .ok_or_else(|| "none yet".to_string())
        }
    })
    .await
    .unwrap();
    assert!(
        containers_of(&f.env, &name).is_empty(),
        "nothing created while the engine does not answer"
    );
    assert_eq!(http_get(m.health_port, "/healthz").unwrap().0, 200);

    // The engine answers at that address from now on.
    let proxy = Proxy::start(&socket, &engine);
    let answers = Instant::now();
    f.wait_provisioned(&name, Duration::from_secs(60)).await;
    let recovery = answers.elapsed();
    let lbs = containers_of(&f.env, &name).len();
    Row {
        fault: "engine unreachable (nothing at the socket), then answering".into(),
        trials: 1,
        duplicates: lbs.saturating_sub(1),
        second_bootstraps: 0,
        orphans: 0,
        recovery,
        seen: format!("Ready=False naming the socket ({message}); a Warning Event EngineUnreachable ({note}); no container until it answered"),
    }
    .print();
    assert_eq!(lbs, 1, "one load balancer once the engine answers");
    assert!(
        recovery < Duration::from_secs(30),
        "provisioned {recovery:?} after the engine answered"
    );
    f.delete_namespace().await;
    drop(proxy);
}
