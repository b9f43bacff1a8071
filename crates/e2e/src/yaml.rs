//! YAML documents: reading manifest files and server-side applying them.

use anyhow::{anyhow, Result};
pub use capd_testenv::manifests::{apply, describe, parse_docs, read_docs};
use serde_json::Value;

/// The first document of `kind` (and `name`, when given).
pub fn find<'a>(docs: &'a [Value], kind: &str, name: Option<&str>) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n))
        .ok_or_else(|| {
            anyhow!(
                "no {kind}{} among the documents",
                name.map(|n| format!(" {n}")).unwrap_or_default()
            )
        })
}

/// Waits until every named CRD reports `Established=True` (60 s in all).
pub async fn wait_established(client: &kube::Client, names: &[&str]) -> Result<()> {
    Ok(
        capd_testenv::manifests::wait_established(
            client,
            names,
            std::time::Duration::from_secs(60),
        )
        .await?,
    )
}
