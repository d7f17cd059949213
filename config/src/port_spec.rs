//! A port as an operator names it: `null`, `ring`, `afpacket:IFACE`,
//! `sim:ixgbevf[:MODEL]`, `sim:iavf[:MODEL]`, or a PCI address.
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
    /// (`sim:ixgbevf`, `sim:ixgbevf:x550`, `sim:iavf`, `sim:iavf:avf`).
    Sim(SimModel),
}

/// A device a simulated port models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimModel {
    /// An ixgbevf VF (`sim:ixgbevf[:MODEL]`).
    Ixgbevf(IxgbevfModel),
    /// An iavf VF (`sim:iavf[:MODEL]`).
    Iavf(IavfModel),
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

/// Which iavf VF a `sim:iavf` port models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IavfModel {
    /// X710/XL710 VF, 8086:154c, behind an i40e PF (`xl710`, or `x710`).
    /// The default (`sim:iavf`): the classic iavf VF, the one the driver
    /// was first written for (as i40evf, for the 700 series); the adaptive
    /// VF is asked for by name.
    Xl710,
    /// Adaptive VF, 8086:1889, behind an ice PF: what E810 VFs present
    /// (`avf`, or `e810`).
    Avf,
}

/// The models of one `sim:` device, by the names a spec gives them.
pub trait NamedModel: Copy + PartialEq + 'static {
    /// The device, as in `sim:<device>`.
    const DEVICE: &'static str;
    /// Every model, in the order messages list them.
    const ALL: &'static [Self];
    /// The model of `sim:<device>` alone.
    const DEFAULT: Self;
    /// The name a spec prints (`sim:<device>:<name>`).
    fn name(self) -> &'static str;
    /// Other names a spec may give it.
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }
}

impl NamedModel for IxgbevfModel {
    const DEVICE: &'static str = "ixgbevf";
    const ALL: &'static [IxgbevfModel] = &[
        IxgbevfModel::X82599,
        IxgbevfModel::X540,
        IxgbevfModel::X550,
        IxgbevfModel::X550EmX,
    ];
    const DEFAULT: IxgbevfModel = IxgbevfModel::X82599;

    fn name(self) -> &'static str {
        match self {
            IxgbevfModel::X82599 => "82599",
            IxgbevfModel::X540 => "x540",
            IxgbevfModel::X550 => "x550",
            IxgbevfModel::X550EmX => "x550em_x",
        }
    }
}

impl NamedModel for IavfModel {
    const DEVICE: &'static str = "iavf";
    const ALL: &'static [IavfModel] = &[IavfModel::Xl710, IavfModel::Avf];
    const DEFAULT: IavfModel = IavfModel::Xl710;

    fn name(self) -> &'static str {
        match self {
            IavfModel::Xl710 => "xl710",
            IavfModel::Avf => "avf",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            IavfModel::Xl710 => &["x710"],
            IavfModel::Avf => &["e810"],
        }
    }
}

/// The names of `M`'s models for messages, aliases after a slash:
/// "82599, x540, ...", "xl710/x710, avf/e810".
fn model_names<M: NamedModel>() -> String {
    M::ALL
        .iter()
        .map(|m| {
            std::iter::once(m.name())
                .chain(m.aliases().iter().copied())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The simulated devices and their models, for messages.
fn sim_devices() -> String {
    format!(
        "sim:{}[:MODEL] (MODEL one of {}) or sim:{}[:MODEL] (MODEL one of {})",
        IxgbevfModel::DEVICE,
        model_names::<IxgbevfModel>(),
        IavfModel::DEVICE,
        model_names::<IavfModel>()
    )
}

/// The model `model` names among `M`'s (`None`: the default).
fn parse_model<M: NamedModel>(given: &str, model: Option<&str>) -> Result<M, PortSpecError> {
    let Some(model) = model else {
        return Ok(M::DEFAULT);
    };
    M::ALL
        .iter()
        .copied()
        .find(|m| m.name() == model || m.aliases().contains(&model))
        .ok_or_else(|| PortSpecError::UnknownModel {
            given: given.to_string(),
            device: M::DEVICE,
            model: model.to_string(),
            models: model_names::<M>(),
        })
}

impl fmt::Display for SimModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimModel::Ixgbevf(m) => write!(f, "{}:{}", IxgbevfModel::DEVICE, m.name()),
            SimModel::Iavf(m) => write!(f, "{}:{}", IavfModel::DEVICE, m.name()),
        }
    }
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
        "unknown port {given:?}: expected null, ring, afpacket:IFACE, sim:ixgbevf, sim:iavf or \
         a PCI address such as 0000:01:10.0 ({pci})"
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
        "{given:?}: no model of {device:?}; simulated ports are {}",
        sim_devices()
    )]
    UnknownSimDevice {
        /// The spec.
        given: String,
        /// The device part.
        device: String,
    },
    /// `sim:DEVICE:` followed by a model there is none of.
    #[error("{given:?}: no {device} model {model:?}; the models are {models}")]
    UnknownModel {
        /// The spec.
        given: String,
        /// The device ("ixgbevf").
        device: &'static str,
        /// The model part.
        model: String,
        /// The device's models, as [`model_names`] lists them.
        models: String,
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
        match kind {
            IxgbevfModel::DEVICE => parse_model(given, model).map(SimModel::Ixgbevf),
            IavfModel::DEVICE => parse_model(given, model).map(SimModel::Iavf),
            _ => Err(PortSpecError::UnknownSimDevice {
                given: given.to_string(),
                device: device.to_string(),
            }),
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
            "sim:iavf:xl710",
            "sim:iavf:avf",
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
        // The iavf default is the X710/XL710 VF; the aliases print as the
        // model's name.
        for (s, want, back) in [
            ("sim:iavf", IavfModel::Xl710, "sim:iavf:xl710"),
            ("sim:iavf:x710", IavfModel::Xl710, "sim:iavf:xl710"),
            ("sim:iavf:e810", IavfModel::Avf, "sim:iavf:avf"),
        ] {
            let p: PortSpec = s.parse().unwrap();
            assert_eq!(p, PortSpec::Sim(SimModel::Iavf(want)), "{s}");
            assert_eq!(p.to_string(), back);
            assert!(!p.is_device() && p.is_vf());
        }
    }

    #[test]
    fn bad_sim_specs_say_what_there_is() {
        let devices = "simulated ports are sim:ixgbevf[:MODEL] (MODEL one of 82599, x540, x550, \
                       x550em_x) or sim:iavf[:MODEL] (MODEL one of xl710/x710, avf/e810)";
        for (bad, want) in [
            (
                "sim:igbvf",
                format!("\"sim:igbvf\": no model of \"igbvf\"; {devices}"),
            ),
            ("sim:", format!("\"sim:\": no model of \"\"; {devices}")),
            (
                "sim:i40evf",
                format!("\"sim:i40evf\": no model of \"i40evf\"; {devices}"),
            ),
            (
                "sim:iavf:foo",
                "\"sim:iavf:foo\": no iavf model \"foo\"; the models are xl710/x710, avf/e810"
                    .to_string(),
            ),
            (
                "sim:iavf:",
                "\"sim:iavf:\": no iavf model \"\"; the models are xl710/x710, avf/e810"
                    .to_string(),
            ),
            (
                "sim:iavf:XL710",
                "\"sim:iavf:XL710\": no iavf model \"XL710\"; the models are xl710/x710, avf/e810"
                    .to_string(),
            ),
            (
                "sim:iavf:82599",
                "\"sim:iavf:82599\": no iavf model \"82599\"; the models are xl710/x710, avf/e810"
                    .to_string(),
            ),
            (
                "sim:ixgbevf:x999",
                "\"sim:ixgbevf:x999\": no ixgbevf model \"x999\"; the models are 82599, x540, \
                 x550, x550em_x"
                    .to_string(),
            ),
            (
                "sim:ixgbevf:",
                "\"sim:ixgbevf:\": no ixgbevf model \"\"; the models are 82599, x540, x550, \
                 x550em_x"
                    .to_string(),
            ),
            (
                "sim:ixgbevf:X550",
                "\"sim:ixgbevf:X550\": no ixgbevf model \"X550\"; the models are 82599, x540, \
                 x550, x550em_x"
                    .to_string(),
            ),
        ] {
            assert_eq!(bad.parse::<PortSpec>().unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn bad_specs_are_named() {
        let e = "warp".parse::<PortSpec>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown port \"warp\": expected null, ring, afpacket:IFACE, sim:ixgbevf, sim:iavf or a PCI address such as 0000:01:10.0"),
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
        fn any_text_parses_back_or_is_quoted(s in "(afpacket:|null|ring|0000:|sim:|sim:ixgbevf:?|sim:iavf:?)?\\PC{0,20}") {
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
