//! The wire behind a modelled PF: hosts that send UDP to the VFs through
//! the PF's switch ([`Veb`]), and a sink that takes and checks what the
//! VFs send out of the uplink. What `fastpath demo` feeds the fast path
//! with, instead of seeds that loop.
//!
//! The source injects frames as a host on the PF's uplink would send
//! them ([`Veb::inject_from_wire`]): each [`Stream`] is one host (its
//! MAC and IPv4 address) sending to one VF's MAC, to `flows` UDP flows
//! whose destination address and both ports vary with the flow, so a
//! VF's RSS would spread them. Every frame is well formed: IPv4 header
//! and UDP checksums right, so a router forwards it, and the sink can
//! tell whether what came back out was damaged on the way. One frame in
//! [`WireConfig::probe_every`] can be a traceroute probe (TTL 1), which a
//! router does not forward but hands to its kernel.
//!
//! Pace: [`Rate::Pps`] sends on a schedule whatever the VFs take (a frame
//! the switch cannot deliver, its inbox full, is the switch's counted
//! drop and [`WireStats::not_taken`] here); [`Rate::Max`] sends as fast as
//! the VFs and what is behind them (the fast path) take frames: at most
//! [`MAX_IN_FLIGHT`] frames sent and not back at the sink yet, as a
//! window-limited sender does, and never more than the target VF's inbox
//! has room for. A frame lost on the way (dropped by the receiver) never
//! comes back: when nothing has come back for [`STALL`] with the window
//! full, what is outstanding is written off as lost and the window opens
//! again.
//!
//! The sink drains the uplink (the switch keeps up to [`UPLINK_KEEP`]
//! frames for it; past that it drops them, counted as `uplink_dropped`)
//! and counts each frame: well formed (IPv4, header checksum right, UDP
//! checksum right or absent) or not ([`WireStats::sunk_bad`]).
//!
//! Both run on one thread of their own, as the device models do; none of
//! this is on the fast path's hot loop.

use super::veb::Veb;
use crate::net::MacAddr;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shortest frame: Ethernet's minimum without the FCS (IEEE 802.3 clause
/// 3.2.8: 64 bytes with the 4-byte FCS).
pub const MIN_FRAME: usize = 60;
/// Longest frame: a 1500-byte MTU and the 14-byte Ethernet header.
pub const MAX_FRAME: usize = 1514;
/// Frames the switch's uplink keeps for the sink between two drains.
pub const UPLINK_KEEP: usize = 4096;
/// [`Rate::Max`]: most frames sent and not back at the sink. Below a VF's
/// 512 receive descriptors, so a full window never overruns one.
pub const MAX_IN_FLIGHT: u64 = 256;
/// [`Rate::Max`]: how long a full window waits for a frame to come back
/// before writing the outstanding ones off as lost.
pub const STALL: Duration = Duration::from_millis(50);
/// Most frames sent in one pass of the thread before it drains the sink.
const BATCH: u64 = 64;
/// The thread's pause when it has nothing to do: how late a frame may be
/// sent or sunk.
const IDLE: Duration = Duration::from_micros(200);

const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// The TTL a host's stack uses by default (Linux's
/// net.ipv4.ip_default_ttl, 64).
pub const SOURCE_TTL: u8 = 64;
/// First UDP source port of a stream's flows (flow `f` uses this + `f`).
pub const FIRST_SOURCE_PORT: u16 = 1024;
/// UDP destination ports of the flows: this + `f % 8`. 5001 is iperf's.
pub const FIRST_DEST_PORT: u16 = 5001;

/// One host on the wire sending UDP to one VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// The VF's MAC (the frames' destination).
    pub to: MacAddr,
    /// The host's MAC (the frames' source).
    pub from: MacAddr,
    /// The host's IPv4 address (the packets' source).
    pub src: Ipv4Addr,
    /// The first destination address; flow `f` goes to this + `f`.
    pub dst: Ipv4Addr,
    /// Flows (distinct 5-tuples), at least 1.
    pub flows: u16,
}

/// How fast the source sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// Frames per second, all streams together.
    Pps(u64),
    /// As fast as the VFs and the fast path behind them take them: at
    /// most [`MAX_IN_FLIGHT`] frames on their way (see the module).
    Max,
}

/// What the wire sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireConfig {
    /// The hosts, sending in turn.
    pub streams: Vec<Stream>,
    /// The pace.
    pub rate: Rate,
    /// Length of each frame, [`MIN_FRAME`] to [`MAX_FRAME`].
    pub frame_len: usize,
    /// Every this many frames one is a traceroute probe, sent with TTL 1
    /// (a router hands it to its kernel, which answers time-exceeded);
    /// 0: none.
    pub probe_every: u64,
}

/// A wire configuration that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// No stream.
    #[error("the wire needs at least one stream to send")]
    NoStream,
    /// A stream of no flow.
    #[error("stream {0}: at least one flow")]
    NoFlow(usize),
    /// A destination MAC that is not a station's.
    #[error("stream {0}: the destination {1} is not a unicast MAC")]
    NotUnicast(usize, MacAddr),
    /// A frame length out of range.
    #[error("frame length {0}: {MIN_FRAME} to {MAX_FRAME} bytes")]
    FrameLen(usize),
    /// A rate of 0.
    #[error("a rate of 0 frames per second sends nothing")]
    ZeroRate,
    /// The thread could not be started.
    #[error("cannot spawn the wire's thread: {0}")]
    Spawn(String),
}

/// What the wire did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Frames the source sent into the switch.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Of them, traceroute probes (TTL 1).
    pub probes: u64,
    /// Sent frames no VF took (the switch counted why: the VF's inbox
    /// full, the link down).
    pub not_taken: u64,
    /// Frames the sink took from the uplink.
    pub sunk: u64,
    /// Their bytes.
    pub sunk_bytes: u64,
    /// Sunk frames that were not well-formed IPv4 UDP (a checksum wrong,
    /// a length that does not add up, another EtherType).
    pub sunk_bad: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    probes: AtomicU64,
    not_taken: AtomicU64,
    sunk: AtomicU64,
    sunk_bytes: AtomicU64,
    sunk_bad: AtomicU64,
}

impl Counters {
    /// Relaxed: each counter has the wire's thread as its one writer and
    /// carries no other data; a reader wanting final figures joins the
    /// thread first ([`Wire::stop`]).
    fn get(&self) -> WireStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WireStats {
            sent: r(&self.sent),
            sent_bytes: r(&self.sent_bytes),
            probes: r(&self.probes),
            not_taken: r(&self.not_taken),
            sunk: r(&self.sunk),
            sunk_bytes: r(&self.sunk_bytes),
            sunk_bad: r(&self.sunk_bad),
        }
    }
}

/// The running wire: its thread sends and sinks until stopped.
pub struct Wire {
    /// Set: the source sends no more (the sink goes on).
    quiet: Arc<AtomicBool>,
    /// Set: the thread ends.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl WireConfig {
    /// Checks every value.
    pub fn check(&self) -> Result<(), WireError> {
        if self.streams.is_empty() {
            return Err(WireError::NoStream);
        }
        for (i, s) in self.streams.iter().enumerate() {
            if s.flows == 0 {
                return Err(WireError::NoFlow(i));
            }
            if !s.to.is_unicast() {
                return Err(WireError::NotUnicast(i, s.to));
            }
        }
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.frame_len) {
            return Err(WireError::FrameLen(self.frame_len));
        }
        if self.rate == Rate::Pps(0) {
            return Err(WireError::ZeroRate);
        }
        Ok(())
    }
}

impl Wire {
    /// Starts the wire on `veb`'s uplink: the switch keeps
    /// [`UPLINK_KEEP`] frames for the sink from now on.
    pub fn start(veb: &Arc<Veb>, cfg: WireConfig) -> Result<Wire, WireError> {
        cfg.check()?;
        veb.keep_uplink(UPLINK_KEEP);
        let quiet = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut run = Running {
            veb: Arc::clone(veb),
            cfg,
            quiet: Arc::clone(&quiet),
            stop: Arc::clone(&stop),
            counters: Arc::clone(&counters),
            frame: Vec::with_capacity(MAX_FRAME),
            uplink: VecDeque::with_capacity(UPLINK_KEEP),
            seq: 0,
            window: Window::default(),
        };
        let thread = std::thread::Builder::new()
            .name("sim-wire".into())
            .spawn(move || run.run())
            .map_err(|e| WireError::Spawn(e.to_string()))?;
        Ok(Wire {
            quiet,
            stop,
            thread: Some(thread),
            counters,
        })
    }

    /// The figures so far.
    pub fn stats(&self) -> WireStats {
        self.counters.get()
    }

    /// The source sends no more; the sink goes on taking what is still
    /// on its way.
    pub fn stop_source(&self) {
        // Relaxed: the flag carries no data.
        self.quiet.store(true, Ordering::Relaxed);
    }

    /// Stops the thread (after a last drain of the uplink) and returns
    /// the final figures.
    pub fn stop(mut self) -> WireStats {
        self.halt();
        self.counters.get()
    }

    fn halt(&mut self) {
        self.quiet.store(true, Ordering::Relaxed);
        // Relaxed: the join orders what the thread did before it.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the simulated wire's thread panicked");
            }
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The thread's state.
struct Running {
    veb: Arc<Veb>,
    cfg: WireConfig,
    quiet: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    frame: Vec<u8>,
    uplink: VecDeque<Vec<u8>>,
    /// Frames sent so far (picks the stream and the flow).
    seq: u64,
    window: Window,
}

/// [`Rate::Max`]'s count of frames on their way.
#[derive(Default)]
struct Window {
    /// Frames sent and taken by the switch.
    taken: u64,
    /// Frames back at the sink.
    back: u64,
    /// Frames written off as lost.
    written_off: u64,
    /// When the last frame came back (or the window was last opened).
    progress: Option<Instant>,
}

impl Window {
    /// How many more frames may be sent `now`.
    fn room(&mut self, now: Instant) -> u64 {
        let out = self.taken.saturating_sub(self.back + self.written_off);
        if out < MAX_IN_FLIGHT {
            return MAX_IN_FLIGHT - out;
        }
        let since = *self.progress.get_or_insert(now);
        if now.duration_since(since) < STALL {
            return 0;
        }
        // Nothing came back for a while: the outstanding frames were
        // dropped on the way (the receiver counted them).
        self.written_off += out;
        self.progress = Some(now);
        MAX_IN_FLIGHT
    }
}

impl Running {
    fn run(&mut self) {
        let start = Instant::now();
        // Relaxed: the flags carry no data.
        while !self.stop.load(Ordering::Relaxed) {
            let sent = if self.quiet.load(Ordering::Relaxed) {
                0
            } else {
                self.send(start.elapsed())
            };
            let sunk = self.sink();
            if sent == 0 && sunk == 0 {
                std::thread::sleep(IDLE);
            }
        }
        self.sink();
    }

    /// Sends what is due `elapsed` after the start; returns how many.
    fn send(&mut self, elapsed: Duration) -> u64 {
        let mut n = match self.cfg.rate {
            Rate::Pps(pps) => {
                let due = (elapsed.as_nanos() * u128::from(pps) / 1_000_000_000) as u64;
                due.saturating_sub(self.seq).min(BATCH)
            }
            Rate::Max => self.window.room(Instant::now()).min(BATCH),
        };
        let mut sent = 0;
        while n > 0 {
            let stream = self.cfg.streams[(self.seq % self.cfg.streams.len() as u64) as usize];
            if self.cfg.rate == Rate::Max && self.veb.wire_room(stream.to).unwrap_or(0) == 0 {
                break;
            }
            let every = self.cfg.probe_every;
            let probe = every > 0 && (self.seq + 1).is_multiple_of(every);
            let ttl = if probe { 1 } else { SOURCE_TTL };
            udp_frame(&stream, self.seq, self.cfg.frame_len, ttl, &mut self.frame);
            let taken = self.veb.inject_from_wire(&self.frame);
            let c = &self.counters;
            // Relaxed: see `Counters::get`.
            c.sent.fetch_add(1, Ordering::Relaxed);
            c.sent_bytes
                .fetch_add(self.frame.len() as u64, Ordering::Relaxed);
            if probe {
                c.probes.fetch_add(1, Ordering::Relaxed);
            }
            if taken == 0 {
                c.not_taken.fetch_add(1, Ordering::Relaxed);
            } else if !probe {
                // A probe is not forwarded: it never comes back.
                self.window.taken += 1;
            }
            self.seq += 1;
            sent += 1;
            n -= 1;
        }
        sent
    }

    /// Takes and checks what the uplink kept; returns how many.
    fn sink(&mut self) -> u64 {
        self.veb.take_uplink_into(&mut self.uplink);
        let n = self.uplink.len() as u64;
        if n > 0 {
            self.window.back += n;
            self.window.progress = Some(Instant::now());
        }
        let c = &self.counters;
        for f in self.uplink.drain(..) {
            // Relaxed: see `Counters::get`.
            c.sunk.fetch_add(1, Ordering::Relaxed);
            c.sunk_bytes.fetch_add(f.len() as u64, Ordering::Relaxed);
            if !well_formed_udp(&f) {
                c.sunk_bad.fetch_add(1, Ordering::Relaxed);
            }
        }
        n
    }
}

/// The 5-tuple of flow `f` of `s`: (source, destination, source port,
/// destination port); the protocol is UDP.
pub fn flow_tuple(s: &Stream, f: u16) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let dst = Ipv4Addr::from(u32::from(s.dst).wrapping_add(u32::from(f)));
    (
        s.src,
        dst,
        FIRST_SOURCE_PORT.wrapping_add(f),
        FIRST_DEST_PORT + f % 8,
    )
}

/// Writes into `out` frame number `seq` of stream `s`, `len` bytes:
/// Ethernet II, IPv4 (no options, DF, TTL `ttl`, identification
/// the low 16 bits of `seq`), UDP of flow `seq % flows` with its
/// checksum, and a payload that starts with `seq` (8 bytes, big-endian),
/// then bytes counting up from it. `len` is clamped to
/// [`MIN_FRAME`]..=[`MAX_FRAME`].
pub fn udp_frame(s: &Stream, seq: u64, len: usize, ttl: u8, out: &mut Vec<u8>) {
    let len = len.clamp(MIN_FRAME, MAX_FRAME);
    let flow = (seq % u64::from(s.flows.max(1))) as u16;
    let (src, dst, sport, dport) = flow_tuple(s, flow);
    out.clear();
    out.resize(len, 0);
    out[0..6].copy_from_slice(&s.to.0);
    out[6..12].copy_from_slice(&s.from.0);
    out[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_len = len - ETH_LEN;
    let udp_len = ip_len - IPV4_LEN;
    {
        let ip = &mut out[ETH_LEN..ETH_LEN + IPV4_LEN];
        ip[0] = 0x45; // RFC 791: version 4, IHL 5 words
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        ip[8] = ttl;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&src.octets());
        ip[16..20].copy_from_slice(&dst.octets());
        let sum = checksum(&[ip]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    let l4 = ETH_LEN + IPV4_LEN;
    out[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
    out[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
    out[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let payload = l4 + UDP_LEN;
    out[payload..payload + 8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in out[payload + 8..].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_add(i as u8);
    }
    let sum = udp_checksum(src, dst, &out[l4..]);
    out[l4 + 6..l4 + 8].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071) of the concatenated `parts` (each of
/// even length but the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for w in &mut words {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// RFC 768's UDP checksum over the IPv4 pseudo-header and `udp` (header
/// with its checksum field zero, and data); a computed 0 is sent as
/// 0xFFFF, since 0 means "no checksum".
fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = IPPROTO_UDP;
    pseudo[10..12].copy_from_slice(&(udp.len() as u16).to_be_bytes());
    let mut zeroed = [0u8; UDP_LEN];
    zeroed[..6].copy_from_slice(&udp[..6]);
    match checksum(&[&pseudo, &zeroed, &udp[UDP_LEN..]]) {
        0 => 0xFFFF,
        s => s,
    }
}

/// `f` is an Ethernet II frame carrying IPv4 without options and UDP,
/// whose lengths add up (the frame may be padded) and whose header
/// checksum and UDP checksum (unless 0, none) are right.
pub fn well_formed_udp(f: &[u8]) -> bool {
    let Some(ip) = f.get(ETH_LEN..ETH_LEN + IPV4_LEN) else {
        return false;
    };
    if f[12..14] != ETHERTYPE_IPV4.to_be_bytes() || ip[0] != 0x45 || ip[9] != IPPROTO_UDP {
        return false;
    }
    if checksum(&[ip]) != 0 {
        return false;
    }
    let ip_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let Some(udp) = f.get(ETH_LEN + IPV4_LEN..ETH_LEN + ip_len.max(IPV4_LEN)) else {
        return false;
    };
    if udp.len() < UDP_LEN || usize::from(u16::from_be_bytes([udp[4], udp[5]])) != udp.len() {
        return false;
    }
    let sent = u16::from_be_bytes([udp[6], udp[7]]);
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    sent == 0 || udp_checksum(src, dst, udp) == sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::veb::VebConfig;
    use std::collections::HashSet;

    fn stream(to: u8) -> Stream {
        Stream {
            to: MacAddr([0x02, 0x09, 0, 0, 0, to]),
            from: MacAddr([0x02, 0x0a, 0, 0, 0, 1]),
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(198, 18, 0, 1),
            flows: 16,
        }
    }

    /// Frames carry what was asked, in the wire format a host's stack
    /// would send; the flows are distinct 5-tuples that repeat every
    /// `flows` frames.
    #[test]
    fn frames_are_well_formed_udp_and_the_flows_vary() {
        let s = stream(0);
        let mut f = Vec::new();
        let mut tuples = HashSet::new();
        for seq in 0..64u64 {
            for len in [MIN_FRAME, 64, 1000, MAX_FRAME] {
                udp_frame(&s, seq, len, SOURCE_TTL, &mut f);
                assert_eq!(f.len(), len);
                assert!(well_formed_udp(&f), "seq {seq} len {len}");
                assert_eq!(&f[0..6], &s.to.0);
                assert_eq!(&f[6..12], &s.from.0);
                assert_eq!(f[22], SOURCE_TTL);
                assert_eq!(&f[42..50], &seq.to_be_bytes());
                // The IPv4 total length: the frame less its Ethernet header.
                assert_eq!(usize::from(u16::from_be_bytes([f[16], f[17]])), len - 14);
            }
            let t = (
                [f[26], f[27], f[28], f[29]],
                [f[30], f[31], f[32], f[33]],
                u16::from_be_bytes([f[34], f[35]]),
                u16::from_be_bytes([f[36], f[37]]),
            );
            let (src, dst, sp, dp) = flow_tuple(&s, (seq % 16) as u16);
            assert_eq!(t, (src.octets(), dst.octets(), sp, dp));
            tuples.insert(t);
        }
        assert_eq!(tuples.len(), 16);
        udp_frame(&s, 3, 64, 1, &mut f);
        assert_eq!(f[22], 1);
        assert!(well_formed_udp(&f));
    }

    /// The check finds any one byte changed in the headers or the payload
    /// (a router's TTL decrement done without the checksum update, say),
    /// and a frame too short or of another kind.
    #[test]
    fn the_sink_check_catches_damage() {
        let mut f = Vec::new();
        udp_frame(&stream(1), 7, 80, SOURCE_TTL, &mut f);
        for i in 14..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x10;
            assert!(!well_formed_udp(&g), "byte {i} changed unnoticed");
        }
        assert!(!well_formed_udp(&f[..40]));
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!well_formed_udp(&arp));
        // A router's hop: TTL down by one, header checksum redone.
        let mut hop = f.clone();
        hop[22] -= 1;
        hop[24..26].fill(0);
        let sum = checksum(&[&hop[14..34]]);
        hop[24..26].copy_from_slice(&sum.to_be_bytes());
        assert!(well_formed_udp(&hop));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let ok = WireConfig {
            streams: vec![stream(0)],
            rate: Rate::Max,
            frame_len: 64,
            probe_every: 0,
        };
        assert_eq!(ok.check(), Ok(()));
        let mut c = ok.clone();
        c.streams.clear();
        assert_eq!(c.check(), Err(WireError::NoStream));
        let mut c = ok.clone();
        c.streams[0].flows = 0;
        assert_eq!(c.check(), Err(WireError::NoFlow(0)));
        let mut c = ok.clone();
        c.streams[0].to = MacAddr::BROADCAST;
        assert!(matches!(c.check(), Err(WireError::NotUnicast(0, _))));
        let mut c = ok.clone();
        c.frame_len = 59;
        assert_eq!(c.check(), Err(WireError::FrameLen(59)));
        let mut c = ok;
        c.rate = Rate::Pps(0);
        assert_eq!(c.check(), Err(WireError::ZeroRate));
    }

    /// With no VF on the switch, every frame sent is counted as not taken
    /// (the switch's `wire_unknown`), at the rate asked; what the uplink
    /// holds is sunk and checked.
    #[test]
    fn the_source_counts_what_it_sends_and_the_sink_what_comes_out() {
        let veb = Veb::new(VebConfig::default());
        let wire = Wire::start(
            &veb,
            WireConfig {
                streams: vec![stream(0), stream(1)],
                rate: Rate::Pps(20_000),
                frame_len: 64,
                probe_every: 100,
            },
        )
        .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while wire.stats().sent < 500 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        wire.stop_source();
        let s = wire.stop();
        assert!(s.sent >= 500, "{s:?}");
        assert_eq!(s.sent_bytes, s.sent * 64);
        assert_eq!(s.probes, s.sent / 100);
        assert_eq!(s.not_taken, s.sent);
        assert_eq!(veb.counters().wire_unknown, s.sent);
        assert_eq!((s.sunk, s.sunk_bad), (0, 0));
    }

    /// A VF that owns one MAC, as its model would publish it.
    struct Owns(MacAddr);

    impl crate::sim::veb::FilterSource for Owns {
        fn filter(&self) -> crate::sim::veb::Filter {
            crate::sim::veb::Filter {
                unicast: vec![self.0],
                vlans: crate::sim::veb::Vlans::Any,
                ..Default::default()
            }
        }
        fn same_as(&self, f: &crate::sim::veb::Filter) -> bool {
            *f == self.filter()
        }
    }

    /// At full speed the source never overflows the VF's inbox, and keeps
    /// at most its window on the way: every frame sent is taken, and the
    /// VF gets exactly what was sent; what
    /// the VF sends out of the uplink is sunk and counted, a damaged
    /// frame as bad.
    #[test]
    fn at_max_rate_every_frame_is_taken_and_the_sink_counts_the_uplink() {
        let veb = Veb::new(VebConfig::default());
        let mut vf = veb.attach().unwrap();
        let mac = stream(0).to;
        vf.publish(&Owns(mac));
        let wire = Wire::start(
            &veb,
            WireConfig {
                streams: vec![stream(0)],
                rate: Rate::Max,
                frame_len: 100,
                probe_every: 0,
            },
        )
        .unwrap();
        let mut got = 0u64;
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(10);
        while got < 3000 && Instant::now() < end {
            let t = vf.take();
            for f in t.frames.drain(..) {
                assert!(well_formed_udp(&f.data));
                assert_eq!(&f.data[42..50], &got.to_be_bytes(), "in order");
                // Back out to a host on the wire: the source is the VF's.
                let mut back = f.data;
                back[0..6].copy_from_slice(&[0x02, 0x0a, 0, 0, 0, 2]);
                back[6..12].copy_from_slice(&mac.0);
                out.push(back);
                got += 1;
            }
            vf.transmit(&mut out);
            std::thread::sleep(Duration::from_micros(100));
        }
        let mut bad = vec![0u8; 60];
        bad[6..12].copy_from_slice(&mac.0);
        vf.transmit(&mut vec![bad]);
        wire.stop_source();
        // Frames sent after the last take are still in the inbox.
        std::thread::sleep(Duration::from_millis(5));
        let s = wire.stop();
        let left = vf.take().frames.len() as u64;
        assert!(got >= 3000, "{s:?}");
        assert_eq!(s.not_taken, 0, "{s:?}");
        assert_eq!(s.sent, got + left, "{s:?}");
        assert_eq!(s.sent_bytes, s.sent * 100);
        assert_eq!(s.sunk, got + 1, "{s:?}");
        assert_eq!(s.sunk_bytes, got * 100 + 60);
        assert_eq!(s.sunk_bad, 1);
        assert_eq!(veb.counters().uplink_dropped, 0);
    }

    /// The window opens as frames come back, stays shut while they may
    /// still come, and opens again once they are written off.
    #[test]
    fn the_window_of_frames_on_their_way() {
        let t0 = Instant::now();
        let mut w = Window::default();
        assert_eq!(w.room(t0), MAX_IN_FLIGHT);
        w.taken = MAX_IN_FLIGHT;
        assert_eq!(w.room(t0), 0);
        w.back = 10;
        assert_eq!(w.room(t0), 10);
        w.taken += 10;
        w.progress = Some(t0);
        assert_eq!(w.room(t0 + STALL / 2), 0);
        assert_eq!(w.room(t0 + STALL), MAX_IN_FLIGHT);
        assert_eq!(w.written_off, MAX_IN_FLIGHT);
        assert_eq!(w.room(t0 + STALL), MAX_IN_FLIGHT);
    }
}
