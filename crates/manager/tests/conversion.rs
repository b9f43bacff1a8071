//! v1beta1 through the real API server: a plane of its own (a second kube-apiserver, so no
//! other test's manager re-points its CRDs), our CRDs as shipped, and the real manager with
//! no certificate given — it issues its own, keeps it in a Secret, points the CRDs at its
//! webhook with that CA, and converts. Objects written in v1beta1 read back the same, and a
//! v1beta2-only field survives a v1beta1 client's read-modify-write.

use capd_api::{DockerCluster, DockerMachine};
use capd_testenv::{free_port, http_get, poll_until, unique_name, ExtraApiServer, TestEnv};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::ResourceExt;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

fn v1beta1(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infrastructure.cluster.x-k8s.io",
        "v1beta1",
        kind,
    ))
}

#[tokio::test]
async fn v1beta1_objects_convert_losslessly_through_the_managers_own_webhook() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    let plane = ExtraApiServer::start(&env, &unique_name("conversion"))
        .await
        .unwrap();
    let client = plane.client().await.unwrap();
    capd_testenv::install_provider_manifests(&client)
        .await
        .unwrap();
    let ns = unique_name("conv");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    let kubeconfig = env.state.log_dir.join(format!("{ns}.kubeconfig"));
    std::fs::write(&kubeconfig, &plane.kubeconfig).unwrap();
    let (health, metrics, webhook) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let log = env.state.log_dir.join(format!("manager-{ns}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_capd-manager"))
        .args([
            "--namespace",
            &ns,
            "--health-addr",
            &format!("127.0.0.1:{health}"),
            "--diagnostics-address",
            &format!("127.0.0.1:{metrics}"),
        ])
        .args([
            "--webhook-port",
            &webhook.to_string(),
            "--webhook-url",
            &format!("https://127.0.0.1:{webhook}"),
        ])
        .args([
            "--webhook-cert-dir",
            &env.state
                .log_dir
                .join(format!("{ns}-no-certs"))
                .display()
                .to_string(),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", &ns)
        .env("DOCKER_HOST", env.docker_host())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let _stop = KillOnDrop(child);
    // /healthz, not /readyz: this plane has no Cluster API CRDs, so the controllers' caches
    // never sync; the webhook is served (and the CRDs wired) before the health endpoint is.
    poll_until("manager /healthz", Duration::from_secs(60), || {
        let (r, log) = (http_get(health, "/healthz"), log.display().to_string());
        async move {
            match r {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?} (log {log})")),
            }
        }
    })
    .await
    .unwrap();

    // Its certificate is in a Secret, and every CRD trusts exactly that CA.
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("capd-webhook-service-cert")
        .await
        .unwrap();
    let ca = secret.data.unwrap()["ca.crt"].0.clone();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in capd_api::crd::all()
        .unwrap()
        .into_iter()
        .filter(|c| c.spec.versions.len() > 1)
    {
        let name = crd.metadata.name.unwrap();
        let live = crds.get(&name).await.unwrap();
        let conv = live.spec.conversion.unwrap();
        assert_eq!(conv.strategy, "Webhook", "{name}");
        let cc = conv.webhook.unwrap().client_config.unwrap();
        assert_eq!(
            cc.url.as_deref(),
            Some(format!("https://127.0.0.1:{webhook}/convert").as_str()),
            "{name}"
        );
        assert_eq!(cc.ca_bundle.unwrap().0, ca, "{name}");
    }

    // A v1beta1 DockerCluster as CAPD's v1beta1 docs write it: failure domains as a map.
    let old: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &v1beta1("DockerCluster"));
    let written: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "DockerCluster",
        "metadata": {"name": "c1"},
        "spec": {
            "controlPlaneEndpoint": {"host": "172.18.0.9", "port": 6443},
            "failureDomains": {"fd-b": {"controlPlane": false}, "fd-a": {"controlPlane": true, "attributes": {"zone": "a"}}},
            "loadBalancer": {"imageRepository": "kindest", "imageTag": "v20230606-42a2262b"},
        },
    }))
    .unwrap();
    // The webhook may still be warming up its first connection: retry creation briefly.
    let created = poll_until(
        "create a v1beta1 DockerCluster",
        Duration::from_secs(30),
        || {
            let (old, written) = (old.clone(), written.clone());
            async move {
                old.create(&PostParams::default(), &written)
                    .await
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        created.data["spec"], written.data["spec"],
        "v1beta1 in, the same v1beta1 out"
    );

    // Stored as v1beta2, as CAPD stores it.
    let dc = Api::<DockerCluster>::namespaced(client.clone(), &ns)
        .get("c1")
        .await
        .unwrap();
    let names: Vec<_> = dc
        .spec
        .failure_domains
        .iter()
        .map(|f| (f.name.as_str(), f.control_plane))
        .collect();
    assert_eq!(names, [("fd-a", Some(true)), ("fd-b", Some(false))]);
    assert_eq!(dc.spec.control_plane_endpoint.port, 6443);

    // A v1beta2-only status field survives a v1beta1 client's read-modify-write.
    let machines = Api::<DockerMachine>::namespaced(client.clone(), &ns);
    machines
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "m1"}, "spec": {"customImage": "kindest/node:v1.36.3"}})).unwrap())
        .await
        .unwrap();
    machines
        .patch_status("m1", &PatchParams::default(), &Patch::Merge(json!({"status": {"initialization": {"provisioned": true}, "failureDomain": "fd-a", "loadBalancerConfigured": false,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-11-30T07:00:00Z"}]}})))
        .await
        .unwrap();
    let old_machines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &v1beta1("DockerMachine"));
    let mut m = old_machines.get("m1").await.unwrap();
    assert_eq!(m.data["status"]["ready"], true);
    assert_eq!(
        m.data["status"]["v1beta2"]["conditions"][0]["type"],
        "Ready"
    );
    assert!(
        m.data["status"].get("failureDomain").is_none(),
        "v1beta1 has no status.failureDomain"
    );
    m.labels_mut()
        .insert("touched".into(), "by-a-v1beta1-client".into());
    old_machines
        .replace("m1", &PostParams::default(), &m)
        .await
        .unwrap();
    let after = machines.get("m1").await.unwrap();
    assert_eq!(
        after.metadata.labels.unwrap()["touched"],
        "by-a-v1beta1-client"
    );
    let status = after.status.unwrap();
    assert_eq!(
        status.failure_domain, "fd-a",
        "v1beta2-only field lost in a v1beta1 round trip"
    );
    assert_eq!(status.initialization.provisioned, Some(true));
    assert!(
        !after
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(capd_api::conversion::DATA_ANNOTATION),
        "the conversion data is not stored on the v1beta2 object"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
