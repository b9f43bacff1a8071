//! The cluster's infrastructure: one HAProxy load-balancer container, its address as the
//! control-plane endpoint, the failure domains, and the LoadBalancerAvailable and Ready
//! conditions. Works on the DockerCluster view of a DockerCluster or a DevCluster.

use super::load_balancer::{self, CONTAINER_OWNER_ANNOTATION};
use crate::context::Context;
use crate::contract::Checkpoint;
use crate::error::Error;
use crate::ip_family::{self, IpFamily};
use capd_api::capi::Cluster;
use capd_api::conditions::{self, NewCondition};
use capd_api::consts::{condition, reason};
use capd_api::{ApiEndpoint, DockerCluster, HasConditions};
use capd_loadbalancer::LoadBalancerStatus;
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How soon to look again while the new load balancer has no address yet.
const ADDRESS_POLL: Duration = Duration::from_secs(2);
/// How often a provisioned cluster's load balancer is looked at again. Nothing watches
/// containers: a load balancer stopped behind our back (`docker stop`, an engine restart
/// that does not bring it back) would otherwise stay down, and Ready stay True, until the
/// next event or resync, minutes away. A look is one engine inspect and no API request
/// when nothing changed; a stopped one is started again.
pub const LB_RECHECK: Duration = Duration::from_secs(30);

pub async fn reconcile_normal(
    dc: &mut DockerCluster,
    cluster: &Cluster,
    ctx: &Context,
    cp: &mut dyn Checkpoint<DockerCluster>,
) -> Result<Action, Error> {
    let uid = dc.uid().unwrap_or_default();
    dc.annotations_mut()
        .entry(CONTAINER_OWNER_ANNOTATION.to_string())
        .or_insert(uid);

    let (family, status) = match ensure_load_balancer(dc, cluster, ctx).await {
        Ok(ensured) => ensured,
        Err(e) => {
            set(
                dc,
                NewCondition::false_(
                    condition::LOAD_BALANCER_AVAILABLE,
                    reason::NOT_AVAILABLE,
                    e.to_string(),
                ),
            );
            return Err(e);
        }
    };
    let Some(ip) = status.ip else {
        let (name, network) = (&status.name, &ctx.config.network);
        let message = if family.load_balancer_ipv6() {
            format!("load balancer {name} has no IPv6 address on network {network} yet (an IPv6 cluster needs a network with an IPv6 subnet)")
        } else {
            format!("load balancer {name} has no address on network {network} yet")
        };
        set(
            dc,
            NewCondition::false_(
                condition::LOAD_BALANCER_AVAILABLE,
                reason::NOT_AVAILABLE,
                message,
            ),
        );
        return Ok(Action::requeue(ADDRESS_POLL));
    };

    // Only when empty: a user (or clusterctl move) may have set it, and it must not change.
    // A port the user gave (CAPD's port-only endpoint) is kept: the load balancer
    // listens on it (see `load_balancer::frontend_port`).
    if dc.spec.control_plane_endpoint.host.is_empty() {
        dc.spec.control_plane_endpoint = ApiEndpoint {
            host: ip.to_string(),
            port: i32::from(load_balancer::frontend_port(dc)),
        };
        crate::events::publish(
            ctx,
            &cp.regarding(),
            false,
            "LoadBalancerCreated",
            "CreateLoadBalancer",
            &format!(
                "load balancer {} serves the control plane at {} (host port {})",
                status.name,
                // `[v6]:port` for an IPv6 endpoint.
                SocketAddr::new(ip, load_balancer::frontend_port(dc)),
                status
                    .host_port
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into())
            ),
        )
        .await;
    }
    dc.sync_failure_domains();
    dc.set_provisioned(true);
    // Docker may give the load balancer another address when it starts it again (an engine
    // restart); Cluster API's endpoint cannot follow. Say so rather than Ready.
    if let Ok(host) = dc.spec.control_plane_endpoint.host.parse::<IpAddr>() {
        if host != ip
            && in_subnets(
                host,
                &ctx.runtime.network_subnets(&ctx.config.network).await?,
            )
        {
            let message = format!(
                "load balancer {} is at {ip} now, but the control-plane endpoint is {host}: the engine gave it another address (after a restart?) and Cluster API does not let the endpoint change",
                status.name
            );
            tracing::warn!(%message, "load balancer not at the control-plane endpoint");
            set(
                dc,
                NewCondition::false_(
                    condition::LOAD_BALANCER_AVAILABLE,
                    reason::NOT_AVAILABLE,
                    message,
                ),
            );
            set(
                dc,
                NewCondition::false_(
                    condition::READY,
                    reason::NOT_READY,
                    "the load balancer is not at the control-plane endpoint",
                ),
            );
            return Ok(Action::requeue(LB_RECHECK));
        }
    }

    set(
        dc,
        NewCondition::true_(condition::LOAD_BALANCER_AVAILABLE, reason::AVAILABLE, ""),
    );
    set(dc, NewCondition::true_(condition::READY, reason::READY, ""));
    Ok(Action::requeue(LB_RECHECK))
}

/// The load balancer for the cluster's IP family, created or started when needed. The
/// family is decided first: a bad clusterNetwork leaves no container behind.
async fn ensure_load_balancer(
    dc: &DockerCluster,
    cluster: &Cluster,
    ctx: &Context,
) -> Result<(IpFamily, LoadBalancerStatus), Error> {
    let family = ip_family::of_cluster(cluster)?;
    let status = load_balancer::handle(dc, cluster, family, ctx)
        .ensure()
        .await?;
    Ok((family, status))
}

/// Whether `addr` lies in one of `subnets` (`a.b.c.d/n` or IPv6 CIDRs): an endpoint
/// address on our network that is not the load balancer's is a stale one, while an
/// address elsewhere is the user's own (a VIP, a port forward) and left alone.
pub fn in_subnets(addr: IpAddr, subnets: &[String]) -> bool {
    subnets.iter().any(|s| {
        let Some((net, bits)) = s.split_once('/') else {
            return false;
        };
        let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
            return false;
        };
        match (addr, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_the_network_are_told_from_the_users_own() {
        let nets = [
            "172.18.0.0/16".to_string(),
            "fc00:f853:ccd:e793::/64".to_string(),
        ];
        assert!(in_subnets("172.18.0.5".parse().unwrap(), &nets));
        assert!(!in_subnets("172.19.0.5".parse().unwrap(), &nets));
        assert!(!in_subnets("10.0.0.1".parse().unwrap(), &nets));
        assert!(in_subnets("fc00:f853:ccd:e793::3".parse().unwrap(), &nets));
        assert!(!in_subnets("fc00:f853:ccd:e794::3".parse().unwrap(), &nets));
        assert!(in_subnets(
            "1.2.3.4".parse().unwrap(),
            &["0.0.0.0/0".to_string()]
        ));
        assert!(!in_subnets(
            "1.2.3.4".parse().unwrap(),
            &["garbage".to_string()]
        ));
    }
}

/// Removes the load balancer; the caller drops the finalizer when this succeeds.
pub async fn reconcile_delete(
    dc: &mut DockerCluster,
    cluster: &Cluster,
    ctx: &Context,
    cp: &mut dyn Checkpoint<DockerCluster>,
) -> Result<Action, Error> {
    // Say so before the slow part, so `Ready` describes the deletion too.
    set(
        dc,
        NewCondition::false_(
            condition::READY,
            reason::DELETING,
            "deleting the load balancer",
        ),
    );
    set(
        dc,
        NewCondition::false_(condition::LOAD_BALANCER_AVAILABLE, reason::DELETING, ""),
    );
    cp.checkpoint(dc).await?;

    // Removing it does not depend on the family, so a clusterNetwork made invalid after
    // the fact does not block the deletion (CAPD's would fail here).
    load_balancer::handle(dc, cluster, IpFamily::V4, ctx)
        .delete()
        .await?;
    crate::events::publish(
        ctx,
        &cp.regarding(),
        false,
        "LoadBalancerDeleted",
        "DeleteLoadBalancer",
        "load balancer container removed",
    )
    .await;
    Ok(Action::await_change())
}

pub fn set(dc: &mut DockerCluster, c: NewCondition) {
    let generation = dc.metadata.generation;
    conditions::set(dc.conditions_mut(), c, generation);
}
