//! Routes to the other nodes' pod CIDRs via their InternalIPs.
//!
//! Routes this daemon installs carry the routing protocol number [`ROUTE_PROTO`], so after a
//! restart `ip route show proto 252` lists exactly the routes it owns and stale ones can be
//! removed without any local state.

use std::net::IpAddr;

use crate::cidr::{Cidr, Family};
use crate::exec::{ExecError, Runner};
use crate::node::NodeInfo;

/// Routing protocol number marking our routes (253-255 and 0-4 are reserved by iproute2/kernel).
pub const ROUTE_PROTO: &str = "252";

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A route `dst via gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub dst: Cidr,
    pub via: IpAddr,
}

/// A route found on the host with our protocol number; `via` is `None` for routes without a
/// gateway (never installed by us, but still ours to remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Existing {
    pub dst: Cidr,
    pub via: Option<IpAddr>,
}

/// What to change on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    /// Routes to install with `ip route replace`.
    pub replace: Vec<Route>,
    /// Destinations whose routes are to be deleted.
    pub delete: Vec<Cidr>,
}

impl RoutePlan {
    pub fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.delete.is_empty()
    }
}

/// The routes this node needs: for every other node, one route per pod CIDR through the node's
/// InternalIP of the same family. Nodes without pod CIDRs or without a matching InternalIP are
/// skipped, and so is a CIDR equal to one of this node's own. Sorted by destination; when two
/// nodes claim the same CIDR the first by name wins.
pub fn desired(self_name: &str, nodes: &[NodeInfo]) -> Vec<Route> {
    let own: Vec<Cidr> = nodes
        .iter()
        .filter(|n| n.name == self_name)
        .flat_map(|n| n.pod_cidrs.iter().copied())
        .collect();
    let mut others: Vec<&NodeInfo> = nodes.iter().filter(|n| n.name != self_name).collect();
    others.sort_by(|a, b| a.name.cmp(&b.name));
    let mut routes: Vec<Route> = Vec::new();
    for n in others {
        for dst in &n.pod_cidrs {
            let Some(via) = n.internal_ip(dst.family()) else {
                continue;
            };
            if own.contains(dst) || routes.iter().any(|r| r.dst == *dst) {
                continue;
            }
            routes.push(Route { dst: *dst, via });
        }
    }
    routes.sort();
    routes
}

/// Parses the output of `ip route show proto 252` (one route per line, e.g.
/// `10.244.1.0/24 via 172.18.0.3 dev eth0`). Lines that do not start with an address are ignored.
pub fn parse_show(output: &str) -> Vec<Existing> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let dst = Cidr::parse_route_dst(words.next()?).ok()?;
            let mut via = None;
            while let Some(w) = words.next() {
                if w == "via" {
                    let mut gw = words.next();
                    if matches!(gw, Some("inet" | "inet6")) {
                        gw = words.next();
                    }
                    via = gw.and_then(|g| g.parse().ok());
                    break;
                }
            }
            Some(Existing { dst, via })
        })
        .collect()
}

/// Compares desired with existing routes: replace what is missing or points elsewhere, delete
/// what is no longer desired.
pub fn plan(desired: &[Route], existing: &[Existing]) -> RoutePlan {
    let replace = desired
        .iter()
        .filter(|r| {
            !existing
                .iter()
                .any(|e| e.dst == r.dst && e.via == Some(r.via))
        })
        .copied()
        .collect();
    let mut delete: Vec<Cidr> = existing
        .iter()
        .filter(|e| !desired.iter().any(|r| r.dst == e.dst))
        .map(|e| e.dst)
        .collect();
    delete.sort();
    delete.dedup();
    RoutePlan { replace, delete }
}

fn family_flag(f: Family) -> String {
    match f {
        Family::V4 => "-4".into(),
        Family::V6 => "-6".into(),
    }
}

pub fn show_args(f: Family) -> Vec<String> {
    vec![
        family_flag(f),
        "route".into(),
        "show".into(),
        "proto".into(),
        ROUTE_PROTO.into(),
    ]
}

pub fn replace_args(r: &Route) -> Vec<String> {
    let dst = r.dst.family();
    vec![
        family_flag(dst),
        "route".into(),
        "replace".into(),
        r.dst.to_string(),
        "via".into(),
        r.via.to_string(),
        "proto".into(),
        ROUTE_PROTO.into(),
    ]
}

pub fn delete_args(dst: &Cidr) -> Vec<String> {
    vec![
        family_flag(dst.family()),
        "route".into(),
        "del".into(),
        dst.to_string(),
        "proto".into(),
        ROUTE_PROTO.into(),
    ]
}

/// Lists our routes, then applies the plan. Returns the plan that was applied.
///
/// Listing the routes of a family the node has no desired route for may fail (e.g. IPv6 disabled);
/// that is not an error.
pub fn reconcile(runner: &dyn Runner, desired: &[Route]) -> Result<RoutePlan, RouteError> {
    let mut existing = Vec::new();
    for f in [Family::V4, Family::V6] {
        match runner.run("ip", &show_args(f)) {
            Ok(out) => existing.extend(
                parse_show(&out.stdout)
                    .into_iter()
                    .filter(|e| e.dst.family() == f),
            ),
            Err(e) if !desired.iter().any(|r| r.dst.family() == f) => {
                tracing::debug!(family = %f, error = %e, "cannot list routes; none needed for this family");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let plan = plan(desired, &existing);
    for dst in &plan.delete {
        runner.run("ip", &delete_args(dst))?;
        tracing::info!(%dst, "removed route");
    }
    for r in &plan.replace {
        runner.run("ip", &replace_args(r))?;
        tracing::info!(dst = %r.dst, via = %r.via, "installed route");
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::fake::FakeRunner;
    use crate::node::testing::info;

    fn route(dst: &str, via: &str) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            via: via.parse().unwrap(),
        }
    }

    fn existing(dst: &str, via: Option<&str>) -> Existing {
        Existing {
            dst: Cidr::parse_route_dst(dst).unwrap(),
            via: via.map(|v| v.parse().unwrap()),
        }
    }

    #[test]
    fn desired_routes_skip_self_and_incomplete_nodes() {
        let nodes = vec![
            info("cp-0", &["10.244.0.0/24"], &["172.18.0.2"]),
            info(
                "w-2",
                &["10.244.2.0/24", "fd00:10:244:2::/64"],
                &["172.18.0.4", "fc00::4"],
            ),
            info("w-1", &["10.244.1.0/24"], &["172.18.0.3"]),
            info("no-cidr", &[], &["172.18.0.9"]),
            info("no-ip", &["10.244.9.0/24"], &[]),
            info("v4-ip-only", &["fd00:10:244:7::/64"], &["172.18.0.7"]),
        ];
        assert_eq!(
            desired("w-1", &nodes),
            vec![
                route("10.244.0.0/24", "172.18.0.2"),
                route("10.244.2.0/24", "172.18.0.4"),
                route("fd00:10:244:2::/64", "fc00::4")
            ]
        );
    }

    #[test]
    fn desired_routes_never_cover_own_cidr_and_first_claim_wins() {
        let nodes = vec![
            info("me", &["10.244.1.0/24"], &["172.18.0.3"]),
            info("b", &["10.244.1.0/24", "10.244.5.0/24"], &["172.18.0.5"]),
            info("a", &["10.244.5.0/24"], &["172.18.0.6"]),
        ];
        assert_eq!(
            desired("me", &nodes),
            vec![route("10.244.5.0/24", "172.18.0.6")]
        );
        assert!(desired("me", &nodes[..1]).is_empty());
    }

    #[test]
    fn parses_ip_route_show() {
        let out = "10.244.1.0/24 via 172.18.0.3 dev eth0 \n\
                   10.244.9.9 via 172.18.0.9 dev eth0\n\
                   fd00:10:244:2::/64 via fc00::4 dev eth0 metric 1024 pref medium\n\
                   10.244.3.0/24 via inet6 fc00::5 dev eth0\n\
                   10.244.4.0/24 dev eth0 scope link\n\
                   default via 172.18.0.1 dev eth0\n\n";
        assert_eq!(
            parse_show(out),
            vec![
                existing("10.244.1.0/24", Some("172.18.0.3")),
                existing("10.244.9.9", Some("172.18.0.9")),
                existing("fd00:10:244:2::/64", Some("fc00::4")),
                existing("10.244.3.0/24", Some("fc00::5")),
                existing("10.244.4.0/24", None),
            ]
        );
    }

    #[test]
    fn plan_adds_new_changes_moved_and_removes_stale() {
        let want = vec![
            route("10.244.0.0/24", "172.18.0.2"),
            route("10.244.2.0/24", "172.18.0.4"),
            route("10.244.3.0/24", "172.18.0.5"),
        ];
        let have = vec![
            existing("10.244.0.0/24", Some("172.18.0.2")), // unchanged
            existing("10.244.2.0/24", Some("172.18.0.99")), // node got a new IP
            existing("10.244.7.0/24", Some("172.18.0.7")), // node gone
            existing("10.244.8.0/24", None),               // ours, without gateway
        ];
        let p = plan(&want, &have);
        assert_eq!(
            p.replace,
            vec![
                route("10.244.2.0/24", "172.18.0.4"),
                route("10.244.3.0/24", "172.18.0.5")
            ]
        );
        assert_eq!(
            p.delete,
            vec![
                "10.244.7.0/24".parse::<Cidr>().unwrap(),
                "10.244.8.0/24".parse().unwrap()
            ]
        );
        assert!(plan(
            &want,
            &want
                .iter()
                .map(|r| Existing {
                    dst: r.dst,
                    via: Some(r.via)
                })
                .collect::<Vec<_>>()
        )
        .is_empty());
    }

    #[test]
    fn reconcile_runs_the_commands() {
        let runner = FakeRunner::default()
            .answer(
                "ip -4 route show proto 252",
                Ok("10.244.7.0/24 via 172.18.0.7 dev eth0\n"),
            )
            .answer("ip -6 route show proto 252", Err("IPv6 is disabled"));
        let p = reconcile(&runner, &[route("10.244.2.0/24", "172.18.0.4")]).unwrap();
        assert_eq!(p.delete.len(), 1);
        assert_eq!(
            runner.calls(),
            [
                "ip -4 route show proto 252",
                "ip -6 route show proto 252",
                "ip -4 route del 10.244.7.0/24 proto 252",
                "ip -4 route replace 10.244.2.0/24 via 172.18.0.4 proto 252",
            ]
        );
    }

    #[test]
    fn reconcile_fails_when_a_needed_family_cannot_be_listed() {
        let runner = FakeRunner::default().answer("ip -6 route show", Err("boom"));
        assert!(reconcile(&runner, &[route("fd00::/64", "fc00::4")]).is_err());
    }
}
