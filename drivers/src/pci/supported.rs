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
    /// Most RX and TX queues the hardware gives one VF. Where the driver
    /// negotiates its queues with the PF (ixgbevf GET_QUEUES, iavf
    /// num_queue_pairs) the PF may grant fewer; igbvf has no negotiation,
    /// so this is what it advertises.
    pub max_queues: u16,
    /// Device-specific behaviours the driver must handle.
    pub quirks: Quirks,
}

/// Device-specific behaviours, as a small bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quirks(u32);

impl Quirks {
    /// None.
    pub const NONE: Quirks = Quirks(0);
    /// The VLAN field of an RX descriptor whose status has LB (a frame
    /// looped back from another pool of the same port) is big-endian: I350
    /// VF (nic-facts-igbvf.md C.4.1 "VLAN field", C.9 #14).
    pub const RX_LB_VLAN_BSWAP: Quirks = Quirks(1 << 0);

    /// Are all quirks of `q` set?
    pub const fn contains(self, q: Quirks) -> bool {
        self.0 & q.0 == q.0
    }

    /// The union of both sets.
    pub const fn union(self, q: Quirks) -> Quirks {
        Quirks(self.0 | q.0)
    }
}

const fn intel(
    device_id: u16,
    driver: DriverKind,
    name: &'static str,
    max_queues: u16,
    quirks: Quirks,
) -> SupportedDevice {
    SupportedDevice {
        vendor_id: INTEL,
        device_id,
        driver,
        name,
        max_queues,
        quirks,
    }
}

/// The 82576 VF's entry (QEMU's igbvf, C.10).
pub const IGBVF_82576: SupportedDevice =
    intel(0x10ca, DriverKind::Igbvf, "82576 VF", 2, Quirks::NONE);
/// The I350 VF's entry.
pub const IGBVF_I350: SupportedDevice = intel(
    0x1520,
    DriverKind::Igbvf,
    "I350 VF",
    1,
    Quirks::RX_LB_VLAN_BSWAP,
);

/// Every device fastpath drives. The Hyper-V variants (0x152D, 0x152F,
/// 0x152E, 0x1530, ...) use another transport and are left out, as the
/// facts files say.
///
/// Queue counts: igbvf from nic-facts-igbvf.md C.8 (82576 VF 2 + 2, I350
/// VF 1 + 1; on an 82576 VF, RX queue 1 only receives through pool RSS,
/// which the Linux PF never turns on for a VF, so under a Linux PF, and in
/// QEMU, it stays empty: see C.8 "RSS" and C.10.2); ixgbevf from
/// nic-facts.md A.5.4 (hardware maximum 8, the PF grants fewer through
/// GET_QUEUES); iavf from B.8 #9 (16 queue pairs in base mode, the PF
/// grants num_queue_pairs).
pub const SUPPORTED_DEVICES: &[SupportedDevice] = &[
    // docs/facts/nic-facts-igbvf.md C.1 (linux igbvf vf.h, DPDK e1000_hw.h)
    IGBVF_82576,
    IGBVF_I350,
    // docs/facts/nic-facts.md A.1 (linux ixgbe_type.h, DPDK ixgbe defines.h)
    intel(0x10ed, DriverKind::Ixgbevf, "82599 VF", 8, Quirks::NONE),
    intel(0x1515, DriverKind::Ixgbevf, "X540 VF", 8, Quirks::NONE),
    intel(0x1565, DriverKind::Ixgbevf, "X550 VF", 8, Quirks::NONE),
    intel(0x15a8, DriverKind::Ixgbevf, "X550EM_x VF", 8, Quirks::NONE),
    intel(0x15c5, DriverKind::Ixgbevf, "X550EM_a VF", 8, Quirks::NONE),
    intel(0x57ad, DriverKind::Ixgbevf, "E610 VF", 8, Quirks::NONE),
    // docs/facts/nic-facts.md B.1 (iavf_devids.h)
    intel(0x154c, DriverKind::Iavf, "XL710/X710 VF", 16, Quirks::NONE),
    intel(0x1889, DriverKind::Iavf, "Adaptive VF", 16, Quirks::NONE),
    intel(0x37cd, DriverKind::Iavf, "X722 VF", 16, Quirks::NONE),
    intel(0x374d, DriverKind::Iavf, "X722 VF (A0)", 16, Quirks::NONE),
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

/// "8086:10ca 82576 VF (igbvf), ..." for error messages: the devices whose
/// driver is built, not every device the table knows.
pub(super) fn supported_list() -> String {
    SUPPORTED_DEVICES
        .iter()
        .filter(|d| d.driver.is_built())
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

    /// C.8: an I350 VF has one queue pair, an 82576 VF two; only the I350
    /// byte-swaps the VLAN of looped-back frames (C.9 #14).
    #[test]
    fn igbvf_queue_counts_and_quirks_by_device() {
        let d82576 = lookup(0x8086, 0x10ca).unwrap();
        let i350 = lookup(0x8086, 0x1520).unwrap();
        assert_eq!((d82576.max_queues, i350.max_queues), (2, 1));
        assert!(!d82576.quirks.contains(Quirks::RX_LB_VLAN_BSWAP));
        assert!(i350.quirks.contains(Quirks::RX_LB_VLAN_BSWAP));
        assert_eq!(*d82576, IGBVF_82576);
        assert_eq!(*i350, IGBVF_I350);
        for d in SUPPORTED_DEVICES {
            assert!(d.max_queues >= 1, "{d:?}");
        }
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
            message.starts_with(
                "0000:3b:00.0 is 8086:1572, not a supported VF (supported: \
                 8086:10ca 82576 VF (igbvf), 8086:1520 I350 VF (igbvf), 8086:10ed 82599 VF (ixgbevf), \
                 8086:1515 X540 VF (ixgbevf), 8086:1565 X550 VF (ixgbevf), 8086:15a8 X550EM_x VF \
                 (ixgbevf), 8086:15c5 X550EM_a VF (ixgbevf), 8086:57ad E610 VF (ixgbevf), 8086:154c \
                 XL710/X710 VF (iavf), 8086:1889 Adaptive VF (iavf), 8086:37cd X722 VF (iavf), \
                 8086:374d X722 VF (A0) (iavf)): "
            ),
            "{message}"
        );
        assert!(message.contains("AF_PACKET port"), "{message}");
        // Only devices whose driver is built are offered.
        for d in SUPPORTED_DEVICES {
            let id = format!("{:04x}:{:04x}", d.vendor_id, d.device_id);
            assert_eq!(
                message.contains(&id),
                d.driver.is_built(),
                "{id}: {message}"
            );
        }
        assert_eq!(
            driver_for(address, 0x8086, 0x10ca).map(|d| d.driver).ok(),
            Some(DriverKind::Igbvf)
        );
    }
}
