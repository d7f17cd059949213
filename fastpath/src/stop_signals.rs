//! The signals that stop a run, and why a run stopped.
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT all ask for a clean stop: the
//! workers stop, the final summary is printed and every buffer is
//! audited. A second one, while that stop is under way or hangs, ends
//! the process at once. The signals go to a thread of their own through
//! signal-hook's iterator (a self-pipe), so no signal handler is written
//! here and the forced exit can say why on stderr.

use serde::Serialize;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// The signals that stop a run cleanly.
pub const STOP_SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// A stop signal arrived (during start-up or while forwarding).
    Signal {
        /// Its name, such as "SIGTERM".
        signal: &'static str,
    },
    /// Standard output was closed (the reader went away, as `| head`
    /// does) or could not be written.
    ClosedStdout,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Duration => f.write_str("duration elapsed"),
            StopReason::Signal { signal } => write!(f, "{signal}"),
            StopReason::ClosedStdout => f.write_str("standard output closed"),
        }
    }
}

/// The name of a signal number ("SIGINT"); "unknown signal" for a number
/// signal-hook does not know (never one of [`STOP_SIGNALS`]).
pub fn signal_name(sig: i32) -> &'static str {
    signal_hook::low_level::signal_name(sig).unwrap_or("unknown signal")
}

/// Watches [`STOP_SIGNALS`] from its own thread while it lives.
pub struct StopSignals {
    flag: Arc<AtomicBool>,
    first: Arc<OnceLock<i32>>,
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl StopSignals {
    /// Installs the handlers and starts the watching thread. From here on
    /// the first stop signal sets [`flag`](Self::flag); the next one exits
    /// the process with status 128 + its number, after one line on stderr.
    pub fn install() -> io::Result<StopSignals> {
        let mut signals = Signals::new(STOP_SIGNALS)?;
        let handle = signals.handle();
        let flag = Arc::new(AtomicBool::new(false));
        let first = Arc::new(OnceLock::new());
        let (flag_t, first_t) = (Arc::clone(&flag), Arc::clone(&first));
        let thread = std::thread::Builder::new()
            .name("fp-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if first_t.set(sig).is_ok() {
                        // Release pairs with the Acquire loads in `stopped`
                        // and `received`: whoever sees the flag sees which
                        // signal set it.
                        flag_t.store(true, Ordering::Release);
                    } else {
                        // Not eprintln!, which panics when stderr is closed.
                        let _ = writeln!(
                            io::stderr(),
                            "fastpath: {} while stopping: exiting at once, without the final \
                             summary or the buffer audit",
                            signal_name(sig)
                        );
                        std::process::exit(128 + sig);
                    }
                }
            })?;
        Ok(StopSignals {
            flag,
            first,
            handle,
            thread: Some(thread),
        })
    }

    /// Set by the first stop signal; never cleared.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// True once a stop signal arrived.
    pub fn stopped(&self) -> bool {
        // Acquire: pairs with the Release store of the watching thread.
        self.flag.load(Ordering::Acquire)
    }

    /// The first stop signal, if one arrived.
    pub fn received(&self) -> Option<StopReason> {
        if !self.stopped() {
            return None;
        }
        self.first.get().map(|&sig| StopReason::Signal {
            signal: signal_name(sig),
        })
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // Ends `forever()`; the handlers stay installed, so a late signal
        // is swallowed instead of killing a process that is exiting anyway.
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
