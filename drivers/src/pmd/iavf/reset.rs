//! The VF's bring-up up to its resources (docs/facts/nic-facts.md B.6
//! steps 2-5) and its reset (B.7): VFGEN_RSTAT polling, the admin queue,
//! VERSION and GET_VF_RESOURCES; RESET_VF and the wait for it.

use super::channel::{VcError, VfChannel};
use super::regs::*;
use super::virtchnl::{self, caps, Op, Version, VfResources};
use crate::mmio::RegisterSpace;
use std::time::Duration;

/// Waits of a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetTiming {
    /// Reads of VFGEN_RSTAT waiting for COMPLETED or VFACTIVE (B.6 step
    /// 2: DPDK 2000 × 20 ms, Linux 2000 × 10 ms).
    pub rstat_polls: u32,
    /// Pause between them.
    pub rstat_delay: Duration,
    /// Reads after RESET_VF waiting for the reset to start: RSTAT leaves
    /// VFACTIVE or ARQLEN.ENABLE reads 0 (B.7: Linux up to 500 × 5-10 ms).
    pub start_polls: u32,
    /// Pause between them.
    pub start_delay: Duration,
}

impl Default for ResetTiming {
    fn default() -> Self {
        ResetTiming {
            rstat_polls: 2000,
            rstat_delay: Duration::from_millis(10),
            start_polls: 500,
            start_delay: Duration::from_millis(10),
        }
    }
}

/// Why the bring-up failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// VFGEN_RSTAT never read COMPLETED or VFACTIVE.
    #[error("VF still in reset after {polls} reads of VFGEN_RSTAT (last state {state})")]
    StillInReset {
        /// Reads.
        polls: u32,
        /// Last VFR_STATE (3: the register read 0xDEADBEEF).
        state: u32,
    },
    /// RESET_VF was sent but the reset never started: nothing shows the
    /// PF stopped the queues.
    #[error("RESET_VF sent, but no reset started within {polls} reads of VFGEN_RSTAT")]
    NotStarted {
        /// Reads.
        polls: u32,
    },
    /// virtchnl or the admin queue.
    #[error(transparent)]
    Vc(#[from] VcError),
    /// The admin queue could not be programmed.
    #[error(transparent)]
    Aq(#[from] super::adminq::AqError),
}

impl ResetError {
    /// The PF is still resetting or not answering yet: retry later.
    pub fn pf_not_ready(&self) -> bool {
        match self {
            ResetError::StillInReset { .. } | ResetError::NotStarted { .. } => true,
            ResetError::Vc(e) => e.looks_like_reset(),
            ResetError::Aq(_) => true,
        }
    }
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// VFR_STATE now (B.2.1).
pub fn reset_state<R: RegisterSpace + ?Sized>(regs: &R) -> u32 {
    regs.read32(VFGEN_RSTAT) & RSTAT_MASK
}

/// Poll VFGEN_RSTAT until COMPLETED or VFACTIVE (B.6 step 2).
pub fn wait_reset_done<R: RegisterSpace + ?Sized>(
    regs: &R,
    t: &ResetTiming,
) -> Result<u32, ResetError> {
    let mut state = VFR_INPROGRESS;
    for _ in 0..t.rstat_polls.max(1) {
        state = reset_state(regs);
        if state == VFR_COMPLETED || state == VFR_VFACTIVE {
            return Ok(state);
        }
        pause(t.rstat_delay);
    }
    Err(ResetError::StillInReset {
        polls: t.rstat_polls,
        state,
    })
}

/// Bring the VF from reset to its resources (B.6 steps 2-5): wait for the
/// reset to complete, program the admin queue, VERSION 1.1 (a PF on
/// another major, or newer than 1.1, is refused, B.4.1) and
/// GET_VF_RESOURCES with this driver's capability request.
pub fn handshake<R: RegisterSpace + ?Sized>(
    regs: &R,
    chan: &mut VfChannel,
    t: &ResetTiming,
) -> Result<VfResources, ResetError> {
    wait_reset_done(regs, t)?;
    chan.init(regs)?;
    let reply = chan.request(regs, Op::Version, &Version::OURS.encode())?;
    let pf = Version::decode(&reply).map_err(|err| VcError::Decode {
        op: Op::Version,
        err,
    })?;
    let ours = Version::OURS;
    if pf.major != ours.major || pf.minor > ours.minor {
        return Err(VcError::Version {
            major: pf.major,
            minor: pf.minor,
        }
        .into());
    }
    // A 1.0 PF takes no capability bitmap (B.4.4).
    let req = if pf.minor >= 1 {
        virtchnl::get_vf_resources(caps::REQUEST)
    } else {
        Vec::new()
    };
    let reply = chan.request(regs, Op::GetVfResources, &req)?;
    let res = VfResources::decode(&reply).map_err(|err| VcError::Decode {
        op: Op::GetVfResources,
        err,
    })?;
    Ok(res)
}

/// Ask the PF to reset the VF (RESET_VF, no reply) and wait until the
/// reset has started and completed (B.7 "VF-initiated reset"). The PF
/// stops every queue of the VF and forgets its filters.
pub fn reset_vf<R: RegisterSpace + ?Sized>(
    regs: &R,
    chan: &mut VfChannel,
    t: &ResetTiming,
) -> Result<(), ResetError> {
    chan.send_only(regs, Op::ResetVf, &[])?;
    let mut started = false;
    for _ in 0..t.start_polls.max(1) {
        if reset_state(regs) != VFR_VFACTIVE || chan.alive(regs).is_err() {
            started = true;
            break;
        }
        pause(t.start_delay);
    }
    if !started {
        return Err(ResetError::NotStarted {
            polls: t.start_polls,
        });
    }
    chan.shutdown(regs);
    wait_reset_done(regs, t)?;
    Ok(())
}
