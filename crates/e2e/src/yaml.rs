//! YAML documents: reading manifest files and server-side applying them.

use anyhow::{anyhow, Context, Result};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::path::Path;

/// Every non-empty document of a multi-document YAML text, as JSON.
pub fn parse_docs(text: &str, origin: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc).with_context(|| format!("{origin}: document {i} is not valid YAML"))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn read_docs(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_docs(&text, &path.display().to_string())
}

/// `Kind name` of a document.
pub fn describe(doc: &Value) -> String {
    format!("{} {}", doc["kind"].as_str().unwrap_or("?"), doc["metadata"]["name"].as_str().unwrap_or("?"))
}

/// The first document of `kind` (and `name`, when given).
pub fn find<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n))
        .ok_or_else(|| anyhow!("no {kind}{} among the documents", name.map(|n| format!(" {n}")).unwrap_or_default()))
}

fn api_resource(doc: &Value) -> Result<ApiResource> {
    let api_version = doc["apiVersion"].as_str().ok_or_else(|| anyhow!("document without apiVersion"))?;
    let kind = doc["kind"].as_str().ok_or_else(|| anyhow!("document without kind"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)))
}

/// Server-side applies each document (namespaced ones in their `metadata.namespace`).
pub async fn apply(client: &kube::Client, manager: &str, docs: &[Value]) -> Result<()> {
    let params = PatchParams::apply(manager).force();
    for doc in docs {
        let ar = api_resource(doc)?;
        let name = doc["metadata"]["name"].as_str().ok_or_else(|| anyhow!("{} without metadata.name", ar.kind))?;
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(name, &params, &Patch::Apply(doc)).await.with_context(|| format!("applying {}", describe(doc)))?;
    }
    Ok(())
}

/// Waits until every named CRD reports `Established=True`.
pub async fn wait_established(client: &kube::Client, names: &[&str]) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        let (api, name) = (api.clone(), name.to_string());
        capd_testenv::poll_until(&format!("CRD {name} to be established"), std::time::Duration::from_secs(60), || {
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
