//! The FIB's key and value types: an IPv4 prefix and the id of a next hop.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The index of a next hop in a next-hop table kept outside the FIB (the
/// FIB stores only this id, so many routes share one next hop and a next
/// hop's MAC or port can change without touching the routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHopId(pub u32);

impl fmt::Display for NextHopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nh{}", self.0)
    }
}

/// Why a prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length is above 32.
    #[error("prefix length {0} is above 32")]
    LengthTooLong(u8),
    /// Bits beyond the prefix length are set ("10.0.0.1/8").
    #[error("{addr}/{len} has host bits set (did you mean {masked}/{len}?)")]
    HostBitsSet {
        /// The address given.
        addr: Ipv4Addr,
        /// The length given.
        len: u8,
        /// The address with its host bits cleared.
        masked: Ipv4Addr,
    },
    /// The text has no "/length" part.
    #[error("prefix {0:?} has no /length")]
    MissingLength(String),
    /// The address part is not a dotted-quad IPv4 address.
    #[error("prefix {0:?}: bad IPv4 address")]
    BadAddress(String),
    /// The length part is not a number from 0 to 255.
    #[error("prefix {0:?}: bad length")]
    BadLength(String),
}

/// An IPv4 prefix: an address and how many of its leading bits count.
///
/// Host bits (those past `len`) are always zero: [`Prefix4::new`] refuses a
/// prefix with host bits set rather than masking them. A route written
/// "10.0.0.1/8" is almost always a mistake (a host address pasted where a
/// network was meant), and masking it silently would install a route the
/// operator did not ask for; Linux refuses it too (`ip route add
/// 10.0.0.1/8` fails with "Invalid prefix for given prefix length"). A
/// caller that wants masking says so with [`Prefix4::new_masked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix4 {
    addr: Ipv4Addr,
    len: u8,
}

/// The network mask of a prefix length (0 for /0; no shift by 32).
pub(crate) fn mask_of(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

impl Prefix4 {
    /// The default route, 0.0.0.0/0.
    pub const DEFAULT: Prefix4 = Prefix4 {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    /// A prefix; refused if `len > 32` or if host bits are set.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::LengthTooLong(len));
        }
        let masked = Ipv4Addr::from(u32::from(addr) & mask_of(len));
        if masked != addr {
            return Err(PrefixError::HostBitsSet { addr, len, masked });
        }
        Ok(Prefix4 { addr, len })
    }

    /// The prefix of `len` bits that contains `addr` (host bits cleared);
    /// refused only if `len > 32`.
    pub fn new_masked(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::LengthTooLong(len));
        }
        let addr = Ipv4Addr::from(u32::from(addr) & mask_of(len));
        Ok(Prefix4 { addr, len })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network mask as a host-order integer.
    pub fn mask(&self) -> u32 {
        mask_of(self.len)
    }

    /// The first address of the prefix, host order.
    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    /// The last address of the prefix, host order.
    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// True if `addr` is inside the prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == self.first()
    }
}

impl fmt::Display for Prefix4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix4 {
    type Err = PrefixError;

    /// Parses "a.b.c.d/len"; the length is required and host bits must be
    /// zero, as for [`Prefix4::new`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::MissingLength(s.to_owned()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| PrefixError::BadAddress(s.to_owned()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| PrefixError::BadLength(s.to_owned()))?;
        Prefix4::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let p: Prefix4 = "10.0.0.0/8".parse().unwrap();
        assert_eq!(p.addr(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(p.prefix_len(), 8);
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert_eq!(p.first(), 0x0a00_0000);
        assert_eq!(p.last(), 0x0aff_ffff);
        assert_eq!("0.0.0.0/0".parse::<Prefix4>().unwrap(), Prefix4::DEFAULT);
        assert_eq!(Prefix4::DEFAULT.last(), u32::MAX);
        let host: Prefix4 = "192.0.2.1/32".parse().unwrap();
        assert_eq!((host.first(), host.last()), (0xc000_0201, 0xc000_0201));
    }

    #[test]
    fn refuses_bad_text() {
        assert!(matches!(
            "10.0.0.1/8".parse::<Prefix4>(),
            Err(PrefixError::HostBitsSet { masked, .. }) if masked == Ipv4Addr::new(10, 0, 0, 0)
        ));
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix4>(),
            Err(PrefixError::LengthTooLong(33))
        );
        assert!(matches!(
            "10.0.0.0".parse::<Prefix4>(),
            Err(PrefixError::MissingLength(_))
        ));
        assert!(matches!(
            "10.0.0/8".parse::<Prefix4>(),
            Err(PrefixError::BadAddress(_))
        ));
        assert!(matches!(
            "10.0.0.0/-1".parse::<Prefix4>(),
            Err(PrefixError::BadLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/256".parse::<Prefix4>(),
            Err(PrefixError::BadLength(_))
        ));
    }

    #[test]
    fn masked_constructor_clears_host_bits() {
        let p = Prefix4::new_masked(Ipv4Addr::new(10, 1, 2, 3), 16).unwrap();
        assert_eq!(p.to_string(), "10.1.0.0/16");
        assert!(p.contains(Ipv4Addr::new(10, 1, 255, 255)));
        assert!(!p.contains(Ipv4Addr::new(10, 2, 0, 0)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Prefix4>();
        }

        #[test]
        fn display_round_trips(a in any::<u32>(), len in 0u8..=32) {
            let p = Prefix4::new_masked(Ipv4Addr::from(a), len).unwrap();
            prop_assert_eq!(p.to_string().parse::<Prefix4>(), Ok(p));
        }
    }
}
