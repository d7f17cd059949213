//! The PCI devices fastpath has a poll-mode driver for.

use std::fmt;

use super::address::PciAddress;
use super::device::PciDevice;
use super::error::PciError;

/// Intel's PCI vendor id.
pub const INTEL: u16 = 0x8086;

/// Which poll-mode driver runs a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// 82576 / I350 VF (advanced descriptors, mailbox to the igb PF).
    Igbvf,
    /// 82599 / X540 / X550 / E610 VF (mailbox to the ixgbe PF).
    Ixgbevf,
    /// XL710 / X710 / X722 VF and the Adaptive VF (virtchnl over the admin queue).
    Iavf,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::Igbvf => "igbvf",
            DriverKind::Ixgbevf => "ixgbevf",
            DriverKind::Iavf => "iavf",
        })
    }
}

/// One supported device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedDevice {
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// The driver for it.
    pub driver: DriverKind,
    /// A human name.
    pub name: &'static str,
}

const fn intel(device_id: u16, driver: DriverKind, name: &'static str) -> SupportedDevice {
    SupportedDevice {
        vendor_id: INTEL,
        device_id,
        driver,
        name,
    }
}

/// Every device fastpath drives. The Hyper-V variants (0x152D, 0x152F,
/// 0x152E, 0x1530, ...) use another transport and are left out, as the
/// facts files say.
pub const SUPPORTED_DEVICES: &[SupportedDevice] = &[
    // reference/nic-facts-igbvf.md C.1 (linux igbvf vf.h, DPDK e1000_hw.h)
    intel(0x10ca, DriverKind::Igbvf, "82576 VF"),
    intel(0x1520, DriverKind::Igbvf, "I350 VF"),
    // reference/nic-facts.md A.1 (linux ixgbe_type.h, DPDK ixgbe defines.h)
    intel(0x10ed, DriverKind::Ixgbevf, "82599 VF"),
    intel(0x1515, DriverKind::Ixgbevf, "X540 VF"),
    intel(0x1565, DriverKind::Ixgbevf, "X550 VF"),
    intel(0x15a8, DriverKind::Ixgbevf, "X550EM_x VF"),
    intel(0x15c5, DriverKind::Ixgbevf, "X550EM_a VF"),
    intel(0x57ad, DriverKind::Ixgbevf, "E610 VF"),
    // reference/nic-facts.md B.1 (iavf_devids.h)
    intel(0x154c, DriverKind::Iavf, "XL710/X710 VF"),
    intel(0x1889, DriverKind::Iavf, "Adaptive VF"),
    intel(0x37cd, DriverKind::Iavf, "X722 VF"),
    intel(0x374d, DriverKind::Iavf, "X722 VF (A0)"),
];

/// The supported device with these ids, if any.
pub fn lookup(vendor_id: u16, device_id: u16) -> Option<&'static SupportedDevice> {
    SUPPORTED_DEVICES
        .iter()
        .find(|d| d.vendor_id == vendor_id && d.device_id == device_id)
}

/// The driver for the device at `address` with these ids, or an error that
/// names it and lists what is supported.
pub fn driver_for(
    address: PciAddress,
    vendor_id: u16,
    device_id: u16,
) -> Result<&'static SupportedDevice, PciError> {
    lookup(vendor_id, device_id).ok_or(PciError::Unsupported {
        address,
        vendor_id,
        device_id,
    })
}

impl PciDevice {
    /// The supported-device entry for this device, or why there is none.
    pub fn supported(&self) -> Result<&'static SupportedDevice, PciError> {
        driver_for(self.address, self.vendor_id, self.device_id)
    }
}

/// "8086:10ca 82576 VF (igbvf), ..." for error messages.
pub(super) fn supported_list() -> String {
    SUPPORTED_DEVICES
        .iter()
        .map(|d| {
            format!(
                "{:04x}:{:04x} {} ({})",
                d.vendor_id, d.device_id, d.name, d.driver
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_map_to_their_driver() {
        assert_eq!(
            lookup(0x8086, 0x10ca).map(|d| d.driver),
            Some(DriverKind::Igbvf)
        );
        assert_eq!(
            lookup(0x8086, 0x1520).map(|d| d.driver),
            Some(DriverKind::Igbvf)
        );
        assert_eq!(
            lookup(0x8086, 0x10ed).map(|d| d.driver),
            Some(DriverKind::Ixgbevf)
        );
        assert_eq!(
            lookup(0x8086, 0x1565).map(|d| d.driver),
            Some(DriverKind::Ixgbevf)
        );
        assert_eq!(
            lookup(0x8086, 0x154c).map(|d| d.driver),
            Some(DriverKind::Iavf)
        );
        assert_eq!(
            lookup(0x8086, 0x1889).map(|d| d.driver),
            Some(DriverKind::Iavf)
        );
        // Hyper-V variants and other vendors are not ours.
        assert!(lookup(0x8086, 0x152d).is_none());
        assert!(lookup(0x15b3, 0x10ca).is_none());
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, a) in SUPPORTED_DEVICES.iter().enumerate() {
            for b in &SUPPORTED_DEVICES[i + 1..] {
                assert!(
                    (a.vendor_id, a.device_id) != (b.vendor_id, b.device_id),
                    "{a:?} twice"
                );
            }
        }
    }

    #[test]
    fn unsupported_device_error_names_it_and_the_supported_ones() {
        let address: PciAddress = "0000:3b:00.0".parse().expect("address");
        let err = driver_for(address, 0x8086, 0x1572).expect_err("X710 PF is not a VF");
        let message = err.to_string();
        assert!(
            message.starts_with("unsupported device 8086:1572 at 0000:3b:00.0 (supported: "),
            "{message}"
        );
        assert!(message.contains("8086:10ca 82576 VF (igbvf)"), "{message}");
        assert!(
            message.contains("8086:10ed 82599 VF (ixgbevf)"),
            "{message}"
        );
        assert!(
            message.contains("8086:154c XL710/X710 VF (iavf)"),
            "{message}"
        );
        assert_eq!(
            driver_for(address, 0x8086, 0x10ca).map(|d| d.driver).ok(),
            Some(DriverKind::Igbvf)
        );
    }
}
