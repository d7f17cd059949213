//! The smallest real device: an 82599 VF's config space over a plain
//! register file. It has no behaviour (no reset bits, no mailbox, no
//! queues): Linux's ixgbevf finds and maps it, and its probe stops where
//! a real VF would answer (the PF mailbox). It stands in until the ixgbevf
//! model implements [`VfioUserDevice`].

use super::config_space::{Bar, Msix, PciConfigSpace, PciIdentity};
use super::device::{DeviceContext, VfioUserDevice};

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
/// The VF's BAR0 (registers) and BAR3 (MSI-X table at 0, PBA at 0x2000):
/// 16 KiB each, as the 82599 VF (datasheet 9.3.6.1).
const BAR0_SIZE: u64 = 0x4000;
const BAR3_SIZE: u64 = 0x4000;
const MSIX_VECTORS: u16 = 3;

/// A VF whose BAR0 is 4-byte registers that read back what was written.
#[derive(Debug)]
pub struct RegisterFileVf {
    config: PciConfigSpace,
    bar0: Vec<u32>,
    /// BAR0 reads seen, to tell the guest reached the server.
    pub reads: u64,
    /// BAR0 writes seen.
    pub writes: u64,
}

impl Default for RegisterFileVf {
    fn default() -> Self {
        Self::new()
    }
}

impl RegisterFileVf {
    /// The VF with all registers zero.
    pub fn new() -> Self {
        RegisterFileVf {
            config: ixgbevf_config_space(IXGBE_82599_VF.device),
            bar0: vec![0; (BAR0_SIZE / 4) as usize],
            reads: 0,
            writes: 0,
        }
    }

    /// The register at `offset` if the access is one aligned dword.
    fn slot(&mut self, bar: u8, offset: u64, len: usize) -> Option<&mut u32> {
        if bar != 0 || len != 4 || !offset.is_multiple_of(4) {
            return None;
        }
        self.bar0.get_mut((offset / 4) as usize)
    }
}

/// The config space of an 82599 / X540 / X550 VF with device id `device`
/// (8086:10ed, 1515, 1565, 15a8): BAR0 registers, BAR3 MSI-X with 3
/// vectors, the PCIe capability.
pub fn ixgbevf_config_space(device: u16) -> PciConfigSpace {
    let bars = [
        Bar {
            index: 0,
            size: BAR0_SIZE,
        },
        Bar {
            index: 3,
            size: BAR3_SIZE,
        },
    ];
    let msix = Msix {
        vectors: MSIX_VECTORS,
        bar: 3,
        pba_offset: 0x2000,
    };
    let id = PciIdentity {
        device,
        subsystem: device,
        ..IXGBE_82599_VF
    };
    PciConfigSpace::endpoint(id, &bars, msix)
}

impl VfioUserDevice for RegisterFileVf {
    fn config_space(&mut self) -> &mut PciConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], _ctx: &mut DeviceContext) {
        self.reads += u64::from(bar == 0);
        let v = self.slot(bar, offset, data.len()).map_or(0, |r| *r);
        // Other widths or BARs read as zero: ixgbevf only uses dwords.
        data.fill(0);
        if data.len() == 4 {
            data.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8], _ctx: &mut DeviceContext) {
        self.writes += u64::from(bar == 0);
        if let (Some(r), Ok(b)) = (
            self.slot(bar, offset, data.len()),
            <[u8; 4]>::try_from(data),
        ) {
            *r = u32::from_le_bytes(b);
        }
    }

    fn reset(&mut self, _ctx: &mut DeviceContext) {
        self.bar0.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dword_registers_read_back_and_reset_clears() {
        let mut d = RegisterFileVf::new();
        let mut ctx = DeviceContext::default();
        d.bar_write(0, 0x2fc, &0xdead_beefu32.to_le_bytes(), &mut ctx);
        let mut b = [0; 4];
        d.bar_read(0, 0x2fc, &mut b, &mut ctx);
        assert_eq!(u32::from_le_bytes(b), 0xdead_beef);
        d.bar_read(0, BAR0_SIZE, &mut b, &mut ctx);
        assert_eq!(b, [0; 4], "past the BAR");
        d.reset(&mut ctx);
        d.bar_read(0, 0x2fc, &mut b, &mut ctx);
        assert_eq!(b, [0; 4]);
        assert_eq!((d.reads, d.writes), (3, 1));
        assert_eq!(d.config_space().read16(0), 0x8086);
        assert_eq!(d.config_space().read16(2), 0x10ed);
    }
}
