//! Programming and enabling ixgbevf queues (A.7.1, A.7.2), on the shared
//! advanced-descriptor register code: every enable is polled back before
//! the queue's tail may be written, TX write-back threshold 0, and the
//! VF-wide PSRTYPE written before the RX queues (A.6 step 15).
//!
//! Not yet run against a device model: the order and values are tested
//! against the scripted PF only.

use super::regs::*;
use crate::mmio::RegisterSpace;
use crate::pmd::adv_desc::{self, ProgramTiming, RxHw, TxHw};
use std::time::Duration;

/// Enable polling (A.7.1 step 7, A.7.2 step 8: 10 × 1 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnableTiming {
    /// Reads of ENABLE.
    pub polls: u32,
    /// Pause between reads.
    pub delay: Duration,
    /// Pause after clearing ENABLE before reprogramming.
    pub program: ProgramTiming,
}

impl Default for EnableTiming {
    fn default() -> Self {
        EnableTiming {
            polls: 10,
            delay: Duration::from_millis(1),
            program: ProgramTiming {
                disable_settle: Duration::ZERO,
            },
        }
    }
}

/// A queue that did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// RXDCTL.ENABLE never read back 1; the tail was not written.
    #[error("RX queue {0}: RXDCTL.ENABLE did not read back")]
    RxEnable(u32),
    /// TXDCTL.ENABLE never read back 1.
    #[error("TX queue {0}: TXDCTL.ENABLE did not read back")]
    TxEnable(u32),
}

/// PSRTYPE for `rx_queues` RX queues: the five header types Linux sets,
/// and RQPL = queues >> 1, the DPDK formula (A.3). Required on 82599
/// (A.3 "PSRTYPE must be initialised on 82599").
pub fn psrtype(rx_queues: u32) -> u32 {
    let rqpl = (rx_queues >> 1) & PSRTYPE_RQPL_MASK;
    PSRTYPE_TCPHDR
        | PSRTYPE_UDPHDR
        | PSRTYPE_IPV4HDR
        | PSRTYPE_IPV6HDR
        | PSRTYPE_L2HDR
        | rqpl << PSRTYPE_RQPL_SHIFT
}

/// Program TX queue `q` from `hw` and enable it with the thresholds
/// cleared (WTHRESH 0, so the device honours RS, A.8 #4) and head
/// write-back off (A.7.1 step 3); wait for ENABLE to read back.
pub fn enable_tx<R: RegisterSpace + ?Sized>(
    regs: &R,
    q: u32,
    hw: &TxHw,
    t: &EnableTiming,
) -> Result<(), QueueError> {
    // Start from a clean TXDCTL: after a stop it holds SWFLSH (A.7.3),
    // which must not be carried into the enable.
    regs.write32(txdctl(q), 0);
    regs.write32(tdwbal(q), 0);
    regs.write32(tdwbah(q), 0);
    adv_desc::program_tx(regs, hw, &FLAVOR, &t.program);
    if !adv_desc::wait_enabled(regs, txdctl(q), t.polls, t.delay) {
        return Err(QueueError::TxEnable(q));
    }
    Ok(())
}

/// Program RX queue `q` from `hw` and enable it; wait for ENABLE to read
/// back. Only after `Ok` may the ring's owner post buffers and write the
/// tail (A.7.2: an RDT write before the enable reads back is lost).
pub fn enable_rx<R: RegisterSpace + ?Sized>(
    regs: &R,
    q: u32,
    hw: &RxHw,
    t: &EnableTiming,
) -> Result<(), QueueError> {
    adv_desc::program_rx(regs, hw, &FLAVOR, &t.program);
    if !adv_desc::wait_enabled(regs, rxdctl(q), t.polls, t.delay) {
        return Err(QueueError::RxEnable(q));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::scripted_pf::ScriptedPf;
    use super::*;
    use crate::memory::Iova;

    fn quick() -> EnableTiming {
        EnableTiming {
            polls: 3,
            delay: Duration::ZERO,
            program: ProgramTiming {
                disable_settle: Duration::ZERO,
            },
        }
    }

    #[test]
    fn psrtype_has_the_header_bits_and_rqpl() {
        assert_eq!(psrtype(1), 0x1330);
        assert_eq!(psrtype(2), 0x2000_1330);
        assert_eq!(psrtype(4), 0x4000_1330);
    }

    #[test]
    fn tx_enable_clears_swflsh_and_wthresh_and_is_polled() {
        let pf = ScriptedPf::default();
        // A stopped queue: SWFLSH and a stale WTHRESH.
        pf.preset(txdctl(1), TXDCTL_SWFLSH | 8 << TXDCTL_WTHRESH_SHIFT);
        pf.preset(dca_txctrl(1), 0x2A00);
        let hw = TxHw {
            regs: LAYOUT.tx(1),
            iova: Iova::new(0x1_2345_6780),
            len_bytes: 512 * 16,
        };
        enable_tx(&pf, 1, &hw, &quick()).unwrap();
        let w = pf.writes();
        let last_ctl = w.iter().rev().find(|x| x.0 == txdctl(1)).unwrap().1;
        assert_eq!(last_ctl, TXDCTL_ENABLE, "only ENABLE: WTHRESH 0, no SWFLSH");
        assert!(w.contains(&(tdbal(1), 0x2345_6780)));
        assert!(w.contains(&(tdbah(1), 0x1)));
        assert!(w.contains(&(tdlen(1), 8192)));
        assert!(w.contains(&(tdwbal(1), 0)));
        // DESC_WRO_EN cleared, the rest kept (A.7.1 step 4, DPDK).
        assert!(w.contains(&(dca_txctrl(1), 0x2200)));
        pf.assert_clean();
    }

    #[test]
    fn rx_enable_is_polled_and_the_tail_left_to_the_ring_owner() {
        let pf = ScriptedPf::default();
        let hw = RxHw {
            regs: LAYOUT.rx(0),
            iova: Iova::new(0x8000),
            len_bytes: 256 * 16,
            buf_size: 2048,
        };
        enable_rx(&pf, 0, &hw, &quick()).unwrap();
        let w = pf.writes();
        let en = w
            .iter()
            .position(|x| x.0 == rxdctl(0) && x.1 & RXDCTL_ENABLE != 0)
            .unwrap();
        // Tail only reset to 0 before the enable, never after it.
        assert!(w[en..].iter().all(|x| x.0 != rdt(0)));
        // SRRCTL: DROP_EN (ixgbe bit 28), advanced one-buffer, 2 KB.
        assert!(w.contains(&(srrctl(0), 0x1200_0002)));
        pf.assert_clean();
    }

    #[test]
    fn an_enable_that_never_reads_back_is_an_error() {
        // A device that drops the ENABLE bits.
        struct Stuck(ScriptedPf);
        impl RegisterSpace for Stuck {
            fn read32(&self, o: u32) -> u32 {
                let v = self.0.read32(o);
                if o == rxdctl(2) || o == txdctl(2) {
                    v & !RXDCTL_ENABLE
                } else {
                    v
                }
            }
            fn write32(&self, o: u32, v: u32) {
                self.0.write32(o, v)
            }
            fn len(&self) -> usize {
                self.0.len()
            }
        }
        let s = Stuck(ScriptedPf::default());
        let rx = RxHw {
            regs: LAYOUT.rx(2),
            iova: Iova::new(0x8000),
            len_bytes: 64 * 16,
            buf_size: 2048,
        };
        let tx = TxHw {
            regs: LAYOUT.tx(2),
            iova: Iova::new(0x9000),
            len_bytes: 64 * 16,
        };
        assert_eq!(
            enable_rx(&s, 2, &rx, &quick()),
            Err(QueueError::RxEnable(2))
        );
        assert_eq!(
            enable_tx(&s, 2, &tx, &quick()),
            Err(QueueError::TxEnable(2))
        );
        s.0.assert_clean();
    }
}
