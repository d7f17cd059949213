//! A port as an operator names it: `null`, `ring`, `afpacket:IFACE`, or a
//! PCI address.
//!
//! The same spelling serves the command line (`--ports`) and, later, a
//! fast-path.env `FP_PORTS` list. New kinds (simulated VFs next) are new
//! variants with their own `kind:` prefix; matches on [`PortSpec`] are
//! exhaustive on purpose, so each user of a new kind is pointed at by the
//! compiler.

use drivers::pci::{PciAddress, PciAddressError};
use std::fmt;
use std::str::FromStr;

/// The prefix of an AF_PACKET port spec.
pub const AF_PACKET_PREFIX: &str = "afpacket:";

/// Bytes of an interface name, NUL excluded (Linux IFNAMSIZ is 16 with it).
pub const MAX_IFNAME_LEN: usize = 15;

/// A port as given by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// RX makes packets, TX frees them (DPDK's net_null).
    Null,
    /// In-memory port; consecutive `ring` ports are connected in pairs.
    Ring,
    /// A kernel network interface through an AF_PACKET socket.
    AfPacket(InterfaceName),
    /// A VF at this PCI address, driven through vfio-pci by the driver the
    /// supported-device table names for it.
    Pci(PciAddress),
}

/// A Linux network interface name, checked as the kernel checks one
/// (net/core/dev.c `dev_valid_name`): 1 to 15 bytes, not "." or "..", no
/// '/', ':' or whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a port spec was rejected. Each variant quotes what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// Not a kind we know, nor a PCI address.
    #[error(
        "unknown port {given:?}: expected null, ring, afpacket:IFACE or a PCI address \
         such as 0000:01:10.0 ({pci})"
    )]
    Unknown {
        /// The spec.
        given: String,
        /// Why it is not a PCI address either.
        pci: PciAddressError,
    },
    /// `afpacket:` followed by something the kernel would not take as an
    /// interface name.
    #[error(
        "{given:?}: {name:?} is not an interface name (1 to {MAX_IFNAME_LEN} bytes, \
         not \".\" or \"..\", no '/', ':' or whitespace)"
    )]
    BadInterfaceName {
        /// The spec.
        given: String,
        /// The name part.
        name: String,
    },
}

impl FromStr for InterfaceName {
    type Err = ();
    fn from_str(name: &str) -> Result<Self, ()> {
        let ok = !name.is_empty()
            && name.len() <= MAX_IFNAME_LEN
            && name != "."
            && name != ".."
            && !name
                .chars()
                .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace());
        if ok {
            Ok(InterfaceName(name.to_string()))
        } else {
            Err(())
        }
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;
    fn from_str(s: &str) -> Result<Self, PortSpecError> {
        match s {
            "null" => Ok(PortSpec::Null),
            "ring" => Ok(PortSpec::Ring),
            _ => {
                if let Some(name) = s.strip_prefix(AF_PACKET_PREFIX) {
                    return name.parse().map(PortSpec::AfPacket).map_err(|()| {
                        PortSpecError::BadInterfaceName {
                            given: s.to_string(),
                            name: name.to_string(),
                        }
                    });
                }
                s.parse()
                    .map(PortSpec::Pci)
                    .map_err(|pci| PortSpecError::Unknown {
                        given: s.to_string(),
                        pci,
                    })
            }
        }
    }
}

/// Written back as it parses.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Null => f.write_str("null"),
            PortSpec::Ring => f.write_str("ring"),
            PortSpec::AfPacket(name) => write!(f, "{AF_PACKET_PREFIX}{name}"),
            PortSpec::Pci(a) => write!(f, "{a}"),
        }
    }
}

impl PortSpec {
    /// Whether this port is a device that DMAs into the pool (it then
    /// needs hugepage memory mapped for the device).
    pub fn is_device(&self) -> bool {
        matches!(self, PortSpec::Pci(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_parses_and_prints_back() {
        for s in [
            "null",
            "ring",
            "afpacket:veth0",
            "afpacket:eth0.100",
            "0000:01:10.0",
        ] {
            let p: PortSpec = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "01:10.4".parse::<PortSpec>().unwrap(),
            PortSpec::Pci("0000:01:10.4".parse().unwrap())
        );
        assert!("0000:01:10.0".parse::<PortSpec>().unwrap().is_device());
        assert!(!"afpacket:lo".parse::<PortSpec>().unwrap().is_device());
    }

    #[test]
    fn bad_specs_are_named() {
        let e = "warp".parse::<PortSpec>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown port \"warp\": expected null, ring, afpacket:IFACE or a PCI address such as 0000:01:10.0"),
            "{e}"
        );
        for bad in [
            "afpacket:",
            "afpacket:a-name-far-too-long",
            "afpacket:.",
            "afpacket:..",
            "afpacket:a/b",
            "afpacket:a:b",
            "afpacket:a b",
            "afpacket:a\0",
        ] {
            let e = bad.parse::<PortSpec>().unwrap_err();
            assert!(
                matches!(e, PortSpecError::BadInterfaceName { .. }),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        // 15 bytes is the longest name.
        assert!("afpacket:abcdefghijklmno".parse::<PortSpec>().is_ok());
        assert!("eth0".parse::<PortSpec>().is_err());
        assert!("Null".parse::<PortSpec>().is_err());
    }

    proptest! {
        /// Any text is a port that prints back to itself, or an error that
        /// quotes it.
        #[test]
        fn any_text_parses_back_or_is_quoted(s in "(afpacket:|null|ring|0000:)?\\PC{0,20}") {
            match s.parse::<PortSpec>() {
                Ok(p) => prop_assert_eq!(p.to_string().parse::<PortSpec>(), Ok(p)),
                Err(e) => {
                    let quoted = format!("{s:?}");
                    prop_assert!(e.to_string().contains(&quoted), "{}", e);
                }
            }
        }
    }
}
