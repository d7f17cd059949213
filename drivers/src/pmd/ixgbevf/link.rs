//! The ixgbevf link check (A.6 step 21, A.8 #14): VFLINKS alone is not
//! enough; a PF reset (RSTI/RSTD), a lost clear-to-send or a timed-out
//! mailbox also take the link down and call for a VF reset.

use super::mailbox::{IxMbxError, LostContact, PfEvent, PfMailbox};
use super::regs::*;
use crate::mmio::RegisterSpace;
use std::time::Duration;

/// Why the VF must be reset and brought up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetCause {
    /// RSTI or RSTD was seen: the PF reset (A.6 step 21).
    PfReset,
    /// The PF no longer considers the VF clear to send: this word came
    /// without CTS (A.5.4).
    CtsLost(u32),
    /// A mailbox operation timed out; the mailbox is off (A.8 #14).
    MailboxTimedOut,
}

/// What the link check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Link up, at this speed in Mb/s when VFLINKS names one.
    Up {
        /// Speed; `None` for a code the VF's MAC does not define.
        mbps: Option<u32>,
    },
    /// VFLINKS says down (or did not stay up while confirmed).
    Down,
    /// Down until the VF is reset.
    ResetNeeded(ResetCause),
}

/// How an up link is confirmed: the 82599 reads UP several times, since
/// an SFP+ or direct-attach cable can take 500 µs to settle (A.6 step 21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkConfirm {
    /// Further reads that must all show UP (82599: 5).
    pub reads: u32,
    /// Pause before each (82599: 100 µs).
    pub delay: Duration,
}

impl LinkConfirm {
    /// The 82599 rule (A.6 step 21).
    pub const IXGBE_82599: LinkConfirm = LinkConfirm {
        reads: 5,
        delay: Duration::from_micros(100),
    };
}

/// Speed in Mb/s from VFLINKS (A.3). `x550` selects the X550-class
/// meaning of SPEED_NON_STD (10G code = 2.5G, 100M code = 5G) and of the
/// 0 code (10M, X550EM_a; reserved on older MACs).
pub fn link_speed(links: u32, x550: bool) -> Option<u32> {
    let non_std = x550 && links & LINKS_SPEED_NON_STD != 0;
    match (links & LINKS_SPEED_MASK, non_std) {
        (LINKS_SPEED_10G, false) => Some(10_000),
        (LINKS_SPEED_10G, true) => Some(2_500),
        (LINKS_SPEED_1G, _) => Some(1_000),
        (LINKS_SPEED_100M, false) => Some(100),
        (LINKS_SPEED_100M, true) => Some(5_000),
        (0, _) if x550 => Some(10),
        _ => None,
    }
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// Check the link: first what forces a reset (a PF reset signalled on the
/// mailbox, a timed-out mailbox, a PF message without CTS), then VFLINKS,
/// confirmed with `confirm` when given. Never waits on the PF. A
/// `PfReset` consumes the cached RSTD: the caller is to reset now.
pub fn check_link<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut PfMailbox,
    confirm: Option<LinkConfirm>,
    x550: bool,
) -> Result<LinkState, IxMbxError> {
    if mbx.take_pf_reset(regs) {
        return Ok(LinkState::ResetNeeded(ResetCause::PfReset));
    }
    // A message the PF left (a ping after a link change, or a revocation
    // without CTS) is read now, so its CTS is seen.
    match mbx.poll_event(regs) {
        Ok(Some(PfEvent::Control { .. } | PfEvent::Other(_)) | None) => {}
        // The buffer is held by the PF: PFSTS stays cached, next check.
        Err(IxMbxError::Transport(_)) => {}
        Err(e) => return Err(e),
    }
    match mbx.lost_contact() {
        Some(LostContact::TimedOut) => {
            return Ok(LinkState::ResetNeeded(ResetCause::MailboxTimedOut))
        }
        Some(LostContact::CtsLost(w)) => return Ok(LinkState::ResetNeeded(ResetCause::CtsLost(w))),
        None => {}
    }
    let links = regs.read32(VFLINKS);
    if links & LINKS_UP == 0 {
        return Ok(LinkState::Down);
    }
    if let Some(c) = confirm {
        for _ in 0..c.reads {
            pause(c.delay);
            if regs.read32(VFLINKS) & LINKS_UP == 0 {
                return Ok(LinkState::Down);
            }
        }
    }
    Ok(LinkState::Up {
        mbps: link_speed(links, x550),
    })
}

#[cfg(test)]
mod tests {
    use super::super::mailbox::MbxError;
    use super::super::scripted_pf::*;
    use super::*;
    use crate::pmd::vf_mailbox::MBX_RSTD;

    fn up(pf: &ScriptedPf) -> PfMailbox {
        let mut m = PfMailbox::new(fast());
        m.enable();
        pf.push(Answer::Reply(vec![0x01 | SUCCESS, 0, 0, 0]));
        m.reset(pf).unwrap();
        m
    }

    #[test]
    fn speeds_decode_per_mac_class() {
        assert_eq!(link_speed(0x7000_0000, false), Some(10_000));
        assert_eq!(link_speed(0x6000_0000, false), Some(1_000));
        assert_eq!(link_speed(0x5000_0000, false), Some(100));
        assert_eq!(link_speed(0x4000_0000, false), None);
        assert_eq!(link_speed(0x7800_0000, false), Some(10_000));
        assert_eq!(link_speed(0x7800_0000, true), Some(2_500));
        assert_eq!(link_speed(0x5800_0000, true), Some(5_000));
        assert_eq!(link_speed(0x4000_0000, true), Some(10));
    }

    #[test]
    fn vflinks_gives_up_and_down() {
        let pf = ScriptedPf::default();
        let mut m = up(&pf);
        assert_eq!(check_link(&pf, &mut m, None, false), Ok(LinkState::Down));
        pf.preset(VFLINKS, 0x7000_0000);
        let c = LinkConfirm {
            reads: 5,
            delay: Duration::ZERO,
        };
        assert_eq!(
            check_link(&pf, &mut m, Some(c), false),
            Ok(LinkState::Up { mbps: Some(10_000) })
        );
        pf.assert_clean();
    }

    #[test]
    fn a_pf_reset_or_lost_cts_needs_a_reset_whatever_vflinks_says() {
        let pf = ScriptedPf::default();
        pf.preset(VFLINKS, 0x7000_0000);
        let mut m = up(&pf);
        pf.raise(MBX_RSTD);
        assert_eq!(
            check_link(&pf, &mut m, None, false),
            Ok(LinkState::ResetNeeded(ResetCause::PfReset))
        );
        // A ping with CTS is only news.
        pf.post(0x0100 | CTS);
        assert_eq!(
            check_link(&pf, &mut m, None, false),
            Ok(LinkState::Up { mbps: Some(10_000) })
        );
        // Without CTS the VF was revoked.
        pf.post(0x0100);
        assert_eq!(
            check_link(&pf, &mut m, None, false),
            Ok(LinkState::ResetNeeded(ResetCause::CtsLost(0x0100)))
        );
        pf.assert_clean();
    }

    #[test]
    fn a_timed_out_mailbox_needs_a_reset() {
        let pf = ScriptedPf::default();
        pf.preset(VFLINKS, 0x7000_0000);
        let mut m = up(&pf);
        pf.push(Answer::Silent);
        assert!(m.set_lpe(&pf, 1518).is_err());
        assert_eq!(
            check_link(&pf, &mut m, None, false),
            Ok(LinkState::ResetNeeded(ResetCause::MailboxTimedOut))
        );
        assert_eq!(
            m.set_lpe(&pf, 1518),
            Err(IxMbxError::Transport(MbxError::Disabled))
        );
        pf.assert_clean();
    }

    #[test]
    fn an_up_that_does_not_hold_while_confirmed_is_down() {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        // VFLINKS reads UP, then DOWN on its third read.
        struct Flicker(ScriptedPf, AtomicU32);
        impl RegisterSpace for Flicker {
            fn read32(&self, o: u32) -> u32 {
                if o == VFLINKS {
                    // Relaxed: a test-local counter, no other memory.
                    let n = self.1.fetch_add(1, Relaxed);
                    return if n == 2 { 0 } else { 0x7000_0000 };
                }
                self.0.read32(o)
            }
            fn write32(&self, o: u32, v: u32) {
                self.0.write32(o, v)
            }
            fn len(&self) -> usize {
                self.0.len()
            }
        }
        let f = Flicker(ScriptedPf::default(), AtomicU32::new(0));
        let mut m = up(&f.0);
        let c = LinkConfirm {
            reads: 5,
            delay: Duration::ZERO,
        };
        assert_eq!(check_link(&f, &mut m, Some(c), false), Ok(LinkState::Down));
        // Without confirmation the first UP is taken.
        assert_eq!(
            check_link(&f, &mut m, None, false),
            Ok(LinkState::Up { mbps: Some(10_000) })
        );
        f.0.assert_clean();
    }
}
