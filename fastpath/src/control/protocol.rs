//! The control socket's wire protocol: newline-delimited JSON, one
//! request per line, one response per line, each carrying the protocol
//! version (the request/response pairs sit side by side, as grout's API
//! headers keep them).
//!
//! A request: `{"version":1,"request":"ports"}`. A response:
//! `{"version":1,"response":"ports", ...fields...}` or
//! `{"version":1,"response":"error","kind":"unknown_request","message":"..."}`.
//! Whatever a client sends, [`parse_request`] gives a request or a typed
//! error response; it never panics.

use super::config_view::ConfigView;
use super::views::{CoresView, ExceptionView, NeighboursView, PortsView, RoutesView};
use serde::{Deserialize, Serialize};

/// The version both ends must speak. Raised when a request or response
/// changes shape; a client of another version is told so, not fed
/// fields it misreads.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon reads, newline included; a longer
/// one is answered with [`ErrorKind::LineTooLong`] and the connection
/// closed. Requests are a few dozen bytes: 4 KiB is generous and bounds
/// what an idle or hostile client can make the daemon hold.
pub const MAX_REQUEST_LINE: usize = 4096;

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Every port: link, MAC, driver kind, queues, counters, drops.
    Ports,
    /// Every worker core: busy share and cycles per packet over the last
    /// interval, and totals.
    Cores,
    /// The routes the workers forward by (l3 mode).
    Routes,
    /// The neighbours the router knows (l3 mode).
    Neighbours,
    /// The exception path's counters per port (l3 mode).
    Exception,
    /// The effective configuration, with where each value came from.
    Config,
}

impl Request {
    /// Every request, for help texts and the unknown-request error.
    pub const ALL: [Request; 6] = [
        Request::Ports,
        Request::Cores,
        Request::Routes,
        Request::Neighbours,
        Request::Exception,
        Request::Config,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Request::Ports => "ports",
            Request::Cores => "cores",
            Request::Routes => "routes",
            Request::Neighbours => "neighbours",
            Request::Exception => "exception",
            Request::Config => "config",
        }
    }
}

/// One request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLine {
    /// [`PROTOCOL_VERSION`] of the client.
    pub version: u32,
    /// What it asks.
    pub request: Request,
}

impl RequestLine {
    /// A request of this version.
    pub fn new(request: Request) -> Self {
        RequestLine {
            version: PROTOCOL_VERSION,
            request,
        }
    }
}

/// Why a request got no answer of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not a JSON object with `version` and `request`.
    Malformed,
    /// The request names nothing this daemon serves.
    UnknownRequest,
    /// The client speaks another protocol version.
    VersionMismatch,
    /// The line is longer than [`MAX_REQUEST_LINE`].
    LineTooLong,
    /// Routes, neighbours and the exception path exist in l3 mode only.
    NotRouting,
    /// The daemon could not answer in time (stopping, or busy).
    Unavailable,
    /// Too many clients at once.
    Busy,
}

/// An error response's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What kind of error.
    pub kind: ErrorKind,
    /// What is wrong and what to do, for the operator.
    pub message: String,
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// To [`Request::Ports`].
    Ports(PortsView),
    /// To [`Request::Cores`].
    Cores(CoresView),
    /// To [`Request::Routes`].
    Routes(RoutesView),
    /// To [`Request::Neighbours`].
    Neighbours(NeighboursView),
    /// To [`Request::Exception`].
    Exception(ExceptionView),
    /// To [`Request::Config`].
    Config(ConfigView),
    /// Any request that could not be answered.
    Error(ErrorBody),
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error(ErrorBody {
            kind,
            message: message.into(),
        })
    }
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseLine {
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub version: u32,
    /// The answer.
    #[serde(flatten)]
    pub response: Response,
}

impl ResponseLine {
    /// The line for `response`, newline included. Plain structures of
    /// numbers and strings always serialize; should one not, the client
    /// still gets a well-formed error line.
    pub fn encode(response: Response) -> String {
        let line = ResponseLine {
            version: PROTOCOL_VERSION,
            response,
        };
        let mut text = serde_json::to_string(&line).unwrap_or_else(|e| {
            format!(
                "{{\"version\":{PROTOCOL_VERSION},\"response\":\"error\",\"kind\":\"unavailable\",\"message\":{}}}",
                serde_json::Value::from(format!("cannot encode the response: {e}"))
            )
        });
        text.push('\n');
        text
    }
}

/// The request on `line` (without its newline), or the error response
/// to send instead.
pub fn parse_request(line: &[u8]) -> Result<Request, Response> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        Response::error(
            ErrorKind::Malformed,
            format!("not a JSON request line ({e}); send {}", example()),
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err(Response::error(
            ErrorKind::Malformed,
            format!("a request is a JSON object, such as {}", example()),
        ));
    };
    let version = obj.get("version").and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(Response::error(
                ErrorKind::VersionMismatch,
                format!(
                "this daemon speaks control protocol version {PROTOCOL_VERSION}, the client {v}: \
                     use the fastpath binary of the running daemon (the same image)"
            ),
            ))
        }
        None => {
            return Err(Response::error(
                ErrorKind::Malformed,
                format!("no numeric \"version\"; send {}", example()),
            ))
        }
    }
    let Some(name) = obj.get("request").and_then(serde_json::Value::as_str) else {
        return Err(Response::error(
            ErrorKind::Malformed,
            format!("no \"request\" name; send {}", example()),
        ));
    };
    Request::ALL
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or_else(|| {
            Response::error(
                ErrorKind::UnknownRequest,
                format!(
                    "unknown request {name:?}; this daemon serves: {}",
                    Request::ALL.map(Request::name).join(", ")
                ),
            )
        })
}

fn example() -> String {
    format!("{{\"version\":{PROTOCOL_VERSION},\"request\":\"ports\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(r: Result<Request, Response>) -> ErrorKind {
        match r {
            Err(Response::Error(e)) => e.kind,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn every_request_round_trips() {
        for r in Request::ALL {
            let line = serde_json::to_string(&RequestLine::new(r)).unwrap();
            assert_eq!(
                line,
                format!("{{\"version\":1,\"request\":\"{}\"}}", r.name())
            );
            assert_eq!(parse_request(line.as_bytes()), Ok(r));
        }
    }

    #[test]
    fn bad_lines_get_typed_errors() {
        for line in ["", "{", "ports", "[1,2]", "null", "\u{0}\u{ff}"] {
            assert_eq!(
                kind(parse_request(line.as_bytes())),
                ErrorKind::Malformed,
                "{line:?}"
            );
        }
        assert_eq!(
            kind(parse_request(br#"{"request":"ports"}"#)),
            ErrorKind::Malformed
        );
        assert_eq!(
            kind(parse_request(br#"{"version":1,"request":7}"#)),
            ErrorKind::Malformed
        );
        assert_eq!(
            kind(parse_request(br#"{"version":2,"request":"ports"}"#)),
            ErrorKind::VersionMismatch
        );
        let e = parse_request(br#"{"version":1,"request":"reboot"}"#).unwrap_err();
        let text = ResponseLine::encode(e);
        assert_eq!(
            text,
            "{\"version\":1,\"response\":\"error\",\"kind\":\"unknown_request\",\"message\":\
             \"unknown request \\\"reboot\\\"; this daemon serves: ports, cores, routes, \
             neighbours, exception, config\"}\n"
        );
        let back: ResponseLine = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            back.response,
            Response::Error(ErrorBody {
                kind: ErrorKind::UnknownRequest,
                ..
            })
        ));
    }

    proptest! {
        /// Any bytes give a request or an error response, never a panic,
        /// and the error encodes to one line.
        #[test]
        fn any_line_gets_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(e) = parse_request(&bytes) {
                let text = ResponseLine::encode(e);
                prop_assert!(text.ends_with('\n'));
                prop_assert_eq!(text.matches('\n').count(), 1);
            }
        }

        /// Any request name other than the known ones is unknown.
        #[test]
        fn unknown_names_are_unknown(name in "[a-z_]{1,20}") {
            let line = format!("{{\"version\":1,\"request\":\"{name}\"}}");
            match parse_request(line.as_bytes()) {
                Ok(r) => prop_assert_eq!(r.name(), name.as_str()),
                Err(e) => {
                    let unknown = matches!(e, Response::Error(ErrorBody { kind: ErrorKind::UnknownRequest, .. }));
                    prop_assert!(unknown);
                }
            }
        }
    }
}
