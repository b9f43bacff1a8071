//! capd-podnet: a small CNI daemon giving capd-rs workload clusters an offline pod network.
//!
//! Every node gets a `ptp` + `host-local` CNI configuration for its pod CIDRs, routes to the
//! other nodes' pod CIDRs through their InternalIPs (the nodes share one Docker network, so
//! plain routes suffice) and masquerading for pod traffic leaving the pod network.

pub mod cidr;
pub mod config;
pub mod conflist;
pub mod exec;
pub mod masq;
pub mod node;
pub mod reconcile;
pub mod routes;
pub mod watch;
