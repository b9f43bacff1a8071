//! A minimal IP network type (address + prefix length), so the crate needs no extra dependency.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// IP family of an address or network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Maximum prefix length of the family.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The default route of the family in CIDR notation.
    pub fn default_route(self) -> &'static str {
        match self {
            Family::V4 => "0.0.0.0/0",
            Family::V6 => "::/0",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not in CIDR notation (address/prefix)")]
    MissingPrefix(String),
    #[error("{0:?}: invalid IP address")]
    BadAddress(String),
    #[error("{0:?}: invalid prefix length")]
    BadPrefix(String),
}

/// An IP network, normalised so that the host bits of `addr` are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a network; host bits are cleared. `None` if the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        if prefix > Family::of(&addr).bits() {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u32::from(a) & mask).to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u128::from(a) & mask).to_be_bytes())
            }
        };
        Some(Cidr { addr, prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether `other` lies entirely within this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.family() == other.family()
            && self.prefix <= other.prefix
            && Cidr::new(other.addr, self.prefix).is_some_and(|c| c.addr == self.addr)
    }

    /// Parses the destination of an `ip route` line: CIDR notation, or a bare address meaning a
    /// host route (`ip route` prints /32 and /128 routes without the prefix length).
    pub fn parse_route_dst(s: &str) -> Result<Cidr, CidrError> {
        if s.contains('/') {
            return s.parse();
        }
        let addr: IpAddr = s
            .parse()
            .map_err(|_| CidrError::BadAddress(s.to_string()))?;
        Ok(Cidr {
            addr,
            prefix: Family::of(&addr).bits(),
        })
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix(s.to_string()))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(s.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| CidrError::BadPrefix(s.to_string()))?;
        Cidr::new(addr, prefix).ok_or_else(|| CidrError::BadPrefix(s.to_string()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let c: Cidr = "10.244.1.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.244.1.0/24");
        assert_eq!(c.family(), Family::V4);
        let c: Cidr = "fd00:10:244:1::5/64".parse().unwrap();
        assert_eq!(c.to_string(), "fd00:10:244:1::/64");
        assert_eq!(c.family(), Family::V6);
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(
            "1.2.3.4/32".parse::<Cidr>().unwrap().to_string(),
            "1.2.3.4/32"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            "10.0.0.0".parse::<Cidr>(),
            Err(CidrError::MissingPrefix("10.0.0.0".into()))
        );
        assert_eq!(
            "10.0.0/8".parse::<Cidr>(),
            Err(CidrError::BadAddress("10.0.0/8".into()))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::BadPrefix("10.0.0.0/33".into()))
        );
        assert_eq!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::BadPrefix("::/129".into()))
        );
        assert_eq!(
            "10.0.0.0/x".parse::<Cidr>(),
            Err(CidrError::BadPrefix("10.0.0.0/x".into()))
        );
    }

    #[test]
    fn containment() {
        let c = |s: &str| s.parse::<Cidr>().unwrap();
        assert!(c("10.244.0.0/16").contains(&c("10.244.3.0/24")));
        assert!(c("10.244.0.0/16").contains(&c("10.244.0.0/16")));
        assert!(!c("10.244.3.0/24").contains(&c("10.244.0.0/16")));
        assert!(!c("10.244.0.0/16").contains(&c("10.245.0.0/24")));
        assert!(c("fd00:10:244::/56").contains(&c("fd00:10:244:1::/64")));
        assert!(!c("0.0.0.0/0").contains(&c("::/0")));
    }

    #[test]
    fn route_destinations_without_prefix_are_host_routes() {
        assert_eq!(
            Cidr::parse_route_dst("10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            Cidr::parse_route_dst("fd00::1").unwrap().to_string(),
            "fd00::1/128"
        );
        assert_eq!(
            Cidr::parse_route_dst("10.244.2.0/24").unwrap().to_string(),
            "10.244.2.0/24"
        );
        assert!(Cidr::parse_route_dst("default").is_err());
    }
}
