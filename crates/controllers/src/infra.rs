//! The kinds the docker backend serves. Every infrastructure cluster kind is reconciled as a
//! [`DockerCluster`] and every machine kind as a [`DockerMachine`] (CAPD v1.14 does the same
//! the other way round: its Docker* controllers convert to Dev* and call one backend). A
//! kind is an `impl Infra<..>` and a line in the manager, never a second flow.

use capd_api::consts::label;
use capd_api::dev::{DevCluster, DevMachine};
use capd_api::machine_pool::{DevMachinePool, DockerMachinePool, DockerMachinePoolMachineTemplate};
use capd_api::{DockerCluster, DockerMachine};
use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// What every reconciled kind is: a namespaced object we can snapshot, diff and patch.
pub trait Object:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Why an object cannot go to the docker backend (a Dev* kind with another backend).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Unsupported {
    pub field: &'static str,
    pub message: String,
}

/// A kind the backend reconciles as `V` (its "view"): converted on the way in, and what
/// the backend changed (metadata, spec, status) taken back on the way out.
pub trait Infra<V>: Object {
    /// The controller's name in logs and metrics (`dockercluster`, `devmachine`, ...).
    const CONTROLLER: &'static str;
    fn to_view(&self) -> Result<V, Unsupported>;
    fn set_from_view(&mut self, view: V);
}

/// An infrastructure cluster kind (DockerCluster, DevCluster).
pub trait InfraCluster: Infra<DockerCluster> {}
impl<K: Infra<DockerCluster>> InfraCluster for K {}

/// An infrastructure machine kind (DockerMachine, DevMachine).
pub trait InfraMachine: Infra<DockerMachine> {}
impl<K: Infra<DockerMachine>> InfraMachine for K {}

/// An infrastructure machine pool kind (DockerMachinePool, DevMachinePool): what it is
/// reconciled as, and the kind of the per-instance machines it makes (CAPD v1.14's
/// "MachinePool Machines": the pool's machines are DockerMachines or DevMachines that the
/// machine controller provisions like any other).
pub trait InfraPool: Infra<DockerMachinePool> {
    /// Kind of the pool's machines (`status.infrastructureMachineKind`).
    const MACHINE_KIND: &'static str;
    /// Container label naming the pool on its node containers (CAPD's).
    const CONTAINER_LABEL: &'static str;
    /// `spec` of one of the pool's machines, made from the pool's template.
    fn machine_spec(template: &DockerMachinePoolMachineTemplate) -> serde_json::Value;
}

impl InfraPool for DockerMachinePool {
    const MACHINE_KIND: &'static str = "DockerMachine";
    const CONTAINER_LABEL: &'static str = label::DOCKER_MACHINE_POOL;
    fn machine_spec(t: &DockerMachinePoolMachineTemplate) -> serde_json::Value {
        serde_json::to_value(t).unwrap_or_default()
    }
}

impl InfraPool for DevMachinePool {
    const MACHINE_KIND: &'static str = "DevMachine";
    const CONTAINER_LABEL: &'static str = label::DEV_MACHINE_POOL;
    fn machine_spec(t: &DockerMachinePoolMachineTemplate) -> serde_json::Value {
        serde_json::json!({"backend": {"docker": t}})
    }
}

/// The pool kind and container label of a pool's machine, from its owner reference.
pub fn pool_container_label(owner_kind: &str) -> Option<&'static str> {
    match owner_kind {
        "DockerMachinePool" => Some(DockerMachinePool::CONTAINER_LABEL),
        "DevMachinePool" => Some(DevMachinePool::CONTAINER_LABEL),
        _ => None,
    }
}

impl Infra<DockerMachinePool> for DockerMachinePool {
    const CONTROLLER: &'static str = "dockermachinepool";
    fn to_view(&self) -> Result<DockerMachinePool, Unsupported> {
        Ok(self.clone())
    }
    fn set_from_view(&mut self, view: DockerMachinePool) {
        *self = view;
    }
}

impl Infra<DockerMachinePool> for DevMachinePool {
    const CONTROLLER: &'static str = "devmachinepool";
    fn to_view(&self) -> Result<DockerMachinePool, Unsupported> {
        self.to_docker().ok_or_else(unsupported)
    }
    fn set_from_view(&mut self, view: DockerMachinePool) {
        self.set_from_docker(view);
    }
}

impl Infra<DockerCluster> for DockerCluster {
    const CONTROLLER: &'static str = "dockercluster";
    fn to_view(&self) -> Result<DockerCluster, Unsupported> {
        Ok(self.clone())
    }
    fn set_from_view(&mut self, view: DockerCluster) {
        *self = view;
    }
}

impl Infra<DockerMachine> for DockerMachine {
    const CONTROLLER: &'static str = "dockermachine";
    fn to_view(&self) -> Result<DockerMachine, Unsupported> {
        Ok(self.clone())
    }
    fn set_from_view(&mut self, view: DockerMachine) {
        *self = view;
    }
}

impl Infra<DockerCluster> for DevCluster {
    const CONTROLLER: &'static str = "devcluster";
    fn to_view(&self) -> Result<DockerCluster, Unsupported> {
        self.to_docker().ok_or_else(unsupported)
    }
    fn set_from_view(&mut self, view: DockerCluster) {
        self.set_from_docker(view);
    }
}

impl Infra<DockerMachine> for DevMachine {
    const CONTROLLER: &'static str = "devmachine";
    fn to_view(&self) -> Result<DockerMachine, Unsupported> {
        self.to_docker().ok_or_else(unsupported)
    }
    fn set_from_view(&mut self, view: DockerMachine) {
        self.set_from_docker(view);
    }
}

/// Admission refuses these (a CRD rule); an object stored before that rule existed lands here.
fn unsupported() -> Unsupported {
    Unsupported { field: "spec.backend.docker", message: "required: capd-rs implements the docker backend only (spec.backend.inMemory is not supported)".into() }
}
