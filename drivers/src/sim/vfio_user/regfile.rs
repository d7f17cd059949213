//! The smallest real device: a VF's config space ([`VfLayout`]) over a
//! plain register file. It has no behaviour (no reset bits, no mailbox or
//! admin queue, no queues): the guest's driver finds and maps it, and its
//! probe stops where a real VF would answer (ixgbevf: the PF mailbox;
//! iavf: the admin queue). It shows the path from the guest's driver to
//! the server works before a model stands behind it.

use super::config_space::PciConfigSpace;
use super::device::{DeviceContext, VfioUserDevice};
use super::vf_layout::{VfLayout, IXGBE_82599_VF};

/// A VF whose BAR0 is 4-byte registers that read back what was written,
/// starting from the layout's reset values.
#[derive(Debug)]
pub struct RegisterFileVf {
    config: PciConfigSpace,
    layout: VfLayout,
    bar0: Vec<u32>,
    /// BAR0 reads seen, to tell the guest reached the server.
    pub reads: u64,
    /// BAR0 writes seen.
    pub writes: u64,
}

impl Default for RegisterFileVf {
    /// The 82599 VF.
    fn default() -> Self {
        Self::new(VfLayout::ixgbevf(IXGBE_82599_VF.device))
    }
}

impl RegisterFileVf {
    /// The function of `layout` with its registers out of reset.
    ///
    /// # Panics
    /// If a reset value lies outside BAR0: the layouts are constants of
    /// this crate, not guest input.
    pub fn new(layout: VfLayout) -> Self {
        let mut d = RegisterFileVf {
            config: layout.config_space(),
            layout,
            bar0: vec![0; (layout.bar0_size / 4) as usize],
            reads: 0,
            writes: 0,
        };
        d.load_reset_values();
        d
    }

    fn load_reset_values(&mut self) {
        self.bar0.fill(0);
        for &(offset, value) in self.layout.reset_values {
            self.bar0[offset as usize / 4] = value;
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

impl VfioUserDevice for RegisterFileVf {
    fn config_space(&mut self) -> &mut PciConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], _ctx: &mut DeviceContext) {
        self.reads += u64::from(bar == 0);
        let v = self.slot(bar, offset, data.len()).map_or(0, |r| *r);
        // Other widths or BARs read as zero: ixgbevf and iavf only use
        // dwords.
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
        self.load_reset_values();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::vfio_user::vf_layout::IAVF_ADAPTIVE_VF;

    fn read(d: &mut RegisterFileVf, offset: u64) -> u32 {
        let mut b = [0; 4];
        d.bar_read(0, offset, &mut b, &mut DeviceContext::default());
        u32::from_le_bytes(b)
    }

    #[test]
    fn dword_registers_read_back_and_reset_clears() {
        let mut d = RegisterFileVf::default();
        let mut ctx = DeviceContext::default();
        d.bar_write(0, 0x2fc, &0xdead_beefu32.to_le_bytes(), &mut ctx);
        assert_eq!(read(&mut d, 0x2fc), 0xdead_beef);
        assert_eq!(read(&mut d, 0x4000), 0, "past the BAR");
        d.reset(&mut ctx);
        assert_eq!(read(&mut d, 0x2fc), 0);
        assert_eq!((d.reads, d.writes), (3, 1));
        assert_eq!(d.config_space().read16(0), 0x8086);
        assert_eq!(d.config_space().read16(2), 0x10ed);
    }

    /// The iavf register file: 64 KiB of registers, VFGEN_RSTAT reads
    /// VFACTIVE out of reset and again after an FLR, the admin queue
    /// registers read back what the driver wrote and nothing answers.
    #[test]
    fn iavf_register_file_starts_active_and_keeps_the_admin_queue() {
        let mut d = RegisterFileVf::new(VfLayout::iavf(IAVF_ADAPTIVE_VF));
        let mut ctx = DeviceContext::default();
        assert_eq!(d.config_space().read16(2), 0x1889);
        assert_eq!(read(&mut d, 0x8800), 2, "VFGEN_RSTAT = VFR_VFACTIVE");
        // ATQLEN = 32 entries | ENABLE, then the doorbell: ATQH stays 0.
        d.bar_write(0, 0x6800, &0x8000_0020u32.to_le_bytes(), &mut ctx);
        d.bar_write(0, 0x8400, &1u32.to_le_bytes(), &mut ctx);
        assert_eq!(read(&mut d, 0x6800), 0x8000_0020);
        assert_eq!(read(&mut d, 0x6400), 0, "ATQH: nobody took the command");
        assert_eq!(read(&mut d, 0xd03c), 0, "VFQF_HLUT(15) is inside BAR0");
        d.bar_write(0, 0x8800, &0u32.to_le_bytes(), &mut ctx);
        d.reset(&mut ctx);
        assert_eq!(read(&mut d, 0x8800), 2, "VFACTIVE again after the FLR");
        assert_eq!(read(&mut d, 0x6800), 0);
    }
}
