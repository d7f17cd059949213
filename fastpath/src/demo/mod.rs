//! `fastpath demo`: the fast path, drivers included, routing UDP between
//! two simulated VFs fed by a simulated wire, on any machine, with no
//! set-up (no root, no hugepages reserved, no network).
//!
//! It is `fastpath run` with a preset configuration ([`preset`]) and a
//! [`Companion`](crate::companion::Companion) ([`wire_companion`]),
//! through the same start-up, live statistics, stop and buffer audit
//! (`run::run_with`):
//!
//! - **Ports**: `sim:ixgbevf,sim:iavf`, two VFs of one modelled PF (an
//!   82599 VF under our ixgbevf driver, an XL710 VF under our iavf
//!   driver), as `fastpath run --ports` would open them.
//! - **Mode**: `l3`. The router's kernel side (TAP exception interfaces,
//!   the rtnetlink mirror) needs root and a kernel to mirror; here the
//!   tables are set once from a fixed network ([`network`]) through the
//!   same router model the mirror feeds, and what the workers punt is
//!   counted by reason and freed by a stand-in for the kernel.
//! - **Traffic**: a host behind the PF on each side sends UDP flows to
//!   its VF (`drivers::sim::wire`); what the fast path routes leaves the
//!   other VF for the other host, and the wire's sink counts and checks
//!   it (checksums right after the TTL decrement).
//! - **Memory**: hugepages when enough are free, else ordinary pages
//!   (one line says so).

pub mod args;
pub mod network;
pub mod preset;
#[cfg(feature = "sim")]
pub mod wire_companion;

pub use args::DemoArgs;

use crate::router::RouterOptions;
use crate::run::{run_with, Outcome, Output, RunError};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Built without the device models.
    #[error(
        "fastpath demo runs over simulated VFs, and this fastpath was built without them \
         (cargo feature `sim`, on by default: rebuild without --no-default-features)"
    )]
    NotBuilt,
    /// The preset configuration was refused (a bad --duration, ...).
    #[error("{0}")]
    Config(#[from] config::run_config::RunConfigError),
    /// The run failed to start.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Runs the demo as `args` say, printing to stdout, and says how it
/// ended (its exit status as `fastpath run`'s).
pub fn run_demo(args: &DemoArgs) -> Result<Outcome, DemoError> {
    #[cfg(feature = "sim")]
    {
        let (cfg, memory_note) = preset::demo_config(args)?;
        let mut wire = wire_companion::DemoWire::new(args, memory_note);
        let opts = RouterOptions::default();
        let control = demo_control(&cfg, &opts);
        let output = if args.json {
            Output::Json
        } else {
            Output::Text
        };
        match run_with(&cfg, output, &opts, &control, Some(&mut wire)) {
            // Enough hugepages looked free, yet the pool could not have
            // them (a hugetlb cgroup limit, another process first): the
            // demo runs on ordinary pages instead of failing.
            Err(RunError::Start(e)) if preset::is_hugepage_failure(&e, &cfg) => {
                let cfg = preset::on_ordinary_pages(&cfg)?;
                let note = format!(
                    "fastpath demo: hugepages refused ({e}); the pool is on ordinary pages"
                );
                let mut wire = wire_companion::DemoWire::new(args, Some(note));
                let control = demo_control(&cfg, &opts);
                Ok(run_with(&cfg, output, &opts, &control, Some(&mut wire))?)
            }
            r => Ok(r?),
        }
    }
    #[cfg(not(feature = "sim"))]
    {
        let _ = (
            args,
            run_with,
            Output::Text,
            RouterOptions::default(),
            demo_control,
        );
        Err(DemoError::NotBuilt)
    }
}

/// The demo's control plane: the default socket, as `fastpath run`'s, so
/// `fastpath show ports` and `fastpath watch` work against a demo too; a
/// user who may not make it (not root), or a daemon already serving it,
/// leaves the demo without one (one line says why). Every setting is the
/// demo's preset.
fn demo_control(
    cfg: &config::run_config::ValidRunConfig,
    opts: &RouterOptions,
) -> crate::control::ControlOptions {
    use crate::control::config_view::{ConfigView, ControlSettings, Source};
    use crate::control::options::DEFAULT_SOCKET;
    let settings = ControlSettings {
        socket: Some(DEFAULT_SOCKET.into()),
        metrics: None,
    };
    let mut control =
        crate::control::ControlOptions::off(ConfigView::new(cfg, opts, &settings, |_| {
            Source::Default
        }));
    control.socket = Some(DEFAULT_SOCKET.into());
    control
}
