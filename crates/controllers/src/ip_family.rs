//! A cluster's IP family, as CAPD decides it from `Cluster.spec.clusterNetwork`: the pod
//! and service CIDR blocks say IPv4, IPv6 or dual stack; nothing said means IPv4. The
//! family picks what the load balancer listens on and balances to, the node containers'
//! IPv6 sysctls, and which addresses a machine reports.

use crate::error::Error;
use capd_api::capi::Cluster;
use capd_runtime::NetworkAddresses;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
    Dual,
}

/// Why `spec.clusterNetwork` names no family; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyError {
    #[error("spec.clusterNetwork.{list}.cidrBlocks: {count} CIDRs, at most 2 (one per family)")]
    TooMany { list: &'static str, count: usize },
    #[error("spec.clusterNetwork.{list}.cidrBlocks: {cidr:?} is not a CIDR")]
    Unparsable { list: &'static str, cidr: String },
    #[error("spec.clusterNetwork: pods and services IP family mismatch")]
    Mismatch,
}

/// The family of `cluster`, or an [`Error::Invalid`] naming the Cluster and the field.
pub fn of_cluster(cluster: &Cluster) -> Result<IpFamily, Error> {
    of(cluster).map_err(|e| Error::invalid(cluster, e.to_string()))
}

pub fn of(cluster: &Cluster) -> Result<IpFamily, FamilyError> {
    let net = &cluster.spec.cluster_network;
    from_cidrs(&net.pods.cidr_blocks, &net.services.cidr_blocks)
}

/// CAPD's rules: an empty list does not count; otherwise both lists must agree, except
/// that dual-stack pods make the cluster dual stack whatever the services say.
pub fn from_cidrs(pods: &[String], services: &[String]) -> Result<IpFamily, FamilyError> {
    let pods = list_family("pods", pods)?;
    let services = list_family("services", services)?;
    match (pods, services) {
        (None, None) => Ok(IpFamily::V4),
        (Some(f), None) | (None, Some(f)) => Ok(f),
        (Some(IpFamily::Dual), Some(_)) => Ok(IpFamily::Dual),
        (Some(p), Some(s)) if p == s => Ok(p),
        _ => Err(FamilyError::Mismatch),
    }
}

/// The family one list names (`None` when empty).
fn list_family(list: &'static str, cidrs: &[String]) -> Result<Option<IpFamily>, FamilyError> {
    if cidrs.len() > 2 {
        return Err(FamilyError::TooMany {
            list,
            count: cidrs.len(),
        });
    }
    let (mut v4, mut v6) = (false, false);
    for cidr in cidrs {
        match cidr_address(cidr) {
            Some(IpAddr::V4(_)) => v4 = true,
            Some(IpAddr::V6(_)) => v6 = true,
            None => {
                return Err(FamilyError::Unparsable {
                    list,
                    cidr: cidr.clone(),
                })
            }
        }
    }
    Ok(match (v4, v6) {
        (true, true) => Some(IpFamily::Dual),
        (true, false) => Some(IpFamily::V4),
        (false, true) => Some(IpFamily::V6),
        (false, false) => None,
    })
}

/// The address of `addr/bits`, as strict as Go's `net.ParseCIDR`: a decimal prefix length
/// within the address's bits. An IPv4-mapped IPv6 address counts as IPv4, as it does there.
fn cidr_address(cidr: &str) -> Option<IpAddr> {
    let (addr, bits) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    // All digits: only an overlong number fails to parse, and that is out of range too.
    if bits.parse::<u32>().ok()? > max {
        return None;
    }
    Some(match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

impl IpFamily {
    /// The load balancer listens on IPv6 and balances to IPv6 only for an IPv6 cluster;
    /// dual stack goes through IPv4, as in CAPD.
    pub fn load_balancer_ipv6(self) -> bool {
        self == IpFamily::V6
    }

    /// Node containers need IPv6 enabled and forwarding for IPv6 pods and services.
    pub fn node_ipv6(self) -> bool {
        matches!(self, IpFamily::V6 | IpFamily::Dual)
    }

    /// A machine's addresses of this family, IPv4 first (CAPD's order); a family the
    /// container has no address of is left out rather than reported empty.
    pub fn select(self, addrs: &NetworkAddresses) -> Vec<IpAddr> {
        let v4 = addrs.ipv4.map(IpAddr::V4);
        let v6 = addrs.ipv6.map(IpAddr::V6);
        match self {
            IpFamily::V4 => v4.into_iter().collect(),
            IpFamily::V6 => v6.into_iter().collect(),
            IpFamily::Dual => v4.into_iter().chain(v6).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn family(pods: &[&str], services: &[&str]) -> Result<IpFamily, FamilyError> {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        from_cidrs(&own(pods), &own(services))
    }

    #[test]
    fn capds_cases() {
        use IpFamily::*;
        let v4 = "192.168.0.0/16";
        let v4b = "10.128.0.0/12";
        let v6 = "fd00:100:96::/48";
        let v6b = "fd00:100:64::/108";
        let table: &[(&[&str], &[&str], Result<IpFamily, FamilyError>)] = &[
            (&[], &[], Ok(V4)),
            (&[v4], &[], Ok(V4)),
            (&[], &[v4], Ok(V4)),
            (&[v4], &[v4b], Ok(V4)),
            (&[v4, v4b], &[v4b], Ok(V4)),
            (&[v6], &[], Ok(V6)),
            (&[], &[v6], Ok(V6)),
            (&[v6], &[v6b], Ok(V6)),
            (&[v4, v6], &[], Ok(Dual)),
            (&[], &[v6, v4], Ok(Dual)),
            (&[v4, v6], &[v6b, v4b], Ok(Dual)),
            // CAPD: dual-stack pods decide, whatever the services are...
            (&[v6, v4], &[v4b], Ok(Dual)),
            (&[v4, v6], &[v6b], Ok(Dual)),
            // ...but not the other way round.
            (&[v4], &[v4b, v6b], Err(FamilyError::Mismatch)),
            (&[v4], &[v6], Err(FamilyError::Mismatch)),
            (&[v6], &[v4], Err(FamilyError::Mismatch)),
            (
                &[v4, v6, v4b],
                &[],
                Err(FamilyError::TooMany {
                    list: "pods",
                    count: 3,
                }),
            ),
            (
                &[v4],
                &[v4, v6, v6b],
                Err(FamilyError::TooMany {
                    list: "services",
                    count: 3,
                }),
            ),
            (
                &["10.0.0.0"],
                &[],
                Err(FamilyError::Unparsable {
                    list: "pods",
                    cidr: "10.0.0.0".into(),
                }),
            ),
            (
                &[v4],
                &["fd00::/129"],
                Err(FamilyError::Unparsable {
                    list: "services",
                    cidr: "fd00::/129".into(),
                }),
            ),
        ];
        for (pods, services, want) in table {
            assert_eq!(
                &family(pods, services),
                want,
                "pods {pods:?} services {services:?}"
            );
        }
    }

    #[test]
    fn cidrs_parse_as_strictly_as_go() {
        for good in [
            "10.0.0.0/8",
            "10.0.0.0/0",
            "10.0.0.0/32",
            "fd00::/128",
            "::/0",
            "10.0.0.0/08",
        ] {
            assert!(cidr_address(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8 ",
            "fe80::1%eth0/64",
            "10.0.0/8",
            "010.0.0.0/8",
            "fd00::/99999999999",
            "x/8",
        ] {
            assert!(cidr_address(bad).is_none(), "{bad}");
        }
        assert_eq!(
            family(&["::ffff:10.0.0.0/104"], &[]),
            Ok(IpFamily::V4),
            "an IPv4-mapped address is IPv4 to Go"
        );
    }

    #[test]
    fn a_bad_cluster_network_is_invalid_naming_the_cluster_and_field() {
        let cluster: Cluster = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "c1", "namespace": "ns"},
            "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["fd00:10::/48"]},
                                        "services": {"cidrBlocks": ["10.96.0.0/12"]}}}
        }))
        .unwrap();
        let err = of_cluster(&cluster).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "Cluster ns/c1: spec.clusterNetwork: pods and services IP family mismatch"
        );
        let bare: Cluster = serde_json::from_value(json!({
            "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "c1", "namespace": "ns"}, "spec": {}
        }))
        .unwrap();
        assert_eq!(of_cluster(&bare).unwrap(), IpFamily::V4);
    }

    #[test]
    fn addresses_follow_the_family() {
        let both = NetworkAddresses {
            ipv4: Some("172.18.0.3".parse().unwrap()),
            ipv6: Some("fc00:f853:ccd:e793::3".parse().unwrap()),
        };
        let v4: IpAddr = "172.18.0.3".parse().unwrap();
        let v6: IpAddr = "fc00:f853:ccd:e793::3".parse().unwrap();
        assert_eq!(IpFamily::V4.select(&both), [v4]);
        assert_eq!(IpFamily::V6.select(&both), [v6]);
        assert_eq!(IpFamily::Dual.select(&both), [v4, v6]);
        let only_v4 = NetworkAddresses { ipv6: None, ..both };
        assert!(IpFamily::V6.select(&only_v4).is_empty());
        assert_eq!(IpFamily::Dual.select(&only_v4), [v4]);

        assert!(IpFamily::V6.load_balancer_ipv6());
        assert!(!IpFamily::Dual.load_balancer_ipv6() && !IpFamily::V4.load_balancer_ipv6());
        assert!(IpFamily::V6.node_ipv6() && IpFamily::Dual.node_ipv6());
        assert!(!IpFamily::V4.node_ipv6());
    }
}
