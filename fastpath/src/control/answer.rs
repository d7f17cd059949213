//! The run loop's side of the control socket: answers each [`Query`]
//! from the forwarder's and the router's snapshots, and keeps the
//! one-second window the cores' loads are measured over.

use super::config_view::ConfigView;
use super::protocol::{ErrorKind, Request, Response};
use super::server::Query;
use super::views::{CoresView, ExceptionView, NeighboursView, PortsView, RoutesView};
use crate::forwarder::{Forwarder, Snapshot};
use crate::fwd_mode::FwdMode;
use crate::router::Router;
use std::time::{Duration, Instant};

/// The interval `show cores` reports loads over (fp-cpu-usage's default
/// is one second too).
pub const LOAD_INTERVAL: Duration = Duration::from_secs(1);

/// How long a routes or neighbours request waits for the router's
/// control thread (a round is 20 ms; a publication may take 100 ms).
const TABLES_WAIT: Duration = Duration::from_millis(500);

/// Answers queries; owned by the run loop.
#[derive(Debug)]
pub struct Answerer {
    mode: FwdMode,
    config: ConfigView,
    /// The readings at the start and the end of the last whole interval
    /// (before the first ends: the start, and none).
    older: Snapshot,
    newer: Option<Snapshot>,
    next_roll: Instant,
}

impl Answerer {
    /// For a forwarder in `mode` that just started, whose configuration
    /// is `config`.
    pub fn new(fwd: &Forwarder, mode: FwdMode, config: ConfigView) -> Self {
        Answerer {
            mode,
            config,
            older: fwd.snapshot(),
            newer: None,
            next_roll: Instant::now() + LOAD_INTERVAL,
        }
    }

    /// Moves the load window on when an interval ended (call from every
    /// round of the run loop; it reads counters once a second).
    pub fn tick(&mut self, fwd: &Forwarder, now: Instant) {
        if now < self.next_roll {
            return;
        }
        let snap = fwd.snapshot();
        if let Some(n) = self.newer.replace(snap) {
            self.older = n;
        }
        // Skip intervals a suspended process missed.
        self.next_roll = (self.next_roll + LOAD_INTERVAL).max(now);
    }

    /// Answers `q` (a client that gave up is no error).
    pub fn answer(&self, q: Query, fwd: &Forwarder, router: Option<&Router>) {
        let _ = q.reply.try_send(self.respond(q.request, fwd, router));
    }

    fn respond(&self, request: Request, fwd: &Forwarder, router: Option<&Router>) -> Response {
        match request {
            Request::Ports => Response::Ports(PortsView::new(&fwd.snapshot(), fwd.cpus().len())),
            Request::Cores => Response::Cores(match &self.newer {
                Some(newer) => CoresView::new(&self.older, newer),
                None => CoresView::new(&self.older, &fwd.snapshot()),
            }),
            Request::Config => Response::Config(self.config.clone()),
            Request::Routes | Request::Neighbours | Request::Exception => {
                let Some(r) = router else {
                    return Response::error(
                        ErrorKind::NotRouting,
                        format!(
                            "not routing: fastpath runs in {} mode; routes, neighbours and the \
                             exception path exist with --mode l3",
                            self.mode
                        ),
                    );
                };
                if request == Request::Exception {
                    return Response::Exception(ExceptionView::new(&r.stats(), &fwd.snapshot()));
                }
                let Some(t) = r.tables_view(TABLES_WAIT) else {
                    return Response::error(
                        ErrorKind::Unavailable,
                        "the router's control thread did not answer (stopping, or a worker \
                         is stalled); try again",
                    );
                };
                if request == Request::Routes {
                    Response::Routes(RoutesView::new(&t, r.ifnames()))
                } else {
                    Response::Neighbours(NeighboursView::new(&t, r.ifnames()))
                }
            }
        }
    }
}
