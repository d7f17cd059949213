//! Where every packet of a latency run went: counted at each of its
//! steps, so that none is lost without a count saying where.
//!
//! A packet is stamped by the source, then either refused by the
//! forwarder's input ring (full) or taken by the forwarder, which either
//! sends it to its output ring or drops it (by reason, its own
//! counters), and the sink receives what the output ring holds. After a
//! run is drained, `offered = refused + forwarder drops + received`; a
//! packet missing from that sum is still in a ring, or lost, and the
//! counters say between which two steps.

use std::fmt;

/// The counts of one run (or a sum of runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets the source stamped and handed to its port.
    pub offered: u64,
    /// Of those, refused by the forwarder's input ring (full).
    pub refused_at_source: u64,
    /// Packets the forwarder received.
    pub fwd_rx: u64,
    /// Packets the forwarder sent on.
    pub fwd_tx: u64,
    /// Packets the forwarder dropped (every reason).
    pub fwd_dropped: u64,
    /// Packets the sink received.
    pub received: u64,
    /// Of those, received with no usable stamp (a latency out of the
    /// histogram's range, or a stamp later than its arrival).
    pub unmeasured: u64,
}

/// Packets not accounted for, and between which steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Missing {
    /// Entered the input ring, never reached the forwarder.
    pub input_ring: u64,
    /// Reached the forwarder, neither sent nor dropped by it.
    pub forwarder: u64,
    /// Sent by the forwarder, never reached the sink.
    pub output_ring: u64,
}

impl Missing {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.input_ring + self.forwarder + self.output_ring
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in the input ring, {} in the forwarder, {} in the output ring",
            self.input_ring, self.forwarder, self.output_ring
        )
    }
}

/// Counts that cannot be: a step saw more packets than the one before
/// it gave it (a counter is wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the counts do not add up: {step} saw {seen} packets, more than the {given} it was given")]
pub struct Surplus {
    /// The step.
    pub step: &'static str,
    /// What it counted.
    pub seen: u64,
    /// What the step before gave it.
    pub given: u64,
}

impl Tally {
    /// Packets that entered the forwarder's input ring.
    pub fn entered(&self) -> u64 {
        self.offered.saturating_sub(self.refused_at_source)
    }

    /// Packets dropped, wherever: the input ring and the forwarder.
    pub fn dropped(&self) -> u64 {
        self.refused_at_source + self.fwd_dropped
    }

    /// What is not accounted for, step by step; an error if a step counts
    /// more than it was given.
    pub fn missing(&self) -> Result<Missing, Surplus> {
        let step = |step, seen: u64, given: u64| {
            given.checked_sub(seen).ok_or(Surplus { step, seen, given })
        };
        step("the input ring", self.refused_at_source, self.offered)?;
        let input_ring = step("the forwarder", self.fwd_rx, self.entered())?;
        let forwarder = step(
            "the forwarder's output",
            self.fwd_tx + self.fwd_dropped,
            self.fwd_rx,
        )?;
        let output_ring = step("the sink", self.received, self.fwd_tx)?;
        Ok(Missing {
            input_ring,
            forwarder,
            output_ring,
        })
    }

    /// Packets neither received nor counted as dropped (`None` when the
    /// counts do not add up).
    pub fn lost(&self) -> Option<u64> {
        self.missing().ok().map(|m| m.total())
    }

    /// The sum of two tallies.
    pub fn plus(&self, o: &Tally) -> Tally {
        Tally {
            offered: self.offered + o.offered,
            refused_at_source: self.refused_at_source + o.refused_at_source,
            fwd_rx: self.fwd_rx + o.fwd_rx,
            fwd_tx: self.fwd_tx + o.fwd_tx,
            fwd_dropped: self.fwd_dropped + o.fwd_dropped,
            received: self.received + o.received,
            unmeasured: self.unmeasured + o.unmeasured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Tally {
        Tally {
            offered: 1000,
            refused_at_source: 30,
            fwd_rx: 970,
            fwd_tx: 960,
            fwd_dropped: 10,
            received: 960,
            unmeasured: 0,
        }
    }

    #[test]
    fn a_drained_run_adds_up() {
        let t = clean();
        assert_eq!(t.entered(), 970);
        assert_eq!(t.dropped(), 40);
        assert_eq!(t.missing(), Ok(Missing::default()));
        assert_eq!(t.lost(), Some(0));
        assert_eq!(t.offered, t.received + t.dropped() + t.lost().unwrap());
    }

    #[test]
    fn what_is_missing_is_placed_between_two_steps() {
        let t = Tally {
            fwd_rx: 965,
            fwd_tx: 950,
            received: 945,
            ..clean()
        };
        let m = t.missing().unwrap();
        assert_eq!(
            m,
            Missing {
                input_ring: 5,
                forwarder: 5,
                output_ring: 5
            }
        );
        assert_eq!(t.lost(), Some(15));
        assert_eq!(t.offered, t.received + t.dropped() + 15);
        assert_eq!(
            m.to_string(),
            "5 in the input ring, 5 in the forwarder, 5 in the output ring"
        );
    }

    #[test]
    fn a_step_that_sees_more_than_it_was_given_is_an_error() {
        let t = Tally {
            received: 961,
            ..clean()
        };
        let e = t.missing().unwrap_err();
        assert_eq!(
            e,
            Surplus {
                step: "the sink",
                seen: 961,
                given: 960
            }
        );
        assert_eq!(t.lost(), None);
        assert!(e.to_string().contains("the sink saw 961 packets"), "{e}");
        let t = Tally {
            refused_at_source: 1001,
            ..clean()
        };
        assert_eq!(t.missing().unwrap_err().step, "the input ring");
    }

    #[test]
    fn tallies_add() {
        let t = clean().plus(&clean());
        assert_eq!((t.offered, t.dropped(), t.received), (2000, 80, 1920));
        assert_eq!(t.lost(), Some(0));
    }
}
