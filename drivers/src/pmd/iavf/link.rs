//! The link as the PF reports it: VIRTCHNL_OP_EVENT / LINK_CHANGE on the
//! ARQ (docs/facts/nic-facts.md B.6 step 15), legacy speed codes (B.4.3;
//! this driver does not ask for ADV_LINK_SPEED).

use super::virtchnl::{legacy_speed_mbps, PfEvent};

/// What the PF's events say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Up.
    pub up: bool,
    /// Mbps (0 when unknown or down).
    pub speed_mbps: u32,
}

/// What an event asks of the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventAction {
    /// Nothing beyond what [`Link::apply`] recorded.
    None,
    /// The PF is about to reset the VF, or its driver went away (B.7).
    Reset,
}

impl Link {
    /// Record a LINK_CHANGE; say whether the event means a reset.
    pub fn apply(&mut self, e: &PfEvent) -> EventAction {
        match *e {
            PfEvent::LinkChange { up, speed_code } => {
                self.up = up;
                self.speed_mbps = if up { legacy_speed_mbps(speed_code) } else { 0 };
                EventAction::None
            }
            PfEvent::ResetImpending | PfEvent::PfDriverClose => {
                self.up = false;
                self.speed_mbps = 0;
                EventAction::Reset
            }
            PfEvent::Other(n) => {
                log::debug!("iavf: PF event {n} ignored");
                EventAction::None
            }
        }
    }
}
