//! The client side of the control socket (`fastpath show ...`, `watch`):
//! one connection, one request line and one response line at a time, and
//! errors that tell the operator what to do.

use super::protocol::{ErrorBody, Request, RequestLine, Response, ResponseLine, PROTOCOL_VERSION};
use super::server::{read_line, ReadLine};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the client waits for an answer: the daemon's own wait
/// ([`ANSWER_WAIT`](super::server::ANSWER_WAIT)) and some.
pub const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// Longest response line read. A response is one line of JSON; a full
/// routing table (a million routes, ~100 bytes each) fits.
pub const MAX_RESPONSE_LINE: usize = 256 << 20;

/// Why a command could not get its answer. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket at the path.
    #[error(
        "no control socket at {0}: is `fastpath run` running? If it was started with \
         --control-socket PATH, give the same --control-socket PATH here"
    )]
    NoSocket(PathBuf),
    /// A socket file nobody listens on.
    #[error(
        "nothing listens on {0}: the fastpath that made it has stopped (the next \
         `fastpath run` removes it); is `fastpath run` running?"
    )]
    Refused(PathBuf),
    /// The caller may not open the socket.
    #[error(
        "permission denied on {path}: the control socket is mode 0600{owner}; run this \
         command as the same user as `fastpath run`, or as root (kubectl exec runs as the \
         container's user)"
    )]
    Permission {
        /// The socket.
        path: PathBuf,
        /// ", owned by uid N" when the owner can be read.
        owner: String,
    },
    /// Another failure to connect.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("{0}: no answer within {CLIENT_WAIT:?}; the daemon is busy or stuck")]
    Timeout(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The daemon closed without answering.
    #[error("{0}: the daemon closed the connection without answering (stopping?)")]
    Closed(PathBuf),
    /// The daemon speaks another protocol version.
    #[error(
        "the daemon speaks control protocol version {daemon}, this fastpath {PROTOCOL_VERSION}: \
         run the fastpath binary of the running daemon (the same image)"
    )]
    Version {
        /// The daemon's version.
        daemon: u64,
    },
    /// The answer is not a response this client understands.
    #[error("{path}: the daemon's answer cannot be read: {why}")]
    BadResponse {
        /// The socket.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The daemon answered with an error.
    #[error("the daemon says: {}", .0.message)]
    Daemon(ErrorBody),
}

/// A connection to a daemon.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the daemon's socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ClientError::NoSocket(path.to_owned()),
            io::ErrorKind::ConnectionRefused => ClientError::Refused(path.to_owned()),
            io::ErrorKind::PermissionDenied => ClientError::Permission {
                path: path.to_owned(),
                owner: std::fs::metadata(path)
                    .map(|m| format!(", owned by uid {}", m.uid()))
                    .unwrap_or_default(),
            },
            _ => ClientError::Connect {
                path: path.to_owned(),
                source: e,
            },
        })?;
        let io_err = |source| ClientError::Io {
            path: path.to_owned(),
            source,
        };
        stream.set_read_timeout(Some(CLIENT_WAIT)).map_err(io_err)?;
        stream
            .set_write_timeout(Some(CLIENT_WAIT))
            .map_err(io_err)?;
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::new(stream),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks `request`; the daemon's answer, or why there is none (an
    /// error response is [`ClientError::Daemon`]).
    pub fn ask(&mut self, request: Request) -> Result<Response, ClientError> {
        let io_err = |source: io::Error| {
            if matches!(
                source.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                ClientError::Timeout(self.path.clone())
            } else {
                ClientError::Io {
                    path: self.path.clone(),
                    source,
                }
            }
        };
        let mut line = serde_json::to_string(&RequestLine::new(request)).map_err(|e| {
            ClientError::BadResponse {
                path: self.path.clone(),
                why: e.to_string(),
            }
        })?;
        line.push('\n');
        let w = self.reader.get_mut();
        w.write_all(line.as_bytes()).map_err(io_err)?;
        w.flush().map_err(io_err)?;
        let mut buf = Vec::new();
        let text = match read_line(&mut self.reader, MAX_RESPONSE_LINE, &mut buf).map_err(io_err)? {
            ReadLine::Line(l) => l,
            ReadLine::End => return Err(ClientError::Closed(self.path.clone())),
            ReadLine::TooLong => {
                return Err(ClientError::BadResponse {
                    path: self.path.clone(),
                    why: format!("longer than {MAX_RESPONSE_LINE} bytes"),
                })
            }
        };
        decode(&self.path, &text)
    }
}

/// A response line's answer, checked for its version first: a daemon of
/// another version may answer in a shape this client misreads.
fn decode(path: &Path, text: &[u8]) -> Result<Response, ClientError> {
    let bad = |why: String| ClientError::BadResponse {
        path: path.to_owned(),
        why,
    };
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(daemon) => return Err(ClientError::Version { daemon }),
        None => return Err(bad("no protocol version".into())),
    }
    let line: ResponseLine = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    match line.response {
        Response::Error(e) => Err(ClientError::Daemon(e)),
        r => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::ErrorKind;
    use super::*;

    #[test]
    fn connect_errors_say_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fp.sock");
        let e = Client::connect(&path).unwrap_err();
        assert!(matches!(e, ClientError::NoSocket(_)), "{e}");
        assert!(e.to_string().contains("is `fastpath run` running?"), "{e}");
        assert!(e.to_string().contains("--control-socket"), "{e}");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = Client::connect(&path).unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e}");
    }

    #[test]
    fn responses_of_another_version_or_shape_are_refused() {
        let p = Path::new("/s");
        let e = decode(p, br#"{"version":2,"response":"ports"}"#).unwrap_err();
        assert!(matches!(e, ClientError::Version { daemon: 2 }), "{e}");
        assert!(e.to_string().contains("same image"), "{e}");
        let e = decode(p, br#"{"version":1,"response":"teapot"}"#).unwrap_err();
        assert!(matches!(e, ClientError::BadResponse { .. }), "{e}");
        let e = decode(
            p,
            br#"{"version":1,"response":"error","kind":"not_routing","message":"not routing: io"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ClientError::Daemon(b) if b.kind == ErrorKind::NotRouting),
            "{e}"
        );
        assert_eq!(e.to_string(), "the daemon says: not routing: io");
    }
}
