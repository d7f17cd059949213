//! A port as an operator names it: `null`, `ring`, `afpacket:IFACE`,
//! `sim:ixgbevf[:MODEL]`, or a PCI address.
//!
//! The same spelling serves the command line (`--ports`) and, later, a
//! fast-path.env `FP_PORTS` list. New kinds are new variants with their
//! own `kind:` prefix; matches on [`PortSpec`] are exhaustive on purpose,
//! so each user of a new kind is pointed at by the compiler.

use drivers::pci::{PciAddress, PciAddressError};
use std::fmt;
use std::str::FromStr;

/// The prefix of an AF_PACKET port spec.
pub const AF_PACKET_PREFIX: &str = "afpacket:";

/// The prefix of a simulated port spec.
pub const SIM_PREFIX: &str = "sim:";

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
    /// A simulated VF: a device model with our driver on it, no hardware
    /// (`sim:ixgbevf`, `sim:ixgbevf:x550`).
    Sim(SimModel),
}

/// A device a simulated port models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimModel {
    /// An ixgbevf VF (`sim:ixgbevf[:MODEL]`).
    Ixgbevf(IxgbevfModel),
}

/// Which ixgbevf VF a `sim:ixgbevf` port models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IxgbevfModel {
    /// 82599 VF, 8086:10ed (the default: `sim:ixgbevf`).
    X82599,
    /// X540 VF, 8086:1515.
    X540,
    /// X550 VF, 8086:1565.
    X550,
    /// X550EM_x VF, 8086:15a8.
    X550EmX,
}

impl IxgbevfModel {
    /// Every model, in the order messages list them.
    pub const ALL: [IxgbevfModel; 4] = [
        IxgbevfModel::X82599,
        IxgbevfModel::X540,
        IxgbevfModel::X550,
        IxgbevfModel::X550EmX,
    ];

    /// The name in a spec (`sim:ixgbevf:<name>`).
    pub fn name(self) -> &'static str {
        match self {
            IxgbevfModel::X82599 => "82599",
            IxgbevfModel::X540 => "x540",
            IxgbevfModel::X550 => "x550",
            IxgbevfModel::X550EmX => "x550em_x",
        }
    }
}

impl fmt::Display for SimModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimModel::Ixgbevf(m) => write!(f, "ixgbevf:{}", m.name()),
        }
    }
}

/// The models of `sim:ixgbevf:MODEL`, for messages: "82599, x540, ...".
fn ixgbevf_model_names() -> String {
    IxgbevfModel::ALL.map(IxgbevfModel::name).join(", ")
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
        "unknown port {given:?}: expected null, ring, afpacket:IFACE, sim:ixgbevf or a PCI \
         address such as 0000:01:10.0 ({pci})"
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
    /// `sim:` followed by a device there is no model of.
    #[error(
        "{given:?}: no model of {device:?}; simulated ports are sim:ixgbevf or \
         sim:ixgbevf:MODEL (MODEL one of {})",
        ixgbevf_model_names()
    )]
    UnknownSimDevice {
        /// The spec.
        given: String,
        /// The device part.
        device: String,
    },
    /// `sim:ixgbevf:` followed by a model there is none of.
    #[error(
        "{given:?}: no ixgbevf model {model:?}; the models are {}",
        ixgbevf_model_names()
    )]
    UnknownIxgbevfModel {
        /// The spec.
        given: String,
        /// The model part.
        model: String,
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

impl SimModel {
    /// Parses what follows `sim:` in `given`.
    fn parse(given: &str, device: &str) -> Result<SimModel, PortSpecError> {
        let (kind, model) = match device.split_once(':') {
            Some((k, m)) => (k, Some(m)),
            None => (device, None),
        };
        if kind != "ixgbevf" {
            return Err(PortSpecError::UnknownSimDevice {
                given: given.to_string(),
                device: device.to_string(),
            });
        }
        let Some(model) = model else {
            return Ok(SimModel::Ixgbevf(IxgbevfModel::X82599));
        };
        IxgbevfModel::ALL
            .into_iter()
            .find(|m| m.name() == model)
            .map(SimModel::Ixgbevf)
            .ok_or_else(|| PortSpecError::UnknownIxgbevfModel {
                given: given.to_string(),
                model: model.to_string(),
            })
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;
    fn from_str(s: &str) -> Result<Self, PortSpecError> {
        match s {
            "null" => Ok(PortSpec::Null),
            "ring" => Ok(PortSpec::Ring),
            _ => {
                if let Some(device) = s.strip_prefix(SIM_PREFIX) {
                    return SimModel::parse(s, device).map(PortSpec::Sim);
                }
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
            PortSpec::Sim(d) => write!(f, "{SIM_PREFIX}{d}"),
        }
    }
}

impl PortSpec {
    /// Whether this port is a real device that DMAs into the pool through
    /// vfio (it then needs hugepage memory mapped for the device). A
    /// simulated VF is not: its model reaches any memory.
    pub fn is_device(&self) -> bool {
        matches!(self, PortSpec::Pci(_))
    }

    /// Whether this port is a VF, real or simulated: it holds a buffer
    /// for each of its RX and TX descriptors (the pool sizing counts
    /// them) and takes at most a TX ring of seeded bursts.
    pub fn is_vf(&self) -> bool {
        matches!(self, PortSpec::Pci(_) | PortSpec::Sim(_))
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
            "sim:ixgbevf:82599",
            "sim:ixgbevf:x540",
            "sim:ixgbevf:x550",
            "sim:ixgbevf:x550em_x",
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
        // The default model is the 82599's, and it prints in full.
        let sim: PortSpec = "sim:ixgbevf".parse().unwrap();
        assert_eq!(sim, PortSpec::Sim(SimModel::Ixgbevf(IxgbevfModel::X82599)));
        assert_eq!(sim.to_string(), "sim:ixgbevf:82599");
        // A simulated VF needs no vfio nor hugepages, but holds descriptors.
        assert!(!sim.is_device() && sim.is_vf());
        assert!("0000:01:10.0".parse::<PortSpec>().unwrap().is_vf());
        assert!(!"ring".parse::<PortSpec>().unwrap().is_vf());
    }

    #[test]
    fn bad_sim_specs_say_what_there_is() {
        for (bad, want) in [
            (
                "sim:igbvf",
                "\"sim:igbvf\": no model of \"igbvf\"; simulated ports are sim:ixgbevf or \
                 sim:ixgbevf:MODEL (MODEL one of 82599, x540, x550, x550em_x)",
            ),
            (
                "sim:",
                "\"sim:\": no model of \"\"; simulated ports are sim:ixgbevf or \
                 sim:ixgbevf:MODEL (MODEL one of 82599, x540, x550, x550em_x)",
            ),
            (
                "sim:ixgbevf:x999",
                "\"sim:ixgbevf:x999\": no ixgbevf model \"x999\"; the models are 82599, x540, \
                 x550, x550em_x",
            ),
            (
                "sim:ixgbevf:",
                "\"sim:ixgbevf:\": no ixgbevf model \"\"; the models are 82599, x540, x550, \
                 x550em_x",
            ),
            (
                "sim:ixgbevf:X550",
                "\"sim:ixgbevf:X550\": no ixgbevf model \"X550\"; the models are 82599, x540, \
                 x550, x550em_x",
            ),
        ] {
            assert_eq!(bad.parse::<PortSpec>().unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn bad_specs_are_named() {
        let e = "warp".parse::<PortSpec>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown port \"warp\": expected null, ring, afpacket:IFACE, sim:ixgbevf or a PCI address such as 0000:01:10.0"),
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
        fn any_text_parses_back_or_is_quoted(s in "(afpacket:|null|ring|0000:|sim:|sim:ixgbevf:?)?\\PC{0,20}") {
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
