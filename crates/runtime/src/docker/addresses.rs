//! Stable container addresses. The engine hands out dynamic addresses again on every
//! restart, in whatever order containers come back: a cluster's load balancer could
//! return at another cluster's address while that cluster's `controlPlaneEndpoint`
//! (immutable in Cluster API) still names the old one, and a control-plane node could
//! lose the address its etcd member and certificates carry. A container created with a
//! fixed address gets that address back.
//!
//! So a container created on a network whose IPv4 subnet its creator configured (kind's
//! `kind` network, the provider's own) gets a fixed address: the highest free one in the
//! upper half of the subnet. The engine allocates dynamic addresses from the bottom up,
//! so the two meet only on a nearly full subnet; when the upper half is taken the
//! container gets a dynamic address as before. On a network whose subnet the engine
//! chose, the engine refuses fixed addresses: that network is remembered and its
//! containers get dynamic ones.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// An IPv4 subnet, `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: u32,
    len: u8,
}

impl Subnet {
    /// `None` for IPv6 or malformed text.
    pub fn parse(cidr: &str) -> Option<Self> {
        let (addr, len) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        if len > 32 {
            return None;
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Some(Subnet {
            network: u32::from(addr) & mask,
            len,
        })
    }

    fn size(&self) -> u64 {
        1u64 << (32 - self.len)
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let (a0, b0) = (u64::from(self.network), u64::from(other.network));
        a0 < b0 + other.size() && b0 < a0 + self.size()
    }
}

/// The highest address of the subnet's upper half that is not in `used`, skipping the
/// broadcast address. `None` when the subnet is too small (under /29) or the upper half
/// is taken.
pub fn pick(subnet: Subnet, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let size = subnet.size();
    if size < 8 {
        return None;
    }
    let top = u64::from(subnet.network) + size - 2;
    let bottom = u64::from(subnet.network) + size / 2;
    (bottom..=top)
        .rev()
        .filter_map(|a| u32::try_from(a).ok())
        .map(Ipv4Addr::from)
        .find(|a| !used.contains(a))
}

/// An address as the engine reports it (`172.18.0.2` or `172.18.0.2/16`).
pub fn parse_address(text: &str) -> Option<Ipv4Addr> {
    text.split('/').next()?.parse().ok()
}

/// Addresses handed out and not yet visible on the engine, and the networks that
/// refuse fixed addresses.
#[derive(Debug, Default)]
pub struct Reservations {
    in_flight: Mutex<BTreeSet<(String, Ipv4Addr)>>,
    dynamic_networks: Mutex<HashSet<String>>,
}

impl Reservations {
    /// Whether `network` is known to refuse fixed addresses.
    pub fn dynamic_only(&self, network: &str) -> bool {
        self.dynamic_networks
            .lock()
            .map(|s| s.contains(network))
            .unwrap_or(false)
    }

    pub fn mark_dynamic_only(&self, network: &str) {
        if let Ok(mut s) = self.dynamic_networks.lock() {
            s.insert(network.to_string());
        }
    }

    /// Picks a free address of `subnet` not in `used` nor handed out already, and holds
    /// it until [`Reservations::release`].
    pub fn reserve(
        &self,
        network: &str,
        subnet: Subnet,
        mut used: HashSet<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        let mut in_flight = self.in_flight.lock().ok()?;
        used.extend(
            in_flight
                .iter()
                .filter(|(n, _)| n == network)
                .map(|(_, a)| *a),
        );
        let address = pick(subnet, &used)?;
        in_flight.insert((network.to_string(), address));
        Some(address)
    }

    pub fn release(&self, network: &str, address: Ipv4Addr) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&(network.to_string(), address));
        }
    }
}

/// The engine's words at start when the fixed address is held by another container.
pub fn taken(message: &str) -> bool {
    message.contains("Address already in use")
}

/// The engine's words when a network's subnet was not configured by its creator.
pub fn refuses_fixed_addresses(message: &str) -> bool {
    message.contains("user specified IP address is supported only")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn picks_from_the_top_of_the_subnet_down() {
        let s = Subnet::parse("172.18.0.0/16").unwrap();
        assert_eq!(pick(s, &HashSet::new()), Some(ip("172.18.255.254")));
        let used: HashSet<_> = [ip("172.18.255.254"), ip("172.18.255.253")].into();
        assert_eq!(pick(s, &used), Some(ip("172.18.255.252")));
    }

    #[test]
    fn stays_in_the_upper_half_and_gives_up_when_it_is_taken() {
        let s = Subnet::parse("10.0.0.0/29").unwrap();
        // .0 network, .4–.6 the upper half without broadcast .7
        let used: HashSet<_> = [ip("10.0.0.6"), ip("10.0.0.5")].into();
        assert_eq!(pick(s, &used), Some(ip("10.0.0.4")));
        let used: HashSet<_> = [ip("10.0.0.6"), ip("10.0.0.5"), ip("10.0.0.4")].into();
        assert_eq!(pick(s, &used), None);
        assert_eq!(
            pick(Subnet::parse("10.0.0.0/30").unwrap(), &HashSet::new()),
            None
        );
    }

    #[test]
    fn parses_v4_subnets_only() {
        assert_eq!(
            Subnet::parse("172.18.3.7/16"),
            Subnet::parse("172.18.0.0/16")
        );
        assert_eq!(Subnet::parse("fc00:f853:ccd:e793::/64"), None);
        assert_eq!(Subnet::parse("172.18.0.0"), None);
        assert_eq!(Subnet::parse("172.18.0.0/33"), None);
        assert_eq!(parse_address("172.18.0.2/16"), Some(ip("172.18.0.2")));
        let s16 = Subnet::parse("172.18.0.0/16").unwrap();
        assert!(s16.overlaps(&Subnet::parse("172.18.9.0/24").unwrap()));
        assert!(s16.overlaps(&Subnet::parse("172.16.0.0/12").unwrap()));
        assert!(!s16.overlaps(&Subnet::parse("172.19.0.0/16").unwrap()));
        assert_eq!(parse_address(""), None);
    }

    #[test]
    fn reservations_never_hand_out_one_address_twice() {
        let r = Reservations::default();
        let s = Subnet::parse("172.18.0.0/16").unwrap();
        let a = r.reserve("kind", s, HashSet::new()).unwrap();
        let b = r.reserve("kind", s, HashSet::new()).unwrap();
        assert_ne!(a, b);
        // Another network's reservations do not count.
        assert_eq!(r.reserve("other", s, HashSet::new()), Some(a));
        r.release("kind", a);
        assert_eq!(r.reserve("kind", s, HashSet::new()), Some(a));
        assert!(!r.dynamic_only("kind"));
        r.mark_dynamic_only("kind");
        assert!(r.dynamic_only("kind"));
    }
}
