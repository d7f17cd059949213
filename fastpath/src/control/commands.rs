//! The client subcommands of the `fastpath` binary, so that
//! `kubectl exec <pod> -- fastpath show ports` works in the daemon's own
//! container: `show ports|cores|routes|neighbours|exception|config` and
//! `watch`, each with `--json` and `--control-socket`.

use super::client::{Client, ClientError};
use super::options::DEFAULT_SOCKET;
use super::protocol::{Request, Response};
use super::show;
use super::views::{CoresView, PortsView};
use clap::{Args, Subcommand};
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Options every client command takes.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// The daemon's control socket (as given to `fastpath run
    /// --control-socket`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub control_socket: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `fastpath show ...`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum ShowCommand {
    /// Ports: link, speed, MAC, driver kind, queues, counters, xstats,
    /// drops by reason.
    Ports(ClientArgs),
    /// Worker cores: busy % and cycles per packet over the last second
    /// (as 6WIND's fp-cpu-usage: top shows 100 % for a polling core).
    Cores(ClientArgs),
    /// Routes the fast path forwards by (l3 mode).
    Routes(ClientArgs),
    /// Neighbours the router knows (l3 mode).
    #[command(alias = "neighbors")]
    Neighbours(ClientArgs),
    /// Exception-path counters per port (l3 mode).
    Exception(ClientArgs),
    /// The effective configuration and where each value came from.
    Config(ClientArgs),
}

impl ShowCommand {
    fn parts(&self) -> (Request, &ClientArgs) {
        match self {
            ShowCommand::Ports(a) => (Request::Ports, a),
            ShowCommand::Cores(a) => (Request::Cores, a),
            ShowCommand::Routes(a) => (Request::Routes, a),
            ShowCommand::Neighbours(a) => (Request::Neighbours, a),
            ShowCommand::Exception(a) => (Request::Exception, a),
            ShowCommand::Config(a) => (Request::Config, a),
        }
    }
}

/// `fastpath watch`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct WatchArgs {
    /// Socket and output.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Stop after this many lines (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

/// How often `watch` prints.
pub const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Writes `text` to stdout; a closed stdout (`| head`) ends quietly.
fn out(text: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

fn json<T: Serialize>(v: &T) -> String {
    // Plain structures of numbers and strings always serialize.
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

fn fail(e: &ClientError) -> ExitCode {
    let _ = writeln!(io::stderr(), "fastpath: error: {e}");
    ExitCode::FAILURE
}

/// Runs `fastpath show ...`: 0 when answered, 1 otherwise (the reason on
/// stderr).
pub fn show(cmd: &ShowCommand) -> ExitCode {
    let (request, args) = cmd.parts();
    let answer = Client::connect(&args.control_socket).and_then(|mut c| c.ask(request));
    let text = match answer {
        Err(e) => return fail(&e),
        Ok(r) => render(&r, args.json),
    };
    let _ = out(&text);
    ExitCode::SUCCESS
}

/// A response as text or JSON.
fn render(r: &Response, as_json: bool) -> String {
    match (r, as_json) {
        (Response::Ports(v), true) => json(v),
        (Response::Ports(v), false) => show::ports(v),
        (Response::Cores(v), true) => json(v),
        (Response::Cores(v), false) => show::cores(v),
        (Response::Routes(v), true) => json(v),
        (Response::Routes(v), false) => show::routes(v),
        (Response::Neighbours(v), true) => json(v),
        (Response::Neighbours(v), false) => show::neighbours(v),
        (Response::Exception(v), true) => json(v),
        (Response::Exception(v), false) => show::exception(v),
        (Response::Config(v), true) => json(v),
        (Response::Config(v), false) => show::config(v),
        (Response::Error(e), _) => format!("error: {}\n", e.message),
    }
}

/// One `watch` line's figures.
#[derive(Debug, Serialize)]
struct WatchLine {
    elapsed_secs: f64,
    cores: Vec<WatchCore>,
    ports: Vec<WatchPort>,
}

#[derive(Debug, Serialize)]
struct WatchCore {
    cpu: u32,
    busy_percent: f64,
    cycles_per_packet: Option<f64>,
    rx_pps: f64,
    tx_pps: f64,
}

#[derive(Debug, Serialize)]
struct WatchPort {
    id: u16,
    link_up: bool,
    rx_pps: f64,
    tx_pps: f64,
    drops: u64,
}

fn watch_line(prev: &PortsView, now: &PortsView, cores: &CoresView) -> WatchLine {
    let secs = now.elapsed_secs - prev.elapsed_secs;
    let rate = |a: u64, b: u64| {
        if secs > 0.0 {
            b.saturating_sub(a) as f64 / secs
        } else {
            0.0
        }
    };
    let stat =
        |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    WatchLine {
        elapsed_secs: now.elapsed_secs,
        cores: cores
            .cores
            .iter()
            .map(|c| WatchCore {
                cpu: c.cpu,
                busy_percent: c.busy_percent,
                cycles_per_packet: c.cycles_per_packet,
                rx_pps: c.rx_pps,
                tx_pps: c.tx_pps,
            })
            .collect(),
        ports: now
            .ports
            .iter()
            .map(|p| {
                let before = prev.ports.iter().find(|q| q.id == p.id);
                let old = |k: &str| before.map_or(0, |b| stat(&b.stats, k));
                let dropped = |v: &super::views::PortView| v.drops.values().sum::<u64>();
                WatchPort {
                    id: p.id,
                    link_up: p.link.up,
                    rx_pps: rate(old("ipackets"), stat(&p.stats, "ipackets")),
                    tx_pps: rate(old("opackets"), stat(&p.stats, "opackets")),
                    drops: dropped(p).saturating_sub(before.map_or(0, dropped)),
                }
            })
            .collect(),
    }
}

fn watch_text(l: &WatchLine) -> String {
    let mut s = format!("[{:7.1}s]", l.elapsed_secs);
    for c in &l.cores {
        s.push_str(&format!(
            " cpu{}: rx {:.2} tx {:.2} Mpps busy {:.0}% {} cyc/rx pkt |",
            c.cpu,
            c.rx_pps / 1e6,
            c.tx_pps / 1e6,
            c.busy_percent,
            c.cycles_per_packet
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
        ));
    }
    for p in &l.ports {
        s.push_str(&format!(
            " port{} rx {:.2} tx {:.2} Mpps drops {}{}",
            p.id,
            p.rx_pps / 1e6,
            p.tx_pps / 1e6,
            p.drops,
            if p.link_up { "" } else { " (link down)" }
        ));
    }
    s.push('\n');
    s
}

fn ports_of(c: &mut Client) -> Result<PortsView, ClientError> {
    match c.ask(Request::Ports)? {
        Response::Ports(v) => Ok(v),
        other => Err(unexpected(c, &other)),
    }
}

fn unexpected(c: &Client, r: &Response) -> ClientError {
    ClientError::BadResponse {
        path: c.path().to_owned(),
        why: format!("an answer to another request: {r:?}"),
    }
}

/// Runs `fastpath watch`: a line of rates every second (the cores' over
/// their last second, the ports' since the previous line), `--count`
/// times or until interrupted.
pub fn watch(args: &WatchArgs) -> ExitCode {
    let run = || -> Result<(), ClientError> {
        let mut c = Client::connect(&args.client.control_socket)?;
        let mut prev = ports_of(&mut c)?;
        let mut printed = 0u64;
        while args.count.is_none_or(|n| printed < n) {
            std::thread::sleep(WATCH_PERIOD);
            let now = ports_of(&mut c)?;
            let cores = match c.ask(Request::Cores)? {
                Response::Cores(v) => v,
                other => return Err(unexpected(&c, &other)),
            };
            let line = watch_line(&prev, &now, &cores);
            let text = if args.client.json {
                let mut t = serde_json::to_string(&line).unwrap_or_default();
                t.push('\n');
                t
            } else {
                watch_text(&line)
            };
            if out(&text).is_err() {
                // The reader went away (`| head`): done.
                return Ok(());
            }
            prev = now;
            printed += 1;
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
