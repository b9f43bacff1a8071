//! Installs the provider's generated manifests (CRDs, admission policies) into the
//! test environment, the way a user's `kubectl apply` would.

use crate::manifests::{apply, crd_names, read_dir_docs, wait_established};
use crate::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root (this crate lives in `crates/testenv`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Server-side applies every document of `manifests/crds` and `manifests/policies`, then
/// waits until the CRDs are established.
pub async fn install_provider_manifests(client: &kube::Client) -> Result<(), Error> {
    let root = workspace_root().join("manifests");
    let mut docs = read_dir_docs(&root.join("crds"))?;
    if root.join("policies").is_dir() {
        docs.extend(read_dir_docs(&root.join("policies"))?);
    }
    apply(client, "capd-rs-tests", &docs).await?;
    wait_established(client, &crd_names(&docs), Duration::from_secs(30)).await
}
