//! YAML manifests: reading them and server-side applying them through kube-rs (no
//! kubectl), the one implementation behind `cargo xtask`, the tests and the benchmark.

use crate::{poll_until, Error};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn manifest_error(origin: impl Into<PathBuf>, message: impl Into<String>) -> Error {
    Error::Manifest {
        path: origin.into(),
        message: message.into(),
    }
}

/// Every non-empty document of a multi-document YAML text, as JSON; `origin` names the
/// text in errors (a file path, a fixture name).
pub fn parse_docs(text: &str, origin: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| manifest_error(origin, format!("document {i} is not valid YAML: {e}")))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

pub fn read_docs(path: &Path) -> Result<Vec<Value>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::StateMissing {
        path: path.to_path_buf(),
        source,
    })?;
    parse_docs(&text, &path.display().to_string())
}

/// The documents of every `*.yaml` in `dir` but `kustomization.yaml`, files in name order.
pub fn read_dir_docs(dir: &Path) -> Result<Vec<Value>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::StateMissing {
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        docs.extend(read_docs(&f)?);
    }
    Ok(docs)
}

/// `Kind name` of a document.
pub fn describe(doc: &Value) -> String {
    format!(
        "{} {}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn api_resource(doc: &Value) -> Result<ApiResource, Error> {
    let api_version = doc["apiVersion"]
        .as_str()
        .ok_or_else(|| manifest_error(describe(doc), "no apiVersion"))?;
    let kind = doc["kind"]
        .as_str()
        .ok_or_else(|| manifest_error(describe(doc), "no kind"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(
        group, version, kind,
    )))
}

/// Server-side applies each document as `field_manager` (forcing conflicts), namespaced
/// ones in their `metadata.namespace`.
pub async fn apply(
    client: &kube::Client,
    field_manager: &str,
    docs: &[Value],
) -> Result<(), Error> {
    let params = PatchParams::apply(field_manager).force();
    for doc in docs {
        let ar = api_resource(doc)?;
        let name = doc["metadata"]["name"]
            .as_str()
            .ok_or_else(|| manifest_error(describe(doc), "no metadata.name"))?;
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(name, &params, &Patch::Apply(doc))
            .await
            .map_err(|source| Error::Apply {
                what: describe(doc),
                source,
            })?;
    }
    Ok(())
}

/// Names of the CustomResourceDefinitions among `docs`.
pub fn crd_names(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .filter_map(|d| d["metadata"]["name"].as_str().map(String::from))
        .collect()
}

/// Waits until every named CRD reports `Established=True`, all within `timeout`.
pub async fn wait_established(
    client: &kube::Client,
    names: &[impl AsRef<str>],
    timeout: Duration,
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
    poll_until(
        &format!("CRDs {} to be established", names.join(", ")),
        timeout,
        || {
            let (api, names) = (api.clone(), names.clone());
            async move {
                for name in &names {
                    let crd = api.get(name).await.map_err(|e| e.to_string())?;
                    let ok = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    if !ok {
                        return Err(format!("{name} not established"));
                    }
                }
                Ok(())
            }
        },
    )
    .await?;
    Ok(())
}

/// What clusterctl's install (kustomize upstream) does to a provider's CRD, for a manager
/// that runs out of cluster: Cluster API's contract labels (it finds the version of a
/// referenced kind through them) and a conversion webhook at `url`.
pub fn wire_crd(doc: &mut Value, url: &str, ca_bundle_b64: &str) {
    for (k, v) in [
        ("cluster.x-k8s.io/v1beta1", "v1beta1"),
        ("cluster.x-k8s.io/v1beta2", "v1beta2"),
    ] {
        doc["metadata"]["labels"][k] = serde_json::json!(v);
    }
    doc["spec"]["conversion"] = serde_json::json!({
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"url": url, "caBundle": ca_bundle_b64}
        }
    });
}

/// What clusterctl's install does to a manager's Validating/MutatingWebhookConfiguration,
/// for a manager that runs out of cluster: every webhook's `service` reference becomes
/// `base_url` (e.g. `https://127.0.0.1:PORT`) plus the service's path, with `ca_bundle_b64`.
pub fn wire_webhooks(doc: &mut Value, base_url: &str, ca_bundle_b64: &str) {
    if let Some(hooks) = doc["webhooks"].as_array_mut() {
        for h in hooks {
            let path = h["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or("/")
                .to_string();
            h["clientConfig"] =
                serde_json::json!({"url": format!("{base_url}{path}"), "caBundle": ca_bundle_b64});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_and_names_the_origin_of_bad_ones() {
        let docs = parse_docs(
            "---\nkind: A\n---\n\n---\nkind: CustomResourceDefinition\nmetadata: {name: x.io}\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(crd_names(&docs), ["x.io"]);
        let err = parse_docs("kind: A\n---\nkind: [\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.yaml") && err.contains("document 1"),
            "{err}"
        );
    }

    #[test]
    fn wires_contract_labels_and_conversion_webhook() {
        let mut doc = serde_json::json!({"metadata": {"name": "c"}, "spec": {}});
        wire_crd(&mut doc, "https://127.0.0.1:1/convert", "Q0E=");
        assert_eq!(
            doc["metadata"]["labels"]["cluster.x-k8s.io/v1beta2"],
            "v1beta2"
        );
        assert_eq!(
            doc["spec"]["conversion"]["webhook"]["clientConfig"]["url"],
            "https://127.0.0.1:1/convert"
        );
        assert_eq!(doc["spec"]["conversion"]["strategy"], "Webhook");
    }

    #[test]
    fn wires_webhooks_to_a_url_keeping_their_paths() {
        let mut doc = serde_json::json!({"kind": "ValidatingWebhookConfiguration", "webhooks": [
            {"name": "a", "clientConfig": {"service": {"name": "webhook-service", "path": "/validate-x"}}},
            {"name": "b", "clientConfig": {"service": {"name": "webhook-service"}}}
        ]});
        wire_webhooks(&mut doc, "https://127.0.0.1:9443", "Q0E=");
        assert_eq!(
            doc["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate-x"
        );
        assert_eq!(
            doc["webhooks"][1]["clientConfig"]["url"],
            "https://127.0.0.1:9443/"
        );
        assert_eq!(doc["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
        assert!(doc["webhooks"][0]["clientConfig"]["service"].is_null());
    }
}
