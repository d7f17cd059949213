//! One run of the forwarder as `fastpath run` does it, from an already
//! built configuration: watch the stop signals, start (interruptibly),
//! print live statistics, do the ports' housekeeping, stop, audit the
//! buffers, print the final summary, and say which exit status that is.
//!
//! Output: in text mode everything goes to standard output. In JSON mode
//! standard output carries exactly one JSON document (the final
//! summary), and the start-up lines and live statistics go to stderr.
//! A standard output that cannot be written (a closed pipe, as under
//! `| head`) ends the run like a signal does, quietly: workers stopped,
//! buffers audited, and the summary on stderr only if the audit failed.

use crate::companion::{Companion, CompanionError};
use crate::control::config_view::{ConfigView, ControlSettings, Source};
use crate::control::{Answerer, ControlError, ControlOptions, ControlPlane};
use crate::forwarder::{FinalReport, Forwarder, StartError};
use crate::fwd_mode::FwdMode;
use crate::report::{final_summary, interval_line, link_text};
use crate::router::{Router, RouterError, RouterOptions, RouterStats};
use crate::stop_signals::{StopReason, StopSignals};
use crate::summary_json::Summary;
use config::run_config::ValidRunConfig;
use drivers::port::ServiceEvent;
use std::io::{self, Write};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// How the results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Human-readable lines on stdout.
    Text,
    /// One JSON document on stdout ([`Summary`]); other lines on stderr.
    Json,
}

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The signal watcher could not be installed.
    #[error("cannot watch for stop signals: {0}")]
    Signals(#[source] io::Error),
    /// The forwarder did not start.
    #[error(transparent)]
    Start(StartError),
    /// The router (exception path, kernel mirror) did not start; the
    /// forwarder was stopped, its buffers audited.
    #[error(transparent)]
    Router(RouterError),
    /// What runs beside the forwarder (`fastpath demo`'s wire) did not
    /// start; the forwarder was stopped, its buffers audited.
    #[error("{0}")]
    Companion(CompanionError),
    /// The control socket or the metrics endpoint asked for could not
    /// start; nothing else was started.
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Why it stopped.
    pub reason: StopReason,
    /// Every buffer came back, no worker panicked, no device model saw a
    /// rule broken, and the companion's own checks (if any) passed.
    pub clean: bool,
}

impl Outcome {
    /// The process's exit status: 0 for a clean run, 3 when buffers were
    /// lost, a worker panicked or a device model saw a rule broken
    /// (whatever stopped the run). Not 2, which
    /// is a refused command line (clap's convention, kept for our own
    /// checks too), nor 1, a failed start-up.
    pub fn exit_status(&self) -> u8 {
        if self.clean {
            0
        } else {
            3
        }
    }
}

/// How often the ports' housekeeping (device counters, PF-reset watch)
/// runs.
const SERVICE_PERIOD: Duration = Duration::from_millis(100);

/// The longest sleep of the control loop: how late a signal, the end of
/// the duration or a closed stdout may be noticed.
const TICK: Duration = Duration::from_millis(20);

/// Where lines go, and whether stdout still takes them.
struct Console {
    output: Output,
    stdout_closed: bool,
}

impl Console {
    /// A line for the operator (start-up, live statistics): stdout in
    /// text mode, stderr in JSON mode.
    fn line(&mut self, text: &str) {
        match self.output {
            Output::Text => self.stdout(text),
            Output::Json => {
                // Nothing to do if stderr is gone too.
                let _ = writeln!(io::stderr(), "{text}");
            }
        }
    }

    /// Writes `text` and a newline to stdout, flushed; after a failure
    /// nothing more is written there and [`stdout_closed`] is set.
    fn stdout(&mut self, text: &str) {
        if self.stdout_closed {
            return;
        }
        let mut out = io::stdout().lock();
        if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
            // A reader that went away is an ordinary way to stop; any
            // other failure (a full disk) deserves a word.
            if e.kind() != io::ErrorKind::BrokenPipe {
                log::warn!("cannot write to standard output ({e}); stopping");
            }
            self.stdout_closed = true;
        }
    }
}

/// Runs the forwarder configured by `cfg`, printing as `output` says,
/// until `cfg.duration` ends, a stop signal arrives or stdout closes. In
/// L3 mode the router (`router_opts`) runs around it. No control socket,
/// no metrics: [`run_with`] serves them.
pub fn run(
    cfg: &ValidRunConfig,
    output: Output,
    router_opts: &RouterOptions,
) -> Result<Outcome, RunError> {
    let config = ConfigView::new(cfg, router_opts, &ControlSettings::default(), |_| {
        Source::Default
    });
    run_with(cfg, output, router_opts, &ControlOptions::off(config), None)
}

/// [`run`], serving the control socket and the metrics `control` asks
/// for, with `companion` started beside the forwarder and stopped before
/// it (in L3 mode it stands in for the router, which is then not
/// started). The socket and the metrics are set up first: a socket
/// another daemon serves, or a metrics port taken, stops the run before
/// any port is opened.
pub fn run_with(
    cfg: &ValidRunConfig,
    output: Output,
    router_opts: &RouterOptions,
    control: &ControlOptions,
    mut companion: Option<&mut dyn Companion>,
) -> Result<Outcome, RunError> {
    let signals = StopSignals::install().map_err(RunError::Signals)?;
    let (control_plane, queries) = ControlPlane::start(control)?;
    // Zero: the final summary only.
    let stats_period = Some(cfg.stats_period).filter(|p| !p.is_zero());
    let mut console = Console {
        output,
        stdout_closed: false,
    };
    let mut fwd = match Forwarder::start_interruptible(cfg, signals.flag()) {
        Ok(f) => f,
        Err(StartError::Interrupted { phase, report }) => {
            // Only the signal watcher sets the flag start-up reads.
            let reason = signals.received().unwrap_or(StopReason::Signal {
                signal: "unknown signal",
            });
            console.line(&format!(
                "fastpath: start-up interrupted by {reason} ({phase})"
            ));
            return Ok(finish(
                &mut console,
                &report,
                None,
                None,
                reason,
                Some(phase),
            ));
        }
        Err(e) => return Err(RunError::Start(e)),
    };
    let companion_lines = match companion.as_deref_mut().map(|c| c.start(&mut fwd)) {
        None => Vec::new(),
        Some(Ok(lines)) => lines,
        Some(Err(e)) => {
            let report = fwd.stop();
            if !report.clean() {
                log::error!("{}", final_summary(&report));
            }
            return Err(RunError::Companion(e));
        }
    };
    let mut router = if cfg.mode == FwdMode::L3 && companion.is_none() {
        match Router::start(&mut fwd, cfg, router_opts) {
            Ok(r) => Some(r),
            Err(e) => {
                let report = fwd.stop();
                if !report.clean() {
                    log::error!("{}", final_summary(&report));
                }
                return Err(RunError::Router(e));
            }
        }
    } else {
        None
    };
    console.line(&format!(
        "fastpath: forwarding ({} mode, burst {}) on ports {} with workers on CPUs {}; pool of {} buffers in {}",
        cfg.mode,
        cfg.burst,
        cfg.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","),
        fwd.cpus().iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        fwd.pool().count(),
        fwd.pool().describe_memory()
    ));
    for (info, link) in fwd.ports() {
        console.line(&format!(
            "fastpath: port {} ({} {}, {}, {})",
            info.id,
            info.kind,
            info.name,
            info.mac,
            link_text(&link)
        ));
    }
    if let Some(r) = &router {
        let s = r.stats();
        let cpu = r
            .exception_cpu()
            .map_or_else(|| "unpinned".to_owned(), |c| format!("CPU {c}"));
        for i in &s.interfaces {
            console.line(&format!(
                "fastpath: port {} exception interface {} ({} backend)",
                i.port, i.ifname, i.backend
            ));
        }
        console.line(&format!(
            "fastpath: exception thread on {cpu}, at most {} packets/s (burst {}) to the kernel per port; kernel mirror on {}",
            router_opts.rate.pps(),
            router_opts.rate.burst(),
            r.ifnames().join(",")
        ));
    }
    for l in &companion_lines {
        console.line(l);
    }
    if let Some(path) = control_plane.socket_path() {
        console.line(&format!(
            "fastpath: control socket {} (fastpath show ports|cores|routes|neighbours|exception|config, fastpath watch)",
            path.display()
        ));
    }
    if let Some(why) = control_plane.skipped_socket() {
        console.line(&format!(
            "fastpath: running without a control socket: {why}"
        ));
    }
    if let Some(addr) = control_plane.metrics_addr() {
        console.line(&format!("fastpath: metrics on http://{addr}/metrics"));
    }
    let mut answerer = queries
        .as_ref()
        .map(|_| Answerer::new(&fwd, cfg.mode, control.config.clone()));
    let start = Instant::now();
    // A duration too long to add to now is no deadline at all.
    let deadline = cfg.duration.and_then(|d| start.checked_add(d));
    let mut next_print = stats_period.and_then(|p| start.checked_add(p));
    let mut next_service = start + SERVICE_PERIOD;
    let mut prev = fwd.snapshot();
    let mut prev_router = router.as_ref().map(Router::stats);
    let reason = loop {
        if let Some(r) = signals.received() {
            break r;
        }
        if console.stdout_closed {
            break StopReason::ClosedStdout;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break StopReason::Duration;
        }
        let wake = [deadline, next_print, Some(next_service)]
            .into_iter()
            .flatten()
            .min()
            .map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
        // Waiting for the next deadline is waiting for the operator's
        // questions too: one is answered as soon as it comes.
        match (&queries, answerer.as_mut()) {
            (Some(q), Some(a)) => {
                match q.recv_timeout(wake) {
                    Ok(query) => a.answer(query, &fwd, router.as_ref()),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wake),
                }
                a.tick(&fwd, Instant::now());
            }
            _ => std::thread::sleep(wake),
        }
        let now = Instant::now();
        if now >= next_service {
            service(&mut fwd);
            if let Some(r) = router.as_mut() {
                r.mirror_links(&fwd);
                r.recover_ifaces(&fwd);
                r.sync_multicast(&mut fwd);
            }
            next_service = now + SERVICE_PERIOD;
        }
        if let (Some(at), Some(period)) = (next_print, stats_period) {
            if now >= at {
                let snap = fwd.snapshot();
                console.line(&interval_line(&prev, &snap));
                prev = snap;
                if let (Some(r), Some(before)) = (&router, &prev_router) {
                    let now_r = r.stats();
                    console.line(&format!(
                        "  exception: {} | {}",
                        now_r.exception_since(before),
                        now_r.tables_line()
                    ));
                    prev_router = Some(now_r);
                }
                if let Some(l) = companion.as_deref_mut().and_then(|c| c.interval_line(&fwd)) {
                    console.line(&l);
                }
                // Skip the periods a slow stop or a suspended process
                // missed instead of printing them in a burst.
                next_print = at.checked_add(period).map(|n| n.max(now));
            }
        }
    };
    if matches!(reason, StopReason::Signal { .. }) {
        console.line(&format!(
            "fastpath: stopping ({reason}); a second signal exits at once"
        ));
    }
    // No more questions: the socket goes first (its file removed).
    drop(control_plane);
    // The router first: its threads give their buffers back before the
    // forwarder's audit counts them.
    let router_stats = router.take().map(Router::stop);
    if let Some(c) = companion.as_deref_mut() {
        c.wind_down(&fwd);
    }
    let report = fwd.stop();
    Ok(finish(
        &mut console,
        &report,
        router_stats.as_ref(),
        companion,
        reason,
        None,
    ))
}

/// Prints the final summary of a stopped (or interrupted) run and says how
/// it ended.
fn finish(
    console: &mut Console,
    report: &FinalReport,
    router: Option<&RouterStats>,
    companion: Option<&mut dyn Companion>,
    reason: StopReason,
    interrupted_during: Option<&'static str>,
) -> Outcome {
    let (companion_lines, companion_ok, companion_json) = match companion {
        Some(c) => {
            let (lines, ok) = c.summary(report);
            (lines, ok, c.json(report))
        }
        None => (Vec::new(), true, None),
    };
    let outcome = Outcome {
        reason,
        clean: report.clean() && companion_ok,
    };
    match console.output {
        Output::Text => {
            console.stdout(&final_summary(report));
            if let Some(r) = router {
                console.stdout(&r.summary());
            }
            for l in &companion_lines {
                console.stdout(l);
            }
        }
        Output::Json => {
            for l in &companion_lines {
                console.line(l);
            }
            let mut doc = Summary::new(report, reason, interrupted_during, outcome.exit_status());
            doc.router = router.map(RouterStats::json);
            doc.wire = companion_json;
            match serde_json::to_string_pretty(&doc) {
                Ok(text) => console.stdout(&text),
                // Plain structures of numbers and strings always
                // serialize; should one not, the summary still shows.
                Err(e) => {
                    log::error!("cannot make the JSON summary ({e}); here it is as text");
                    let _ = writeln!(io::stderr(), "{}", final_summary(report));
                }
            }
        }
    }
    if console.stdout_closed {
        log::debug!(
            "standard output closed: stopped; buffers: {} of {} back in the pool",
            report.buffers_returned,
            report.last.pool_count
        );
    }
    if console.stdout_closed && !outcome.clean {
        // The audit failed and stdout is gone: stderr must say so.
        let _ = writeln!(io::stderr(), "{}", final_summary(report));
    }
    outcome
}

/// Runs the ports' housekeeping and logs what it did.
fn service(fwd: &mut Forwarder) {
    for (i, r) in fwd.service() {
        match r {
            Ok(ServiceEvent::Recovered) => log::warn!(
                "port {i}: recovered from a device reset (resets so far: {})",
                fwd.xstat(i, "pf_reset_recoveries").unwrap_or(0)
            ),
            Ok(ServiceEvent::ResetDetected) => {
                log::warn!("port {i}: the device was reset under us; queues stopped, recovering")
            }
            Ok(e) => log::debug!("port {i}: {e:?}"),
            Err(e) => log::error!("port {i}: housekeeping failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_buffers_exit_2_whatever_stopped_the_run() {
        for reason in [
            StopReason::Duration,
            StopReason::ClosedStdout,
            StopReason::Signal { signal: "SIGTERM" },
        ] {
            assert_eq!(
                Outcome {
                    reason,
                    clean: true
                }
                .exit_status(),
                0
            );
            assert_eq!(
                Outcome {
                    reason,
                    clean: false
                }
                .exit_status(),
                3
            );
        }
    }
}
