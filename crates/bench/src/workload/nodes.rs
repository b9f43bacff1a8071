//! The workload clusters seen from inside: a client from the `<cluster>-kubeconfig`
//! Secret (key `value`, written by the kubeadm control-plane provider) and its Nodes.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams};
use std::time::Duration;

/// Upper bound for one request to a workload cluster (its API server may not answer yet).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for `cluster`'s API server, once its kubeconfig Secret exists in `ns`.
pub async fn workload_client(
    mgmt: &kube::Client,
    ns: &str,
    cluster: &str,
) -> Result<Option<kube::Client>> {
    let name = format!("{cluster}-kubeconfig");
    let Some(secret) = Api::<Secret>::namespaced(mgmt.clone(), ns)
        .get_opt(&name)
        .await
        .with_context(|| format!("reading Secret {ns}/{name}"))?
    else {
        return Ok(None);
    };
    let Some(value) = secret.data.as_ref().and_then(|d| d.get("value")) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&value.0)
        .with_context(|| format!("Secret {ns}/{name}: value is not UTF-8"))?;
    let kc = kube::config::Kubeconfig::from_yaml(text)
        .with_context(|| format!("Secret {ns}/{name}: not a kubeconfig"))?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .with_context(|| format!("Secret {ns}/{name}"))?;
    cfg.connect_timeout = Some(REQUEST_TIMEOUT);
    cfg.read_timeout = Some(REQUEST_TIMEOUT);
    Ok(Some(kube::Client::try_from(cfg).with_context(|| {
        format!("client from Secret {ns}/{name}")
    })?))
}

/// (Nodes, Ready Nodes) of a workload cluster.
pub async fn ready_nodes(client: &kube::Client) -> Result<(usize, usize)> {
    let list = tokio::time::timeout(
        REQUEST_TIMEOUT,
        Api::<Node>::all(client.clone()).list(&ListParams::default()),
    )
    .await
    .context("listing Nodes: timed out")?
    .context("listing Nodes")?;
    let ready = list.items.iter().filter(|n| is_ready(n)).count();
    Ok((list.items.len(), ready))
}

pub fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_means_the_ready_condition_is_true() {
        let node = |status: &str| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}, "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": status}
            ]}}))
            .unwrap()
        };
        assert!(is_ready(&node("True")));
        assert!(!is_ready(&node("False")));
        assert!(!is_ready(
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}})).unwrap()
        ));
    }
}
