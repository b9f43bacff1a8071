//! The part of a Kubernetes Node this daemon cares about.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

use crate::cidr::{Cidr, Family};

/// Name, pod CIDRs and InternalIPs of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub pod_cidrs: Vec<Cidr>,
    pub internal_ips: Vec<IpAddr>,
    /// Values of `spec.podCIDRs`/`spec.podCIDR` or `InternalIP` addresses that did not parse.
    pub invalid: Vec<String>,
}

impl NodeInfo {
    /// Extracts the info from a Node: `spec.podCIDRs` (falling back to `spec.podCIDR`) and the
    /// `InternalIP` entries of `status.addresses`.
    pub fn from_node(node: &Node) -> NodeInfo {
        let name = node.metadata.name.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        let mut raw: Vec<&str> = spec
            .and_then(|s| s.pod_cidrs.as_ref())
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if raw.is_empty() {
            raw.extend(spec.and_then(|s| s.pod_cidr.as_deref()));
        }
        let mut info = NodeInfo {
            name,
            pod_cidrs: Vec::new(),
            internal_ips: Vec::new(),
            invalid: Vec::new(),
        };
        for s in raw.into_iter().filter(|s| !s.trim().is_empty()) {
            match s.parse::<Cidr>() {
                Ok(c) if !info.pod_cidrs.contains(&c) => info.pod_cidrs.push(c),
                Ok(_) => {}
                Err(_) => info.invalid.push(s.to_string()),
            }
        }
        let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
        for a in addresses
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
        {
            match a.address.trim().parse::<IpAddr>() {
                Ok(ip) if !info.internal_ips.contains(&ip) => info.internal_ips.push(ip),
                Ok(_) => {}
                Err(_) => info.invalid.push(a.address.clone()),
            }
        }
        info
    }

    /// The first InternalIP of the given family.
    pub fn internal_ip(&self, family: Family) -> Option<IpAddr> {
        self.internal_ips
            .iter()
            .copied()
            .find(|ip| Family::of(ip) == family)
    }
}

/// Test helpers shared by the modules' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub fn info(name: &str, cidrs: &[&str], ips: &[&str]) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            pod_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            internal_ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            invalid: Vec::new(),
        }
    }

    pub fn node(
        name: &str,
        pod_cidr: Option<&str>,
        pod_cidrs: &[&str],
        addresses: &[(&str, &str)],
    ) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: pod_cidr.map(str::to_string),
                pod_cidrs: (!pod_cidrs.is_empty())
                    .then(|| pod_cidrs.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::node;
    use super::*;

    #[test]
    fn reads_pod_cidrs_and_internal_ips() {
        let n = node(
            "w-1",
            Some("10.244.1.0/24"),
            &["10.244.1.0/24", "fd00:10:244:1::/64"],
            &[
                ("Hostname", "w-1"),
                ("InternalIP", "172.18.0.3"),
                ("InternalIP", "fc00:f853:ccd:e793::3"),
                ("ExternalIP", "1.2.3.4"),
            ],
        );
        let info = NodeInfo::from_node(&n);
        assert_eq!(info.name, "w-1");
        let cidrs: Vec<String> = info.pod_cidrs.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, ["10.244.1.0/24", "fd00:10:244:1::/64"]);
        assert_eq!(
            info.internal_ip(Family::V4),
            Some("172.18.0.3".parse().unwrap())
        );
        assert_eq!(
            info.internal_ip(Family::V6),
            Some("fc00:f853:ccd:e793::3".parse().unwrap())
        );
        assert!(info.invalid.is_empty());
    }

    #[test]
    fn falls_back_to_pod_cidr() {
        let info = NodeInfo::from_node(&node("w-2", Some("10.244.2.0/24"), &[], &[]));
        assert_eq!(
            info.pod_cidrs,
            vec!["10.244.2.0/24".parse::<Cidr>().unwrap()]
        );
        assert!(info.internal_ips.is_empty());
        assert_eq!(info.internal_ip(Family::V4), None);
    }

    #[test]
    fn no_spec_no_status() {
        let info = NodeInfo::from_node(&Node::default());
        assert_eq!(
            info,
            NodeInfo {
                name: String::new(),
                pod_cidrs: vec![],
                internal_ips: vec![],
                invalid: vec![]
            }
        );
    }

    #[test]
    fn collects_invalid_values() {
        let info =
            NodeInfo::from_node(&node("x", None, &["bogus"], &[("InternalIP", "not-an-ip")]));
        assert!(info.pod_cidrs.is_empty());
        assert_eq!(info.invalid, ["bogus", "not-an-ip"]);
    }
}
