//! The ixgbevf VF reset and mailbox handshake: nic-facts.md A.6 steps
//! 3-12, from masking interrupts to knowing the MAC, the API and the
//! queues the PF grants. Queue setup (steps 14-16) is not here.

use super::mailbox::{ApiVersion, IxMbxError, PfMailbox, QueueInfo};
use super::regs::*;
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use std::time::Duration;

/// Pauses and poll limits of the reset (A.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetTiming {
    /// After stopping the queues (A.6 step 4: 2 ms).
    pub stop_settle: Duration,
    /// After VFCTRL.RST (A.6 step 7: 50 ms).
    pub reset_settle: Duration,
    /// Polls of VFMAILBOX for RSTI/RSTD to clear (A.5.1, A.6 step 8: 200).
    pub rst_polls: u32,
    /// Between those polls (A.6 step 8: 5 µs).
    pub rst_poll_delay: Duration,
}

impl Default for ResetTiming {
    fn default() -> Self {
        ResetTiming {
            stop_settle: Duration::from_millis(2),
            reset_settle: Duration::from_millis(50),
            rst_polls: 200,
            rst_poll_delay: Duration::from_micros(5),
        }
    }
}

/// What the VF knows after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfIdentity {
    /// The admin-assigned MAC, if the PF has one (A.6 step 10).
    pub mac: Option<MacAddr>,
    /// The multicast filter type for SET_MULTICAST hashes (A.6 step 10).
    pub mc_filter_type: u32,
    /// The API the PF accepted (A.6 step 11).
    pub api: ApiVersion,
    /// The queues the PF grants (A.6 step 12). Under API 1.0 the VF
    /// cannot ask, and assumes only the one queue pair every VF has.
    pub queues: QueueInfo,
}

/// Why the reset failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    /// RSTI/RSTD never cleared (A.6 step 8: "PF still in reset, is the PF
    /// up?").
    #[error("PF still in reset after the VF reset ({polls} polls); is the PF up?")]
    PfStillInReset {
        /// Polls made.
        polls: u32,
    },
    /// The mailbox handshake failed.
    #[error("VF reset handshake: {0}")]
    Mailbox(#[from] IxMbxError),
}

/// Under API 1.0: one queue pair, queue 0 (see [`VfIdentity::queues`]).
const API_1_0_QUEUES: QueueInfo = QueueInfo {
    tx: 1,
    rx: 1,
    tcs: 0,
    default_queue: 0,
};

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// Stop every queue the VF can have (A.6 step 4, A.7.3): TXDCTL = SWFLSH,
/// RXDCTL.ENABLE cleared, PSRTYPE = 0, a flushing read, then the pause.
/// The caller must not free ring memory on the strength of this alone:
/// the DMA-safe disable (poll until ENABLE reads 0) is the ring code's.
pub fn stop_queues<R: RegisterSpace + ?Sized>(regs: &R, settle: Duration) {
    for q in 0..MAX_QUEUES {
        regs.write32(txdctl(q), TXDCTL_SWFLSH);
        let rx = regs.read32(rxdctl(q));
        regs.write32(rxdctl(q), rx & !RXDCTL_ENABLE);
    }
    regs.write32(PSRTYPE, 0);
    regs.read32(STATUS);
    pause(settle);
}

/// The values a reset leaves in the per-queue registers (A.3 defaults,
/// A.6 step 9), written for all eight queues.
pub fn write_reset_defaults<R: RegisterSpace + ?Sized>(regs: &R) {
    regs.write32(PSRTYPE, 0);
    for q in 0..MAX_QUEUES {
        for r in [rdh(q), rdt(q), rxdctl(q), tdh(q), tdt(q), txdctl(q)] {
            regs.write32(r, 0);
        }
        regs.write32(tdwbal(q), 0);
        regs.write32(tdwbah(q), 0);
        regs.write32(srrctl(q), SRRCTL_RESET_DEFAULT);
        regs.write32(
            dca_rxctrl(q),
            DCA_RXCTRL_DESC_RRO_EN | DCA_RXCTRL_DATA_WRO_EN | DCA_RXCTRL_HEAD_WRO_EN,
        );
        regs.write32(
            dca_txctrl(q),
            DCA_TXCTRL_DESC_RRO_EN | DCA_TXCTRL_DESC_WRO_EN | DCA_TXCTRL_DATA_RRO_EN,
        );
    }
    regs.read32(STATUS);
}

/// Reset the VF and run the handshake: mask interrupts, stop the queues,
/// VFCTRL.RST, wait for the PF, write the defaults, VF_RESET, API
/// negotiation, GET_QUEUES (A.6 steps 3-12, in that order).
pub fn reset_vf<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut PfMailbox,
    t: &ResetTiming,
) -> Result<VfIdentity, ResetError> {
    // Step 3: everything masked; the read clears pending causes.
    regs.write32(VTEIMC, IRQ_CLEAR_MASK);
    regs.read32(VTEICR);
    // Step 4.
    stop_queues(regs, t.stop_settle);
    // Steps 2, 6-7: the reset starts from an empty cached copy (events
    // cached before it describe a PF state that is gone; the send path
    // would also flush a stale PFSTS/PFACK, A.5.2 step 2).
    mbx.transport().clear_cache();
    regs.write32(CTRL, CTRL_RST);
    regs.read32(STATUS);
    pause(t.reset_settle);
    // Step 8: the RSTD this reset raises is consumed here, so it is not
    // taken later for a second PF reset.
    if !mbx
        .transport()
        .wait_reset_clear(regs, t.rst_polls, t.rst_poll_delay)
    {
        return Err(ResetError::PfStillInReset { polls: t.rst_polls });
    }
    // Steps 2, 5: posted operations on, API back to 1.0 (reset() does
    // the latter when the PF answers).
    mbx.enable();
    // Step 9.
    write_reset_defaults(regs);
    // Step 10.
    let r = mbx.reset(regs)?;
    // Step 11.
    let api = mbx.negotiate_api(regs)?;
    // Step 12.
    let queues = if api >= ApiVersion::V1_1 {
        mbx.get_queues(regs)?
    } else {
        API_1_0_QUEUES
    };
    Ok(VfIdentity {
        mac: r.mac,
        mc_filter_type: r.mc_filter_type,
        api,
        queues,
    })
}
