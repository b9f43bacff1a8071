//! The infrastructure machine pool controller, for every kind that implements
//! [`InfraPool`] (DockerMachinePool, DevMachinePool). Flow (Cluster API contract): the
//! object the controller hands in (from the watch cache) → owner MachinePool and its
//! Cluster from the caches (wait while unset) → writer → pause → finalizer → delete or
//! normal (docker backend: the pool's machines) → Ready summary → one write-back of what
//! changed.

use crate::backends::docker::machine_pool as backend;
use crate::context::Context;
use crate::contract::{self, Writer};
use crate::error::Error;
use crate::infra::InfraPool;
use capd_api::consts::{finalizer, label};
use capd_api::machine_pool::DockerMachinePool;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::sync::Arc;
use tracing::info;

pub async fn reconcile<K: InfraPool>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    contract::instrumented(K::CONTROLLER, obj.as_ref(), &ctx, flow(obj.as_ref(), &ctx)).await
}

pub fn error_policy<K: InfraPool>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    contract::error_policy(K::CONTROLLER, obj.as_ref(), err, &ctx)
}

async fn flow<K: InfraPool>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let deleting = obj.meta().deletion_timestamp.is_some();
    let pool = contract::capi_owner(obj.meta(), "MachinePool")
        .and_then(|p| ctx.caches.machine_pool(&ns, &p));
    let cluster_name = pool
        .as_ref()
        .map(|p| p.spec.cluster_name.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| obj.labels().get(label::CLUSTER_NAME).cloned());
    let Some(cluster) = cluster_name
        .as_deref()
        .and_then(|c| ctx.caches.cluster(&ns, c))
    else {
        if deleting {
            // No Cluster left to tell us more: nothing of ours can run without one.
            return contract::release_orphan(obj, finalizer::MACHINE_POOL, ctx).await;
        }
        info!(
            "waiting for the MachinePool controller to set the owner reference and cluster label"
        );
        return Ok(Action::await_change());
    };

    let mut writer = Writer::<K, DockerMachinePool>::new(obj, ctx)?;
    let mut view = obj
        .to_view()
        .map_err(|e| Error::invalid(obj, e.to_string()))?;
    if contract::set_paused(&mut view, &cluster, obj.meta()) {
        info!("reconciliation is paused");
        return writer.finish(view, Ok(Action::await_change())).await;
    }

    let res = if deleting {
        match backend::reconcile_delete::<K>(&mut view, pool.as_deref(), &cluster, ctx).await {
            Ok(None) => {
                contract::remove_finalizer(&mut view.metadata, finalizer::MACHINE_POOL);
                Ok(Action::await_change())
            }
            Ok(Some(wait)) => Ok(wait),
            Err(e) => Err(e),
        }
    } else {
        let Some(pool) = pool else {
            info!("waiting for the MachinePool controller to set the owner reference");
            return writer.finish(view, Ok(Action::await_change())).await;
        };
        writer
            .ensure_finalizer(&mut view, finalizer::MACHINE_POOL, |v| &mut v.metadata)
            .await?;
        backend::reconcile_normal::<K>(&mut view, &pool, &cluster, ctx).await
    };
    contract::report_failure(&mut view, &res, backend::set, ctx, &writer).await;
    backend::summarize_ready(&mut view, res.is_err());
    writer.finish(view, res).await
}
