//! VF statistics registers: counters that wrap and cannot be cleared,
//! kept as 64-bit totals (nic-facts-igbvf.md C.2 "Statistics", C.9 #12;
//! nic-facts.md A.2 note, A.8 #9).
//!
//! igbvf's counters are 32 bits wide. ixgbevf's packet counters are 32
//! bits and its octet counters 36 bits, split over an LSB and an MSB
//! register. Software keeps the last value read and adds the difference
//! modulo 2^width (A.2: "modulo 2^32 for GPRC/GPTC/MPRC, modulo 2^36 for
//! GORC/GOTC").

use crate::mmio::RegisterSpace;

/// One hardware counter and its running total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HwCounter {
    lsb: u32,
    /// The register holding bits width-1..32, for counters over 32 bits.
    msb: Option<u32>,
    width: u32,
    last: u64,
    total: u64,
}

impl HwCounter {
    /// A 32-bit counter at `reg`.
    pub const fn bits32(reg: u32) -> HwCounter {
        HwCounter {
            lsb: reg,
            msb: None,
            width: 32,
            last: 0,
            total: 0,
        }
    }

    /// A counter of `width` bits (33..=64) with bits 31:0 at `lsb` and the
    /// rest at `msb` (ixgbevf GORC/GOTC: 36, A.2).
    pub const fn split(lsb: u32, msb: u32, width: u32) -> HwCounter {
        assert!(width > 32 && width <= 64);
        HwCounter {
            lsb,
            msb: Some(msb),
            width,
            last: 0,
            total: 0,
        }
    }

    fn mask(&self) -> u64 {
        if self.width == 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        }
    }

    /// The counter's value now. A split counter is read high, low, high;
    /// if the high half moved (the low half wrapped between the reads),
    /// the low half is read again so the pair belongs together. The facts
    /// do not say whether reading LSB latches MSB, so nothing relies on it.
    fn read<R: RegisterSpace + ?Sized>(&self, regs: &R) -> u64 {
        let Some(msb) = self.msb else {
            return u64::from(regs.read32(self.lsb));
        };
        let mut hi = regs.read32(msb);
        let mut lo = regs.read32(self.lsb);
        let hi2 = regs.read32(msb);
        if hi2 != hi {
            hi = hi2;
            lo = regs.read32(self.lsb);
        }
        ((u64::from(hi) << 32) | u64::from(lo)) & self.mask()
    }

    /// Take the current value as the starting point (at bring-up, and
    /// after a reset that may have cleared the hardware counter).
    pub fn baseline<R: RegisterSpace + ?Sized>(&mut self, regs: &R) {
        self.last = self.read(regs);
    }

    /// Add what the counter moved since the last read, modulo 2^width.
    /// Read at least once per wrap period, or whole wraps are lost.
    pub fn update<R: RegisterSpace + ?Sized>(&mut self, regs: &R) {
        let v = self.read(regs);
        self.total += v.wrapping_sub(self.last) & self.mask();
        self.last = v;
    }

    /// The total since the first baseline.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// A VF's hardware counters since the port was brought up, kept across
/// wraps and PF resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VfStats {
    /// VFGPRC.
    pub rx_packets: u64,
    /// VFGPTC.
    pub tx_packets: u64,
    /// VFGORC (igbvf: octets include the FCS in QEMU, C.10.1).
    pub rx_octets: u64,
    /// VFGOTC.
    pub tx_octets: u64,
    /// VFMPRC.
    pub rx_multicast: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Registers that return scripted values, one per read.
    #[derive(Default)]
    struct Script(Mutex<HashMap<u32, Vec<u32>>>);

    impl Script {
        fn feed(&self, reg: u32, vals: &[u32]) {
            self.0.lock().unwrap().entry(reg).or_default().extend(vals);
        }
        fn drained(&self) -> bool {
            self.0.lock().unwrap().values().all(Vec::is_empty)
        }
    }

    impl RegisterSpace for Script {
        fn read32(&self, offset: u32) -> u32 {
            let mut m = self.0.lock().unwrap();
            let q = m.get_mut(&offset).expect("unscripted read");
            assert!(!q.is_empty(), "read of {offset:#x} beyond the script");
            q.remove(0)
        }
        fn write32(&self, _: u32, _: u32) {}
        fn len(&self) -> usize {
            0x4000
        }
    }

    #[test]
    fn a_32_bit_counter_wraps_modulo_2_32() {
        let r = Script::default();
        r.feed(0x10, &[0xFFFF_FFF0, 0x0000_0010, 0x0000_0010]);
        let mut c = HwCounter::bits32(0x10);
        c.baseline(&r);
        c.update(&r);
        assert_eq!(c.total(), 0x20);
        c.update(&r);
        assert_eq!(c.total(), 0x20);
        assert!(r.drained());
    }

    #[test]
    fn a_36_bit_counter_wraps_modulo_2_36() {
        let r = Script::default();
        // Baseline 0xF_FFFF_FFF0 (MSB bits above 35 are ignored), then 0x10
        // after the 36-bit wrap: 0x20 counted.
        r.feed(0x24, &[0xFFFF_FFFF, 0xFFFF_FFFF, 0x0, 0x0]);
        r.feed(0x20, &[0xFFFF_FFF0, 0x10]);
        let mut c = HwCounter::split(0x20, 0x24, 36);
        c.baseline(&r);
        c.update(&r);
        assert_eq!(c.total(), 0x20);
        assert!(r.drained());
    }

    #[test]
    fn a_low_half_wrap_between_reads_is_read_again() {
        let r = Script::default();
        // The high half moves 1 -> 2 while the low half wraps; the first
        // low read (0xFFFF_FFFF) belongs to the old high half.
        r.feed(0x24, &[0, 0, 1, 2]);
        r.feed(0x20, &[0, 0xFFFF_FFFF, 0x0000_0005]);
        let mut c = HwCounter::split(0x20, 0x24, 36);
        c.baseline(&r);
        c.update(&r);
        assert_eq!(c.total(), 0x2_0000_0005);
        assert!(r.drained());
    }
}
