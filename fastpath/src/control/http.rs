//! A very small HTTP/1.1 server for the metrics (RFC 9112 message syntax):
//! `GET /metrics` (or `HEAD`) answers the exposition text, any other path
//! 404, any other method 405; every response closes the connection. One
//! thread (`fp-metrics`) serves clients one at a time: a scraper asks
//! every few seconds, and each client is bounded by [`CLIENT_TIMEOUT`]
//! and [`MAX_HEAD`].
//!
//! Our own rather than a crate: this is all a Prometheus scrape needs,
//! and an HTTP crate would bring an async runtime or a thread pool.

use super::metrics::CONTENT_TYPE;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head read (request line and headers); the rest is
/// ignored. A scrape's head is a few hundred bytes.
pub const MAX_HEAD: usize = 8192;
/// How long a client may take to send its head or read the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("--metrics {addr}: cannot listen there: {source} (is another exporter on that port? choose another ADDR:PORT)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The thread could not be started.
    #[error("--metrics {addr}: cannot start its thread: {source}")]
    Thread {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// The running endpoint; stops on drop.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the body of `GET /metrics` is: the text, or why there is none
/// (answered 503).
pub type Body = Result<String, String>;

impl MetricsServer {
    /// Listens on `addr` and answers scrapes with `body()`.
    pub fn start(
        addr: SocketAddr,
        body: impl Fn() -> Body + Send + 'static,
    ) -> Result<MetricsServer, MetricsError> {
        let bind = |source| MetricsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let bound = listener.local_addr().map_err(bind)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_t = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fp-metrics".into())
            .spawn(move || {
                // Relaxed: the flag carries no data; the join orders the rest.
                while !stop_t.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = serve(stream, &body) {
                                log::debug!("metrics client: {e}");
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(ACCEPT_POLL)
                        }
                        Err(e) => {
                            log::warn!("metrics {bound}: accept: {e}");
                            std::thread::sleep(ACCEPT_POLL);
                        }
                    }
                }
            })
            .map_err(|source| MetricsError::Thread { addr, source })?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address listened on (the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        // Relaxed: see the loop.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// What to answer a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`; `head_only` for `HEAD`.
    Metrics {
        /// No body.
        head_only: bool,
    },
    /// 400: not an HTTP request line.
    BadRequest,
    /// 404: another path.
    NotFound,
    /// 405: another method.
    MethodNotAllowed,
}

/// Routes a request head (its first line decides).
pub fn route(head: &[u8]) -> Route {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let mut words = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Route::Metrics {
            head_only: method == "HEAD",
        },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// Reads the head: up to the blank line, [`MAX_HEAD`] bytes at most.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    Ok(head)
}

fn serve(mut stream: TcpStream, body: &impl Fn() -> Body) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, ctype, text, head_only, extra) = match route(&head) {
        Route::Metrics { head_only } => match body() {
            Ok(t) => ("200 OK", CONTENT_TYPE, t, head_only, ""),
            Err(why) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("{why}\n"),
                head_only,
                "",
            ),
        },
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "the metrics are at /metrics\n".to_owned(),
            false,
            "",
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_owned(),
            false,
            "Allow: GET, HEAD\r\n",
        ),
        Route::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "not an HTTP/1.x request\n".to_owned(),
            false,
            "",
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        text.len()
    );
    if !head_only {
        out.push_str(&text);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        for bad in [
            &b""[..],
            b"GET\r\n\r\n",
            b"GET /metrics SPDY/3\r\n",
            b"\xff\xfe",
        ] {
            assert_eq!(route(bad), Route::BadRequest, "{bad:?}");
        }
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_scrape_gets_the_body_and_other_paths_404() {
        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap(), || Ok("m 1\n".into())).unwrap();
        let r = get(server.addr(), "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(
            r.contains("Content-Length: 4\r\n") && r.ends_with("\r\n\r\nm 1\n"),
            "{r}"
        );
        let r = get(server.addr(), "GET /other HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        let r = get(server.addr(), "DELETE /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 405 ") && r.contains("Allow: GET, HEAD"),
            "{r}"
        );
        let r = get(server.addr(), "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.ends_with("\r\n\r\n") && r.contains("Content-Length: 4"),
            "{r}"
        );
        // Taken: the second bind names the fix.
        let e = MetricsServer::start(server.addr(), || Ok(String::new())).unwrap_err();
        assert!(e.to_string().contains("choose another ADDR:PORT"), "{e}");
    }
}
