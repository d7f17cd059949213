//! The IPv6 FIB's key: a prefix, with the same rules as [`Prefix4`]
//! (host bits refused unless masking is asked for).
//!
//! [`Prefix4`]: super::Prefix4

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// Why an IPv6 prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Prefix6Error {
    /// The length is above 128.
    #[error("prefix length {0} is above 128")]
    LengthTooLong(u8),
    /// Bits beyond the prefix length are set ("2001:db8::1/32").
    #[error("{addr}/{len} has host bits set (did you mean {masked}/{len}?)")]
    HostBitsSet {
        /// The address given.
        addr: Ipv6Addr,
        /// The length given.
        len: u8,
        /// The address with its host bits cleared.
        masked: Ipv6Addr,
    },
    /// The text has no "/length" part.
    #[error("prefix {0:?} has no /length")]
    MissingLength(String),
    /// The address part is not an IPv6 address.
    #[error("prefix {0:?}: bad IPv6 address")]
    BadAddress(String),
    /// The length part is not a number from 0 to 255.
    #[error("prefix {0:?}: bad length")]
    BadLength(String),
}

/// An IPv6 prefix: an address and how many of its leading bits count.
///
/// Host bits are always zero: [`Prefix6::new`] refuses "2001:db8::1/32"
/// for the reason [`Prefix4::new`](super::Prefix4::new) refuses
/// "10.0.0.1/8" (a host pasted where a network was meant; Linux refuses it
/// too). [`Prefix6::new_masked`] masks on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

/// The network mask of a prefix length (0 for /0; no shift by 128).
pub(crate) fn mask6_of(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

impl Prefix6 {
    /// The default route, ::/0.
    pub const DEFAULT: Prefix6 = Prefix6 {
        addr: Ipv6Addr::UNSPECIFIED,
        len: 0,
    };

    /// A prefix; refused if `len > 128` or if host bits are set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, Prefix6Error> {
        if len > 128 {
            return Err(Prefix6Error::LengthTooLong(len));
        }
        let masked = Ipv6Addr::from(u128::from(addr) & mask6_of(len));
        if masked != addr {
            return Err(Prefix6Error::HostBitsSet { addr, len, masked });
        }
        Ok(Prefix6 { addr, len })
    }

    /// The prefix of `len` bits that contains `addr` (host bits cleared);
    /// refused only if `len > 128`.
    pub fn new_masked(addr: Ipv6Addr, len: u8) -> Result<Self, Prefix6Error> {
        if len > 128 {
            return Err(Prefix6Error::LengthTooLong(len));
        }
        let addr = Ipv6Addr::from(u128::from(addr) & mask6_of(len));
        Ok(Prefix6 { addr, len })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length, 0 to 128.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network mask as an integer.
    pub fn mask(&self) -> u128 {
        mask6_of(self.len)
    }

    /// The first address of the prefix, as an integer.
    pub fn first(&self) -> u128 {
        u128::from(self.addr)
    }

    /// The last address of the prefix, as an integer.
    pub fn last(&self) -> u128 {
        self.first() | !self.mask()
    }

    /// True if `addr` is inside the prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & self.mask() == self.first()
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix6 {
    type Err = Prefix6Error;

    /// Parses "2001:db8::/32"; the length is required and host bits must
    /// be zero, as for [`Prefix6::new`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| Prefix6Error::MissingLength(s.to_owned()))?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| Prefix6Error::BadAddress(s.to_owned()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| Prefix6Error::BadLength(s.to_owned()))?;
        Prefix6::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let p: Prefix6 = "2001:db8::/32".parse().unwrap();
        assert_eq!(p.addr(), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
        assert_eq!(p.prefix_len(), 32);
        assert_eq!(p.to_string(), "2001:db8::/32");
        assert_eq!(p.first(), 0x2001_0db8_u128 << 96);
        assert_eq!(p.last(), (0x2001_0db8_u128 << 96) | ((1u128 << 96) - 1));
        assert_eq!("::/0".parse::<Prefix6>().unwrap(), Prefix6::DEFAULT);
        assert_eq!(Prefix6::DEFAULT.last(), u128::MAX);
        let host: Prefix6 = "2001:db8::1/128".parse().unwrap();
        assert_eq!(host.first(), host.last());
        assert_eq!(host.mask(), u128::MAX);
    }

    #[test]
    fn refuses_bad_text() {
        assert!(matches!(
            "2001:db8::1/32".parse::<Prefix6>(),
            Err(Prefix6Error::HostBitsSet { masked, .. })
                if masked == Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)
        ));
        assert_eq!(
            "2001:db8::/129".parse::<Prefix6>(),
            Err(Prefix6Error::LengthTooLong(129))
        );
        assert!(matches!(
            "2001:db8::".parse::<Prefix6>(),
            Err(Prefix6Error::MissingLength(_))
        ));
        assert!(matches!(
            "10.0.0.0/8".parse::<Prefix6>(),
            Err(Prefix6Error::BadAddress(_))
        ));
        assert!(matches!(
            "2001:db8::/x".parse::<Prefix6>(),
            Err(Prefix6Error::BadLength(_))
        ));
    }

    #[test]
    fn masked_constructor_clears_host_bits() {
        let a: Ipv6Addr = "2001:db8:1234:5678::1".parse().unwrap();
        let p = Prefix6::new_masked(a, 36).unwrap();
        // 0x1234: the first 4 bits (1) kept, the rest cleared.
        assert_eq!(p.to_string(), "2001:db8:1000::/36");
        assert!(p.contains(a));
        assert!(p.contains("2001:db8:1fff:ffff::".parse().unwrap()));
        assert!(!p.contains("2001:db8:2000::".parse().unwrap()));
        assert_eq!(
            Prefix6::new_masked(a, 129),
            Err(Prefix6Error::LengthTooLong(129))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,48}") {
            let _ = s.parse::<Prefix6>();
        }

        #[test]
        fn display_round_trips(a in any::<u128>(), len in 0u8..=128) {
            let p = Prefix6::new_masked(Ipv6Addr::from(a), len).unwrap();
            prop_assert_eq!(p.to_string().parse::<Prefix6>(), Ok(p));
            prop_assert!(p.contains(Ipv6Addr::from(a)));
        }
    }
}
