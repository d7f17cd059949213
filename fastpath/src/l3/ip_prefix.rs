//! A route's destination, IPv4 or IPv6: what the control side keys routes
//! by, so one model serves both families.

use crate::fib::{Prefix4, Prefix6, Prefix6Error, PrefixError};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a prefix's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpPrefixError {
    /// As an IPv4 prefix.
    #[error(transparent)]
    V4(#[from] PrefixError),
    /// As an IPv6 prefix.
    #[error(transparent)]
    V6(#[from] Prefix6Error),
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    /// "a.b.c.d/len" or "x:y::z/len" (host bits must be zero).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(IpPrefix::V6(s.parse()?))
        } else {
            Ok(IpPrefix::V4(s.parse()?))
        }
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpPrefix {
    /// IPv4.
    V4(Prefix4),
    /// IPv6.
    V6(Prefix6),
}

impl From<Prefix4> for IpPrefix {
    fn from(p: Prefix4) -> Self {
        IpPrefix::V4(p)
    }
}

impl From<Prefix6> for IpPrefix {
    fn from(p: Prefix6) -> Self {
        IpPrefix::V6(p)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPrefix::V4(p) => p.fmt(f),
            IpPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl IpPrefix {
    /// The host prefix of `ip` (/32 or /128).
    pub fn host(ip: IpAddr) -> IpPrefix {
        match ip {
            IpAddr::V4(a) => match Prefix4::new_masked(a, 32) {
                Ok(p) => IpPrefix::V4(p),
                Err(_) => unreachable!("/32 is a valid length"),
            },
            IpAddr::V6(a) => match Prefix6::new_masked(a, 128) {
                Ok(p) => IpPrefix::V6(p),
                Err(_) => unreachable!("/128 is a valid length"),
            },
        }
    }

    /// The address, if this is a host prefix.
    pub fn host_addr(&self) -> Option<IpAddr> {
        match self {
            IpPrefix::V4(p) => (p.prefix_len() == 32).then(|| IpAddr::V4(p.addr())),
            IpPrefix::V6(p) => (p.prefix_len() == 128).then(|| IpAddr::V6(p.addr())),
        }
    }

    /// The first and last addresses.
    pub fn bounds(&self) -> (IpAddr, IpAddr) {
        match self {
            IpPrefix::V4(p) => (IpAddr::V4(p.addr()), IpAddr::V4(Ipv4Addr::from(p.last()))),
            IpPrefix::V6(p) => (IpAddr::V6(p.addr()), IpAddr::V6(Ipv6Addr::from(p.last()))),
        }
    }

    /// True if `ip` is inside (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (IpPrefix::V4(p), IpAddr::V4(a)) => p.contains(a),
            (IpPrefix::V6(p), IpAddr::V6(a)) => p.contains(a),
            _ => false,
        }
    }

    /// True for an IPv6 prefix.
    pub fn is_v6(&self) -> bool {
        matches!(self, IpPrefix::V6(_))
    }

    /// Every prefix containing `ip`, longest first.
    pub fn covering(ip: IpAddr) -> impl Iterator<Item = IpPrefix> {
        let max: u8 = if ip.is_ipv6() { 128 } else { 32 };
        (0..=max).rev().filter_map(move |len| match ip {
            IpAddr::V4(a) => Prefix4::new_masked(a, len).ok().map(IpPrefix::V4),
            IpAddr::V6(a) => Prefix6::new_masked(a, len).ok().map(IpPrefix::V6),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_bounds_and_covering() {
        let a: IpAddr = "2001:db8::5".parse().unwrap();
        let h = IpPrefix::host(a);
        assert_eq!(h.host_addr(), Some(a));
        assert_eq!(h.to_string(), "2001:db8::5/128");
        let p: IpPrefix = "10.1.0.0/16".parse().unwrap();
        assert!("2001:db8::/32".parse::<IpPrefix>().unwrap().is_v6());
        assert!(matches!(
            "10.0.0.1/8".parse::<IpPrefix>(),
            Err(IpPrefixError::V4(_))
        ));
        assert!(matches!(
            "2001:db8::1/32".parse::<IpPrefix>(),
            Err(IpPrefixError::V6(_))
        ));
        assert_eq!(
            p.bounds(),
            ("10.1.0.0".parse().unwrap(), "10.1.255.255".parse().unwrap())
        );
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(!p.contains(a));
        assert_eq!(p.host_addr(), None);
        let c: Vec<_> = IpPrefix::covering("10.1.2.3".parse().unwrap()).collect();
        assert_eq!(c.len(), 33);
        assert_eq!(c[0].to_string(), "10.1.2.3/32");
        assert_eq!(c[32].to_string(), "0.0.0.0/0");
        assert_eq!(IpPrefix::covering(a).count(), 129);
    }
}
