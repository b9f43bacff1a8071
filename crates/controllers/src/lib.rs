//! The controllers of capd-rs. Three flows, each reading top to bottom in its own module:
//! [`cluster`] for every infrastructure cluster kind, [`machine`] for every machine kind and
//! [`machine_pool`] for every machine pool
//! kind (the kinds are [`infra`] impls). The Cluster API contract steps are in
//! [`contract`], the behaviour in [`backends`], the watch caches in [`caches`], the event
//! filters in [`filters`].

pub mod backends;
pub mod backoff;
pub mod bootstrap_exec;
pub mod bootstrap_tasks;
pub mod caches;
pub mod cluster;
pub mod context;
pub mod contract;
pub mod error;
pub mod events;
pub mod filters;
pub mod infra;
pub mod ip_family;
pub mod machine;
pub mod machine_pool;
pub mod metrics;
pub mod node;
pub mod patch;
pub mod template;
pub mod watches;
pub mod workload;

pub use context::{Config, Context};

/// Label on every container the provider creates: tells them from kind's and CAPD's
/// (and lets the test environment's `down` find them).
pub const PROVIDER_LABEL: &str = "io.x-k8s.capd-rs.provider";
pub use error::Error;
