//! Addresses for the exception interfaces, as the operator gives them:
//! an address with its prefix length ([`PrefixedAddress`]), one for a
//! given port (`--pod-address PORT=ADDR/PREFIX`, [`PodAddress`]), and the
//! prefix lengths of the pod's networks (`--pod-prefix 24/64`,
//! [`PodPrefix`]) for the addresses Multus reports without one.
//!
//! Why a prefix option at all: Multus fills the network-status `ips`
//! from the CNI result with `ipconfig.Address.IP.String()`, the address
//! without its mask (network-attachment-definition-client,
//! pkg/utils/net-attach-def.go, `CreateNetworkStatus`, called by
//! multus-cni's pkg/multus/multus.go), so the pod never learns its
//! network's prefix length from the annotation. An address without one
//! would be a /32 (/128) in the kernel, with no connected route: no
//! neighbour on the network could be reached. Guessing (/24) would be
//! wrong as often as right, so the operator says it.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address with its prefix length (`10.0.0.2/24`), the length no
/// longer than the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrefixedAddress {
    addr: IpAddr,
    prefix: u8,
}

/// Why an address, a `--pod-address` or a `--pod-prefix` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodAddressError {
    /// No `/PREFIX`.
    #[error("{0:?} has no prefix length: write ADDR/PREFIX (10.0.0.2/24, fd00::2/64)")]
    NoPrefix(String),
    /// Not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// A prefix length that is not a number, or too long for the family.
    #[error("{value:?} is not a prefix length for IPv{family} (0 to {max})")]
    BadPrefix {
        /// What was given.
        value: String,
        /// 4 or 6.
        family: u8,
        /// 32 or 128.
        max: u8,
    },
    /// `--pod-address` without `PORT=`.
    #[error("{0:?} is not PORT=ADDR/PREFIX (0=10.0.0.2/24)")]
    NoPort(String),
    /// A port that is not a number.
    #[error("{0:?} is not a port number")]
    BadPort(String),
    /// `--pod-prefix` with nothing in it.
    #[error("{0:?} gives no prefix length: write V4/V6 (24/64), V4 (24) or /V6 (/64)")]
    EmptyPrefix(String),
}

/// The longest prefix of an address's family.
fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        4
    } else {
        6
    }
}

impl PrefixedAddress {
    /// `addr/prefix`, if `prefix` fits the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<PrefixedAddress, PodAddressError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(PodAddressError::BadPrefix {
                value: prefix.to_string(),
                family: family(addr),
                max,
            });
        }
        Ok(PrefixedAddress { addr, prefix })
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Its prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for PrefixedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for PrefixedAddress {
    type Err = PodAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| PodAddressError::NoPrefix(s.to_string()))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| PodAddressError::BadAddress(a.to_string()))?;
        let bad = || PodAddressError::BadPrefix {
            value: p.to_string(),
            family: family(addr),
            max: max_prefix(addr),
        };
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        PrefixedAddress::new(addr, prefix).map_err(|_| bad())
    }
}

/// `--pod-address PORT=ADDR/PREFIX`: an address for port `port`'s
/// exception interface, applied as the annotation's are (a test hook, and
/// a way to address ports that are not VFs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodAddress {
    /// The port (its index in `--ports`).
    pub port: usize,
    /// The address.
    pub address: PrefixedAddress,
}

impl FromStr for PodAddress {
    type Err = PodAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (port, addr) = s
            .split_once('=')
            .ok_or_else(|| PodAddressError::NoPort(s.to_string()))?;
        let port = port
            .trim()
            .parse()
            .map_err(|_| PodAddressError::BadPort(port.to_string()))?;
        Ok(PodAddress {
            port,
            address: addr.parse()?,
        })
    }
}

/// `--pod-prefix V4/V6`: the prefix lengths of the pod's networks, for
/// the network-status addresses that come without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodPrefix {
    /// For IPv4 addresses (`None`: such addresses are not applied).
    pub v4: Option<u8>,
    /// For IPv6 addresses.
    pub v6: Option<u8>,
}

/// How `--pod-prefix` and FP_POD_PREFIX are written.
pub const POD_PREFIX_SYNTAX: &str = "V4/V6 (24/64), V4 alone (24) or /V6 alone (/64)";

impl PodPrefix {
    /// `addr` with the prefix of its family, if one was given.
    pub fn apply(&self, addr: IpAddr) -> Option<PrefixedAddress> {
        let p = if addr.is_ipv4() { self.v4 } else { self.v6 }?;
        PrefixedAddress::new(addr, p).ok()
    }
}

impl fmt::Display for PodPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.v4, self.v6) {
            (Some(a), Some(b)) => write!(f, "{a}/{b}"),
            (Some(a), None) => write!(f, "{a}"),
            (None, Some(b)) => write!(f, "/{b}"),
            (None, None) => f.write_str("none"),
        }
    }
}

impl FromStr for PodPrefix {
    type Err = PodAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (v4, v6) = match s.trim().split_once('/') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), ""),
        };
        let len = |v: &str, family: u8, max: u8| -> Result<Option<u8>, PodAddressError> {
            if v.is_empty() {
                return Ok(None);
            }
            match v.parse::<u8>() {
                Ok(p) if p <= max => Ok(Some(p)),
                _ => Err(PodAddressError::BadPrefix {
                    value: v.to_string(),
                    family,
                    max,
                }),
            }
        };
        let out = PodPrefix {
            v4: len(v4, 4, 32)?,
            v6: len(v6, 6, 128)?,
        };
        if out == PodPrefix::default() {
            return Err(PodAddressError::EmptyPrefix(s.to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_need_a_prefix_that_fits() {
        let a: PrefixedAddress = "10.0.0.2/24".parse().unwrap();
        assert_eq!((a.addr(), a.prefix()), ("10.0.0.2".parse().unwrap(), 24));
        assert_eq!(a.to_string(), "10.0.0.2/24");
        assert_eq!(
            "fd00::2/64".parse::<PrefixedAddress>().unwrap().to_string(),
            "fd00::2/64"
        );
        assert_eq!(
            "10.0.0.2"
                .parse::<PrefixedAddress>()
                .unwrap_err()
                .to_string(),
            "\"10.0.0.2\" has no prefix length: write ADDR/PREFIX (10.0.0.2/24, fd00::2/64)"
        );
        assert_eq!(
            "10.0.0.2/33"
                .parse::<PrefixedAddress>()
                .unwrap_err()
                .to_string(),
            "\"33\" is not a prefix length for IPv4 (0 to 32)"
        );
        assert!("fd00::2/129".parse::<PrefixedAddress>().is_err());
        assert!("fd00::2/x".parse::<PrefixedAddress>().is_err());
        assert_eq!(
            "10.0.0/24".parse::<PrefixedAddress>(),
            Err(PodAddressError::BadAddress("10.0.0".into()))
        );
    }

    #[test]
    fn pod_addresses_name_a_port() {
        let p: PodAddress = "1=10.0.0.2/24".parse().unwrap();
        assert_eq!(p.port, 1);
        assert_eq!(p.address.to_string(), "10.0.0.2/24");
        assert_eq!(
            "10.0.0.2/24".parse::<PodAddress>(),
            Err(PodAddressError::NoPort("10.0.0.2/24".into()))
        );
        assert_eq!(
            "x=10.0.0.2/24".parse::<PodAddress>(),
            Err(PodAddressError::BadPort("x".into()))
        );
        assert!("0=10.0.0.2".parse::<PodAddress>().is_err());
    }

    #[test]
    fn pod_prefixes_per_family() {
        let p: PodPrefix = "24/64".parse().unwrap();
        assert_eq!(
            p,
            PodPrefix {
                v4: Some(24),
                v6: Some(64)
            }
        );
        assert_eq!(p.to_string(), "24/64");
        let v4: PodPrefix = "24".parse().unwrap();
        assert_eq!(v4.v6, None);
        assert_eq!(v4.apply("fd00::1".parse().unwrap()), None);
        assert_eq!(
            v4.apply("10.1.0.5".parse().unwrap()).unwrap().to_string(),
            "10.1.0.5/24"
        );
        let v6: PodPrefix = "/64".parse().unwrap();
        assert_eq!((v6.v4, v6.v6), (None, Some(64)));
        assert_eq!(v6.to_string(), "/64");
        assert_eq!(
            "33/64".parse::<PodPrefix>().unwrap_err().to_string(),
            "\"33\" is not a prefix length for IPv4 (0 to 32)"
        );
        assert!("24/129".parse::<PodPrefix>().is_err());
        assert_eq!(
            "/".parse::<PodPrefix>(),
            Err(PodAddressError::EmptyPrefix("/".into()))
        );
        assert!("".parse::<PodPrefix>().is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_round_trip(s in ".{0,40}") {
            if let Ok(a) = s.parse::<PrefixedAddress>() {
                prop_assert_eq!(a.to_string().parse::<PrefixedAddress>(), Ok(a));
            }
            if let Ok(p) = s.parse::<PodPrefix>() {
                prop_assert_eq!(p.to_string().parse::<PodPrefix>(), Ok(p));
            }
            let _ = s.parse::<PodAddress>();
        }
    }
}
