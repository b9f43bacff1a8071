//! Installs the provider's generated manifests (CRDs, admission policies) into the
//! test environment, the way a user's `kubectl apply` would.

use crate::{poll_until, Error};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root (this crate lives in `crates/testenv`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docs_in(dir: &Path) -> Result<Vec<serde_json::Value>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::StateMissing { path: dir.to_path_buf(), source })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.file_name().is_some_and(|n| n != "kustomization.yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| Error::StateMissing { path: f.clone(), source })?;
        for d in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value = serde::Deserialize::deserialize(d).map_err(|e| Error::Manifest { path: f.clone(), message: e.to_string() })?;
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    Ok(docs)
}

/// Server-side applies every document of `manifests/crds` and `manifests/policies`, then
/// waits until the CRDs are established.
pub async fn install_provider_manifests(client: &kube::Client) -> Result<(), Error> {
    let root = workspace_root().join("manifests");
    let mut docs = docs_in(&root.join("crds"))?;
    if root.join("policies").is_dir() {
        docs.extend(docs_in(&root.join("policies"))?);
    }
    let pp = PatchParams::apply("capd-rs-tests").force();
    let mut crds = Vec::new();
    for doc in &docs {
        let (group, version) = match doc["apiVersion"].as_str().unwrap_or_default().rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), doc["apiVersion"].as_str().unwrap_or_default().to_string()),
        };
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, &kind));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        api.patch(&name, &pp, &Patch::Apply(doc)).await?;
        if kind == "CustomResourceDefinition" {
            crds.push(name);
        }
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in crds {
        let api = api.clone();
        poll_until(&format!("CRD {name} to be established"), Duration::from_secs(30), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let ok = crd.status.and_then(|s| s.conditions).unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True");
                if ok { Ok(()) } else { Err("not established".into()) }
            }
        })
        .await?;
    }
    Ok(())
}
