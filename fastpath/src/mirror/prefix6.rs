//! A minimal IPv6 prefix, until the FIB's own `Prefix6` (branch fib6)
//! lands on main; then this file goes and the FIB's type is used instead.

use std::fmt;
use std::net::Ipv6Addr;

/// Why an IPv6 prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Prefix6Error {
    /// The length is above 128.
    #[error("IPv6 prefix length {0} is above 128")]
    LengthTooLong(u8),
    /// Bits beyond the prefix length are set.
    #[error("{addr}/{len} has host bits set")]
    HostBitsSet {
        /// The address given.
        addr: Ipv6Addr,
        /// The length given.
        len: u8,
    },
}

/// An IPv6 prefix: an address with its host bits zero, and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix6 {
    addr: Ipv6Addr,
    len: u8,
}

fn mask_of(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

impl Prefix6 {
    /// A prefix; refused if `len > 128` or if host bits are set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, Prefix6Error> {
        if len > 128 {
            return Err(Prefix6Error::LengthTooLong(len));
        }
        if u128::from(addr) & !mask_of(len) != 0 {
            return Err(Prefix6Error::HostBitsSet { addr, len });
        }
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
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_and_host_bits() {
        let a: Ipv6Addr = "2001:db8::".parse().unwrap();
        assert_eq!(Prefix6::new(a, 32).unwrap().to_string(), "2001:db8::/32");
        assert_eq!(Prefix6::new(a, 129), Err(Prefix6Error::LengthTooLong(129)));
        let h: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert!(Prefix6::new(h, 64).is_err());
        assert!(Prefix6::new(h, 128).is_ok());
        assert!(Prefix6::new(Ipv6Addr::UNSPECIFIED, 0).is_ok());
    }
}
