//! The control plane an operator reaches with
//! `kubectl exec <pod> -- fastpath <command>`: a Unix socket the running
//! daemon serves, the client subcommands of the same binary, and a
//! Prometheus endpoint.
//!
//! - [`protocol`]: request and response lines (JSON, versioned).
//! - [`views`], [`config_view`]: what the answers hold.
//! - [`socket_file`]: the socket's file (0600, stale ones cleared).
//! - [`server`]: the accept thread and the client threads.
//! - [`answer`]: the run loop's side, answering from its snapshots.
//! - [`metrics`], [`http`]: the Prometheus text and its HTTP server.
//! - [`client`], [`commands`], [`show`]: `fastpath show ...` and `watch`.
//! - [`options`], [`sources`]: `--control-socket`, `--metrics`, and where
//!   each value of `fastpath run` came from.
//!
//! Threads: the socket's accept thread (`fp-ctl`), one short-lived thread
//! per client, and the metrics thread (`fp-metrics`); none is a worker.
//! They ask the run loop, which answers between two of its rounds from
//! the same counters the live line shows: the workers' loops are not
//! touched.

pub mod answer;
pub mod client;
pub mod commands;
pub mod config_view;
pub mod http;
pub mod metrics;
pub mod options;
pub mod protocol;
pub mod server;
pub mod show;
pub mod socket_file;
pub mod sources;
pub mod views;

pub use answer::Answerer;
pub use options::ControlOptions;
pub use server::Query;

use http::{MetricsError, MetricsServer};
use protocol::{ErrorBody, ErrorKind, Request, Response};
use server::{Asker, ControlServer};
use socket_file::{SocketFile, SocketFileError};
use std::sync::mpsc::Receiver;

/// Why the control plane could not start (the run does not start either:
/// an operator who asked for a socket or metrics must get them).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket's file.
    #[error(transparent)]
    Socket(#[from] SocketFileError),
    /// The socket's thread.
    #[error("control socket: cannot start its thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The metrics endpoint.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// The running control plane: stops its threads and removes the socket
/// on drop.
#[derive(Debug, Default)]
pub struct ControlPlane {
    /// Stops the threads and removes the socket's file on drop.
    socket: Option<ControlServer>,
    /// Why the default socket is not served (another fastpath serves it,
    /// or this user may not make it): the run goes on without one.
    skipped: Option<SocketFileError>,
    metrics: Option<MetricsServer>,
}

impl ControlPlane {
    /// Starts what `opts` asks for. The receiver, when anything was
    /// started, is where the run loop takes the [`Query`]s to answer.
    pub fn start(
        opts: &ControlOptions,
    ) -> Result<(ControlPlane, Option<Receiver<Query>>), ControlError> {
        if opts.socket.is_none() && opts.metrics.is_none() {
            return Ok((ControlPlane::default(), None));
        }
        let (asker, queries) = Asker::channel();
        let mut skipped = None;
        let file = match &opts.socket {
            Some(path) => match SocketFile::bind(path) {
                Ok(f) => Some(f),
                // The default path, not asked for: a daemon run by a user who
                // may not write /run, or beside another daemon, runs on
                // without a socket and says why.
                Err(e) if !opts.socket_required => {
                    skipped = Some(e);
                    None
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let socket = match file {
            Some(f) => Some(ControlServer::start(f, asker.clone()).map_err(ControlError::Thread)?),
            None => None,
        };
        let metrics = match opts.metrics {
            Some(addr) => Some(MetricsServer::start(addr, move || scrape(&asker))?),
            None => None,
        };
        Ok((
            ControlPlane {
                socket,
                skipped,
                metrics,
            },
            Some(queries),
        ))
    }

    /// The control socket served, if one is.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.socket.as_ref().map(ControlServer::path)
    }

    /// Why the default socket is not served, when this one runs without
    /// a socket.
    pub fn skipped_socket(&self) -> Option<&SocketFileError> {
        self.skipped.as_ref()
    }

    /// Where the metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }
}

/// The metrics text, from the answers `show ports`, `show cores` and (in
/// l3 mode) `show exception` get.
fn scrape(asker: &Asker) -> http::Body {
    let fail = |r: Response| match r {
        Response::Error(ErrorBody { message, .. }) => message,
        other => format!("unexpected answer {other:?}"),
    };
    let ports = match asker.ask(Request::Ports) {
        Response::Ports(v) => v,
        r => return Err(fail(r)),
    };
    let cores = match asker.ask(Request::Cores) {
        Response::Cores(v) => v,
        r => return Err(fail(r)),
    };
    let exception = match asker.ask(Request::Exception) {
        Response::Exception(v) => Some(v),
        Response::Error(ErrorBody {
            kind: ErrorKind::NotRouting,
            ..
        }) => None,
        r => return Err(fail(r)),
    };
    Ok(metrics::render(&ports, &cores, exception.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::config_view::ConfigView;
    use super::*;

    #[test]
    fn a_default_socket_in_use_is_left_to_its_owner_an_asked_one_refuses_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fp.sock");
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut opts = ControlOptions::off(ConfigView {
            daemon_version: "test".into(),
            settings: Vec::new(),
        });
        opts.socket = Some(path.clone());
        let (plane, queries) = ControlPlane::start(&opts).unwrap();
        assert!(
            matches!(plane.skipped_socket(), Some(SocketFileError::InUse(p)) if *p == path),
            "{:?}",
            plane.skipped_socket()
        );
        assert!(plane.socket_path().is_none() && queries.is_some());
        drop(plane);
        assert!(path.exists(), "the other daemon's socket was removed");
        opts.socket_required = true;
        let e = ControlPlane::start(&opts).unwrap_err();
        assert!(
            matches!(e, ControlError::Socket(SocketFileError::InUse(_))),
            "{e}"
        );
    }
}
