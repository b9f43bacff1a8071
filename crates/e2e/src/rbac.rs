//! The provider's RBAC from `manifests/`, installed into a cluster, and a kubeconfig that
//! authenticates as its ServiceAccount with a token from the TokenRequest API: what a
//! manager Pod gets, without a Pod.

use crate::yaml::{apply, read_docs};
use anyhow::{anyhow, Context, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};

pub const NAMESPACE: &str = "capd-system";
pub const SERVICE_ACCOUNT: &str = "capd-manager";

/// The namespace and every RBAC object of `manifests/rbac`, exactly as written there.
pub fn rbac_docs() -> Result<Vec<serde_json::Value>> {
    let root = crate::repo_root().join("manifests");
    let mut docs = read_docs(&root.join("default/namespace.yaml"))?;
    for f in [
        "service_account",
        "role",
        "role_binding",
        "leader_election_role",
        "leader_election_role_binding",
    ] {
        docs.extend(read_docs(&root.join(format!("rbac/{f}.yaml")))?);
    }
    Ok(docs)
}

/// Applies [`rbac_docs`] to the cluster of `client`.
pub async fn install(client: &kube::Client) -> Result<()> {
    Ok(apply(client, "capd-e2e", &rbac_docs()?).await?)
}

/// Mints a token for `capd-system/capd-manager` (TokenRequest API, one hour) and writes a
/// kubeconfig using it to `path`, trusting `ca_file` for `server`.
pub async fn service_account_kubeconfig(
    client: &kube::Client,
    server: &str,
    ca_file: &Path,
    path: &Path,
) -> Result<PathBuf> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tr = sas
        .create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &req)
        .await
        .with_context(|| {
            format!("TokenRequest for ServiceAccount {NAMESPACE}/{SERVICE_ACCOUNT}")
        })?;
    let token = tr
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow!("TokenRequest for {NAMESPACE}/{SERVICE_ACCOUNT} returned no token")
        })?;
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "management", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": SERVICE_ACCOUNT, "context": {"cluster": "management", "user": SERVICE_ACCOUNT}}],
        "current-context": SERVICE_ACCOUNT,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_yaml_ng::to_string(&kubeconfig)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Result<kube::Client> {
    Ok(capd_testenv::client_from_kubeconfig_file(path).await?)
}

/// SelfSubjectAccessReview: may the client's user `verb` `group`/`resource` (in `namespace`)?
pub async fn can_i(
    client: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<bool> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.to_string(), None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.clone()),
                subresource,
                namespace: namespace.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let out = api
        .create(&PostParams::default(), &review)
        .await
        .with_context(|| format!("SelfSubjectAccessReview {verb} {group}/{resource}"))?;
    Ok(out.status.map(|s| s.allowed).unwrap_or(false))
}
