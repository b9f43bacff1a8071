//! Maps events of Cluster API objects to the infrastructure objects they concern.

use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::consts::{label, GROUP};
use kube::runtime::reflector::{ObjectRef, Store};
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
    machines
        .state()
        .iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(ns.as_str())
                && m.labels().get(label::CLUSTER_NAME) == Some(&name)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// `cluster.x-k8s.io/watch-filter=<value>` when a filter is set.
pub fn label_selector(watch_filter: Option<&str>) -> Option<String> {
    watch_filter.map(|v| format!("{}={v}", label::WATCH_FILTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerCluster;

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
}
