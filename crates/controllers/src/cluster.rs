//! The infrastructure cluster controller, for every kind that implements [`InfraCluster`]
//! (DockerCluster, DevCluster). Flow (Cluster API contract): the object the controller
//! hands in (from the watch cache) → owner Cluster from the cache (wait while unset) → skip
//! externally managed → writer → pause → finalizer → delete or normal (docker backend) →
//! one write-back of what changed.

use crate::backends::docker::cluster as backend;
use crate::context::Context;
use crate::contract::{self, Writer, CLUSTER_FINALIZER};
use crate::error::Error;
use crate::infra::InfraCluster;
use capd_api::DockerCluster;
use kube::runtime::controller::Action;
use std::sync::Arc;
use tracing::info;

pub async fn reconcile<K: InfraCluster>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    contract::instrumented(K::CONTROLLER, obj.as_ref(), &ctx, flow(obj.as_ref(), &ctx)).await
}

pub fn error_policy<K: InfraCluster>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    contract::error_policy(K::CONTROLLER, obj.as_ref(), err, &ctx)
}

async fn flow<K: InfraCluster>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let deleting = obj.meta().deletion_timestamp.is_some();
    let Some(cluster) = contract::owner_cluster(obj.meta(), ctx) else {
        if deleting {
            // The owner never appeared (or is gone): nothing of ours can exist.
            return contract::release_orphan(obj, CLUSTER_FINALIZER, ctx).await;
        }
        info!("waiting for the Cluster controller to set the owner reference");
        return Ok(Action::await_change());
    };
    if contract::is_externally_managed(obj.meta()) {
        info!("externally managed (cluster.x-k8s.io/managed-by); skipping");
        return Ok(Action::await_change());
    }

    let mut writer = Writer::<K, DockerCluster>::new(obj, ctx)?;
    let mut dc = obj
        .to_view()
        .map_err(|e| Error::invalid(obj, e.to_string()))?;
    if contract::set_paused(&mut dc, &cluster, obj.meta()) {
        info!("reconciliation is paused");
        return writer.finish(dc, Ok(Action::await_change())).await;
    }

    let res = if deleting {
        let res = backend::reconcile_delete(&mut dc, &cluster, ctx, &mut writer).await;
        if res.is_ok() {
            contract::remove_finalizer(&mut dc.metadata, CLUSTER_FINALIZER);
        }
        res
    } else {
        // The finalizer goes on before anything exists outside the API server.
        writer
            .ensure_finalizer(&mut dc, CLUSTER_FINALIZER, |v| &mut v.metadata)
            .await?;
        backend::reconcile_normal(&mut dc, &cluster, ctx, &mut writer).await
    };
    contract::report_failure(&mut dc, &res, backend::set, ctx, &writer).await;
    writer.finish(dc, res).await
}
