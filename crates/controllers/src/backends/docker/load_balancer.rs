//! What both the cluster and the machine flows need of a cluster's load balancer: the
//! handle built from the DockerCluster (image, network, owner, custom template), and the
//! backend update a control-plane machine triggers.

use crate::context::Context;
use crate::error::Error;
use capd_api::capi::Cluster;
use capd_api::consts::label;
use capd_api::DockerCluster;
use capd_loadbalancer::{LoadBalancer, LoadBalancerSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Remembers which object owns the containers, across `clusterctl move` (which keeps
/// metadata but gives the object a new UID).
pub const CONTAINER_OWNER_ANNOTATION: &str = "infrastructure.cluster.x-k8s.io/capd-rs-container-owner";

/// Default image, as CAPD: `kindest/haproxy:<tag>`; the spec may change repository and tag.
pub fn image(dc: &DockerCluster) -> String {
    let default = capd_loadbalancer::DEFAULT_IMAGE;
    let (repo_default, tag_default) = default.rsplit_once(':').unwrap_or((default, "latest"));
    let repo_default = repo_default.rsplit_once('/').map(|(r, _)| r).unwrap_or("kindest");
    let lb = &dc.spec.load_balancer;
    let repo = if lb.image_repository.is_empty() { repo_default } else { lb.image_repository.as_str() };
    let tag = if lb.image_tag.is_empty() { tag_default } else { lb.image_tag.as_str() };
    format!("{repo}/haproxy:{tag}")
}

/// The load balancer of `cluster` as `dc` describes it.
pub async fn handle(dc: &DockerCluster, cluster: &Cluster, ctx: &Context) -> Result<LoadBalancer, Error> {
    let mut spec = LoadBalancerSpec::new(cluster.name_any());
    spec.image = image(dc);
    spec.network = ctx.config.network.clone();
    spec.cluster_uid = dc.annotations().get(CONTAINER_OWNER_ANNOTATION).cloned().or_else(|| dc.uid());
    spec.labels.insert(crate::PROVIDER_LABEL.to_string(), "capd-rs".into());
    if let Some(r) = &dc.spec.load_balancer.custom_haproxy_config_template_ref {
        spec.config_template = Some(custom_template(dc, &r.name, ctx).await?);
    }
    Ok(LoadBalancer::new(ctx.runtime.clone(), spec))
}

/// CAPD reads the template from a ConfigMap in the cluster's namespace, key `value`.
/// A GET, not a cache: ConfigMaps are not watched (there are many, and few are ours).
async fn custom_template(dc: &DockerCluster, name: &str, ctx: &Context) -> Result<String, Error> {
    let ns = dc.namespace().unwrap_or_default();
    let invalid = |message: String| Error::Invalid { kind: "DockerCluster".into(), namespace: ns.clone(), name: dc.name_any(), message };
    let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| invalid(format!("spec.loadBalancer.customHAProxyConfigTemplateRef: ConfigMap {name} not found")))?;
    cm.data
        .and_then(|d| d.get("value").cloned())
        .ok_or_else(|| invalid(format!("spec.loadBalancer.customHAProxyConfigTemplateRef: ConfigMap {name} has no key `value`")))
}

/// What happened to the load balancer's backends.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Applied,
    /// The load-balancer container is gone (the whole cluster is being deleted).
    NoLoadBalancer,
}

/// Points the load balancer at the cluster's control-plane nodes. A control-plane
/// Machine being deleted gets weight 0 (CAPD's drain): new connections go elsewhere while
/// it leaves etcd. Serialised per cluster: each update lists the nodes, then writes.
pub async fn update_backends(dc: &DockerCluster, cluster: &Cluster, ctx: &Context) -> Result<Update, Error> {
    let ns = cluster.namespace().unwrap_or_default();
    let lock = ctx.lb_lock(&format!("{ns}/{}", cluster.name_any()));
    let _held = lock.lock().await;
    let lb = handle(dc, cluster, ctx).await?;
    let backends = lb.control_plane_backends(&draining_weights(cluster, ctx)).await?;
    match lb.update_backends(&backends).await {
        Ok(_) => Ok(Update::Applied),
        Err(capd_loadbalancer::Error::Missing { .. }) => Ok(Update::NoLoadBalancer),
        Err(e) => Err(e.into()),
    }
}

/// Weight 0 for the node container of every control-plane Machine of `cluster` that is
/// being deleted (from the Machine cache).
fn draining_weights(cluster: &Cluster, ctx: &Context) -> BTreeMap<String, i64> {
    let (ns, name) = (cluster.namespace().unwrap_or_default(), cluster.name_any());
    ctx.caches
        .machines
        .state()
        .iter()
        .filter(|m| m.namespace().as_deref() == Some(ns.as_str()) && m.labels().get(label::CLUSTER_NAME) == Some(&name))
        .filter(|m| m.is_control_plane() && m.metadata.deletion_timestamp.is_some())
        .filter(|m| !m.spec.infrastructure_ref.name.is_empty())
        .map(|m| (crate::node::container_name(&name, &m.spec.infrastructure_ref.name), 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerClusterSpec;

    #[test]
    fn image_defaults_to_capd_and_follows_spec() {
        let mut dc = DockerCluster::new("c", DockerClusterSpec::default());
        assert_eq!(image(&dc), capd_loadbalancer::DEFAULT_IMAGE);
        dc.spec.load_balancer.image_repository = "capd-rs".into();
        dc.spec.load_balancer.image_tag = "r-1".into();
        assert_eq!(image(&dc), "capd-rs/haproxy:r-1");
    }
}
