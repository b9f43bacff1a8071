//! Kubernetes Events on our objects, for what a person wants to see in
//! `kubectl describe`: containers made or removed, bootstrap results.

use crate::context::Context;
use kube::runtime::events::{Event, EventType};
use kube::Resource;

/// Publishes an Event; failing to publish only logs (it must never fail a reconcile).
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, warning: bool, reason: &str, note: &str) {
    let ev = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.into(),
        note: Some(note.chars().take(1024).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::debug!(error = %e, "could not publish event");
    }
}
