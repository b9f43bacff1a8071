//! Template immutability with a real ClusterClass: the Cluster API topology controller in
//! the test environment rotates DockerMachineTemplates when a ClusterClass variable changes,
//! which needs its dry-run server-side applies on the old template to get through our
//! admission policy. A negative control binds a policy without the dry-run exception to
//! one namespace and shows the topology controller then fails.

mod common;

use anyhow::{Context, Result};
use capd_api::capi::Cluster;
use capd_api::DockerMachineTemplate;
use capd_testenv::{poll_until, unique_name};
use common::{client, in_namespace, install, MANAGER};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::Client;
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// Cluster API's kubeadm CRDs must carry contract labels for ClusterClass to resolve them,
/// as clusterctl's install (kustomize) puts them. Added here if the environment lacks them.
async fn ensure_kubeadm_contract_labels(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "kubeadmconfigs.bootstrap.cluster.x-k8s.io",
        "kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io",
        "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
        "kubeadmcontrolplanetemplates.controlplane.cluster.x-k8s.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .with_context(|| format!("Cluster API CRD {name}"))?;
        let labels = crd.metadata.labels.unwrap_or_default();
        if labels.get("cluster.x-k8s.io/v1beta2").map(String::as_str) != Some("v1beta2") {
            let patch = json!({"metadata": {"labels": {
                "cluster.x-k8s.io/v1beta1": "v1beta1", "cluster.x-k8s.io/v1beta2": "v1beta2"}}});
            crds.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with("ss") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// Server-side applies every document of `yaml` into `ns`.
async fn apply_all(client: &Client, ns: &str, yaml: &str) -> Result<()> {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        let (group, version) = value["apiVersion"]
            .as_str()
            .context("apiVersion")?
            .split_once('/')
            .context("group")?;
        let kind = value["kind"].as_str().context("kind")?;
        let name = value["metadata"]["name"].as_str().context("name")?;
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural(kind),
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(|e| anyhow::anyhow!("applying {kind} {name}: {e:?}"))?;
    }
    Ok(())
}

const CLASS: &str = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerClusterTemplate
metadata: {name: cluster}
spec:
  template:
    spec:
      loadBalancer: {imageTag: v20230606-42a2262b}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata: {name: control-plane}
spec:
  template:
    spec:
      extraMounts:
      - {containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata: {name: worker}
spec:
  template:
    spec:
      extraMounts:
      - {containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock}
---
apiVersion: controlplane.cluster.x-k8s.io/v1beta2
kind: KubeadmControlPlaneTemplate
metadata: {name: control-plane}
spec:
  template:
    spec:
      kubeadmConfigSpec:
        clusterConfiguration:
          apiServer:
            certSANs: [localhost, 127.0.0.1]
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfigTemplate
metadata: {name: worker}
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration:
          kubeletExtraArgs:
          - {name: eviction-hard, value: "nodefs.available<0%"}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: ClusterClass
metadata: {name: docker}
spec:
  controlPlane:
    templateRef: {apiVersion: controlplane.cluster.x-k8s.io/v1beta2, kind: KubeadmControlPlaneTemplate, name: control-plane}
    machineInfrastructure:
      templateRef: {apiVersion: infrastructure.cluster.x-k8s.io/v1beta2, kind: DockerMachineTemplate, name: control-plane}
  infrastructure:
    templateRef: {apiVersion: infrastructure.cluster.x-k8s.io/v1beta2, kind: DockerClusterTemplate, name: cluster}
  workers:
    machineDeployments:
    - class: default-worker
      bootstrap:
        templateRef: {apiVersion: bootstrap.cluster.x-k8s.io/v1beta2, kind: KubeadmConfigTemplate, name: worker}
      infrastructure:
        templateRef: {apiVersion: infrastructure.cluster.x-k8s.io/v1beta2, kind: DockerMachineTemplate, name: worker}
  variables:
  - name: customImage
    required: true
    schema:
      openAPIV3Schema: {type: string}
  patches:
  - name: customImage
    definitions:
    - selector:
        apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
        kind: DockerMachineTemplate
        matchResources:
          machineDeploymentClass:
            names: [default-worker]
      jsonPatches:
      - op: add
        path: /spec/template/spec/customImage
        valueFrom:
          variable: customImage
"#;

/// No replicas anywhere: no container is ever asked for (no provider controller runs here).
fn cluster_yaml(image: &str) -> String {
    format!(
        r#"
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata: {{name: cc1}}
spec:
  clusterNetwork: {{pods: {{cidrBlocks: [192.168.0.0/16]}}}}
  topology:
    classRef: {{name: docker}}
    version: v1.36.0
    controlPlane: {{replicas: 1}}
    workers:
      machineDeployments:
      - {{class: default-worker, name: md-0, replicas: 0}}
    variables:
    - {{name: customImage, value: "{image}"}}
"#
    )
}

fn md_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.x-k8s.io", "v1beta2", "MachineDeployment"),
        "machinedeployments",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The customImage of the DockerMachineTemplate md-0's MachineDeployment points at.
async fn md_image(client: &Client, ns: &str) -> Result<String, String> {
    let mds = md_api(client, ns)
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let md = mds.items.first().ok_or("no MachineDeployment yet")?;
    let template = md.data["spec"]["template"]["spec"]["infrastructureRef"]["name"]
        .as_str()
        .ok_or("MachineDeployment without infrastructureRef")?
        .to_string();
    let dmt = Api::<DockerMachineTemplate>::namespaced(client.clone(), ns)
        .get(&template)
        .await
        .map_err(|e| format!("{template}: {e}"))?;
    Ok(dmt.spec.template.spec.custom_image)
}

fn topology_reconciled(cluster: &Cluster) -> Option<(String, String)> {
    cluster
        .conditions()
        .iter()
        .find(|c| c.type_ == "TopologyReconciled")
        .map(|c| (c.status.clone(), c.message.clone()))
}

/// Creates the class and a Cluster using image `img:a`, waits for the topology, switches the
/// variable to `img:b`.
async fn create_and_switch_image(client: &Client, ns: &str) -> Result<()> {
    apply_all(client, ns, CLASS).await?;
    apply_all(client, ns, &cluster_yaml("img:a")).await?;
    poll_until("worker template with img:a", TIMEOUT, || async {
        match md_image(client, ns).await? {
            image if image == "img:a" => Ok(()),
            other => Err(format!("customImage {other:?}")),
        }
    })
    .await?;
    apply_all(client, ns, &cluster_yaml("img:b")).await
}

#[tokio::test]
async fn topology_rotates_machine_templates_through_the_policy() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    ensure_kubeadm_contract_labels(&client).await?;
    in_namespace(&client, "api-cc", |client, ns| async move {
        create_and_switch_image(&client, &ns).await?;
        // The old template is never updated: the topology controller rotates to a new one.
        poll_until(
            "MachineDeployment on a new template with img:b",
            TIMEOUT,
            || async {
                match md_image(&client, &ns).await? {
                    image if image == "img:b" => Ok(()),
                    other => Err(format!("customImage {other:?}")),
                }
            },
        )
        .await?;
        let cluster = Api::<Cluster>::namespaced(client.clone(), &ns)
            .get("cc1")
            .await?;
        let reconciled = topology_reconciled(&cluster);
        assert_eq!(
            reconciled.as_ref().map(|r| r.0.as_str()),
            Some("True"),
            "{reconciled:?}"
        );
        Ok(())
    })
    .await
}

/// Waits until an annotated dry-run spec change, which our policy lets through, is refused
/// in `ns`: the strict binding has reached the admission plugin.
async fn wait_for_strict_policy(client: &Client, ns: &str) -> Result<()> {
    let probe = r#"
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata: {name: probe}
spec: {template: {spec: {customImage: "probe:0"}}}
"#;
    apply_all(client, ns, probe).await?;
    let api = Api::<DockerMachineTemplate>::namespaced(client.clone(), ns);
    let dry_run = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let change = json!({
        "metadata": {"annotations": {capd_api::consts::annotation::TOPOLOGY_DRY_RUN: ""}},
        "spec": {"template": {"spec": {"customImage": "probe:1"}}},
    });
    poll_until(
        "strict policy active in the namespace",
        Duration::from_secs(60),
        || async {
            match api.patch("probe", &dry_run, &Patch::Merge(&change)).await {
                Err(kube::Error::Api(s)) if s.message.contains("immutable") => Ok(()),
                Err(e) => Err(format!("unexpected error {e}")),
                Ok(_) => Err("annotated dry-run still let through".to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

/// The same flow under a policy without the dry-run exception: the topology controller's
/// dry-run is refused and the Cluster reports it.
#[tokio::test]
async fn without_the_dry_run_exception_topology_fails() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    ensure_kubeadm_contract_labels(&client).await?;
    let strict = unique_name("capd-strict-templates");
    let label = unique_name("strict");
    let mut policy = capd_api::policy::template_immutability_policy();
    policy["metadata"]["name"] = json!(strict);
    policy["spec"]
        .as_object_mut()
        .map(|s| s.remove("matchConditions"));
    let mut binding = capd_api::policy::template_immutability_binding();
    binding["metadata"]["name"] = json!(strict);
    binding["spec"]["policyName"] = json!(strict);
    binding["spec"]["matchResources"] =
        json!({"namespaceSelector": {"matchLabels": {"capd-api-test/strict": label}}});
    let pp = PatchParams::apply(MANAGER).force();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    policies.patch(&strict, &pp, &Patch::Apply(&policy)).await?;
    bindings
        .patch(&strict, &pp, &Patch::Apply(&binding))
        .await?;

    let result = in_namespace(&client, "api-cc-strict", |client, ns| async move {
        let labels = json!({"metadata": {"labels": {"capd-api-test/strict": label}}});
        Api::<Namespace>::all(client.clone())
            .patch(&ns, &PatchParams::default(), &Patch::Merge(&labels))
            .await?;
        wait_for_strict_policy(&client, &ns).await?;
        create_and_switch_image(&client, &ns).await?;
        let clusters = Api::<Cluster>::namespaced(client.clone(), &ns);
        poll_until(
            "topology to fail on the refused dry-run",
            TIMEOUT,
            || async {
                let cluster = clusters.get("cc1").await.map_err(|e| e.to_string())?;
                match topology_reconciled(&cluster) {
                    Some((status, message))
                        if status == "False" && message.contains("immutable") =>
                    {
                        Ok(())
                    }
                    other => Err(format!("TopologyReconciled {other:?}")),
                }
            },
        )
        .await?;
        assert_eq!(
            md_image(&client, &ns).await.map_err(anyhow::Error::msg)?,
            "img:a"
        );
        Ok(())
    })
    .await;
    let _ = bindings.delete(&strict, &DeleteParams::default()).await;
    let _ = policies.delete(&strict, &DeleteParams::default()).await;
    result
}
