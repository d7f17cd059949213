//! Who a served VF says it is and how its BARs are laid out: the part of a
//! function that is the same whether a model or a plain register file
//! answers its registers.
//!
//! Both layouts are what Linux's own drivers accepted in the probe of
//! shared/reference/vmlab/vfio-user/REPORT.md: BAR0 registers and BAR3
//! with the MSI-X table at 0 and the PBA at 0x2000 (QEMU emulates both),
//! 64-bit prefetchable, MSI-X at 0x70 and PCIe at 0xa0 (config_space.rs).

use super::config_space::{Bar, Msix, PciConfigSpace, PciIdentity};

/// 82599 Virtual Function ids (Linux ixgbevf's `IXGBE_DEV_ID_82599_VF`,
/// Intel 82599 datasheet table 9-2).
pub const IXGBE_82599_VF: PciIdentity = PciIdentity {
    vendor: 0x8086,
    device: 0x10ed,
    class: 0x02_00_00,
    revision: 1,
    subsystem_vendor: 0x8086,
    subsystem: 0x10ed,
};

/// The Adaptive VF device id (nic-facts.md B.1; Linux iavf's
/// `IAVF_DEV_ID_ADAPTIVE_VF`), also what E810 PFs give their VFs.
pub const IAVF_ADAPTIVE_VF: u16 = 0x1889;
/// The XL710/X710 VF device id (nic-facts.md B.1, `IAVF_DEV_ID_VF`).
pub const IAVF_X710_VF: u16 = 0x154c;

/// VFGEN_RSTAT (nic-facts.md B.2) and its VFR_VFACTIVE state (B.2.1).
const IAVF_VFGEN_RSTAT: u32 = 0x8800;
const IAVF_VFR_VFACTIVE: u32 = 2;

/// A VF's identity and BARs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfLayout {
    /// Ids and class in config space.
    pub id: PciIdentity,
    /// BAR0 (the registers) size in bytes.
    pub bar0_size: u64,
    /// BAR3 (MSI-X table at 0, PBA at 0x2000) size in bytes.
    pub msix_bar_size: u64,
    /// MSI-X table size.
    pub msix_vectors: u16,
    /// BAR0 registers that do not read 0 once the function is out of
    /// reset, as (offset, value): what a register file must answer for
    /// the driver to go on. A model has its own.
    pub reset_values: &'static [(u32, u32)],
}

impl VfLayout {
    /// An 82599 / X540 / X550 VF with device id `device` (8086:10ed, 1515,
    /// 1565, 15a8): BAR0 and BAR3 of 16 KiB each (82599 datasheet
    /// 9.3.6.1), 3 MSI-X vectors (two queue vectors and the mailbox, as
    /// ixgbevf asks for). Every register reads 0 out of reset: the driver
    /// resets the VF itself (VFCTRL.RST) and then waits on the mailbox.
    pub const fn ixgbevf(device: u16) -> VfLayout {
        VfLayout {
            id: PciIdentity {
                device,
                subsystem: device,
                ..IXGBE_82599_VF
            },
            bar0_size: 0x4000,
            msix_bar_size: 0x4000,
            msix_vectors: 3,
            reset_values: &[],
        }
    }

    /// An iavf VF with device id `device` ([`IAVF_ADAPTIVE_VF`] or
    /// [`IAVF_X710_VF`]). BAR0 is 64 KiB: the highest register the driver
    /// uses is VFQF_HLUT(15) at 0xd03c (nic-facts.md B.1). 5 MSI-X
    /// vectors: vector 0 for the admin queue and 4 for queues, as the
    /// prototype served and Linux iavf accepted (its GET_VF_RESOURCES
    /// reply said max_vectors 5). Out of reset VFGEN_RSTAT reads
    /// VFR_VFACTIVE: the state a VF whose PF finished the reset is in
    /// (B.7), which the driver polls for before it sets up its admin
    /// queue (B.6 step 2).
    pub const fn iavf(device: u16) -> VfLayout {
        VfLayout {
            id: PciIdentity {
                device,
                subsystem: device,
                ..IXGBE_82599_VF
            },
            bar0_size: 0x1_0000,
            msix_bar_size: 0x4000,
            msix_vectors: 5,
            reset_values: &[(IAVF_VFGEN_RSTAT, IAVF_VFR_VFACTIVE)],
        }
    }

    /// The function's config space: BAR0, BAR3 with MSI-X, PCIe.
    pub fn config_space(&self) -> PciConfigSpace {
        let bars = [
            Bar {
                index: 0,
                size: self.bar0_size,
            },
            Bar {
                index: 3,
                size: self.msix_bar_size,
            },
        ];
        let msix = Msix {
            vectors: self.msix_vectors,
            bar: 3,
            pba_offset: 0x2000,
        };
        PciConfigSpace::endpoint(self.id, &bars, msix)
    }
}

/// The config space of an ixgbe-family VF with device id `device`
/// ([`VfLayout::ixgbevf`]).
pub fn ixgbevf_config_space(device: u16) -> PciConfigSpace {
    VfLayout::ixgbevf(device).config_space()
}

/// The config space of an iavf VF with device id `device`
/// ([`VfLayout::iavf`]), for the iavf model behind [`super::ServedModel`].
pub fn iavf_config_space(device: u16) -> PciConfigSpace {
    VfLayout::iavf(device).config_space()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r32(s: &PciConfigSpace, at: u64) -> u32 {
        let mut b = [0; 4];
        s.read(at, &mut b);
        u32::from_le_bytes(b)
    }

    /// BAR size as the guest's sizing finds it: write all ones, read back.
    fn bar_size(s: &mut PciConfigSpace, at: u64) -> u64 {
        s.write(at, &u32::MAX.to_le_bytes());
        s.write(at + 4, &u32::MAX.to_le_bytes());
        let lo = u64::from(r32(s, at) & !0xf);
        let hi = u64::from(r32(s, at + 4));
        !((hi << 32) | lo) + 1
    }

    #[test]
    fn iavf_ids_bars_and_msix() {
        for dev in [IAVF_ADAPTIVE_VF, IAVF_X710_VF] {
            let mut s = iavf_config_space(dev);
            assert_eq!(r32(&s, 0), u32::from(dev) << 16 | 0x8086);
            assert_eq!(r32(&s, 0x08) >> 8, 0x020000, "Ethernet controller");
            assert_eq!(r32(&s, 0x2c), u32::from(dev) << 16 | 0x8086);
            assert_eq!(bar_size(&mut s, 0x10), 0x1_0000, "BAR0 holds VFQF_HLUT(15)");
            assert_eq!(bar_size(&mut s, 0x1c), 0x4000);
            assert_eq!(s.read16(0x72) & 0x7ff, 4, "5 vectors (N-1)");
            assert_eq!(r32(&s, 0x74), 3, "table at BAR3 + 0");
            assert_eq!(r32(&s, 0x78), 0x2003, "PBA at BAR3 + 0x2000");
        }
    }

    #[test]
    fn ixgbevf_layout_is_the_82599_vf() {
        let mut s = ixgbevf_config_space(0x1515);
        assert_eq!(r32(&s, 0), 0x1515_8086);
        assert_eq!(bar_size(&mut s, 0x10), 0x4000);
        assert_eq!(s.read16(0x72) & 0x7ff, 2, "3 vectors (N-1)");
        assert!(VfLayout::ixgbevf(0x10ed).reset_values.is_empty());
        assert_eq!(VfLayout::ixgbevf(0x10ed).id, IXGBE_82599_VF);
    }
}
