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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the engine's word on a network's used addresses is trusted. Without it every
/// create lists every container on the network: a burst of n creates makes n listings of
/// up to n containers each, all held in memory at once (100 load balancers: the
/// manager's peak heap). Another engine client's container that comes within the window
/// shows up as a refused start, and the start looks again ([`Reservations::forget`]).
pub const LOOK_TTL: Duration = Duration::from_secs(5);

/// What the engine said a network holds: its configured IPv4 subnet, if any, and the
/// addresses in use then, plus those this runtime gave out since.
#[derive(Debug, Clone)]
pub struct Look {
    pub subnet: Option<Subnet>,
    pub used: HashSet<Ipv4Addr>,
}

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
    looks: Mutex<HashMap<String, (Look, Instant)>>,
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

    /// Ends a reservation. `kept`: a container now has the address (the engine lists it,
    /// and so does the look until it is taken again); otherwise it is free.
    pub fn release(&self, network: &str, address: Ipv4Addr, kept: bool) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&(network.to_string(), address));
        }
        if kept {
            if let Ok(mut looks) = self.looks.lock() {
                if let Some((look, _)) = looks.get_mut(network) {
                    look.used.insert(address);
                }
            }
        }
    }

    /// The last look at `network`, if taken less than [`LOOK_TTL`] before `now`.
    pub fn recent(&self, network: &str, now: Instant) -> Option<Look> {
        let looks = self.looks.lock().ok()?;
        let (look, at) = looks.get(network)?;
        (now.saturating_duration_since(*at) < LOOK_TTL).then(|| look.clone())
    }

    pub fn remember(&self, network: &str, look: Look, now: Instant) {
        if let Ok(mut looks) = self.looks.lock() {
            looks.insert(network.to_string(), (look, now));
        }
    }

    /// The next reservation on `network` looks at the engine again.
    pub fn forget(&self, network: &str) {
        if let Ok(mut looks) = self.looks.lock() {
            looks.remove(network);
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
        r.release("kind", a, false);
        assert_eq!(r.reserve("kind", s, HashSet::new()), Some(a));
        assert!(!r.dynamic_only("kind"));
        r.mark_dynamic_only("kind");
        assert!(r.dynamic_only("kind"));
    }

    #[test]
    fn a_look_serves_until_it_is_old_or_forgotten_and_keeps_what_was_given_out() {
        let r = Reservations::default();
        let s = Subnet::parse("172.18.0.0/16").unwrap();
        let t0 = Instant::now();
        assert!(r.recent("kind", t0).is_none());
        let look = Look {
            subnet: Some(s),
            used: [ip("172.18.255.254")].into(),
        };
        r.remember("kind", look, t0);
        let seen = r.recent("kind", t0 + LOOK_TTL / 2).unwrap();
        assert_eq!(seen.subnet, Some(s));
        let a = r.reserve("kind", s, seen.used).unwrap();
        assert_eq!(a, ip("172.18.255.253"));
        // Created: the look now counts it, so the next one gets the one below.
        r.release("kind", a, true);
        let seen = r.recent("kind", t0 + LOOK_TTL / 2).unwrap();
        assert!(seen.used.contains(&a));
        assert_eq!(r.reserve("kind", s, seen.used), Some(ip("172.18.255.252")));
        // A failed create frees its address without counting it.
        r.release("kind", ip("172.18.255.252"), false);
        assert!(!r
            .recent("kind", t0)
            .unwrap()
            .used
            .contains(&ip("172.18.255.252")));
        assert!(r.recent("other", t0).is_none());
        assert!(r.recent("kind", t0 + LOOK_TTL).is_none());
        r.forget("kind");
        assert!(r.recent("kind", t0).is_none());
    }
}
