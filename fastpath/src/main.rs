//! `fastpath`: the daemon and its commands.

#![forbid(unsafe_code)]

use config::run_config::ValidRunConfig;
use drivers::port::ServiceEvent;
use fastpath::advice::start_error_advice;
use fastpath::cli::{parse, CliError, Invocation};
use fastpath::forwarder::Forwarder;
use fastpath::report::{final_summary, interval_line, link_text};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the VF ports' housekeeping (PF-reset watch) runs.
const SERVICE_PERIOD: Duration = Duration::from_millis(100);

/// Runs the VF ports' housekeeping and logs what it did.
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

fn run(cfg: ValidRunConfig) -> Result<bool, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let fwd = Forwarder::start(&cfg).map_err(|e| match start_error_advice(&e, &cfg) {
        Some(hint) => format!("{e}\nfastpath: hint: {hint}"),
        None => e.to_string(),
    })?;
    println!(
        "fastpath: forwarding ({} mode, burst {}) on ports {} with workers on CPUs {}; pool of {} buffers in {}",
        cfg.mode,
        cfg.burst,
        cfg.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(","),
        fwd.cpus().iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        fwd.pool().count(),
        fwd.pool().describe_memory()
    );
    for (info, link) in fwd.ports() {
        println!(
            "fastpath: port {} ({} {}, {}, {})",
            info.id,
            info.kind,
            info.name,
            info.mac,
            link_text(&link)
        );
    }
    // Both bounded by validation (at most a year), so the sums cannot overflow.
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let period = (!cfg.stats_period.is_zero()).then_some(cfg.stats_period);
    let mut prev = fwd.snapshot();
    let mut next_print = Instant::now() + period.unwrap_or(Duration::MAX / 4);
    let mut next_service = Instant::now() + SERVICE_PERIOD;
    let mut fwd = fwd;
    // Relaxed: the signal flag carries no data.
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() >= next_service {
            service(&mut fwd);
            next_service = Instant::now() + SERVICE_PERIOD;
        }
        if period.is_some() && Instant::now() >= next_print {
            let now = fwd.snapshot();
            println!("{}", interval_line(&prev, &now));
            prev = now;
            next_print += period.unwrap_or_default();
        }
    }
    let report = fwd.stop();
    println!("{}", final_summary(&report));
    Ok(report.all_buffers_returned() && report.panicked.is_empty())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match parse(std::env::args_os()) {
        Ok(Invocation::Run(cfg)) => run(cfg),
        // clap prints its own errors, help and version, with their status.
        Err(CliError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("fastpath: error: {e}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("fastpath: error: {e}");
            ExitCode::FAILURE
        }
    }
}
