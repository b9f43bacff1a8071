//! What both the cluster and the machine flows need of a cluster's load balancer: the
//! handle built from the DockerCluster (image, network, owner, custom template), and the
//! backend update a control-plane machine triggers.

use crate::context::Context;
use crate::error::Error;
use crate::ip_family::IpFamily;
use capd_api::capi::Cluster;
use capd_api::consts::label;
use capd_api::DockerCluster;
use capd_loadbalancer::{
    LoadBalancer, LoadBalancerSpec, SourceError, TemplateFuture, TemplateSource, CONTROL_PLANE_PORT,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Remembers which object owns the containers, across `clusterctl move` (which keeps
/// metadata but gives the object a new UID).
pub const CONTAINER_OWNER_ANNOTATION: &str =
    "infrastructure.cluster.x-k8s.io/capd-rs-container-owner";

/// Default image, as CAPD: `kindest/haproxy:<tag>`; the spec may change repository and tag.
pub fn image(dc: &DockerCluster) -> String {
    let default = capd_loadbalancer::DEFAULT_IMAGE;
    let (repo_default, tag_default) = default.rsplit_once(':').unwrap_or((default, "latest"));
    let repo_default = repo_default
        .rsplit_once('/')
        .map(|(r, _)| r)
        .unwrap_or("kindest");
    let lb = &dc.spec.load_balancer;
    let repo = if lb.image_repository.is_empty() {
        repo_default
    } else {
        lb.image_repository.as_str()
    };
    let tag = if lb.image_tag.is_empty() {
        tag_default
    } else {
        lb.image_tag.as_str()
    };
    format!("{repo}/haproxy:{tag}")
}

/// The load balancer of `cluster` as `dc` describes it, for the cluster's IP `family`.
/// Reads nothing: a custom template is read when the load balancer renders a configuration.
pub fn handle(
    dc: &DockerCluster,
    cluster: &Cluster,
    family: IpFamily,
    ctx: &Context,
) -> LoadBalancer {
    let mut spec = LoadBalancerSpec::new(cluster.name_any());
    spec.image = image(dc);
    spec.network = ctx.config.network.clone();
    spec.ipv6 = family.load_balancer_ipv6();
    spec.frontend_port = frontend_port(dc);
    spec.cluster_uid = dc
        .annotations()
        .get(CONTAINER_OWNER_ANNOTATION)
        .cloned()
        .or_else(|| dc.uid());
    spec.labels
        .insert(crate::PROVIDER_LABEL.to_string(), "capd-rs".into());
    if let Some(r) = &dc.spec.load_balancer.custom_haproxy_config_template_ref {
        spec.config_template = Some(Arc::new(ConfigMapTemplate {
            client: ctx.client.clone(),
            namespace: dc.namespace().unwrap_or_default(),
            docker_cluster: dc.name_any(),
            configmap: r.name.clone(),
        }));
    }
    LoadBalancer::new(ctx.runtime.clone(), spec)
}

/// The port the load balancer listens on: `spec.controlPlaneEndpoint.port` (CAPD's
/// frontend port), else 6443.
pub fn frontend_port(dc: &DockerCluster) -> u16 {
    u16::try_from(dc.spec.control_plane_endpoint.port)
        .ok()
        .filter(|p| *p != 0)
        .unwrap_or(CONTROL_PLANE_PORT)
}

/// `spec.loadBalancer.customHAProxyConfigTemplateRef`: CAPD reads the template from a
/// ConfigMap in the cluster's namespace, key `value`. A GET, not a cache: ConfigMaps are
/// not watched (there are many, and few are ours). Only a new load balancer or changed
/// backends read it; a provisioned cluster looked at again costs no request. So an edit
/// of the ConfigMap alone reaches the load balancer with the next backend change.
struct ConfigMapTemplate {
    client: kube::Client,
    namespace: String,
    docker_cluster: String,
    configmap: String,
}

impl ConfigMapTemplate {
    async fn read(&self) -> Result<String, Error> {
        let name = &self.configmap;
        let invalid = |message: String| Error::Invalid {
            kind: "DockerCluster".into(),
            namespace: self.namespace.clone(),
            name: self.docker_cluster.clone(),
            message: format!("spec.loadBalancer.customHAProxyConfigTemplateRef: {message}"),
        };
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(name)
            .await?
            .ok_or_else(|| invalid(format!("ConfigMap {name} not found")))?;
        let text = cm
            .data
            .and_then(|d| d.get("value").cloned())
            .ok_or_else(|| invalid(format!("ConfigMap {name} has no key `value`")))?;
        // A template that does not even parse is the user's to fix: say so on the
        // DockerCluster, naming the ConfigMap and the field, before anything is made.
        capd_loadbalancer::template::Template::parse(&text)
            .map_err(|e| invalid(format!("ConfigMap {name}, key `value`: {e}")))?;
        Ok(text)
    }
}

impl TemplateSource for ConfigMapTemplate {
    fn origin(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.configmap)
    }

    /// Our [`Error`] travels boxed; `From<capd_loadbalancer::Error>` unboxes it again.
    fn load(&self) -> TemplateFuture<'_> {
        Box::pin(async move { self.read().await.map_err(SourceError::from) })
    }
}

impl std::fmt::Debug for ConfigMapTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (of DockerCluster {})",
            self.origin(),
            self.docker_cluster
        )
    }
}

/// What happened to the load balancer's backends.
#[derive(Debug, PartialEq, Eq)]
pub enum Update {
    Applied,
    /// The load-balancer container is gone (the whole cluster is being deleted).
    NoLoadBalancer,
}

/// Points the load balancer at the cluster's control-plane nodes (at their addresses of
/// the load balancer's family). A control-plane Machine being deleted gets weight 0
/// (CAPD's drain): new connections go elsewhere while it leaves etcd. Serialised per
/// cluster: each update lists the nodes, then writes.
pub async fn update_backends(
    dc: &DockerCluster,
    cluster: &Cluster,
    family: IpFamily,
    ctx: &Context,
) -> Result<Update, Error> {
    let ns = cluster.namespace().unwrap_or_default();
    let lock = ctx.lb_lock(&format!("{ns}/{}", cluster.name_any()));
    let _held = lock.lock().await;
    let lb = handle(dc, cluster, family, ctx);
    let backends = lb
        .control_plane_backends(&draining_weights(cluster, ctx))
        .await?;
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
        .filter(|m| {
            m.namespace().as_deref() == Some(ns.as_str())
                && m.labels().get(label::CLUSTER_NAME) == Some(&name)
        })
        .filter(|m| m.is_control_plane() && m.metadata.deletion_timestamp.is_some())
        .filter(|m| !m.spec.infrastructure_ref.name.is_empty())
        .map(|m| {
            (
                crate::node::container_name(&name, &m.spec.infrastructure_ref.name),
                0,
            )
        })
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
