//! The Cluster API contract steps every controller takes, written once: the instrumented
//! wrapper (span with namespace/name, metrics, backoff), owner lookups from the caches,
//! the Paused condition, releasing an orphan, the finalizer as the first write, and the
//! patch-and-combine finish. Each controller's flow calls these at its top and bottom.

use crate::context::Context;
use crate::error::Error;
use crate::infra::{Infra, Object};
use crate::patch::{PatchError, PatchGuard};
use capd_api::capi::Cluster;
use capd_api::conditions::{self, NewCondition};
use capd_api::consts::{condition, finalizer as finalizers, reason};
use capd_api::HasConditions;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub use capd_api::annotations::{is_externally_managed, is_paused};

/// Runs one reconcile of `obj` inside a span carrying its namespace/name, records its
/// duration and outcome, and resets the object's backoff on success.
pub async fn instrumented<K: Object>(
    controller: &'static str,
    obj: &K,
    ctx: &Context,
    flow: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let span = tracing::info_span!("reconcile", controller, namespace = %ns, name = %name);
    let start = Instant::now();
    let res = flow.instrument(span).await;
    ctx.metrics.observe(
        controller,
        start.elapsed(),
        res.as_ref().err().map(Error::metric_label),
    );
    if res.is_ok() {
        ctx.backoff.succeeded(&backoff_key::<K>(&ns, &name));
    }
    res
}

/// A failed reconcile says so on the object (Ready=False, InternalError, the error's
/// text) and, for an unreachable engine, in a Warning Event; `set` is the flow's
/// condition setter. Nothing happens for a reconcile that succeeded.
pub async fn report_failure<V>(
    view: &mut V,
    res: &Result<Action, Error>,
    set: fn(&mut V, NewCondition),
    ctx: &Context,
    cp: &(impl Checkpoint<V> + Sync),
) {
    if let Err(e) = res {
        set(
            view,
            NewCondition::false_(condition::READY, reason::INTERNAL_ERROR, e.to_string()),
        );
        crate::events::on_error(ctx, &cp.regarding(), e).await;
    }
}

/// After a failed reconcile: requeue with the object's own exponential backoff.
pub fn error_policy<K: Object>(
    controller: &'static str,
    obj: &K,
    err: &Error,
    ctx: &Context,
) -> Action {
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let wait = ctx.backoff.failed_with(
        &backoff_key::<K>(&ns, &name),
        err.api_unavailable() || err.engine_unreachable().is_some(),
    );
    tracing::warn!(controller, namespace = %ns, name = %name, error = %err, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

fn backoff_key<K: Object>(ns: &str, name: &str) -> String {
    format!("{}/{ns}/{name}", K::kind(&()))
}

/// Name of the owner of `kind` (`Cluster`, `Machine`) in the Cluster API group, if set.
pub fn capi_owner(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references.as_ref()?.iter().find_map(|o| {
        let group = o.api_version.split('/').next().unwrap_or_default();
        (o.kind == kind && group == capd_api::consts::CAPI_GROUP).then(|| o.name.clone())
    })
}

/// The owner Cluster of an infrastructure cluster, from the cache.
pub fn owner_cluster(meta: &ObjectMeta, ctx: &Context) -> Option<Arc<Cluster>> {
    let ns = meta.namespace.as_deref()?;
    ctx.caches.cluster(ns, &capi_owner(meta, "Cluster")?)
}

/// Sets the Paused condition from the Cluster and the object's annotation; returns
/// whether reconciliation is paused.
pub fn set_paused<V: HasConditions>(view: &mut V, cluster: &Cluster, meta: &ObjectMeta) -> bool {
    let paused = is_paused(cluster, meta);
    let generation = meta.generation;
    conditions::set(
        view.conditions_mut(),
        if paused {
            NewCondition::true_(
                condition::PAUSED,
                reason::PAUSED,
                "reconciliation is paused",
            )
        } else {
            NewCondition::false_(condition::PAUSED, reason::NOT_PAUSED, "")
        },
        generation,
    );
    paused
}

/// A deleted object whose owner never appeared or is gone: nothing of ours can be left
/// that the owner chain would tell us about; let the object go.
pub async fn release_orphan<K: Object>(
    obj: &K,
    finalizer: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let guard = PatchGuard::new(api::<K>(obj, ctx), obj)?;
    let mut after = obj.clone();
    remove_finalizer(after.meta_mut(), finalizer);
    guard.patch(&after).await?;
    Ok(Action::await_change())
}

/// Takes our finalizer off (once what it guarded is gone); others' stay.
pub fn remove_finalizer(meta: &mut ObjectMeta, finalizer: &str) {
    if let Some(list) = meta.finalizers.as_mut() {
        list.retain(|f| f != finalizer);
    }
}

pub fn api<K: Object>(obj: &K, ctx: &Context) -> Api<K> {
    Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default())
}

/// The infrastructure finalizers, CAPD's names (the Dev* kinds use the same ones).
pub use finalizers::{DOCKER_CLUSTER as CLUSTER_FINALIZER, DOCKER_MACHINE as MACHINE_FINALIZER};

/// What the backend may do mid-reconcile: publish the state so far (e.g. `Deleting`
/// before a slow removal), whatever kind carries the view.
pub trait Checkpoint<V>: Send {
    fn checkpoint<'a>(&'a mut self, view: &'a V) -> BoxFuture<'a, Result<usize, PatchError>>;
    /// The reconciled object (its own kind), for Events about it.
    fn regarding(&self) -> k8s_openapi::api::core::v1::ObjectReference;
}

/// The patch guard of one reconcile, for a kind reconciled as the view `V`: snapshot at
/// the start, the finalizer as the first write, checkpoints, and one write-back at the end.
pub struct Writer<K, V> {
    guard: PatchGuard<K>,
    obj: K,
    _view: PhantomData<fn() -> V>,
}

impl<K: Infra<V>, V: Clone + Send + Sync + 'static> Writer<K, V> {
    pub fn new(obj: &K, ctx: &Context) -> Result<Self, Error> {
        Ok(Self {
            guard: PatchGuard::new(api::<K>(obj, ctx), obj)?,
            obj: obj.clone(),
            _view: PhantomData,
        })
    }

    /// Puts `finalizer` on the object now (alone, one request) unless it is there, and
    /// in `view` so the final diff does not send it again.
    pub async fn ensure_finalizer(
        &mut self,
        view: &mut V,
        finalizer: &str,
        meta_of: impl Fn(&mut V) -> &mut ObjectMeta,
    ) -> Result<(), Error> {
        self.guard.add_finalizer(finalizer).await?;
        let finalizers = meta_of(view).finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == finalizer) {
            finalizers.push(finalizer.to_string());
        }
        if !self.obj.finalizers().iter().any(|f| f == finalizer) {
            self.obj.finalizers_mut().push(finalizer.to_string());
        }
        Ok(())
    }

    /// Writes back what changed (nothing when nothing did) and joins the outcome with the
    /// reconcile's.
    pub async fn finish(self, view: V, res: Result<Action, Error>) -> Result<Action, Error> {
        let mut after = self.obj;
        after.set_from_view(view);
        Error::combine(res, self.guard.patch(&after).await)
    }
}

impl<K: Infra<V>, V: Clone + Send + Sync + 'static> Checkpoint<V> for Writer<K, V> {
    fn checkpoint<'a>(&'a mut self, view: &'a V) -> BoxFuture<'a, Result<usize, PatchError>> {
        Box::pin(async move {
            let mut current = self.obj.clone();
            current.set_from_view(view.clone());
            self.guard.checkpoint(&current).await
        })
    }

    fn regarding(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        self.obj.object_ref(&())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owner(api_version: &str, kind: &str, name: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: "u".into(),
            ..Default::default()
        }
    }

    #[test]
    fn finds_owner_of_capi_group_only() {
        let meta = ObjectMeta {
            owner_references: Some(vec![
                owner("example.com/v1", "Cluster", "other"),
                owner("cluster.x-k8s.io/v1beta2", "Cluster", "c1"),
            ]),
            ..Default::default()
        };
        assert_eq!(capi_owner(&meta, "Cluster").as_deref(), Some("c1"));
        assert_eq!(capi_owner(&meta, "Machine"), None);
        assert_eq!(capi_owner(&ObjectMeta::default(), "Cluster"), None);
    }
}
