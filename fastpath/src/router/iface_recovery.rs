//! [`IfaceRecovery`]: an exception interface deleted under the fast path
//! (`ip link del fp0` by an operator or a script) is noticed, said, counted
//! and made again.
//!
//! Deleting a TAP leaves our queue file descriptors open on nothing, with
//! either backend (vhost-net serves the same TAP queues): the kernel
//! refuses what we write and has nothing to read, and without this the
//! exception path would stay dead with only a refused-writes counter to
//! say so. A vhost-net backend can also fail on its own (its kernel worker
//! cannot use a virtqueue, and signals the error eventfd given with
//! VHOST_SET_VRING_ERR). At each housekeeping round the router asks every
//! interface whether it is still attached (one TUNGETIFF per interface)
//! and whether its vhost-net devices signalled an error (a non-blocking
//! eventfd read each), on the control path. When one is lost:
//! - one error line names the interface and the port;
//! - the exception thread is told ([`IfaceChange::Gone`]): it drops the
//!   dead queues and frees and counts what is punted for the port
//!   (`exception_iface_gone`, in the live line, the summary and `--json`);
//! - the interface is made again as at start (same name, MAC, queues and
//!   backend choice; the MTU and link state it had), its queues handed to
//!   the exception thread ([`IfaceChange::Back`]), and a line says it is
//!   back. The kernel mirror learns the new interface by its name, and the
//!   addresses the operator adds to it again.
//!
//! A failed backend's TAP still exists: the router lets go of it and the
//! exception thread drops its queues, so the kernel deletes it, and no new
//! interface is made while one of the name exists (the first attempt is
//! [`FIRST_RETRY`] later). Making it again can fail (the name taken by
//! another interface, the TUN device gone): it is retried [`MAX_ATTEMPTS`] times, waiting
//! [`FIRST_RETRY`] and then twice as long each time up to [`LONGEST_RETRY`],
//! each failure said with its reason; after the last one a line says the
//! router gave up, and the punts for that port go on being counted.

use crate::exception::IfaceChange;
use drivers::exception::{
    ExceptionConfig, ExceptionError, ExceptionIface, ExceptionQueues, ExceptionRx, ExceptionTx,
};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Attempts at making a deleted interface again before giving up.
pub const MAX_ATTEMPTS: u32 = 10;
/// Wait before the second attempt (the first is at once).
pub const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
pub const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Wait after failed attempt number `failed` (1-based): [`FIRST_RETRY`],
/// doubling, at most [`LONGEST_RETRY`].
pub fn retry_wait(failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(31);
    FIRST_RETRY
        .saturating_mul(1u32 << doublings)
        .min(LONGEST_RETRY)
}

/// Where one port's interface stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Attached, as far as the last check saw.
    Live,
    /// Gone; `failed` attempts so far, the next one not before `next`.
    Gone { failed: u32, next: Instant },
    /// Gone, and every attempt failed.
    GaveUp,
}

/// What the port's interface is made with again, besides its start
/// configuration: what the port is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortNow {
    /// Link up.
    pub up: bool,
    /// MTU last mirrored onto the interface.
    pub mtu: u32,
}

/// Watches the exception interfaces and makes deleted ones again.
#[derive(Debug)]
pub struct IfaceRecovery {
    /// How each port's interface was made, in port order.
    cfgs: Vec<ExceptionConfig>,
    states: Vec<State>,
    /// To the exception thread.
    changes: Sender<IfaceChange<ExceptionRx, ExceptionTx>>,
}

impl IfaceRecovery {
    /// Watches interfaces made with `cfgs` (port order), telling the
    /// exception thread through `changes`.
    pub fn new(
        cfgs: Vec<ExceptionConfig>,
        changes: Sender<IfaceChange<ExceptionRx, ExceptionTx>>,
    ) -> IfaceRecovery {
        IfaceRecovery {
            states: vec![State::Live; cfgs.len()],
            cfgs,
            changes,
        }
    }

    /// Checks every interface of `ifaces` (port order) and, for one that
    /// was deleted or whose backend failed, makes it again when its next attempt is due, replacing it in
    /// `ifaces`; `now_of(p)` is port `p`'s link and MTU. Returns the ports
    /// whose interface was made again (their link state is set already).
    pub fn check(
        &mut self,
        now: Instant,
        ifaces: &mut [ExceptionIface],
        now_of: impl Fn(usize) -> PortNow,
    ) -> Vec<usize> {
        let mut back = Vec::new();
        for (p, iface) in ifaces.iter_mut().enumerate() {
            let (Some(state), Some(cfg)) = (self.states.get_mut(p), self.cfgs.get(p)) else {
                continue;
            };
            if *state == State::Live {
                let why = match lost(iface) {
                    Ok(None) => continue,
                    Ok(Some(why)) => why,
                    Err(e) => {
                        log::warn!("port {p}: cannot tell whether the exception interface still works: {e}");
                        continue;
                    }
                };
                log::error!(
                    "port {p}: exception interface {} {why}; what is punted for port {p} is dropped and counted as exception_iface_gone until it is made again",
                    cfg.name
                );
                // A send fails only when the exception thread has ended
                // (the router is stopping): nothing to tell then.
                let _ = self.changes.send(IfaceChange::Gone(cfg.port));
                // Our hold on the old TAP goes; the exception thread drops
                // its queues at its next round, and the kernel then
                // deletes it (a failed backend's TAP still exists).
                iface.release();
                *state = State::Gone {
                    failed: 0,
                    next: match why {
                        Lost::Deleted => now,
                        Lost::BackendErrors(_) => now + FIRST_RETRY,
                    },
                };
            }
            let State::Gone { failed, next } = *state else {
                continue;
            };
            if now < next {
                continue;
            }
            let want = now_of(p);
            match reopen(iface, cfg, want) {
                Ok((fresh, queues)) => {
                    log::info!(
                        "port {p}: exception interface {} is back ({} backend, MTU {}, link {}); the pod's addresses (network-status, --pod-address) are applied again, those added by hand must be added again (ip addr add), the mirror learns them",
                        cfg.name,
                        fresh.backend().name(),
                        want.mtu,
                        if want.up { "up" } else { "down" },
                    );
                    let _ = self.changes.send(IfaceChange::Back(cfg.port, queues));
                    // The dead interface's queues go now; the exception
                    // thread drops its own halves at its next round.
                    *iface = fresh;
                    *state = State::Live;
                    back.push(p);
                }
                Err(e) => {
                    let failed = failed.saturating_add(1);
                    if failed >= MAX_ATTEMPTS {
                        log::error!(
                            "port {p}: gave up making exception interface {} again after {failed} attempts: {e}; what is punted for port {p} stays dropped and counted as exception_iface_gone (restart the fast path once the name is free)",
                            cfg.name
                        );
                        *state = State::GaveUp;
                    } else {
                        let wait = retry_wait(failed);
                        log::warn!(
                            "port {p}: cannot make exception interface {} again (attempt {failed} of {MAX_ATTEMPTS}, next in {} ms): {e}",
                            cfg.name,
                            wait.as_millis()
                        );
                        *state = State::Gone {
                            failed,
                            next: now + wait,
                        };
                    }
                }
            }
        }
        back
    }
}

/// Why an interface no longer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// Deleted under us.
    Deleted,
    /// Its vhost-net devices signalled this many errors.
    BackendErrors(u64),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::Deleted => write!(f, "was deleted under the fast path"),
            Lost::BackendErrors(n) => write!(
                f,
                "stopped working: its vhost-net backend signalled {n} error(s) and moves no more frames"
            ),
        }
    }
}

/// Whether `iface` stopped serving, and why.
fn lost(iface: &ExceptionIface) -> Result<Option<Lost>, ExceptionError> {
    if !iface.attached()? {
        return Ok(Some(Lost::Deleted));
    }
    match iface.take_backend_errors()? {
        0 => Ok(None),
        n => Ok(Some(Lost::BackendErrors(n))),
    }
}

/// Why an interface could not be made again.
#[derive(Debug, thiserror::Error)]
enum ReopenError {
    /// The name is in use: the old TAP not yet gone, or another interface.
    #[error("an interface named {0} exists (the old one not gone yet, or another took the name: ip link show {0})")]
    NameTaken(String),
    /// Opening failed.
    #[error(transparent)]
    Open(#[from] ExceptionError),
}

/// A new interface as `cfg` made the first, with the port's MTU and link
/// now; never one attached to an interface that exists (ours not yet
/// gone, or someone else's TAP of that name).
fn reopen(
    old: &ExceptionIface,
    cfg: &ExceptionConfig,
    want: PortNow,
) -> Result<(ExceptionIface, ExceptionQueues), ReopenError> {
    if old.exists()? {
        return Err(ReopenError::NameTaken(cfg.name.clone()));
    }
    let mut cfg = cfg.clone();
    cfg.mtu = want.mtu;
    let (iface, queues) = ExceptionIface::open(&cfg)?;
    iface.set_link(want.up)?;
    Ok((iface, queues))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_bound() {
        let waits: Vec<_> = (1..=MAX_ATTEMPTS).map(retry_wait).collect();
        assert_eq!(waits[0], FIRST_RETRY);
        assert_eq!(waits[1], FIRST_RETRY * 2);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(retry_wait(u32::MAX), LONGEST_RETRY);
        assert_eq!(retry_wait(0), FIRST_RETRY);
        assert_eq!(waits.last(), Some(&LONGEST_RETRY));
    }

    #[test]
    fn the_reasons_read_as_sentences() {
        assert_eq!(Lost::Deleted.to_string(), "was deleted under the fast path");
        assert_eq!(
            Lost::BackendErrors(2).to_string(),
            "stopped working: its vhost-net backend signalled 2 error(s) and moves no more frames"
        );
        assert_eq!(
            ReopenError::NameTaken("fp0".into()).to_string(),
            "an interface named fp0 exists (the old one not gone yet, or another took the name: ip link show fp0)"
        );
    }
}
