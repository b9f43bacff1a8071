//! [`ContainerRuntime`] over the Docker Engine API (bollard), which Podman's
//! Docker-compatible socket also speaks.

mod addresses;
mod convert;
mod endpoint;
mod errors;
mod exec;
mod files;
mod images;
mod networks;
mod transport;

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bollard::Docker;
use tokio::sync::OnceCell;
use tracing::Instrument;

pub use endpoint::{Endpoint, DEFAULT_DOCKER_HOST};
pub use errors::chain as error_chain;

use crate::error::{Error, ObjectKind, Result};
use crate::info::{
    ByteStream, ContainerInfo, ContainerSummary, EngineInfo, ExecOutput, ExecRequest, LabelFilter,
};
use crate::runtime::ContainerRuntime;
use crate::spec::{ContainerSpec, NetworkSpec};
use errors::Ctx;

/// Starts tried with another fixed address before settling for a dynamic one.
const ADDRESS_ATTEMPTS: usize = 5;

/// What [`DockerRuntime::readdress`] gives a container instead of its fixed address.
#[derive(Debug, Clone, Copy)]
enum Readdress {
    /// The network refuses fixed addresses: dynamic here and for its later containers.
    Refused,
    /// This container only: a dynamic address (fixed ones kept colliding).
    Dynamic,
    /// The next free fixed address.
    Next,
}

/// Timeouts of a [`DockerRuntime`].
#[derive(Debug, Clone, Copy)]
pub struct DockerOptions {
    /// Giving up on connecting: what bounds the time to notice a missing engine.
    pub connect_timeout: Duration,
    /// Waiting for the response headers of one call (not for streamed bodies such as
    /// exec output or image export). Must exceed the longest stop grace period.
    pub request_timeout: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// A Docker (or Podman) engine reached over a unix socket or plain TCP.
///
/// Construction never touches the network: the API version is negotiated on the
/// first call and again after a failed negotiation, so a manager can start before
/// the engine and survive its restarts.
pub struct DockerRuntime {
    endpoint: Endpoint,
    endpoint_str: String,
    options: DockerOptions,
    unnegotiated: Docker,
    negotiated: OnceCell<Docker>,
    addresses: addresses::Reservations,
    /// One look at a network's addresses at a time: the creates that wait for it find it fresh.
    looking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("endpoint", &self.endpoint_str)
            .field("options", &self.options)
            .finish()
    }
}

impl DockerRuntime {
    /// The engine named by `$DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    pub fn from_env() -> Result<Self> {
        Self::with_endpoint(Endpoint::from_env()?, DockerOptions::default())
    }

    /// The engine at a `DOCKER_HOST`-style address (`unix:///…`, `tcp://host:port`).
    pub fn new(host: &str) -> Result<Self> {
        Self::with_endpoint(Endpoint::parse(host)?, DockerOptions::default())
    }

    pub fn with_endpoint(endpoint: Endpoint, options: DockerOptions) -> Result<Self> {
        let unnegotiated =
            transport::build(&endpoint, options.connect_timeout, options.request_timeout)?;
        Ok(Self {
            endpoint_str: endpoint.to_string(),
            endpoint,
            options,
            unnegotiated,
            negotiated: OnceCell::new(),
            addresses: addresses::Reservations::default(),
            looking: tokio::sync::Mutex::new(()),
        })
    }

    pub fn endpoint_info(&self) -> &Endpoint {
        &self.endpoint
    }

    fn endpoint_str(&self) -> &str {
        &self.endpoint_str
    }

    /// The client, with the API version agreed with the engine.
    async fn client(&self) -> Result<&Docker> {
        self.negotiated
            .get_or_try_init(|| async {
                let docker = self
                    .unnegotiated
                    .clone()
                    .negotiate_version()
                    .await
                    .map_err(|e| self.map(e, self.ctx("negotiate API version", ObjectKind::Container, "")))?;
                tracing::debug!(endpoint = %self.endpoint_str, version = %docker.client_version(), "negotiated engine API version");
                Ok(docker)
            })
            .await
    }

    fn ctx<'a>(&'a self, operation: &'static str, kind: ObjectKind, name: &'a str) -> Ctx<'a> {
        Ctx {
            endpoint: &self.endpoint_str,
            operation,
            kind,
            name,
            request_timeout: self.options.request_timeout,
        }
    }

    fn map(&self, err: bollard::errors::Error, ctx: Ctx<'_>) -> Error {
        errors::map(err, ctx)
    }

    async fn inspect_impl(&self, container: &str) -> Result<Option<ContainerInfo>> {
        let docker = self.client().await?;
        match docker.inspect_container(container, None).await {
            Ok(c) => Ok(Some(convert::info(c))),
            Err(e) => match self.map(
                e,
                self.ctx("inspect container", ObjectKind::Container, container),
            ) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn create_impl(&self, spec: &ContainerSpec) -> Result<String> {
        self.ensure_image_impl(&spec.image).await?;
        let Some(network) = spec.network.as_deref() else {
            return self.create_with(spec, None).await;
        };
        let address = self.reserve_address(network).await?;
        let created = self.create_with(spec, address).await;
        if let Some(a) = address {
            self.addresses.release(network, a, created.is_ok());
        }
        created
    }

    /// Puts a created (never started) container back on each network where it has a
    /// fixed address, with a dynamic address or the next free fixed one. The engine says
    /// only at start that a network's subnet was its own choice (no fixed addresses
    /// there: remembered) or that the address was taken meanwhile.
    async fn readdress(&self, container: &str, how: Readdress) -> Result<()> {
        let docker = self.client().await?;
        let inspected = docker
            .inspect_container(container, None)
            .await
            .map_err(|e| {
                self.map(
                    e,
                    self.ctx("inspect container", ObjectKind::Container, container),
                )
            })?;
        let networks = inspected
            .network_settings
            .and_then(|s| s.networks)
            .unwrap_or_default();
        for (network, endpoint) in networks {
            if endpoint.ipam_config.and_then(|i| i.ipv4_address).is_none() {
                continue;
            }
            let address = match how {
                Readdress::Refused => {
                    tracing::info!(%network, %container, "network's subnet chosen by the engine: dynamic addresses on it");
                    self.addresses.mark_dynamic_only(&network);
                    None
                }
                Readdress::Dynamic => None,
                Readdress::Next => {
                    // Taken by another engine client since the last look.
                    self.addresses.forget(&network);
                    self.reserve_address(&network).await?
                }
            };
            let ctx = || self.ctx("reconnect container", ObjectKind::Network, &network);
            docker
                .disconnect_network(
                    &network,
                    bollard::models::NetworkDisconnectRequest {
                        container: container.to_string(),
                        force: Some(true),
                    },
                )
                .await
                .map_err(|e| self.map(e, ctx()))?;
            let connected = docker
                .connect_network(
                    &network,
                    bollard::models::NetworkConnectRequest {
                        container: container.to_string(),
                        endpoint_config: Some(convert::endpoint(address)),
                    },
                )
                .await
                .map_err(|e| self.map(e, ctx()));
            if let Some(a) = address {
                self.addresses.release(&network, a, connected.is_ok());
            }
            connected?;
        }
        Ok(())
    }

    async fn start_once(&self, container: &str) -> Result<()> {
        let docker = self.client().await?;
        docker.start_container(container, None).await.map_err(|e| {
            self.map(
                e,
                self.ctx("start container", ObjectKind::Container, container),
            )
        })
    }

    async fn create_with(&self, spec: &ContainerSpec, address: Option<Ipv4Addr>) -> Result<String> {
        let docker = self.client().await?;
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(options), convert::create_body(spec, address))
            .await
            .map_err(|e| {
                match self.map(
                    e,
                    self.ctx("create container", ObjectKind::Container, &spec.name),
                ) {
                    // The image was checked just before: a 404 here is the network.
                    Error::NotFound { .. } => Error::NotFound {
                        kind: ObjectKind::Network,
                        name: spec.network.clone().unwrap_or_default(),
                    },
                    other => other,
                }
            })?;
        for warning in &created.warnings {
            tracing::warn!(container = %spec.name, %warning, "engine warning on create");
        }
        Ok(created.id)
    }

    /// A fixed address for a new container on `network` (see `addresses`), or `None`
    /// for a dynamic one. A missing network is left to the create call to report.
    async fn reserve_address(&self, network: &str) -> Result<Option<Ipv4Addr>> {
        if self.addresses.dynamic_only(network) {
            return Ok(None);
        }
        let look = {
            let _one_at_a_time = self.looking.lock().await;
            match self.addresses.recent(network, std::time::Instant::now()) {
                Some(look) => look,
                None => match self.look_at_addresses(network).await? {
                    Some(look) => {
                        self.addresses
                            .remember(network, look.clone(), std::time::Instant::now());
                        look
                    }
                    None => return Ok(None),
                },
            }
        };
        Ok(look
            .subnet
            .and_then(|subnet| self.addresses.reserve(network, subnet, look.used)))
    }

    /// The configured IPv4 subnet of `network` and the addresses its containers hold
    /// (`None` when the network does not exist).
    async fn look_at_addresses(&self, network: &str) -> Result<Option<addresses::Look>> {
        let docker = self.client().await?;
        let n = match docker.inspect_network(network, None).await {
            Ok(n) => n,
            Err(e) => {
                return match self.map(e, self.ctx("inspect network", ObjectKind::Network, network))
                {
                    Error::NotFound { .. } => Ok(None),
                    other => Err(other),
                }
            }
        };
        let configs = n.ipam.and_then(|i| i.config).unwrap_or_default();
        let Some(subnet) = configs
            .iter()
            .find_map(|c| c.subnet.as_deref().and_then(addresses::Subnet::parse))
        else {
            return Ok(Some(addresses::Look {
                subnet: None,
                used: Default::default(),
            }));
        };
        let mut used: std::collections::HashSet<Ipv4Addr> = configs
            .iter()
            .filter_map(|c| c.gateway.as_deref().and_then(addresses::parse_address))
            .collect();
        // Every container on the network, running or not: a stopped one keeps its
        // fixed address.
        let options = ListContainersOptions {
            all: true,
            filters: Some(std::collections::HashMap::from([(
                "network".to_string(),
                vec![network.to_string()],
            )])),
            ..Default::default()
        };
        let list = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.map(e, self.ctx("list containers", ObjectKind::Network, network)))?;
        for c in list {
            let endpoint = c
                .network_settings
                .and_then(|s| s.networks)
                .and_then(|mut ns| ns.remove(network));
            if let Some(e) = endpoint {
                let fixed = e.ipam_config.and_then(|i| i.ipv4_address);
                for text in [fixed, e.ip_address].into_iter().flatten() {
                    used.extend(addresses::parse_address(&text));
                }
            }
        }
        Ok(Some(addresses::Look {
            subnet: Some(subnet),
            used,
        }))
    }

    async fn remove_impl(&self, container: &str) -> Result<()> {
        let docker = self.client().await?;
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match self.map(
                e,
                self.ctx("remove container", ObjectKind::Container, container),
            ) {
                Error::NotFound { .. } => Ok(()),
                // Removal already under way counts as removed.
                Error::Conflict { message, .. } if message.contains("already in progress") => {
                    Ok(())
                }
                other => Err(other),
            },
        }
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    fn endpoint(&self) -> &str {
        &self.endpoint_str
    }

    async fn host_capacity(&self) -> Result<crate::HostCapacity> {
        let docker = self.client().await?;
        let info = docker
            .info()
            .await
            .map_err(|e| self.map(e, self.ctx("engine info", ObjectKind::Container, "")))?;
        Ok(crate::HostCapacity {
            cpus: info.ncpu.unwrap_or(0),
            memory_bytes: info.mem_total.unwrap_or(0),
        })
    }

    async fn engine_info(&self) -> Result<EngineInfo> {
        let docker = self.client().await?;
        let v = docker
            .version()
            .await
            .map_err(|e| self.map(e, self.ctx("engine version", ObjectKind::Container, "")))?;
        // The first component names the engine: "Engine" (Docker) or "Podman
        // Engine"; the platform name is empty (Docker 20.10) or an OS (Podman).
        let product = v
            .components
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| {
                if c.name == "Engine" {
                    "Docker Engine".to_string()
                } else {
                    c.name.clone()
                }
            })
            .or_else(|| v.platform.map(|p| p.name))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown engine".to_string());
        Ok(EngineInfo {
            product,
            version: v.version.unwrap_or_default(),
            api_version: docker.client_version().to_string(),
        })
    }

    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<()> {
        self.ensure_network_impl(spec)
            .instrument(tracing::debug_span!("ensure_network", network = %spec.name))
            .await
    }

    async fn network_subnets(&self, network: &str) -> Result<Vec<String>> {
        let docker = self.client().await?;
        let n = docker
            .inspect_network(network, None)
            .await
            .map_err(|e| self.map(e, self.ctx("inspect network", ObjectKind::Network, network)))?;
        Ok(n.ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.subnet)
            .collect())
    }

    async fn image_present(&self, image: &str) -> Result<bool> {
        self.image_present_impl(image).await
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        self.ensure_image_impl(image)
            .instrument(tracing::debug_span!("ensure_image", image))
            .await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.create_impl(spec)
            .instrument(tracing::info_span!("create_container", container = %spec.name, image = %spec.image))
            .await
    }

    async fn start_container(&self, container: &str) -> Result<()> {
        // Another engine client (a second manager, a parallel test, kind) can pick the
        // same free address between our look and our start: take the next one.
        for _ in 0..ADDRESS_ATTEMPTS {
            match self.start_once(container).await {
                Err(Error::Engine { message, .. })
                    if addresses::refuses_fixed_addresses(&message) =>
                {
                    self.readdress(container, Readdress::Refused).await?;
                }
                Err(Error::Engine { message, .. }) if addresses::taken(&message) => {
                    self.readdress(container, Readdress::Next).await?;
                }
                other => return other,
            }
        }
        self.readdress(container, Readdress::Dynamic).await?;
        self.start_once(container).await
    }

    async fn inspect_container(&self, container: &str) -> Result<Option<ContainerInfo>> {
        self.inspect_impl(container).await
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>> {
        let docker = self.client().await?;
        let options = ListContainersOptions {
            all: true,
            filters: Some(convert::list_filters(filter)),
            ..Default::default()
        };
        let list = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.map(e, self.ctx("list containers", ObjectKind::Container, "")))?;
        // Re-check client-side: engines differ in how they read name filters.
        Ok(list
            .into_iter()
            .map(convert::summary)
            .filter(|c| filter.matches(&c.name, &c.labels))
            .collect())
    }

    async fn exec(&self, container: &str, request: ExecRequest) -> Result<ExecOutput> {
        let span = tracing::debug_span!("exec", container, command = %request.display());
        self.exec_impl(container, request).instrument(span).await
    }

    async fn signal(&self, container: &str, signal: &str) -> Result<()> {
        let docker = self.client().await?;
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        docker
            .kill_container(container, Some(options))
            .await
            .map_err(|e| {
                self.map(
                    e,
                    self.ctx("signal container", ObjectKind::Container, container),
                )
            })
    }

    async fn stop_container(&self, container: &str, grace: Duration) -> Result<()> {
        let docker = self.client().await?;
        let options = StopContainerOptions {
            t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        docker
            .stop_container(container, Some(options))
            .await
            .map_err(|e| {
                self.map(
                    e,
                    self.ctx("stop container", ObjectKind::Container, container),
                )
            })
    }

    async fn remove_container(&self, container: &str) -> Result<()> {
        self.remove_impl(container)
            .instrument(tracing::info_span!("remove_container", container))
            .await
    }

    async fn write_file(
        &self,
        container: &str,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<()> {
        let (dir, name) = files::split_path(path)?;
        self.write_files_impl(container, dir, &[(name, contents, mode)])
            .instrument(tracing::debug_span!("write_file", container, path))
            .await
    }

    async fn write_files(&self, container: &str, files: &[(&str, &[u8], u32)]) -> Result<()> {
        let mut split = Vec::with_capacity(files.len());
        for (path, contents, mode) in files {
            let (dir, name) = files::split_path(path)?;
            split.push((dir, (name, *contents, *mode)));
        }
        let Some((dir, _)) = split.first().copied() else {
            return Ok(());
        };
        if split.iter().any(|(d, _)| *d != dir) {
            // Archives are extracted into one directory: one per file then.
            for (path, contents, mode) in files {
                self.write_file(container, path, contents, *mode).await?;
            }
            return Ok(());
        }
        let named: Vec<(&str, &[u8], u32)> = split.into_iter().map(|(_, f)| f).collect();
        self.write_files_impl(container, dir, &named)
            .instrument(tracing::debug_span!(
                "write_files",
                container,
                dir,
                files = named.len()
            ))
            .await
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Vec<u8>> {
        self.read_file_impl(container, path).await
    }

    async fn save_image(&self, image: &str) -> Result<ByteStream> {
        self.save_image_impl(image).await
    }
}
