//! Kubernetes Events on our objects, for what a person wants to see in
//! `kubectl describe`: containers made or removed, bootstrap results.

use crate::context::Context;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

/// Publishes an Event: `reason` says what happened, `action` what the controller did
/// (events.k8s.io's two fields). Failing to publish only logs (it must never fail a
/// reconcile).
/// `regarding` is the reconciled object itself (a DevCluster, not the DockerCluster view
/// the backend works on).
pub async fn publish(
    ctx: &Context,
    regarding: &ObjectReference,
    warning: bool,
    reason: &str,
    action: &str,
    note: &str,
) {
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.chars().take(1024).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, regarding).await {
        tracing::debug!(error = %e, "could not publish event");
    }
}

/// A Warning Event when a reconcile failed because the container engine did not answer,
/// naming its address (the condition says it too; an Event reaches `kubectl get events`
/// and alerting built on it). Repeats are aggregated by the recorder into one series.
pub async fn on_error(ctx: &Context, regarding: &ObjectReference, err: &crate::Error) {
    if let Some(engine) = err.engine_unreachable() {
        publish(
            ctx,
            regarding,
            true,
            "EngineUnreachable",
            "Reconcile",
            &format!("the container engine does not answer: {engine}"),
        )
        .await;
    }
}
