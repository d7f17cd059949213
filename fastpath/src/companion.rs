//! [`Companion`]: what a run starts beside its forwarder and stops before
//! it, going through the same start-up, live statistics, stop and audit
//! as `fastpath run` (`run::run_with`). `fastpath demo`'s simulated wire
//! and static routes are one.

use crate::forwarder::{FinalReport, Forwarder};

/// Why a companion could not start (its own message says what to fix).
pub type CompanionError = Box<dyn std::error::Error + Send + Sync>;

/// Something that runs beside the forwarder for a whole run.
///
/// In L3 mode a companion stands in for the router: the run starts no
/// exception interfaces and no kernel mirror, and the companion gives the
/// workers their tables and takes their punts
/// ([`Forwarder::take_publisher`], [`Forwarder::take_punt_rings`]).
pub trait Companion {
    /// Starts, once the forwarder runs and its VF links are up; returns
    /// lines for the start-up text. On error the run stops the forwarder
    /// and audits it.
    fn start(&mut self, fwd: &mut Forwarder) -> Result<Vec<String>, CompanionError>;

    /// A line to print after each live statistics line (figures since the
    /// previous one), if any.
    fn interval_line(&mut self, fwd: &Forwarder) -> Option<String>;

    /// The run ends: stop feeding the forwarder, let what is on its way
    /// arrive, and give back every buffer held, before the forwarder
    /// stops and audits.
    fn wind_down(&mut self, fwd: &Forwarder);

    /// Lines after the final summary, and whether the companion's own
    /// checks passed (false makes the run's exit status 3, as a failed
    /// buffer audit does).
    fn summary(&mut self, report: &FinalReport) -> (Vec<String>, bool);

    /// The same figures for the JSON summary (its `wire` member), if any.
    fn json(&self, _report: &FinalReport) -> Option<serde_json::Value> {
        None
    }
}
