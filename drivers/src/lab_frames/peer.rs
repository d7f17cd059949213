//! The host's end of the exchange, run by the vfio-user server on the
//! port of its own VF (our PMD), between faults the model injects.
//!
//! ```no_run
//! # use drivers::lab_frames::{peer, Endpoint};
//! # fn f(port: drivers::port::DynPort, pool: &drivers::pool::Pool) -> Result<(), drivers::lab_frames::LabFramesError> {
//! let mut ep = Endpoint::new(port)?; // once: the port's queue pair
//! let mut cache = pool.cache();
//! for round in 1..=3 {
//!     let report = peer::run_round(&mut ep, &mut cache, round, 10_000, std::time::Duration::from_secs(120))?;
//!     println!("{}", report.line(peer::TAG));
//!     // inject the next fault here
//! }
//! # Ok(()) }
//! ```

use super::exchange::{self, Endpoint, Report, Role, RoundConfig, DEFAULT_WINDOW};
use super::LabFramesError;
use crate::pool::PoolCache;
use crate::port::Port;
use std::time::Duration;

/// What the server's report line starts with.
pub const TAG: &str = "PEER-FRAMES";

/// Runs round `round` as the host: waits for the guest's hello (from any
/// MAC; the guest's is learnt from it), then sends `count` frames to it
/// and verifies the guest's `count`, calling the port's `service` every
/// 100 ms all along (so a VF port's PF-reset recovery and link checks run;
/// a fault injected between rounds is found and recovered from while the
/// guest's hellos wait for an answer).
/// Returns when both ways are complete, or at `timeout` (counted from the
/// call: the guest's hello must come within it) with what was done. The
/// port's own MAC is this end's address.
pub fn run_round<P: Port>(
    ep: &mut Endpoint<P>,
    cache: &mut PoolCache,
    round: u32,
    count: u32,
    timeout: Duration,
) -> Result<Report, LabFramesError> {
    let cfg = RoundConfig {
        role: Role::Host,
        me: ep.port().info().mac,
        peer: None,
        round,
        count,
        window: DEFAULT_WINDOW,
        timeout,
    };
    exchange::run(ep, cache, &cfg, &mut |_| {})
}
