//! Bad input beyond what the CRD schemas refuse (issue 15): each a clear condition on the
//! right object naming what is wrong, the manager still healthy, and nothing retried in
//! a loop: binary garbage as bootstrap data, a gzip bomb in a `write_files` entry, a
//! kubeconfig Secret that does not parse, a custom HAProxy template that does not render.
//! (A Secret of 10 MiB cannot exist: the API server refuses objects past ~1.5 MiB.)

mod common;

use capd_api::{DockerMachine, HasConditions};
use capd_testenv::{b64, http_get, poll_until};
use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::io::Write;

/// The (status, reason, message) of condition `type_` of `name`, once `done` says so.
async fn machine_condition(
    f: &Fixture,
    name: &str,
    type_: &str,
    done: impl Fn(&str, &str) -> bool + Copy,
) -> (String, String, String) {
    let get = |dm: &DockerMachine| capd_api::conditions::get(dm.conditions(), type_).cloned();
    let dm = f
        .wait_machine(name, type_, LONG, |dm| {
            get(dm).is_some_and(|c| done(&c.status, &c.message))
        })
        .await;
    let c = get(&dm).expect("the condition wait_machine saw");
    (c.status, c.reason, c.message)
}

fn healthy(m: &Manager) {
    assert_eq!(
        http_get(m.health_port, "/healthz").unwrap().0,
        200,
        "the manager keeps running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_garbage_as_bootstrap_data_fails_the_machine_naming_the_secret() {
    let f = Fixture::new("bad-bin").await;
    let m = f.manager(&[]).await;
    let cluster = f.cluster("bin").await;
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 131 % 251) as u8).collect();
    f.machine_bytes(&cluster, "g0", false, &garbage, None).await;
    let (_, reason, message) = machine_condition(&f, "g0", "BootstrapCompleted", |s, msg| {
        s == "False" && msg.contains("g0-bootstrap")
    })
    .await;
    assert_eq!(reason, "Failed", "{message}");
    assert!(
        message.contains("g0-bootstrap"),
        "names the Secret: {message}"
    );
    healthy(&m);
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_in_write_files_fails_naming_the_file_and_the_limit() {
    let f = Fixture::new("bad-gz").await;
    let m = f.manager(&[]).await;
    let cluster = f.cluster("gz").await;
    // 80 MiB of zeros compress to ~80 KiB: past the 64 MiB a file may decompress to.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..80 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = b64(gz.finish().unwrap());
    let data = format!(
        "#cloud-config\nwrite_files:\n- path: /etc/bomb\n  encoding: gzip+base64\n  content: {bomb}\nruncmd:\n- echo never >> /var/ran\n"
    );
    f.machine(&cluster, "z0", false, &data, None).await;
    let (_, reason, message) = machine_condition(&f, "z0", "BootstrapCompleted", |s, msg| {
        s == "False" && msg.contains("/etc/bomb")
    })
    .await;
    assert_eq!(reason, "Failed", "{message}");
    assert!(
        message.contains(&(64usize << 20).to_string()) || message.contains("64 MiB"),
        "names the limit: {message}"
    );
    let out = f
        .env
        .docker()
        .args(["exec", &format!("{cluster}-z0"), "test", "-e", "/var/ran"])
        .output()
        .unwrap();
    // 1 is `test`'s "no such file": the container is there and the file is not.
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing of the plan ran: {out:?}"
    );
    healthy(&m);
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubeconfig_secret_that_does_not_parse_is_reported_on_the_machine() {
    let f = Fixture::new("bad-kc").await;
    let m = f.manager(&[]).await;
    let cluster = f.cluster("kc").await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{cluster}-kubeconfig"), "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
        "data": {"value": b64("apiVersion: v1\nclusters: [unclosed")}
    }))
    .unwrap();
    Api::<Secret>::namespaced(f.client.clone(), &f.ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    f.machine(
        &cluster,
        "k0",
        false,
        "#cloud-config\nruncmd:\n- echo ok > /var/ok\n",
        None,
    )
    .await;
    let (_, _, message) = machine_condition(&f, "k0", "Ready", |s, msg| {
        s == "False" && msg.contains("kubeconfig")
    })
    .await;
    assert!(
        message.contains(&format!("{cluster}-kubeconfig")) && message.contains("not a kubeconfig"),
        "names the Secret and what is wrong: {message}"
    );
    // The node itself was made and bootstrapped: only the workload step is blocked.
    let dm = f.dockermachines().get("k0").await.unwrap();
    assert!(capd_api::conditions::is_true(
        dm.conditions(),
        "BootstrapCompleted"
    ));
    healthy(&m);
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_haproxy_template_that_does_not_render_is_reported_on_the_docker_cluster() {
    let f = Fixture::new("bad-tpl").await;
    let m = f.manager(&[]).await;
    let name = capd_testenv::unique_name("tpl");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "broken-template"},
        "data": {"value": "global\n  {{ if .FrontendControlPlanePort }\n"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(f.client.clone(), &f.ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    f.create_cluster_with(
        &name,
        json!({"spec": {"loadBalancer": {"customHAProxyConfigTemplateRef": {"name": "broken-template"}}}}),
        json!({}),
    )
    .await;
    let api = f.dockerclusters();
    let message = poll_until("the DockerCluster to report the template", LONG, || {
        let (api, name) = (api.clone(), name.clone());
        async move {
            let dc = api.get(&name).await.map_err(|e| e.to_string())?;
            let ready = capd_api::conditions::get(dc.conditions(), "Ready").cloned();
            match ready {
                Some(c) if c.status == "False" && c.message.contains("broken-template") => {
                    Ok(c.message)
                }
                other => Err(format!("Ready {other:?}")),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        message.contains("customHAProxyConfigTemplateRef"),
        "names the field: {message}"
    );
    let dc = api.get(&name).await.unwrap();
    assert!(
        !dc.is_provisioned(),
        "not provisioned with a broken template"
    );
    healthy(&m);
    f.delete_namespace().await;
}
