//! The local test environment: the Docker engine (and its runc shim), the certificates,
//! the control plane, Cluster API's managers, the provider's manager, and `lifecycle`,
//! which brings them up in order and down again.

pub mod capi;
pub mod engine;
pub mod lifecycle;
pub mod manager;
pub mod pki;
pub mod plane;
pub mod shim;
