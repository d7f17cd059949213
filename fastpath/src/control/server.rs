//! The control socket's server: one accept thread (`fp-ctl`), and a
//! short-lived thread per client, each reading request lines and asking
//! the run loop for the answers through a channel ([`Asker`]).
//!
//! None of these threads is a worker, and none touches the workers'
//! state: the run loop (the thread that prints the live line) answers
//! from the same snapshots it prints, so the workers see no lock and no
//! system call they did not already make.
//!
//! Bounds: a request line is at most [`MAX_REQUEST_LINE`] bytes; a client
//! that says nothing for [`IDLE_TIMEOUT`] is told so and dropped; at most
//! [`MAX_CLIENTS`] are served at once (the next is answered `busy`).

use super::protocol::{
    parse_request, ErrorKind, Request, Response, ResponseLine, MAX_REQUEST_LINE,
};
use super::socket_file::SocketFile;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a client may stay silent (or stall a line) before it is
/// dropped.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client thread waits for the run loop's answer. The loop
/// wakes at least every 20 ms; a routes request waits for the router's
/// control thread too (one round, 20 ms, or a publication, at most
/// 100 ms).
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Clients served at once.
pub const MAX_CLIENTS: usize = 16;
/// How often the accept thread looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// One question for the run loop, with where to put the answer.
#[derive(Debug)]
pub struct Query {
    /// The request.
    pub request: Request,
    /// The answer goes here (a client that gave up is no error).
    pub reply: SyncSender<Response>,
}

/// The client threads' (and the metrics thread's) way to the run loop.
#[derive(Debug, Clone)]
pub struct Asker(Sender<Query>);

impl Asker {
    /// A pair: the asker, and the run loop's end.
    pub fn channel() -> (Asker, Receiver<Query>) {
        let (tx, rx) = mpsc::channel();
        (Asker(tx), rx)
    }

    /// Asks `request` and waits up to [`ANSWER_WAIT`].
    pub fn ask(&self, request: Request) -> Response {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.0.send(Query { request, reply }).is_err() {
            return stopping();
        }
        match answer.recv_timeout(ANSWER_WAIT) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Response::error(
                ErrorKind::Unavailable,
                format!(
                    "the daemon did not answer within {} s (busy or stopping); try again",
                    ANSWER_WAIT.as_secs()
                ),
            ),
            Err(RecvTimeoutError::Disconnected) => stopping(),
        }
    }
}

fn stopping() -> Response {
    Response::error(ErrorKind::Unavailable, "the daemon is stopping")
}

/// The running server; stops (and removes the socket) on drop.
#[derive(Debug)]
pub struct ControlServer {
    path: std::path::PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Serves `socket`, asking `asker` for the answers.
    pub fn start(socket: SocketFile, asker: Asker) -> io::Result<ControlServer> {
        socket.listener().set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_a = Arc::clone(&stop);
        let path = socket.path().to_owned();
        let accept = std::thread::Builder::new()
            .name("fp-ctl".into())
            .spawn(move || accept_loop(&socket, &asker, &stop_a))?;
        Ok(ControlServer {
            path,
            stop,
            accept: Some(accept),
        })
    }
}

impl ControlServer {
    /// The socket's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Relaxed: the flag carries no data; the join orders the rest.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            if h.join().is_err() {
                log::error!("control socket: the accept thread panicked");
            }
        }
    }
}

fn accept_loop(socket: &SocketFile, asker: &Asker, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    // Relaxed: see ControlServer::drop.
    while !stop.load(Ordering::Relaxed) {
        match socket.listener().accept() {
            Ok((stream, _)) => {
                // Relaxed: a count, no data travels with it.
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    refuse_busy(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let asker = asker.clone();
                let count = Arc::clone(&active);
                let spawned = std::thread::Builder::new()
                    .name("fp-ctl-client".into())
                    .spawn(move || {
                        if let Err(e) = serve_client(&stream, &asker) {
                            log::debug!("control client: {e}");
                        }
                        count.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::Relaxed);
                    log::warn!("control socket: cannot start a client thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                log::warn!("control socket {}: accept: {e}", socket.path().display());
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

fn refuse_busy(mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let line = ResponseLine::encode(Response::error(
        ErrorKind::Busy,
        format!("{MAX_CLIENTS} clients are being served; try again"),
    ));
    let _ = stream.write_all(line.as_bytes());
}

/// One line read from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A line, without its newline.
    Line(Vec<u8>),
    /// The client closed its end.
    End,
    /// Longer than [`MAX_REQUEST_LINE`].
    TooLong,
}

/// Reads one line of at most `max` bytes (newline included).
pub fn read_line(r: &mut impl BufRead, max: usize, buf: &mut Vec<u8>) -> io::Result<ReadLine> {
    buf.clear();
    let n = r.take(max as u64).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(ReadLine::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(ReadLine::Line(std::mem::take(buf)));
    }
    if n >= max {
        return Ok(ReadLine::TooLong);
    }
    // The client closed after a last line without a newline.
    Ok(ReadLine::Line(std::mem::take(buf)))
}

/// Serves one client until it closes, errs, stays silent or sends a line
/// too long. Answers go through `answer`.
pub fn serve_stream<S: Read + Write>(
    stream: S,
    answer: impl Fn(Request) -> Response,
) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        let (response, last) = match read_line(&mut reader, MAX_REQUEST_LINE, &mut buf) {
            Ok(ReadLine::End) => return Ok(()),
            Ok(ReadLine::Line(line)) => match parse_request(&line) {
                Ok(r) => (answer(r), false),
                Err(e) => (e, false),
            },
            Ok(ReadLine::TooLong) => (
                Response::error(
                    ErrorKind::LineTooLong,
                    format!("a request line is at most {MAX_REQUEST_LINE} bytes; closing"),
                ),
                true,
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                (
                    Response::error(
                        ErrorKind::Unavailable,
                        format!(
                            "no complete request line within {} s; closing",
                            IDLE_TIMEOUT.as_secs()
                        ),
                    ),
                    true,
                )
            }
            Err(e) => return Err(e),
        };
        let w = reader.get_mut();
        w.write_all(ResponseLine::encode(response).as_bytes())?;
        w.flush()?;
        if last {
            return Ok(());
        }
    }
}

fn serve_client(stream: &UnixStream, asker: &Asker) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    serve_stream(stream, |r| asker.ask(r))
}

#[cfg(test)]
mod tests {
    use super::super::protocol::{ErrorBody, ResponseLine};
    use super::super::views::NeighboursView;
    use super::*;
    use std::io::Cursor;

    /// A duplex in memory: reads from `input`, collects what is written.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn serve(input: Vec<u8>) -> Vec<ResponseLine> {
        let mut d = Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        };
        serve_stream(&mut d, |r| match r {
            Request::Neighbours => Response::Neighbours(NeighboursView {
                interfaces: vec!["fp0".into()],
                neighbours: Vec::new(),
            }),
            _ => Response::error(ErrorKind::NotRouting, "not routing"),
        })
        .unwrap();
        String::from_utf8(d.output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn kind(r: &ResponseLine) -> Option<ErrorKind> {
        match &r.response {
            Response::Error(ErrorBody { kind, .. }) => Some(*kind),
            _ => None,
        }
    }

    #[test]
    fn each_line_gets_one_answer_and_bad_ones_do_not_end_the_session() {
        let out = serve(
            b"{\"version\":1,\"request\":\"neighbours\"}\nnonsense\n{\"version\":1,\"request\":\"shutdown\"}\n{\"version\":1,\"request\":\"routes\"}"
                .to_vec(),
        );
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(matches!(out[0].response, Response::Neighbours(_)));
        assert_eq!(kind(&out[1]), Some(ErrorKind::Malformed));
        assert_eq!(kind(&out[2]), Some(ErrorKind::UnknownRequest));
        assert_eq!(kind(&out[3]), Some(ErrorKind::NotRouting));
        assert!(out.iter().all(|r| r.version == 1));
    }

    #[test]
    fn an_oversize_line_is_refused_and_the_session_closed() {
        let mut input = vec![b'x'; MAX_REQUEST_LINE * 3];
        input.extend_from_slice(b"\n{\"version\":1,\"request\":\"neighbours\"}\n");
        let out = serve(input);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(kind(&out[0]), Some(ErrorKind::LineTooLong));
        // A line of exactly the limit, newline included, is read.
        let mut line = b"{\"version\":1,\"request\":\"neighbours\"}".to_vec();
        line.resize(MAX_REQUEST_LINE - 1, b' ');
        line.push(b'\n');
        let out = serve(line);
        assert!(
            matches!(out[0].response, Response::Neighbours(_)),
            "{out:?}"
        );
    }

    #[test]
    fn a_silent_client_is_told_and_dropped() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        serve_stream(&a, |_| unreachable!("no request was sent")).unwrap();
        let mut text = String::new();
        BufReader::new(&b).read_line(&mut text).unwrap();
        let r: ResponseLine = serde_json::from_str(&text).unwrap();
        assert_eq!(kind(&r), Some(ErrorKind::Unavailable));
        assert!(text.contains("no complete request line"), "{text}");
    }
}
