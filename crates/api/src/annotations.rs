//! Reading the contract's annotations: pause, external management, topology dry-run.

use crate::capi::Cluster;
use crate::consts::annotation;
use kube::api::ObjectMeta;

fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// Whether the object carries `cluster.x-k8s.io/paused` (any value).
pub fn has_paused_annotation(meta: &ObjectMeta) -> bool {
    has_annotation(meta, annotation::PAUSED)
}

/// Whether reconciling `object` of `cluster` is paused: the Cluster's `spec.paused`, or the
/// paused annotation on the object itself (Cluster API's `annotations.IsPaused`).
pub fn is_paused(cluster: &Cluster, object: &ObjectMeta) -> bool {
    cluster.spec_paused() || has_paused_annotation(object)
}

/// Whether an infra cluster is managed by someone else (`cluster.x-k8s.io/managed-by`):
/// the provider must leave it alone.
pub fn is_externally_managed(meta: &ObjectMeta) -> bool {
    has_annotation(meta, annotation::MANAGED_BY)
}

/// Whether the object carries the ClusterClass topology dry-run annotation.
pub fn has_topology_dry_run_annotation(meta: &ObjectMeta) -> bool {
    has_annotation(meta, annotation::TOPOLOGY_DRY_RUN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capi::ClusterSpec;
    use std::collections::BTreeMap;

    fn meta_with(key: &str) -> ObjectMeta {
        ObjectMeta {
            annotations: Some(BTreeMap::from([(key.to_string(), String::new())])),
            ..Default::default()
        }
    }

    #[test]
    fn paused_by_cluster_spec_or_object_annotation() {
        let running = Cluster::new("c", ClusterSpec::default());
        let mut paused = running.clone();
        paused.spec.paused = Some(true);

        assert!(!is_paused(&running, &ObjectMeta::default()));
        assert!(is_paused(&paused, &ObjectMeta::default()));
        assert!(is_paused(&running, &meta_with(annotation::PAUSED)));
        // The annotation on the Cluster pauses only Cluster API's own Cluster controller.
        let mut annotated = running.clone();
        annotated.metadata = meta_with(annotation::PAUSED);
        assert!(annotated.has_paused_annotation());
        assert!(!is_paused(&annotated, &ObjectMeta::default()));
    }

    #[test]
    fn managed_by_and_dry_run() {
        assert!(is_externally_managed(&meta_with(annotation::MANAGED_BY)));
        assert!(!is_externally_managed(&ObjectMeta::default()));
        assert!(has_topology_dry_run_annotation(&meta_with(
            annotation::TOPOLOGY_DRY_RUN
        )));
    }
}
