//! The infrastructure machine controller, for every kind that implements [`InfraMachine`]
//! (DockerMachine, DevMachine). Flow (Cluster API contract): the object the controller
//! hands in (from the watch cache) → owner Machine and its Cluster from the caches (wait
//! while unset) → writer → pause → the cluster's infrastructure → finalizer → delete or
//! normal (docker backend) → Ready summary → one write-back of what changed.

use crate::backends::docker::machine::{self as backend, Objects};
use crate::context::Context;
use crate::contract::{self, Writer, MACHINE_FINALIZER};
use crate::error::Error;
use crate::infra::InfraMachine;
use crate::node;
use capd_api::consts::label;
use capd_api::DockerMachine;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::sync::Arc;
use tracing::info;

pub async fn reconcile<K: InfraMachine>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    contract::instrumented(K::CONTROLLER, obj.as_ref(), &ctx, flow(obj.as_ref(), &ctx)).await
}

pub fn error_policy<K: InfraMachine>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    contract::error_policy(K::CONTROLLER, obj.as_ref(), err, &ctx)
}

async fn flow<K: InfraMachine>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let deleting = obj.meta().deletion_timestamp.is_some();
    let machine =
        contract::capi_owner(obj.meta(), "Machine").and_then(|m| ctx.caches.machine(&ns, &m));
    let cluster_name = machine
        .as_ref()
        .and_then(|m| m.cluster_name().map(String::from))
        .or_else(|| obj.labels().get(label::CLUSTER_NAME).cloned());
    let cluster = cluster_name
        .as_deref()
        .and_then(|c| ctx.caches.cluster(&ns, c));
    let (Some(machine), Some(cluster)) = (machine, cluster) else {
        if deleting {
            // No owner left to tell us more; remove what we may have made, then let go.
            if let Some(c) = &cluster_name {
                ctx.runtime
                    .remove_container(&node::container_name(c, &obj.name_any()))
                    .await?;
            }
            return contract::release_orphan(obj, MACHINE_FINALIZER, ctx).await;
        }
        info!("waiting for the Machine controller to set the owner reference");
        return Ok(Action::await_change());
    };

    // A MachinePool's machine (CAPD v1.14's MachinePool Machines): Cluster API leaves its
    // Machine without bootstrap data or version; both come from the MachinePool, as in CAPD.
    let mut machine = (*machine).clone();
    let mut pool_label = None;
    if let Some(pool) = obj.labels().get(label::MACHINE_POOL_NAME) {
        match ctx.caches.machine_pool(&ns, pool) {
            Some(mp) => {
                machine.spec.bootstrap.data_secret_name =
                    mp.bootstrap_data_secret_name().map(String::from);
                if machine.spec.version.is_empty() {
                    machine.spec.version = mp.version().unwrap_or_default().to_string();
                }
                // CAPD labels a pool's container with one of the pool's failure domains
                // (at random); here one picked from the machine's name, the same every time.
                if machine.spec.failure_domain.is_empty() && !mp.spec.failure_domains.is_empty() {
                    let i = obj.name_any().bytes().fold(0usize, |h, b| {
                        h.wrapping_mul(31).wrapping_add(usize::from(b))
                    });
                    machine.spec.failure_domain =
                        mp.spec.failure_domains[i % mp.spec.failure_domains.len()].clone();
                }
            }
            None if !deleting => {
                info!(machine_pool = %pool, "waiting for the MachinePool");
                // No MachinePool watch feeds this controller: look again.
                return Ok(Action::requeue(std::time::Duration::from_secs(10)));
            }
            None => {}
        }
        pool_label = obj
            .owner_references()
            .iter()
            .find_map(|o| Some((crate::infra::pool_container_label(&o.kind)?, o.name.clone())));
    }

    let mut writer = Writer::<K, DockerMachine>::new(obj, ctx)?;
    let mut dm = obj
        .to_view()
        .map_err(|e| Error::invalid(obj, e.to_string()))?;
    if contract::set_paused(&mut dm, &cluster, obj.meta()) {
        info!("reconciliation is paused");
        return writer.finish(dm, Ok(Action::await_change())).await;
    }

    let docker_cluster = match ctx.caches.infra_cluster(&cluster) {
        Some(Ok(dc)) => Some(dc),
        Some(Err(e)) => {
            return writer
                .finish(
                    dm,
                    Err(Error::invalid(
                        cluster.as_ref(),
                        format!("spec.infrastructureRef: {e}"),
                    )),
                )
                .await
        }
        None => None,
    };
    let objs = Objects {
        machine,
        cluster: (*cluster).clone(),
        docker_cluster,
        pool_label,
    };
    let res = if deleting {
        let res = backend::reconcile_delete(&mut dm, &objs, ctx, &mut writer).await;
        if res.is_ok() {
            contract::remove_finalizer(&mut dm.metadata, MACHINE_FINALIZER);
        }
        res
    } else {
        // The finalizer goes on before anything exists outside the API server.
        writer
            .ensure_finalizer(&mut dm, MACHINE_FINALIZER, |v| &mut v.metadata)
            .await?;
        backend::reconcile_normal(&mut dm, &objs, ctx, &mut writer).await
    };
    contract::report_failure(&mut dm, &res, backend::set, ctx, &writer).await;
    backend::summarize_ready(&mut dm, res.is_err());
    writer.finish(dm, res).await
}
