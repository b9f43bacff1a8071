//! Event filters, as CAPD's predicates: which watch events are worth a reconcile. Each
//! filter remembers a fingerprint of what matters per object and lets an event through
//! only when that changed (or the object is new to it).
//!
//! - an object's own events: anything but status (so our status writes do not wake us);
//! - a Cluster's events for its infrastructure: pause, infrastructure provisioned,
//!   control plane initialized, deletion, infrastructureRef, control-plane endpoint;
//! - a Machine's events for its infrastructure machine: bootstrap data, infrastructureRef,
//!   deletion, Node, labels (control-plane role), version, failure domain;
//! - a MachinePool's events for its infrastructure pool: its spec, deletion;
//! - a pool's machine's events for the pool: spec, owners, deletion, provisioned;
//! - a `<cluster>-kubeconfig` Secret's events for the cluster's machines: any new version.

use capd_api::capi::{Cluster, Machine, MachinePool};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Remembers, per object, the fingerprint of the last event let through.
pub struct Filter<K: Resource<DynamicType = ()>> {
    fingerprint: fn(&K) -> u64,
    seen: Mutex<HashMap<ObjectRef<K>, u64>>,
}

impl<K: Resource<DynamicType = ()>> Filter<K> {
    pub fn new(fingerprint: fn(&K) -> u64) -> Self {
        Self {
            fingerprint,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, u64>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this event of `obj` changes what the consumer cares about.
    pub fn changed(&self, obj: &K) -> bool {
        let key = ObjectRef::from_obj(obj);
        let fp = (self.fingerprint)(obj);
        let mut seen = self.seen();
        // A deleted object will not come back under the same fingerprint; forgetting it
        // keeps the map as small as the live set.
        if obj.meta().deletion_timestamp.is_some()
            && obj.meta().finalizers.as_ref().is_none_or(|f| f.is_empty())
        {
            seen.remove(&key);
            return true;
        }
        seen.insert(key, fp) != Some(fp)
    }

    /// The object is gone (a watch Delete, or missing from a re-list): its fingerprint
    /// goes too, so the map stays as small as the live set.
    pub fn forget(&self, obj: &ObjectRef<K>) {
        self.seen().remove(obj);
    }

    pub fn remembered(&self) -> usize {
        self.seen().len()
    }
}

fn hash_of(v: &impl Serialize) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// Everything of an object but its status and server bookkeeping: spec (by generation),
/// labels, annotations, finalizers, owners, deletion.
pub fn without_status<K: Resource<DynamicType = ()>>(obj: &K) -> u64 {
    let m = obj.meta();
    hash_of(&(
        &m.generation,
        &m.labels,
        &m.annotations,
        &m.finalizers,
        &m.owner_references,
        &m.deletion_timestamp,
    ))
}

/// A workload kubeconfig Secret, by version (its contents are not watched, only that it
/// changed); other Secrets pass once, and map to nothing.
pub fn kubeconfig_secret(s: &PartialObjectMeta<Secret>) -> u64 {
    if s.metadata
        .name
        .as_deref()
        .and_then(crate::workload::kubeconfig_secret_cluster)
        .is_some()
    {
        hash_of(&s.metadata.resource_version)
    } else {
        0
    }
}

/// What an infrastructure object's reconcile reads of its Cluster.
pub fn cluster_for_infra(c: &Cluster) -> u64 {
    hash_of(&(
        c.spec_paused(),
        c.has_paused_annotation(),
        c.infrastructure_provisioned(),
        c.control_plane_initialized(),
        &c.metadata.deletion_timestamp,
        &c.spec.infrastructure_ref,
        &c.spec.control_plane_endpoint,
    ))
}

/// What a machine's reconcile reads of its Machine.
pub fn machine_for_infra(m: &Machine) -> u64 {
    hash_of(&(
        m.bootstrap_data_secret_name(),
        &m.spec.infrastructure_ref,
        &m.metadata.deletion_timestamp,
        m.node_name(),
        m.labels(),
        m.version(),
        m.failure_domain(),
    ))
}

/// What a pool's reconcile reads of its MachinePool (replicas, bootstrap data, version).
pub fn machine_pool_for_infra(mp: &MachinePool) -> u64 {
    hash_of(&(&mp.spec, &mp.metadata.deletion_timestamp, mp.labels()))
}

/// What a pool's reconcile reads of one of its machines.
pub fn infra_machine_for_pool<K: crate::infra::InfraMachine>(m: &K) -> u64 {
    let provisioned = m
        .to_view()
        .ok()
        .and_then(|v| v.status)
        .and_then(|s| s.initialization.provisioned);
    let meta = m.meta();
    hash_of(&(
        &meta.generation,
        &meta.owner_references,
        &meta.deletion_timestamp,
        provisioned,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerMachine;
    use serde_json::json;

    fn cluster(v: serde_json::Value) -> Cluster {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn own_status_writes_are_filtered() {
        let f = Filter::new(without_status::<DockerMachine>);
        let mut dm: DockerMachine = serde_json::from_value(
            json!({"metadata": {"name": "m", "namespace": "ns", "generation": 1}, "spec": {}}),
        )
        .unwrap();
        assert!(f.changed(&dm), "first sight");
        dm.status_mut().ready = true;
        dm.metadata.resource_version = Some("2".into());
        assert!(!f.changed(&dm), "status and resourceVersion only");
        dm.metadata.finalizers = Some(vec!["x".into()]);
        assert!(f.changed(&dm), "finalizer added");
        dm.metadata.generation = Some(2);
        assert!(f.changed(&dm), "spec changed");
        assert!(!f.changed(&dm));
    }

    #[test]
    fn cluster_events_pass_only_when_what_infra_reads_changed() {
        let f = Filter::new(cluster_for_infra);
        let base = json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerCluster", "name": "c"}}});
        let mut c = cluster(base.clone());
        assert!(f.changed(&c));
        // A condition on the Cluster (Cluster API writes many) is not our business.
        c.status = serde_json::from_value(json!({"conditions": [{"type": "Available", "status": "False", "reason": "X", "message": "", "lastTransitionTime": "2026-11-30T00:00:00Z"}]})).unwrap();
        assert!(!f.changed(&c));
        c.status =
            serde_json::from_value(json!({"initialization": {"infrastructureProvisioned": true}}))
                .unwrap();
        assert!(f.changed(&c), "infrastructure provisioned");
        c.status = serde_json::from_value(json!({"initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}})).unwrap();
        assert!(f.changed(&c), "control plane initialized");
        c.spec.paused = Some(true);
        assert!(f.changed(&c), "paused");
    }

    #[test]
    fn machine_events_pass_for_bootstrap_data_and_deletion() {
        let f = Filter::new(machine_for_infra);
        let mut m: Machine = serde_json::from_value(
            json!({"metadata": {"name": "m", "namespace": "ns"}, "spec": {"clusterName": "c"}}),
        )
        .unwrap();
        assert!(f.changed(&m));
        assert!(!f.changed(&m));
        m.spec.bootstrap.data_secret_name = Some("m-bootstrap".into());
        assert!(f.changed(&m), "bootstrap data");
        m.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Default::default(),
        ));
        m.metadata.finalizers = Some(vec!["machine.cluster.x-k8s.io".into()]);
        assert!(f.changed(&m), "deleting");
    }
}
