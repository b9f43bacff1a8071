//! Networks: create when missing, and settle duplicate names.
//!
//! A network created here without subnets gets one chosen here, as kind does for its
//! `kind` network (the first free 172.18–31.0.0/16): the engine gives fixed container
//! addresses (see `addresses`) only on networks whose creator configured the subnet.
//!
//! Docker before API 1.44 lets two concurrent creates make two networks of the same
//! name, after which the name is "ambiguous" and every container create on it fails.
//! Creates are serialized within the process, and whoever finds duplicates keeps
//! one (the one with containers, else the lowest ID: every racer picks the same)
//! and removes the empty others.

use std::collections::HashMap;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptions;
use tokio::sync::Mutex;

use super::DockerRuntime;
use crate::error::{Error, ObjectKind, Result};
use crate::spec::NetworkSpec;

static CREATE_LOCK: Mutex<()> = Mutex::const_new(());

impl DockerRuntime {
    pub(super) async fn ensure_network_impl(&self, spec: &NetworkSpec) -> Result<()> {
        if self.network_exists(&spec.name).await? {
            return Ok(());
        }
        let _guard = CREATE_LOCK.lock().await;
        if self.network_exists(&spec.name).await? {
            return Ok(());
        }
        let candidates: Vec<Vec<String>> = if !spec.subnets.is_empty() {
            vec![spec.subnets.clone()]
        } else if spec.ipv6 {
            // The engine's choice: an IPv6 network needs a v6 subnet beside ours.
            vec![Vec::new()]
        } else {
            let taken = self.used_subnets().await?;
            let mut c: Vec<Vec<String>> =
                free_subnets(&taken).into_iter().map(|s| vec![s]).collect();
            // Last resort: the engine's choice.
            c.push(Vec::new());
            c
        };
        let ours = spec.subnets.is_empty();
        for subnets in candidates {
            match self.create_network(spec, &subnets).await {
                Ok(()) => break,
                // A subnet we picked, taken meanwhile by a network made elsewhere.
                Err(Error::Engine { message, .. })
                    if ours && !subnets.is_empty() && message.contains("overlaps") =>
                {
                    continue
                }
                // Created by someone else meanwhile (engines that refuse duplicates).
                Err(Error::Conflict { .. }) => break,
                Err(other) => return Err(other),
            }
        }
        self.settle_duplicates(&spec.name).await
    }

    async fn create_network(&self, spec: &NetworkSpec, subnets: &[String]) -> Result<()> {
        let docker = self.client().await?;
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some(spec.driver.clone().unwrap_or_else(|| "bridge".to_string())),
            enable_ipv6: Some(spec.ipv6),
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            ipam: (!subnets.is_empty()).then(|| Ipam {
                config: Some(
                    subnets
                        .iter()
                        .map(|s| IpamConfig {
                            subnet: Some(s.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(|e| {
                self.map(
                    e,
                    self.ctx("create network", ObjectKind::Network, &spec.name),
                )
            })
    }

    /// The IPv4 subnets of every network on the engine.
    async fn used_subnets(&self) -> Result<Vec<String>> {
        let docker = self.client().await?;
        let list = docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| self.map(e, self.ctx("list networks", ObjectKind::Network, "")))?;
        Ok(list
            .into_iter()
            .filter_map(|n| n.ipam.and_then(|i| i.config))
            .flatten()
            .filter_map(|c| c.subnet)
            .collect())
    }

    /// Whether the network exists; settles duplicates when the name is ambiguous.
    async fn network_exists(&self, name: &str) -> Result<bool> {
        let docker = self.client().await?;
        match docker.inspect_network(name, None).await {
            Ok(_) => Ok(true),
            Err(e) => match self.map(e, self.ctx("inspect network", ObjectKind::Network, name)) {
                Error::NotFound { .. } => Ok(false),
                Error::Engine { message, .. } if message.contains("ambiguous") => {
                    self.settle_duplicates(name).await?;
                    Ok(true)
                }
                other => Err(other),
            },
        }
    }

    async fn settle_duplicates(&self, name: &str) -> Result<()> {
        let docker = self.client().await?;
        let ctx = self.ctx("list networks", ObjectKind::Network, name);
        let options = ListNetworksOptions {
            filters: Some(HashMap::from([(
                "name".to_string(),
                vec![name.to_string()],
            )])),
        };
        let mut same: Vec<String> = docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.map(e, ctx))?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect();
        if same.len() < 2 {
            return Ok(());
        }
        let mut in_use = Vec::new();
        for id in &same {
            let inspected = docker
                .inspect_network(id, None)
                .await
                .map_err(|e| self.map(e, self.ctx("inspect network", ObjectKind::Network, id)))?;
            if inspected.containers.is_some_and(|c| !c.is_empty()) {
                in_use.push(id.clone());
            }
        }
        same.sort_by_key(|id| (!in_use.contains(id), id.clone()));
        for id in same.iter().skip(1).filter(|id| !in_use.contains(id)) {
            tracing::warn!(network = name, id = %id, "removing duplicate network");
            match docker.remove_network(id).await {
                Ok(()) => {}
                Err(e) => match self.map(e, self.ctx("remove network", ObjectKind::Network, id)) {
                    Error::NotFound { .. } => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }
}

/// The private /16s kind picks from (172.18.0.0/16 up to 172.31.0.0/16) that overlap
/// none of `taken`, in order.
pub(super) fn free_subnets(taken: &[String]) -> Vec<String> {
    use super::addresses::Subnet;
    let taken: Vec<Subnet> = taken.iter().filter_map(|t| Subnet::parse(t)).collect();
    (18..=31)
        .map(|octet| format!("172.{octet}.0.0/16"))
        .filter(|c| Subnet::parse(c).is_some_and(|c| taken.iter().all(|t| !t.overlaps(&c))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_subnets_skip_every_overlap() {
        let taken = [
            "172.17.0.0/16".to_string(),
            "172.18.0.0/16".to_string(),
            "172.19.5.0/24".to_string(),
            "172.16.0.0/12".to_string(),
        ];
        // The /12 covers them all.
        assert!(free_subnets(&taken).is_empty());
        let taken = [
            "172.18.0.0/16".to_string(),
            "172.19.5.0/24".to_string(),
            "fc00::/64".to_string(),
        ];
        let free = free_subnets(&taken);
        assert_eq!(free.first().map(String::as_str), Some("172.20.0.0/16"));
        assert_eq!(free.len(), 12);
    }
}
