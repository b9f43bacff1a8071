//! The DockerCluster controller: one HAProxy load-balancer container per cluster.
//!
//! Flow (Cluster API contract): fetch the object → owner Cluster (wait while unset)
//! → skip externally managed → patch guard → pause → delete or normal → write back.

use crate::context::Context;
use crate::error::Error;
use crate::owner;
use crate::patch::PatchGuard;
use capd_api::capi::Cluster;
use capd_api::conditions::{self, NewCondition};
use capd_api::consts::{condition, finalizer, reason};
use capd_api::{ApiEndpoint, DockerCluster, HasConditions};
use capd_loadbalancer::{LoadBalancer, LoadBalancerSpec, CONTROL_PLANE_PORT};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, Instrument};

pub const CONTROLLER: &str = "dockercluster";

/// Remembers which object owns the containers, across `clusterctl move` (which keeps
/// metadata but gives the object a new UID).
pub const CONTAINER_OWNER_ANNOTATION: &str = "infrastructure.cluster.x-k8s.io/capd-rs-container-owner";

/// Default image, as CAPD: `kindest/haproxy:<tag>`; the spec may change repository and tag.
fn load_balancer_image(dc: &DockerCluster) -> String {
    let default = capd_loadbalancer::DEFAULT_IMAGE;
    let (repo_default, tag_default) = default.rsplit_once(':').unwrap_or((default, "latest"));
    let repo_default = repo_default.rsplit_once('/').map(|(r, _)| r).unwrap_or("kindest");
    let lb = &dc.spec.load_balancer;
    let repo = if lb.image_repository.is_empty() { repo_default } else { lb.image_repository.as_str() };
    let tag = if lb.image_tag.is_empty() { tag_default } else { lb.image_tag.as_str() };
    format!("{repo}/haproxy:{tag}")
}

pub async fn reconcile(dc: Arc<DockerCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (ns, name) = (dc.namespace().unwrap_or_default(), dc.name_any());
    let span = tracing::info_span!("reconcile", controller = CONTROLLER, namespace = %ns, name = %name);
    let start = Instant::now();
    let res = reconcile_flow(&ns, &name, &ctx).instrument(span).await;
    ctx.metrics.observe(CONTROLLER, start.elapsed(), res.as_ref().err().map(Error::metric_label));
    if res.is_ok() {
        ctx.backoff.succeeded(&format!("{ns}/{name}"));
    }
    res
}

pub fn error_policy(dc: Arc<DockerCluster>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", dc.namespace().unwrap_or_default(), dc.name_any());
    let wait = ctx.backoff.failed(&key);
    tracing::warn!(controller = CONTROLLER, object = %key, error = %err, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

async fn reconcile_flow(ns: &str, name: &str, ctx: &Context) -> Result<Action, Error> {
    let api: Api<DockerCluster> = Api::namespaced(ctx.client.clone(), ns);
    // Read fresh: the watch cache may not have our own last write yet.
    let Some(dc) = api.get_opt(name).await? else {
        return Ok(Action::await_change());
    };
    let deleting = dc.metadata.deletion_timestamp.is_some();

    let cluster = match owner::capi_owner(&dc.metadata, "Cluster") {
        Some(cluster_name) => Api::<Cluster>::namespaced(ctx.client.clone(), ns).get_opt(&cluster_name).await?,
        None => None,
    };
    let Some(cluster) = cluster else {
        if deleting {
            // The owner never appeared (or is gone): nothing of ours can exist.
            let guard = PatchGuard::new(api, &dc)?;
            let mut obj = dc.clone();
            obj.finalizers_mut().retain(|f| f != finalizer::DOCKER_CLUSTER);
            guard.patch(&obj).await?;
            return Ok(Action::await_change());
        }
        info!("waiting for Cluster controller to set OwnerRef on DockerCluster");
        return Ok(Action::await_change());
    };

    if owner::is_externally_managed(&dc.metadata) {
        info!("DockerCluster is externally managed (cluster.x-k8s.io/managed-by); skipping");
        return Ok(Action::await_change());
    }

    let mut guard = PatchGuard::new(api, &dc)?;
    let mut obj = dc.clone();
    let paused = owner::is_paused(&cluster, &obj.metadata);
    set(&mut obj, if paused {
        NewCondition::true_(condition::PAUSED, reason::PAUSED, "reconciliation is paused")
    } else {
        NewCondition::false_(condition::PAUSED, reason::NOT_PAUSED, "")
    });

    let res = if paused {
        info!("reconciliation is paused");
        Ok(Action::await_change())
    } else if deleting {
        reconcile_delete(&mut obj, &cluster, ctx, &mut guard).await
    } else {
        reconcile_normal(&mut obj, &cluster, ctx).await
    };
    if let Err(e) = &res {
        set(&mut obj, NewCondition::false_(condition::READY, reason::INTERNAL_ERROR, e.to_string()));
    }
    let patched = guard.patch(&obj).await;
    Error::combine(res, patched)
}

async fn reconcile_normal(dc: &mut DockerCluster, cluster: &Cluster, ctx: &Context) -> Result<Action, Error> {
    // The finalizer goes on before anything exists outside the API server.
    if !dc.finalizers().iter().any(|f| f == finalizer::DOCKER_CLUSTER) {
        dc.finalizers_mut().push(finalizer::DOCKER_CLUSTER.to_string());
        let uid = dc.uid().unwrap_or_default();
        dc.annotations_mut().entry(CONTAINER_OWNER_ANNOTATION.to_string()).or_insert(uid);
        return Ok(Action::requeue(std::time::Duration::ZERO));
    }

    let lb = load_balancer(dc, cluster, ctx).await?;
    let status = match lb.ensure().await {
        Ok(s) => s,
        Err(e) => {
            set(dc, NewCondition::false_(condition::LOAD_BALANCER_AVAILABLE, reason::NOT_AVAILABLE, e.to_string()));
            return Err(e.into());
        }
    };
    let Some(ip) = status.ip else {
        set(dc, NewCondition::false_(condition::LOAD_BALANCER_AVAILABLE, reason::NOT_AVAILABLE, format!(
            "load balancer {} has no address on network {} yet", status.name, ctx.config.network
        )));
        return Ok(Action::requeue(std::time::Duration::from_secs(2)));
    };

    // Only when empty: a user (or clusterctl move) may have set it, and it must not change.
    if dc.spec.control_plane_endpoint.host.is_empty() {
        dc.spec.control_plane_endpoint = ApiEndpoint { host: ip.to_string(), port: i32::from(CONTROL_PLANE_PORT) };
        event(ctx, dc, "LoadBalancerCreated", &format!(
            "load balancer {} serves the control plane at {}:{} (host port {})",
            status.name, ip, CONTROL_PLANE_PORT, status.host_port.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
        )).await;
    }
    dc.sync_failure_domains();
    dc.set_provisioned(true);
    set(dc, NewCondition::true_(condition::LOAD_BALANCER_AVAILABLE, reason::AVAILABLE, ""));
    set(dc, NewCondition::true_(condition::READY, reason::READY, ""));
    Ok(Action::await_change())
}

async fn reconcile_delete(
    dc: &mut DockerCluster,
    cluster: &Cluster,
    ctx: &Context,
    guard: &mut PatchGuard<DockerCluster>,
) -> Result<Action, Error> {
    // Say so before the slow part, so `Ready` describes the deletion too.
    set(dc, NewCondition::false_(condition::READY, reason::DELETING, "deleting the load balancer"));
    set(dc, NewCondition::false_(condition::LOAD_BALANCER_AVAILABLE, reason::DELETING, ""));
    guard.checkpoint(dc).await?;

    load_balancer(dc, cluster, ctx).await?.delete().await?;
    event(ctx, dc, "LoadBalancerDeleted", "load balancer container removed").await;
    dc.finalizers_mut().retain(|f| f != finalizer::DOCKER_CLUSTER);
    Ok(Action::await_change())
}

pub(crate) async fn load_balancer(dc: &DockerCluster, cluster: &Cluster, ctx: &Context) -> Result<LoadBalancer, Error> {
    let mut spec = LoadBalancerSpec::new(cluster.name_any());
    spec.image = load_balancer_image(dc);
    spec.network = ctx.config.network.clone();
    spec.cluster_uid = dc.annotations().get(CONTAINER_OWNER_ANNOTATION).cloned().or_else(|| dc.uid());
    spec.labels.insert(crate::PROVIDER_LABEL.to_string(), "capd-rs".into());
    if let Some(r) = &dc.spec.load_balancer.custom_haproxy_config_template_ref {
        spec.config_template = Some(custom_template(dc, &r.name, ctx).await?);
    }
    Ok(LoadBalancer::new(ctx.runtime.clone(), spec))
}

/// CAPD reads the template from a ConfigMap in the cluster's namespace, key `value`.
async fn custom_template(dc: &DockerCluster, name: &str, ctx: &Context) -> Result<String, Error> {
    let ns = dc.namespace().unwrap_or_default();
    let invalid = |message: String| Error::Invalid { kind: "DockerCluster", namespace: ns.clone(), name: dc.name_any(), message };
    let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| invalid(format!("spec.loadBalancer.customHAProxyConfigTemplateRef: ConfigMap {name} not found")))?;
    cm.data
        .and_then(|d| d.get("value").cloned())
        .ok_or_else(|| invalid(format!("spec.loadBalancer.customHAProxyConfigTemplateRef: ConfigMap {name} has no key `value`")))
}

fn set(dc: &mut DockerCluster, c: NewCondition) {
    let generation = dc.metadata.generation;
    conditions::set(dc.conditions_mut(), c, generation);
}

async fn event(ctx: &Context, dc: &DockerCluster, reason: &str, note: &str) {
    crate::events::publish(ctx, dc, false, reason, note).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerClusterSpec;

    #[test]
    fn image_defaults_to_capd_and_follows_spec() {
        let mut dc = DockerCluster::new("c", DockerClusterSpec::default());
        assert_eq!(load_balancer_image(&dc), capd_loadbalancer::DEFAULT_IMAGE);
        dc.spec.load_balancer.image_repository = "capd-rs".into();
        dc.spec.load_balancer.image_tag = "r-1".into();
        assert_eq!(load_balancer_image(&dc), "capd-rs/haproxy:r-1");
    }
}
