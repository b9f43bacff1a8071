//! Server-side apply of YAML documents through kube-rs (no kubectl needed).

use anyhow::{anyhow, Context, Result};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

pub const FIELD_MANAGER: &str = "capd-rs-testenv";

/// Splits a multi-document YAML text into JSON values, skipping empty documents.
pub fn parse_docs(text: &str) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).context("parsing YAML")?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn gvk(doc: &serde_json::Value) -> Result<GroupVersionKind> {
    let api_version = doc["apiVersion"].as_str().ok_or_else(|| anyhow!("document without apiVersion"))?;
    let kind = doc["kind"].as_str().ok_or_else(|| anyhow!("document without kind"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

/// Applies each document (cluster-scoped, or namespaced when it names a namespace).
pub async fn apply(client: &kube::Client, docs: &[serde_json::Value]) -> Result<()> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for doc in docs {
        let gvk = gvk(doc)?;
        let ar = ApiResource::from_gvk(&gvk);
        let name = doc["metadata"]["name"].as_str().ok_or_else(|| anyhow!("{} without metadata.name", gvk.kind))?;
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(name, &params, &Patch::Apply(doc))
            .await
            .with_context(|| format!("applying {} {name}", gvk.kind))?;
    }
    Ok(())
}
