//! The ixgbevf statistics registers as 64-bit totals: packet counters
//! wrap modulo 2^32, octet counters modulo 2^36, none can be cleared
//! (A.2 note, A.8 #9).

use super::regs::*;
use crate::mmio::RegisterSpace;
use crate::pmd::vf_stats::{HwCounter, VfStats};

/// The five VF-wide counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters([HwCounter; 5]);

impl Default for Counters {
    fn default() -> Self {
        Counters([
            HwCounter::bits32(VFGPRC),
            HwCounter::bits32(VFGPTC),
            HwCounter::split(VFGORC_LSB, VFGORC_MSB, STAT_OCTETS_BITS),
            HwCounter::split(VFGOTC_LSB, VFGOTC_MSB, STAT_OCTETS_BITS),
            HwCounter::bits32(VFMPRC),
        ])
    }
}

impl Counters {
    /// Start counting from the registers' current values (A.6 step 20).
    pub fn baseline<R: RegisterSpace + ?Sized>(&mut self, regs: &R) {
        for c in &mut self.0 {
            c.baseline(regs);
        }
    }

    /// Add what each register moved since the last read.
    pub fn update<R: RegisterSpace + ?Sized>(&mut self, regs: &R) {
        for c in &mut self.0 {
            c.update(regs);
        }
    }

    /// The totals.
    pub fn snapshot(&self) -> VfStats {
        let t = |i: usize| self.0[i].total();
        VfStats {
            rx_packets: t(0),
            tx_packets: t(1),
            rx_octets: t(2),
            tx_octets: t(3),
            rx_multicast: t(4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scripted_pf::ScriptedPf;
    use super::*;

    #[test]
    fn each_counter_reads_its_register_and_width() {
        let pf = ScriptedPf::default();
        pf.preset(0x101C, 0xFFFF_FFFF); // VFGPRC
        pf.preset(0x201C, 7); // VFGPTC
        pf.preset(0x1020, 0xFFFF_FFFF); // VFGORC_LSB
        pf.preset(0x1024, 0xF); // VFGORC_MSB: 0xF_FFFF_FFFF, the 36-bit top
        pf.preset(0x2020, 100); // VFGOTC_LSB
        pf.preset(0x1034, 3); // VFMPRC
        let mut c = Counters::default();
        c.baseline(&pf);
        pf.preset(0x101C, 1);
        pf.preset(0x201C, 9);
        pf.preset(0x1020, 63);
        pf.preset(0x1024, 0);
        pf.preset(0x2020, 50);
        pf.preset(0x2024, 1);
        pf.preset(0x1034, 4);
        c.update(&pf);
        assert_eq!(
            c.snapshot(),
            VfStats {
                rx_packets: 2,
                tx_packets: 2,
                rx_octets: 64,
                tx_octets: 0x1_0000_0000 - 50,
                rx_multicast: 1,
            }
        );
    }
}
