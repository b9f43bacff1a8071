//! The machine template controller, for DockerMachineTemplate and DevMachineTemplate:
//! `status.capacity` is the engine host's CPUs and memory, as CAPD reports it (the
//! cluster autoscaler's scale from zero reads it). Flow: the template the controller
//! hands in → the host's capacity from the engine → one status patch when it differs,
//! none when it does not. Like CAPD's, it does not look at owners or pause: a template
//! has neither a Cluster owner nor anything to provision.

use crate::context::Context;
use crate::contract;
use crate::error::Error;
use crate::infra::Object;
use capd_api::dev::DevMachineTemplate;
use capd_api::DockerMachineTemplate;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::info;

/// A machine template kind whose status carries a capacity.
pub trait CapacityTemplate: Object {
    const CONTROLLER: &'static str;
    fn capacity(&self) -> Option<&BTreeMap<String, Quantity>>;
}

impl CapacityTemplate for DockerMachineTemplate {
    const CONTROLLER: &'static str = "dockermachinetemplate";
    fn capacity(&self) -> Option<&BTreeMap<String, Quantity>> {
        self.status.as_ref().map(|s| &s.capacity)
    }
}

impl CapacityTemplate for DevMachineTemplate {
    const CONTROLLER: &'static str = "devmachinetemplate";
    fn capacity(&self) -> Option<&BTreeMap<String, Quantity>> {
        self.status.as_ref().map(|s| &s.capacity)
    }
}

pub async fn reconcile<K: CapacityTemplate>(
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    contract::instrumented(K::CONTROLLER, obj.as_ref(), &ctx, flow(obj.as_ref(), &ctx)).await
}

pub fn error_policy<K: CapacityTemplate>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    contract::error_policy(K::CONTROLLER, obj.as_ref(), err, &ctx)
}

async fn flow<K: CapacityTemplate>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let host = ctx.runtime.host_capacity().await?;
    let want = capacity(host);
    if obj.capacity() == Some(&want) {
        return Ok(Action::await_change());
    }
    contract::api(obj, ctx)
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"capacity": want}})),
        )
        .await?;
    info!(
        cpu = host.cpus,
        memory = host.memory_bytes,
        "capacity set from the engine's host"
    );
    Ok(Action::await_change())
}

/// CAPD's ResourceList: `cpu` as a decimal count, `memory` in bytes with the largest
/// binary suffix that divides it (Go's canonical BinarySI form).
pub fn capacity(host: capd_runtime::HostCapacity) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(host.cpus.to_string())),
        ("memory".to_string(), Quantity(binary_si(host.memory_bytes))),
    ])
}

fn binary_si(n: i64) -> String {
    const SUFFIXES: [&str; 6] = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"];
    if n == 0 {
        return "0".into();
    }
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        let unit = 1i64 << (10 * (SUFFIXES.len() - i) as u32);
        if n % unit == 0 {
            return format!("{}{suffix}", n / unit);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_in_gos_canonical_binary_form() {
        assert_eq!(binary_si(24 << 30), "24Gi");
        assert_eq!(binary_si(25_165_824_000), "24000Mi");
        assert_eq!(binary_si(3 * 1024 + 1024 * 1024), "1027Ki");
        assert_eq!(binary_si(1025), "1025");
        assert_eq!(binary_si(0), "0");
        let c = capacity(capd_runtime::HostCapacity {
            cpus: 2,
            memory_bytes: 3 << 20,
        });
        assert_eq!((c["cpu"].0.as_str(), c["memory"].0.as_str()), ("2", "3Mi"));
    }
}
