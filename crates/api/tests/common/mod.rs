//! Shared by the integration tests: a client of the test environment, the generated
//! manifests installed into it, throw-away namespaces, and checks of API errors.

#![allow(dead_code)] // each test binary uses a different part

use anyhow::{bail, Context, Result};
use capd_testenv::{poll_until, unique_name, TestEnv};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub const MANAGER: &str = "capd-api-tests";

pub async fn client() -> Result<Client> {
    let env = TestEnv::load().context("test environment (run `cargo xtask up`)")?;
    Ok(env.kube_client().await?)
}

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../manifests")
}

/// Every YAML document of the committed manifests under `manifests/<sub>`, kustomizations left out.
fn documents(sub: &str) -> Result<Vec<Value>> {
    let dir = manifests_dir().join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = <Value as serde::Deserialize>::deserialize(doc)?;
            if value["kind"] != "Kustomization" && !value.is_null() {
                docs.push(value);
            }
        }
    }
    Ok(docs)
}

fn name_of(doc: &Value) -> Result<String> {
    doc["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .context("manifest without a name")
}

/// Server-side applies the committed CRDs and admission policies (the files CI checks against
/// the generator) and waits until every CRD is Established.
pub async fn install(client: &Client) -> Result<()> {
    let pp = PatchParams::apply(MANAGER).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for doc in documents("crds")? {
        let name = name_of(&doc)?;
        crds.patch(&name, &pp, &Patch::Apply(&doc))
            .await
            .map_err(|e| anyhow::anyhow!("applying CRD {name}: {e:?}"))?;
        names.push(name);
    }
    for name in &names {
        poll_until(
            &format!("CRD {name} Established"),
            Duration::from_secs(60),
            || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.map_err(|e| e.to_string())?;
                    let established = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    if established {
                        Ok(())
                    } else {
                        Err("not Established".to_string())
                    }
                }
            },
        )
        .await?;
    }
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    for doc in documents("policies")? {
        let name = name_of(&doc)?;
        match doc["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => {
                policies
                    .patch(&name, &pp, &Patch::Apply(&doc))
                    .await
                    .map_err(|e| anyhow::anyhow!("applying policy {name}: {e:?}"))?;
            }
            Some("ValidatingAdmissionPolicyBinding") => {
                bindings
                    .patch(&name, &pp, &Patch::Apply(&doc))
                    .await
                    .map_err(|e| anyhow::anyhow!("applying binding {name}: {e:?}"))?;
            }
            other => bail!("unexpected manifest kind {other:?} in manifests/policies"),
        }
    }
    Ok(())
}

/// A namespace of its own for a test.
pub async fn namespace(client: &Client, prefix: &str) -> Result<String> {
    let name = unique_name(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

/// Deletes the namespace (and everything in it); does not wait.
pub async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// Runs `body` in a fresh namespace and deletes the namespace whatever the outcome.
pub async fn in_namespace<F, Fut>(client: &Client, prefix: &str, body: F) -> Result<()>
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let ns = namespace(client, prefix).await?;
    let result = body(client.clone(), ns.clone()).await;
    delete_namespace(client, &ns).await;
    result
}

/// The API server refused the request as invalid (422), naming `field` in its message.
pub fn assert_invalid<T: std::fmt::Debug>(result: kube::Result<T>, field: &str, what: &str) {
    match result {
        Ok(obj) => panic!("{what}: accepted, expected rejection naming {field}: {obj:?}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                status.code, 422,
                "{what}: expected 422 Invalid, got {status:?}"
            );
            assert!(
                status.message.contains(field),
                "{what}: message does not name {field}: {}",
                status.message
            );
        }
        Err(other) => panic!("{what}: unexpected error {other}"),
    }
}

/// A dynamic API for one of our kinds in `ns`, to send objects our types cannot express.
pub fn dynamic<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    ns: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()))
}

/// A full object (apiVersion, kind, metadata.name, ...) as a DynamicObject to POST.
pub fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("test object is a Kubernetes object")
}
