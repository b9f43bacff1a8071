//! Maps events of Cluster API objects to the infrastructure objects they concern.

use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::consts::{label, GROUP};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;

/// A Cluster event concerns the infrastructure object its `infrastructureRef` names,
/// when that is of `kind` in our group.
pub fn cluster_to_infra<K>(cluster: &Cluster, kind: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let r = &cluster.spec.infrastructure_ref;
    if r.kind != kind || r.api_group != GROUP || r.name.is_empty() {
        return None;
    }
    let ns = cluster.namespace()?;
    Some(ObjectRef::new(&r.name).within(&ns))
}

/// A Machine event concerns the infrastructure machine its `infrastructureRef` names.
pub fn machine_to_infra<K>(machine: &Machine, kind: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let r = &machine.spec.infrastructure_ref;
    if r.kind != kind || r.api_group != GROUP || r.name.is_empty() {
        return None;
    }
    Some(ObjectRef::new(&r.name).within(&machine.namespace()?))
}

/// A MachinePool event concerns the infrastructure pool its template's
/// `infrastructureRef` names.
pub fn machine_pool_to_infra<K>(mp: &MachinePool, kind: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let r = &mp.spec.template.spec.infrastructure_ref;
    if r.kind != kind || r.api_group != GROUP || r.name.is_empty() {
        return None;
    }
    Some(ObjectRef::new(&r.name).within(&mp.namespace()?))
}

/// A pool's machine's event concerns the pool that owns it (of `pool_kind`).
pub fn machine_to_pool<P, M>(m: &M, pool_kind: &str) -> Option<ObjectRef<P>>
where
    P: kube::Resource<DynamicType = ()>,
    M: kube::Resource<DynamicType = ()>,
{
    let owner = m
        .owner_references()
        .iter()
        .find(|o| o.kind == pool_kind && o.api_version.starts_with(&format!("{GROUP}/")))?;
    Some(ObjectRef::new(&owner.name).within(&m.namespace()?))
}

/// A Cluster event concerns every infrastructure machine labelled with its name
/// (infrastructure ready, control plane initialized, unpaused).
pub fn cluster_to_machines<K>(cluster: &Cluster, machines: &Store<K>) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let (Some(ns), name) = (cluster.namespace(), cluster.name_any()) else {
        return Vec::new();
    };
    machines_of(&ns, &name, machines)
}

/// A cluster's `<cluster>-kubeconfig` Secret → its machines (those waiting for the
/// workload cluster). Other Secrets map to nothing.
pub fn kubeconfig_to_machines<K>(
    secret: &PartialObjectMeta<Secret>,
    machines: &Store<K>,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    let name = secret.name_any();
    let (Some(ns), Some(cluster)) = (
        secret.namespace(),
        crate::workload::kubeconfig_secret_cluster(&name),
    ) else {
        return Vec::new();
    };
    machines_of(&ns, cluster, machines)
}

fn machines_of<K>(ns: &str, cluster: &str, machines: &Store<K>) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    machines
        .state()
        .iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(ns)
                && m.labels().get(label::CLUSTER_NAME).map(String::as_str) == Some(cluster)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// `cluster.x-k8s.io/watch-filter=<value>` when a filter is set.
pub fn label_selector(watch_filter: Option<&str>) -> Option<String> {
    watch_filter.map(|v| format!("{}={v}", label::WATCH_FILTER))
}

/// client-go's reflectors ask for watches of 5 to 10 minutes (`minWatchTimeout * (1 + rand)`).
const WATCH_TIMEOUT_MIN_SECS: u32 = 300;

/// A watch's configuration: `labels` when given, and a request timeout picked at random in
/// client-go's window. kube-runtime's default is a fixed 290 s, which renews every watch of an
/// idle manager together, twice as often as CAPD's informers do. The price is the same as
/// client-go's: a connection dropped without a close is noticed after the timeout (plus 5 s).
pub fn watch_config(labels: Option<&str>) -> watcher::Config {
    let wc = watcher::Config::default()
        .any_semantic()
        .timeout(WATCH_TIMEOUT_MIN_SECS + fastrand::u32(0..WATCH_TIMEOUT_MIN_SECS));
    match labels {
        Some(sel) => wc.labels(sel),
        None => wc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerCluster;

    #[test]
    fn watch_timeouts_spread_over_client_gos_window() {
        let picks: Vec<u32> = (0..200)
            .map(|_| watch_config(None).timeout.unwrap_or_default())
            .collect();
        assert!(picks.iter().all(|t| (300..600).contains(t)), "{picks:?}");
        let (lo, hi) = (picks.iter().min(), picks.iter().max());
        assert!(hi.zip(lo).is_some_and(|(h, l)| h - l > 150), "{picks:?}");
        let wc = watch_config(Some("a=b"));
        assert_eq!(wc.label_selector.as_deref(), Some("a=b"));
        assert_eq!(wc.list_semantic, watcher::ListSemantic::Any);
    }

    #[test]
    fn maps_only_our_kind_and_group() {
        let mut c = Cluster::new("c", Default::default());
        c.metadata.namespace = Some("ns".into());
        c.spec.infrastructure_ref.api_group = GROUP.into();
        c.spec.infrastructure_ref.kind = "DockerCluster".into();
        c.spec.infrastructure_ref.name = "dc".into();
        let r = cluster_to_infra::<DockerCluster>(&c, "DockerCluster").unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("dc", Some("ns"))
        );
        assert!(cluster_to_infra::<DockerCluster>(&c, "DockerMachine").is_none());
        c.spec.infrastructure_ref.api_group = "other.io".into();
        assert!(cluster_to_infra::<DockerCluster>(&c, "DockerCluster").is_none());
    }

    #[test]
    fn a_kubeconfig_secret_wakes_its_clusters_machines_and_no_other_secret_does() {
        use capd_api::DockerMachine;
        let mut writer = kube::runtime::reflector::store::Writer::<DockerMachine>::default();
        for (name, ns, cluster) in [
            ("m1", "ns", "c1"),
            ("m2", "ns", "c1"),
            ("m3", "ns", "c2"),
            ("m4", "other", "c1"),
        ] {
            let dm: DockerMachine = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": ns, "labels": {label::CLUSTER_NAME: cluster}},
                "spec": {}
            }))
            .unwrap();
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(dm));
        }
        let store = writer.as_reader();
        let secret = |name: &str| -> PartialObjectMeta<Secret> {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": "ns", "resourceVersion": "7"}
            }))
            .unwrap()
        };
        let mut woken: Vec<String> = kubeconfig_to_machines(&secret("c1-kubeconfig"), &store)
            .into_iter()
            .map(|r| r.name)
            .collect();
        woken.sort();
        assert_eq!(woken, ["m1", "m2"]);
        assert!(kubeconfig_to_machines(&secret("c1-md-0-abcde"), &store).is_empty());
        // The filter passes a kubeconfig on every new version, any other Secret once.
        let f = crate::filters::Filter::new(crate::filters::kubeconfig_secret);
        let (kc, other) = (secret("c1-kubeconfig"), secret("c1-bootstrap"));
        assert!(f.changed(&kc) && !f.changed(&kc));
        let mut newer = kc.clone();
        newer.metadata.resource_version = Some("8".into());
        assert!(f.changed(&newer));
        assert!(f.changed(&other));
        let mut other2 = other.clone();
        other2.metadata.resource_version = Some("9".into());
        assert!(!f.changed(&other2));
    }
}
