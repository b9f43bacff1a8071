//! The controllers of capd-rs. Each kind's reconcile flow reads top to bottom in its
//! own module; the pieces they share (patch guard, owner lookups, pause handling,
//! watches, metrics, backoff) live beside them.

pub mod backoff;
pub mod bootstrap_exec;
pub mod context;
pub mod dockercluster;
pub mod dockermachine;
pub mod error;
pub mod events;
pub mod metrics;
pub mod node;
pub mod owner;
pub mod patch;
pub mod watches;
pub mod workload;

pub use context::{Config, Context};

/// Label on every container the provider creates: tells them from kind's and CAPD's
/// (and lets the test environment's `down` find them).
pub const PROVIDER_LABEL: &str = "io.x-k8s.capd-rs.provider";
pub use error::Error;
