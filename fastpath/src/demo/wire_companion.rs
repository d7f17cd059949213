//! [`DemoWire`]: what `fastpath demo` runs beside the forwarder. It
//! sets the router's tables from the demo's network, stands in for the
//! kernel (takes the punts, counts and frees them), and runs the wire
//! behind the simulated PF (`drivers::sim::wire`): the hosts' UDP in, the
//! sink for what the fast path routes out. At the end it accounts for
//! every frame the hosts sent.

use super::args::{DemoArgs, DemoRate};
use super::network::{self, BEHIND_LEN, SUBNET_LEN};
use crate::companion::{Companion, CompanionError};
use crate::exception::Punted;
use crate::forwarder::{FinalReport, Forwarder, Snapshot};
use crate::l3::{RouterModel, TablesPublisher};
use crate::tables::ApplyError;
use drivers::ring::Consumer;
use drivers::sim::wire::{Rate, Stream, Wire, WireConfig, WireStats, MAX_IN_FLIGHT};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the tables may take to reach the worker before the wire
/// starts anyway (what arrives first is punted `no_route`, counted).
const PUBLISH_WAIT: Duration = Duration::from_secs(1);

/// How long the end of a run waits for the frames still on their way
/// (in switch inboxes, VF rings, the worker's hands) once the hosts
/// stopped. The models move a frame in tens of microseconds.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// One frame in this many is a traceroute probe (TTL 1), which the fast
/// path hands to the kernel stand-in (`ttl_exceeded`): the punt path and
/// its counters at work.
pub const PROBE_EVERY: u64 = 1000;

/// The kernel stand-in's pause when the punt rings are empty.
const PUNT_IDLE: Duration = Duration::from_millis(1);

/// Why the demo's wire could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoWireError {
    /// The run has no simulated port (the preset always has two).
    #[error("fastpath demo: the run has no simulated VF for the wire to feed")]
    NoSimPorts,
    /// The forwarder is not in L3 mode, or its tables were taken.
    #[error("fastpath demo: the forwarder has no router tables (it needs --mode l3)")]
    NotL3,
    /// The router model refused the network (a bug in `network`).
    #[error("fastpath demo: the router model refused the demo network: {0}")]
    Model(#[from] crate::l3::ModelError),
    /// The wire refused its configuration.
    #[error("fastpath demo: {0}")]
    Wire(#[from] drivers::sim::wire::WireError),
    /// A thread could not be spawned.
    #[error("fastpath demo: cannot spawn the kernel stand-in's thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Stands in for the exception path: takes what the workers punt, counts
/// it and gives the buffers back to the pool.
struct PuntSink {
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl PuntSink {
    fn start(
        mut rings: Vec<Consumer<Punted>>,
        mut cache: drivers::pool::PoolCache,
    ) -> Result<PuntSink, DemoWireError> {
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicU64::new(0));
        let (stop_t, taken_t) = (Arc::clone(&stop), Arc::clone(&taken));
        let thread = std::thread::Builder::new()
            .name("fp-demo-kernel".into())
            .spawn(move || {
                // Relaxed: the flag carries no data; the join orders the rest.
                loop {
                    let last = stop_t.load(Ordering::Relaxed);
                    let mut n = 0;
                    for r in &mut rings {
                        while let Some(p) = r.pop() {
                            cache.free(p.mbuf);
                            n += 1;
                        }
                    }
                    // Relaxed: one writer, a statistic.
                    taken_t.fetch_add(n, Ordering::Relaxed);
                    if last {
                        break;
                    }
                    if n == 0 {
                        std::thread::sleep(PUNT_IDLE);
                    }
                }
                // The cache's buffers go back to the pool here, before the
                // forwarder's audit.
                drop(cache);
            })
            .map_err(DemoWireError::Spawn)?;
        Ok(PuntSink {
            stop,
            taken,
            thread: Some(thread),
        })
    }

    /// Stops after a last pass over the rings; returns the punts taken.
    fn stop(&mut self) -> u64 {
        // Relaxed: the join orders what the thread did.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the demo's kernel stand-in panicked");
            }
        }
        self.taken.load(Ordering::Relaxed)
    }
}

impl Drop for PuntSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where every frame the hosts sent went: the figures of one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accounting {
    /// Frames the hosts sent.
    pub sent: u64,
    /// The switch could not deliver them (the VF's inbox full, its link
    /// down).
    pub not_taken: u64,
    /// Dropped by a VF's receive queue (its FIFO full: no buffer posted).
    pub rx_fifo: u64,
    /// Dropped by the fast path (by reason in the core lines).
    pub fast_path_dropped: u64,
    /// Handed to the kernel stand-in (by reason in the core lines).
    pub punted: u64,
    /// Sent by a VF with a source MAC not its own (the switch's
    /// anti-spoofing).
    pub spoofed: u64,
    /// Sent out of the uplink while the sink's queue was full.
    pub uplink_dropped: u64,
    /// Frames the sink took.
    pub sunk: u64,
}

impl Accounting {
    /// From the wire's figures and the forwarder's counters.
    pub fn new(w: &WireStats, snap: &Snapshot) -> Accounting {
        let port_sum = |name: &str| -> u64 {
            snap.xstats
                .iter()
                .flat_map(|x| x.iter())
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .sum()
        };
        let switch = |name: &str| {
            snap.switch
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| *v)
        };
        Accounting {
            sent: w.sent,
            not_taken: w.not_taken,
            rx_fifo: port_sum("sim_rx_fifo_drops"),
            fast_path_dropped: snap.cores.iter().map(|(_, c)| c.dropped()).sum(),
            punted: snap.cores.iter().map(|(_, c)| c.punted()).sum(),
            spoofed: port_sum("sim_switch_tx_spoofed"),
            uplink_dropped: switch("uplink_dropped"),
            sunk: w.sunk,
        }
    }

    /// Frames dropped on the way, each for a counted reason.
    pub fn dropped(&self) -> u64 {
        self.not_taken + self.rx_fifo + self.fast_path_dropped + self.spoofed + self.uplink_dropped
    }

    /// Frames neither sunk, punted nor dropped: still on their way
    /// (negative would be a frame counted twice).
    pub fn in_flight(&self) -> i128 {
        i128::from(self.sent)
            - i128::from(self.sunk)
            - i128::from(self.punted)
            - i128::from(self.dropped())
    }
}

/// The demo's companion (see the module).
pub struct DemoWire {
    rate: DemoRate,
    flows: u16,
    packet_size: u16,
    memory_note: Option<String>,
    /// Held until the run is over: the workers read its tables.
    publisher: Option<TablesPublisher>,
    punts: Option<PuntSink>,
    wire: Option<Wire>,
    last: Option<(Instant, WireStats)>,
    final_wire: WireStats,
}

impl DemoWire {
    /// For `args`; `memory_note` is printed first (the pool on ordinary
    /// pages, and why).
    pub fn new(args: &DemoArgs, memory_note: Option<String>) -> DemoWire {
        DemoWire {
            rate: args.rate,
            flows: args.flows,
            packet_size: args.packet_size,
            memory_note,
            publisher: None,
            punts: None,
            wire: None,
            last: None,
            final_wire: WireStats::default(),
        }
    }

    fn start_parts(&mut self, fwd: &mut Forwarder) -> Result<Vec<String>, DemoWireError> {
        let macs: Vec<_> = fwd.ports().iter().map(|(i, _)| i.mac).collect();
        let mut publisher = fwd.take_publisher().ok_or(DemoWireError::NotL3)?;
        let mut model = RouterModel::new();
        let mut ops = Vec::new();
        for u in network::updates(&macs) {
            model.update(&u, &mut ops)?;
        }
        match publisher.apply_within(&ops, PUBLISH_WAIT) {
            Ok(()) => {}
            // Published; the worker will read it at its next quiescent point.
            Err(e @ ApplyError::Lagging { .. }) => log::warn!("tables: {e}"),
            // The first batch always has a spare copy: never here.
            Err(e @ ApplyError::NotApplied { .. }) => log::error!("tables: {e}"),
        }
        self.publisher = Some(publisher);
        self.punts = Some(PuntSink::start(fwd.take_punt_rings(), fwd.pool().cache())?);
        let sides = network::sides();
        let streams: Vec<Stream> = sides
            .iter()
            .zip(&macs)
            .map(|(s, mac)| {
                let other = network::side(1 - s.port as u8);
                let [a, b, _, _] = other.behind.octets();
                Stream {
                    to: *mac,
                    from: s.host_mac,
                    src: s.host,
                    dst: Ipv4Addr::new(a, b, 0, 1),
                    flows: self.flows,
                }
            })
            .collect();
        let space = fwd
            .sim_ports()
            .opened_space()
            .ok_or(DemoWireError::NoSimPorts)?;
        self.wire = Some(space.start_wire(WireConfig {
            streams,
            rate: match self.rate {
                DemoRate::Pps(n) => Rate::Pps(n),
                DemoRate::Max => Rate::Max,
            },
            frame_len: usize::from(self.packet_size),
            probe_every: PROBE_EVERY,
        })?);
        self.last = Some((Instant::now(), WireStats::default()));
        let mut lines: Vec<String> = self.memory_note.iter().cloned().collect();
        lines.push(
            "fastpath demo: l3 routing with no kernel: tables set from the demo network below, punts counted and freed (no exception interfaces, no root)".into(),
        );
        for (s, mac) in sides.iter().zip(&macs) {
            let other = network::side(1 - s.port as u8);
            lines.push(format!(
                "fastpath demo: port {} {} = {}/{SUBNET_LEN}; host {} ({}) behind the PF routes {}/{BEHIND_LEN} and sends UDP to {}/{BEHIND_LEN} through it",
                s.port, mac, s.ours, s.host, s.host_mac, s.behind, other.behind
            ));
        }
        lines.push(format!(
            "fastpath demo: wire: 2 hosts, {} UDP flows each, {}-byte frames, {}; the sink takes and checks what the VFs send out",
            self.flows,
            self.packet_size,
            match self.rate {
                DemoRate::Pps(n) => format!("{n} frames/s in all"),
                DemoRate::Max => format!(
                    "as fast as the fast path takes them (at most {MAX_IN_FLIGHT} on their way)"
                ),
            }
        ));
        Ok(lines)
    }
}

/// Frames per second as kpps.
fn kpps(frames: u64, over: Duration) -> f64 {
    let s = over.as_secs_f64();
    if s > 0.0 {
        frames as f64 / s / 1e3
    } else {
        0.0
    }
}

impl Companion for DemoWire {
    fn start(&mut self, fwd: &mut Forwarder) -> Result<Vec<String>, CompanionError> {
        self.start_parts(fwd)
            .map_err(|e| Box::new(e) as CompanionError)
    }

    fn interval_line(&mut self, fwd: &Forwarder) -> Option<String> {
        let wire = self.wire.as_ref()?;
        let now = (Instant::now(), wire.stats());
        let (at, before) = self.last.replace(now)?;
        let over = now.0.duration_since(at);
        let w = now.1;
        let acc = Accounting::new(&w, &fwd.snapshot());
        Some(format!(
            "  wire: hosts sent {:.1} kpps (not taken {}) | sink {:.1} kpps (bad {}) | total sent {} sunk {} punted {} dropped {} in flight {}",
            kpps(w.sent - before.sent, over),
            w.not_taken - before.not_taken,
            kpps(w.sunk - before.sunk, over),
            w.sunk_bad - before.sunk_bad,
            acc.sent,
            acc.sunk,
            acc.punted,
            acc.dropped(),
            acc.in_flight()
        ))
    }

    fn wind_down(&mut self, fwd: &Forwarder) {
        if let Some(w) = &self.wire {
            w.stop_source();
            let end = Instant::now() + DRAIN_WAIT;
            while Accounting::new(&w.stats(), &fwd.snapshot()).in_flight() > 0
                && Instant::now() < end
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(p) = self.punts.as_mut() {
            p.stop();
        }
        if let Some(w) = self.wire.take() {
            self.final_wire = w.stop();
        }
    }

    fn summary(&mut self, report: &FinalReport) -> (Vec<String>, bool) {
        let w = self.final_wire;
        let acc = Accounting::new(&w, &report.last);
        let flows = 2 * u64::from(self.flows);
        let mut lines = vec![
            "---- demo wire ----".to_owned(),
            format!(
                "hosts: sent {} frames ({} bytes) in {flows} UDP flows, {} of them traceroute probes (TTL 1, one in {PROBE_EVERY}); the switch delivered {} to the VFs",
                w.sent,
                w.sent_bytes,
                w.probes,
                w.sent - w.not_taken
            ),
            format!(
                "sink: {} frames ({} bytes) out of the VFs, {} well-formed IPv4/UDP, {} damaged",
                w.sunk,
                w.sunk_bytes,
                w.sunk - w.sunk_bad,
                w.sunk_bad
            ),
            format!(
                "punted to the kernel stand-in: {} (by reason on the total line)",
                acc.punted
            ),
            format!(
                "dropped on the way, by reason: switch could not deliver {}, VF receive FIFO {}, fast path {} (by reason on the total line), spoofed source {}, uplink full {}",
                acc.not_taken, acc.rx_fifo, acc.fast_path_dropped, acc.spoofed, acc.uplink_dropped
            ),
            format!(
                "accounting: sent {} = sunk {} + punted {} + dropped {} + in flight {}",
                acc.sent,
                acc.sunk,
                acc.punted,
                acc.dropped(),
                acc.in_flight()
            ),
        ];
        let ok = w.sunk_bad == 0 && acc.in_flight() == 0;
        if !ok {
            lines.push(
                "demo: FAILED: frames damaged on the way, or not accounted for (see above)"
                    .to_owned(),
            );
        }
        (lines, ok)
    }

    fn json(&self, report: &FinalReport) -> Option<serde_json::Value> {
        let w = self.final_wire;
        let acc = Accounting::new(&w, &report.last);
        Some(serde_json::json!({
            "flows": 2 * u64::from(self.flows),
            "frame_len": self.packet_size,
            "rate_pps": match self.rate {
                DemoRate::Pps(n) => serde_json::Value::from(n),
                DemoRate::Max => serde_json::Value::from("max"),
            },
            "sent": w.sent,
            "sent_bytes": w.sent_bytes,
            "probes": w.probes,
            "sunk": w.sunk,
            "sunk_bytes": w.sunk_bytes,
            "sunk_bad": w.sunk_bad,
            "punted": acc.punted,
            "dropped": {
                "switch_not_delivered": acc.not_taken,
                "vf_rx_fifo": acc.rx_fifo,
                "fast_path": acc.fast_path_dropped,
                "spoofed_source": acc.spoofed,
                "uplink_full": acc.uplink_dropped,
            },
            "in_flight": i64::try_from(acc.in_flight()).unwrap_or(i64::MIN),
        }))
    }
}
