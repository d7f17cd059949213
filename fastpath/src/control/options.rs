//! The control plane's options: where the control socket is (or that
//! there is none), and where the metrics are served (off by default).

use super::config_view::{ConfigView, ControlSettings};
use super::sources::Sources;
use crate::cli::RunArgs;
use crate::router::RouterOptions;
use clap::ArgMatches;
use config::run_config::ValidRunConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the daemon serves its control socket unless told otherwise, and
/// where the client looks: under /run, as daemons' sockets are (FHS 3.0
/// 3.15), in a directory of its own the daemon makes 0700.
pub const DEFAULT_SOCKET: &str = "/run/fastpath/fastpath.sock";

/// The word that turns the control socket off.
pub const NO_SOCKET: &str = "none";

/// `--control-socket PATH|none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketChoice(pub Option<PathBuf>);

impl Default for SocketChoice {
    fn default() -> Self {
        SocketChoice(Some(PathBuf::from(DEFAULT_SOCKET)))
    }
}

impl FromStr for SocketChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == NO_SOCKET {
            return Ok(SocketChoice(None));
        }
        if s.is_empty() {
            return Err(format!(
                "an empty path; give a socket path or {NO_SOCKET:?}"
            ));
        }
        // sun_path holds 108 bytes with its NUL (unix(7)).
        if s.len() > 107 {
            return Err(format!(
                "{} bytes: a Unix socket path holds at most 107 (unix(7)); choose a shorter path",
                s.len()
            ));
        }
        Ok(SocketChoice(Some(PathBuf::from(s))))
    }
}

impl fmt::Display for SocketChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(p) => write!(f, "{}", p.display()),
            None => f.write_str(NO_SOCKET),
        }
    }
}

/// `--metrics ADDR:PORT`.
pub fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not ADDR:PORT (such as 127.0.0.1:9469, 0.0.0.0:9469 or [::]:9469)")
    })
}

/// What `fastpath run` serves besides forwarding.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlOptions {
    /// The control socket (`None`: none).
    pub socket: Option<PathBuf>,
    /// The socket was asked for (`--control-socket`), not the default:
    /// when another fastpath serves it, the run is refused. At the
    /// default path this one runs without a socket and says so, so that
    /// several daemons on one machine (tests, a laptop) need no option.
    pub socket_required: bool,
    /// The Prometheus endpoint (`None`: off).
    pub metrics: Option<SocketAddr>,
    /// The effective configuration `show config` answers.
    pub config: ConfigView,
}

impl ControlOptions {
    /// What `fastpath run`'s options `args` ask for, with the effective
    /// configuration `cfg` (and `router`) and where each value came from
    /// (`before_env`: the options before the `--env` file; `matches`:
    /// clap's record of `run`).
    pub fn of_run(
        args: &RunArgs,
        before_env: &RunArgs,
        matches: Option<&ArgMatches>,
        cfg: &ValidRunConfig,
        router: &RouterOptions,
    ) -> Self {
        let sources = Sources {
            matches,
            before_env,
            after_env: args,
        };
        let settings = ControlSettings {
            socket: args.control_socket.0.clone(),
            metrics: args.metrics.map(|a| a.to_string()),
        };
        ControlOptions {
            socket: args.control_socket.0.clone(),
            socket_required: sources.on_command_line("control_socket"),
            metrics: args.metrics,
            config: ConfigView::new(cfg, router, &settings, |i| sources.of(i)),
        }
    }

    /// Neither socket nor metrics (library users, tests).
    pub fn off(config: ConfigView) -> Self {
        ControlOptions {
            socket: None,
            socket_required: false,
            metrics: None,
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_and_metrics_values() {
        assert_eq!(SocketChoice::default().to_string(), DEFAULT_SOCKET);
        assert_eq!("none".parse::<SocketChoice>(), Ok(SocketChoice(None)));
        assert_eq!(
            "/tmp/x.sock".parse::<SocketChoice>().unwrap().0,
            Some(PathBuf::from("/tmp/x.sock"))
        );
        assert!("".parse::<SocketChoice>().is_err());
        let long = format!("/{}", "a".repeat(107));
        assert!(long
            .parse::<SocketChoice>()
            .unwrap_err()
            .contains("at most 107"));
        assert_eq!(
            parse_metrics_addr("[::]:9469").unwrap().to_string(),
            "[::]:9469"
        );
        assert!(parse_metrics_addr("9469")
            .unwrap_err()
            .contains("ADDR:PORT"));
    }
}
