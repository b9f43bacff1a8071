//! Clients for workload clusters, one per cluster, built from the `<cluster>-kubeconfig`
//! Secret and reused while that Secret is unchanged; dropped when the Secret changes or
//! disappears, or the cluster goes away (the multi-cluster cache of the seeds). The
//! manager's Secret metadata watch says whether it changed; the Secret is read (GET)
//! only to build a client.

use crate::error::Error;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// Cluster API's name for a cluster's kubeconfig Secret: `<cluster>-kubeconfig`.
pub fn kubeconfig_secret_name(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// The cluster whose kubeconfig Secret is named `secret`, if it is one.
pub fn kubeconfig_secret_cluster(secret: &str) -> Option<&str> {
    secret.strip_suffix("-kubeconfig")
}

#[derive(Default)]
pub struct WorkloadClients {
    clients: Mutex<HashMap<(String, String), (String, kube::Client)>>,
}

impl WorkloadClients {
    /// The workload cluster's client, or `None` while its kubeconfig Secret doesn't exist.
    /// `known` is what the Secret watch says of it ([`crate::caches::Caches::kubeconfig_version`]):
    /// absent, or the version the current client was built from, costs no request.
    pub async fn get(
        &self,
        mgmt: &kube::Client,
        namespace: &str,
        cluster: &str,
        known: Option<Option<String>>,
    ) -> Result<Option<kube::Client>, Error> {
        let key = (namespace.to_string(), cluster.to_string());
        match &known {
            Some(None) => {
                self.clients.lock().await.remove(&key);
                return Ok(None);
            }
            Some(Some(version)) => {
                if let Some((v, c)) = self.clients.lock().await.get(&key) {
                    if v == version {
                        return Ok(Some(c.clone()));
                    }
                }
            }
            None => {}
        }
        let name = kubeconfig_secret_name(cluster);
        let Some(secret) = Api::<Secret>::namespaced(mgmt.clone(), namespace)
            .get_opt(&name)
            .await?
        else {
            self.clients.lock().await.remove(&key);
            return Ok(None);
        };
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        if let Some((v, c)) = self.clients.lock().await.get(&key) {
            if *v == version {
                return Ok(Some(c.clone()));
            }
        }
        let invalid = |message: String| Error::Invalid {
            kind: "Secret".into(),
            namespace: namespace.to_string(),
            name: name.clone(),
            message,
        };
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .ok_or_else(|| invalid("has no key `value`".into()))?;
        let text = std::str::from_utf8(&value.0)
            .map_err(|e| invalid(format!("value is not UTF-8: {e}")))?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(text)
            .map_err(|e| invalid(format!("value is not a kubeconfig: {e}")))?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| invalid(format!("kubeconfig unusable: {e}")))?;
        // A workload API server that is not up yet must not hold a reconcile for long.
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(15));
        let client = kube::Client::try_from(config)?;
        self.clients
            .lock()
            .await
            .insert(key, (version, client.clone()));
        tracing::debug!(namespace, cluster, "workload cluster client (re)built");
        Ok(Some(client))
    }

    pub async fn evict(&self, namespace: &str, cluster: &str) {
        self.clients
            .lock()
            .await
            .remove(&(namespace.to_string(), cluster.to_string()));
    }

    pub async fn len(&self) -> usize {
        self.clients.lock().await.len()
    }
}
