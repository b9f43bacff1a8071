//! Networks: create when missing, and settle duplicate names.
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
            ipam: (!spec.subnets.is_empty()).then(|| Ipam {
                config: Some(
                    spec.subnets
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
        match docker.create_network(request).await {
            Ok(_) => {}
            Err(e) => match self.map(
                e,
                self.ctx("create network", ObjectKind::Network, &spec.name),
            ) {
                // Created by someone else meanwhile (engines that refuse duplicates).
                Error::Conflict { .. } => {}
                other => return Err(other),
            },
        }
        self.settle_duplicates(&spec.name).await
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
