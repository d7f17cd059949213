//! One round of the exchange, the same loop on both ends: handshake, then
//! `count` data frames each way under a window, acknowledgements, and the
//! end of the round.
//!
//! - **Handshake.** The guest sends a hello every [`HELLO_INTERVAL`] (to
//!   the host's MAC, or to all when it was not told it) until the host
//!   answers (the host's driver, or the link, may still be coming
//!   up, for example after a PF reset). The host answers every hello (an
//!   answer can be lost too) and learns the guest's MAC from it. A valid
//!   data frame from the host also ends the guest's handshake.
//! - **Window.** A side sends data frame `seq` only while `seq` is less
//!   than the other side's lowest missing sequence number plus the window,
//!   so the receiver's ring (512 descriptors on both VFs) never holds more
//!   than a window of frames, however slow the receiver (a TCG guest is).
//! - **Loss.** If the acknowledgements make no progress for [`STALL`]
//!   while the window is full (or everything is sent and not all of it
//!   verified), the sender goes back to the other side's lowest missing
//!   frame and sends again from there (go-back-N): a fault in the middle
//!   of a round (a PF reset, a link flap) costs time and duplicates
//!   (`resent`, `rx_dup`), not frames. What never arrives by the timeout
//!   shows as `missing`.
//! - **Acknowledgements.** Every [`ACK_PERIOD`], and after every eighth of
//!   a window of new frames: the count of distinct frames verified, the
//!   lowest sequence number not verified yet, and whether the sender is
//!   done (all the other side's frames verified and all its own
//!   acknowledged).
//! - **End.** A side that is done stops when the other says it is done
//!   too, or after [`LINGER`] (its last acknowledgements may have been
//!   lost while the other side waited for them), or at the timeout.
//!
//! Every frame is judged by [`frame::classify`]; the report counts each
//! kind. The port's [`Port::service`] runs every [`SERVICE_PERIOD`], and
//! both queues are polled on every pass, even with nothing to send: after
//! a PF reset a VF port waits for its queues to give their buffers back.

use super::frame::{self, Control, Direction, Expect, Verdict, MAX_FRAME};
use super::LabFramesError;
use crate::burst::Burst;
use crate::net::MacAddr;
use crate::pool::PoolCache;
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};
use std::fmt;
use std::time::{Duration, Instant};

/// Time between hellos while the guest waits for an answer.
pub const HELLO_INTERVAL: Duration = Duration::from_millis(200);
/// Time between acknowledgements when fewer frames arrive.
pub const ACK_PERIOD: Duration = Duration::from_millis(20);
/// Window-blocked time without progress in the acknowledgements after
/// which the frames in flight are taken as lost and sent again.
pub const STALL: Duration = Duration::from_secs(1);
/// How long a finished side waits for the other's "done".
pub const LINGER: Duration = Duration::from_millis(500);
/// Time between calls of [`Port::service`]: the 100 ms its contract names.
pub const SERVICE_PERIOD: Duration = Duration::from_millis(100);
/// Frames asked for per receive burst, and most queued per send.
const BURST: usize = 32;
/// Sleep of a pass that neither received nor sent anything: a guest
/// under TCG has one vCPU, and its kernel needs it to move the frames.
const IDLE_SLEEP: Duration = Duration::from_micros(100);
/// Default window (frames in flight each way): half a 512-descriptor ring.
pub const DEFAULT_WINDOW: u32 = 256;

/// Which end of the exchange this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Runs in the guest, sends hellos, knows the host's MAC.
    Guest,
    /// Runs in the host, answers hellos, learns the guest's MAC.
    Host,
}

impl Role {
    /// The direction of the frames this end sends.
    pub fn sends(self) -> Direction {
        match self {
            Role::Guest => Direction::GuestToHost,
            Role::Host => Direction::HostToGuest,
        }
    }
}

/// What a round is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct RoundConfig {
    /// This end.
    pub role: Role,
    /// This end's MAC (the destination of the frames it receives).
    pub me: MacAddr,
    /// The other end's MAC. Without it, the guest broadcasts its hellos and
    /// learns the host's from the answer; the host learns the guest's from
    /// the hello. When given, frames from other MACs are foreign.
    pub peer: Option<MacAddr>,
    /// The round number: frames of other rounds are counted, never taken.
    pub round: u32,
    /// Data frames each way.
    pub count: u32,
    /// Frames in flight, 1 or more.
    pub window: u32,
    /// Time for the whole round, handshake included.
    pub timeout: Duration,
}

/// What a round did, by kind of frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Report {
    /// The round.
    pub round: u32,
    /// Data frames each way.
    pub count: u32,
    /// The other end's MAC, once known.
    pub peer: Option<MacAddr>,
    /// Seconds from start to the end of the handshake (None if it never
    /// ended).
    pub handshake_secs: Option<f64>,
    /// Seconds the round took.
    pub secs: f64,
    /// Hellos sent (guest).
    pub hellos: u64,
    /// Distinct data frames sent (each sequence number once).
    pub sent: u32,
    /// Of those, how many the other end says it verified.
    pub acked: u32,
    /// Distinct data frames received and verified.
    pub rx_ok: u32,
    /// Data frames received again after a verified copy.
    pub rx_dup: u64,
    /// Verified data frames that came after a higher sequence number.
    pub rx_misordered: u64,
    /// Lab frames whose bytes were wrong.
    pub rx_corrupt: u64,
    /// Lab frames cut short.
    pub rx_truncated: u64,
    /// 0x88B5 frames not ours, or ours from or to another station.
    pub rx_foreign: u64,
    /// Intact frames of another round.
    pub rx_wrong_round: u64,
    /// Frames of other EtherTypes (the kernel's own), ignored.
    pub rx_other: u64,
    /// Times the sender went back after [`STALL`].
    pub stalls: u64,
    /// Data frames sent again after going back.
    pub resent: u64,
    /// Port service events during the round: resets seen.
    pub resets: u64,
    /// Port service events during the round: recoveries.
    pub recoveries: u64,
    /// The other end said it was done.
    pub peer_done: bool,
    /// The round ran out of time.
    pub timed_out: bool,
}

impl Report {
    /// Frames of the other end's `count` that never arrived verified.
    pub fn missing(&self) -> u32 {
        self.count.saturating_sub(self.rx_ok)
    }

    /// Frames that claimed to be the round's and failed a check.
    pub fn rx_bad(&self) -> u64 {
        self.rx_corrupt + self.rx_truncated
    }

    /// Both ways complete: every frame of the other end verified here,
    /// and every frame of ours verified there.
    pub fn complete(&self) -> bool {
        self.rx_ok == self.count && self.acked == self.count
    }

    /// The report as one line, `<tag> round=N sent=.. rx_ok=.. rx_bad=..
    /// rx_dup=.. missing=.. secs=..` then the other counts as `key=value`
    /// and `result=ok|fail`.
    pub fn line(&self, tag: &str) -> String {
        format!("{tag} {self}")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "round={} sent={} rx_ok={} rx_bad={} rx_dup={} missing={} secs={:.2} \
             count={} acked={} corrupt={} truncated={} foreign={} wrong_round={} \
             misordered={} other={} hellos={} stalls={} resent={} resets={} recoveries={} ",
            self.round,
            self.sent,
            self.rx_ok,
            self.rx_bad(),
            self.rx_dup,
            self.missing(),
            self.secs,
            self.count,
            self.acked,
            self.rx_corrupt,
            self.rx_truncated,
            self.rx_foreign,
            self.rx_wrong_round,
            self.rx_misordered,
            self.rx_other,
            self.hellos,
            self.stalls,
            self.resent,
            self.resets,
            self.recoveries,
        )?;
        match self.handshake_secs {
            Some(s) => write!(f, "handshake_secs={s:.2} ")?,
            None => write!(f, "handshake_secs=none ")?,
        }
        match self.peer {
            Some(m) => write!(f, "peer={m} ")?,
            None => write!(f, "peer=none ")?,
        }
        let result = if self.complete() {
            "ok"
        } else if self.timed_out {
            "timeout"
        } else {
            "fail"
        };
        write!(f, "result={result}")
    }
}

/// A port with its one queue pair, taken once and kept across rounds
/// (a port hands its queues out only once).
#[derive(Debug)]
pub struct Endpoint<P: Port> {
    port: P,
    rx: P::Rx,
    tx: P::Tx,
}

impl<P: Port> Endpoint<P> {
    /// Takes queue 0 of each direction from `port`.
    pub fn new(mut port: P) -> Result<Endpoint<P>, LabFramesError> {
        let (mut rx, mut tx) = port.queues(1, 1)?;
        match (rx.pop(), tx.pop()) {
            (Some(rx), Some(tx)) => Ok(Endpoint { port, rx, tx }),
            _ => Err(LabFramesError::NoQueues(port.info().name.clone())),
        }
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port, to stop, start or service it between rounds.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// Gives the port back (dropping the queues first).
    pub fn into_port(self) -> P {
        let Endpoint { port, rx, tx } = self;
        drop((rx, tx));
        port
    }
}

/// Which sequence numbers arrived: one bit each.
struct Seen {
    bits: Vec<u64>,
    highest: Option<u32>,
    count: u32,
    /// Leading words with every bit set (they only fill up).
    full_words: usize,
}

impl Seen {
    fn new(count: u32) -> Seen {
        Seen {
            bits: vec![0; (count as usize).div_ceil(64)],
            highest: None,
            count,
            full_words: 0,
        }
    }

    /// The lowest sequence number not seen yet (the count when all are).
    fn first_missing(&mut self) -> u32 {
        while let Some(&w) = self.bits.get(self.full_words) {
            if w != u64::MAX {
                break;
            }
            self.full_words += 1;
        }
        let w = self.bits.get(self.full_words).copied().unwrap_or(u64::MAX);
        let at = self.full_words as u64 * 64 + u64::from(w.trailing_ones());
        at.min(u64::from(self.count)) as u32
    }

    /// Marks `seq` (below the count); false if it was already there.
    fn insert(&mut self, seq: u32) -> bool {
        let (w, b) = (seq as usize / 64, 1u64 << (seq % 64));
        let fresh = self.bits[w] & b == 0;
        self.bits[w] |= b;
        fresh
    }
}

/// Runs one round on `ep`, taking buffers from `cache` (whose pool must
/// hold frames of [`MAX_FRAME`] bytes). `on_handshake` is called once,
/// when the handshake ends, with the report so far.
pub fn run(
    ep: &mut Endpoint<impl Port>,
    cache: &mut PoolCache,
    cfg: &RoundConfig,
    on_handshake: &mut dyn FnMut(&Report),
) -> Result<Report, LabFramesError> {
    if cfg.window == 0 {
        return Err(LabFramesError::Config(
            "the window must be at least 1".into(),
        ));
    }
    if cache.pool().data_room() < MAX_FRAME {
        return Err(LabFramesError::Config(format!(
            "buffers of {} bytes cannot hold {MAX_FRAME}-byte frames",
            cache.pool().data_room()
        )));
    }
    let start = Instant::now();
    let deadline = start + cfg.timeout;
    let sends = cfg.role.sends();
    let mut expect = Expect {
        me: cfg.me,
        peer: cfg.peer,
        dir: sends.reverse(),
        round: cfg.round,
        count: cfg.count,
    };
    let mut r = Report {
        round: cfg.round,
        count: cfg.count,
        ..Report::default()
    };
    let mut seen = Seen::new(cfg.count);
    // The guest's peer is configured; the host learns it from the hello.
    let mut talking_to: Option<MacAddr> = None;
    let mut next_hello = start;
    let mut next_ack = start;
    let mut next_service = start;
    let mut acked_at_last_ack = 0u32;
    let mut last_ack_progress = start;
    // The other side's lowest missing frame, and the next one to send
    // (below `r.sent` after going back).
    let mut peer_missing = 0u32;
    let mut next_seq = 0u32;
    let mut answers_due = 0u32;
    let mut done_since: Option<Instant> = None;
    let mut rx = Burst::new();
    let mut tx = Burst::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            r.timed_out = true;
            break;
        }
        if now >= next_service {
            next_service = now + SERVICE_PERIOD;
            match ep.port.service()? {
                ServiceEvent::ResetDetected => r.resets += 1,
                ServiceEvent::Recovered => r.recoveries += 1,
                _ => {}
            }
        }

        // Receive and judge.
        let got = ep.rx.rx_burst(cache, &mut rx, BURST);
        for m in rx.drain(..) {
            let verdict = frame::classify(m.data(), &expect);
            // Only a frame `classify` found whole enough to be ours is
            // asked for its source; a runt (even an empty one a driver
            // delivered) is judged, never indexed.
            let src = m.data().get(6..12).map_or(MacAddr([0; 6]), |s| {
                MacAddr([s[0], s[1], s[2], s[3], s[4], s[5]])
            });
            cache.free(m);
            match verdict {
                Verdict::Data { seq } => {
                    if talking_to.is_none() && cfg.role == Role::Guest {
                        // The answer was lost, but the data says the host
                        // is there (when the guest was told its MAC).
                        talking_to = cfg.peer;
                    }
                    if talking_to.is_none() {
                        // Data is taken only once it is known whom from.
                        r.rx_foreign += 1;
                    } else if !seen.insert(seq) {
                        r.rx_dup += 1;
                    } else {
                        r.rx_ok += 1;
                        if seen.highest.is_some_and(|h| seq < h) {
                            r.rx_misordered += 1;
                        }
                        seen.highest = Some(seen.highest.map_or(seq, |h| h.max(seq)));
                    }
                }
                Verdict::Control(
                    c @ (Control::Hello { count } | Control::HelloAnswer { count }),
                ) if matches!(
                    (c, cfg.role),
                    (Control::Hello { .. }, Role::Host)
                        | (Control::HelloAnswer { .. }, Role::Guest)
                ) =>
                {
                    if count != cfg.count {
                        return Err(LabFramesError::CountMismatch {
                            round: cfg.round,
                            theirs: count,
                            ours: cfg.count,
                        });
                    }
                    if talking_to.is_none() {
                        // The host learns the guest from its hello; the
                        // guest has the configured MAC, or learns the
                        // host's here when the hello was broadcast. From
                        // now on, frames from others are foreign.
                        talking_to = Some(src);
                        expect.peer = Some(src);
                    }
                    if cfg.role == Role::Host {
                        // Every hello is answered (an answer can be lost).
                        answers_due += 1;
                    }
                }
                Verdict::Control(Control::Ack {
                    verified,
                    done,
                    next_missing,
                }) if talking_to.is_some() => {
                    // Both only grow; an older acknowledgement that
                    // arrives late changes nothing.
                    let verified = verified.min(r.sent);
                    if verified > r.acked {
                        r.acked = verified;
                        last_ack_progress = now;
                    }
                    let next_missing = next_missing.min(r.sent);
                    if next_missing > peer_missing {
                        peer_missing = next_missing;
                        last_ack_progress = now;
                    }
                    r.peer_done |= done;
                }
                // A hello to the guest, an answer to the host, an
                // acknowledgement before the handshake: not this protocol.
                Verdict::Control(_) => r.rx_foreign += 1,
                Verdict::Other => r.rx_other += 1,
                Verdict::Truncated => r.rx_truncated += 1,
                Verdict::Corrupt => r.rx_corrupt += 1,
                Verdict::Foreign => r.rx_foreign += 1,
                Verdict::WrongRound => r.rx_wrong_round += 1,
            }
        }
        if r.handshake_secs.is_none() {
            if let Some(peer) = talking_to {
                r.peer = Some(peer);
                r.handshake_secs = Some(now.duration_since(start).as_secs_f64());
                on_handshake(&r);
            }
        }

        // Queue what is due, up to a burst.
        let queued_before = tx.len();
        let me = cfg.me;
        let push_control = |tx: &mut Burst, cache: &mut PoolCache, dst, c| -> bool {
            let Some(mut m) = cache.alloc() else {
                return false;
            };
            match m.append(frame::MIN_FRAME) {
                Ok(buf) => {
                    frame::write_control(buf, dst, me, sends, cfg.round, c);
                    tx.push(m);
                    true
                }
                Err(_) => {
                    cache.free(m);
                    false
                }
            }
        };
        match (cfg.role, talking_to) {
            (Role::Guest, None) if now >= next_hello => {
                let peer = cfg.peer.unwrap_or(MacAddr::BROADCAST);
                let hello = Control::Hello { count: cfg.count };
                if tx.len() < BURST && push_control(&mut tx, cache, peer, hello) {
                    r.hellos += 1;
                    next_hello = now + HELLO_INTERVAL;
                }
            }
            (Role::Host, Some(peer)) => {
                while answers_due > 0 && tx.len() < BURST {
                    let answer = Control::HelloAnswer { count: cfg.count };
                    if !push_control(&mut tx, cache, peer, answer) {
                        break;
                    }
                    answers_due -= 1;
                }
            }
            _ => {}
        }
        let done = talking_to.is_some() && r.complete();
        if let Some(peer) = talking_to {
            // Data, under the window from the other side's first gap.
            let limit =
                (u64::from(peer_missing) + u64::from(cfg.window)).min(u64::from(cfg.count)) as u32;
            if next_seq >= limit
                && r.acked < cfg.count
                && now.duration_since(last_ack_progress) >= STALL
            {
                // Go back to the first frame the other side lacks.
                r.stalls += 1;
                next_seq = peer_missing;
                last_ack_progress = now;
            }
            while next_seq < limit && tx.len() < BURST {
                let Some(mut m) = cache.alloc() else { break };
                let len = frame::data_len(sends, cfg.round, next_seq);
                match m.append(len) {
                    Ok(buf) => {
                        frame::write_data(buf, peer, me, sends, cfg.round, next_seq);
                        tx.push(m);
                        if next_seq < r.sent {
                            r.resent += 1;
                        }
                        next_seq += 1;
                        r.sent = r.sent.max(next_seq);
                    }
                    Err(_) => {
                        cache.free(m);
                        break;
                    }
                }
            }
            let ack_due = now >= next_ack
                || r.rx_ok - acked_at_last_ack >= (cfg.window / 8).max(1)
                || (done && done_since.is_none());
            if ack_due && tx.len() < BURST {
                let ack = Control::Ack {
                    verified: r.rx_ok,
                    done,
                    next_missing: seen.first_missing(),
                };
                if push_control(&mut tx, cache, peer, ack) {
                    acked_at_last_ack = r.rx_ok;
                    next_ack = now + ACK_PERIOD;
                    if done && done_since.is_none() {
                        done_since = Some(now);
                    }
                }
            }
        }
        let queued = tx.len() > queued_before;
        // Always called, even with nothing to send: a stopping VF port
        // waits for its queues to give their buffers back.
        ep.tx.tx_burst(cache, &mut tx);

        if let Some(since) = done_since {
            if r.peer_done || now.duration_since(since) >= LINGER {
                break;
            }
        }
        if got == 0 && !queued {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
    // What the port could not send by the end is dropped here.
    for m in tx.drain(..) {
        cache.free(m);
    }
    r.secs = start.elapsed().as_secs_f64();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_tells_new_from_again() {
        let mut s = Seen::new(130);
        assert!(s.insert(0));
        assert!(s.insert(129));
        assert!(!s.insert(129));
        assert!(s.insert(64));
        assert!(!s.insert(0));
    }

    #[test]
    fn first_missing_follows_the_gaps() {
        let mut s = Seen::new(130);
        assert_eq!(s.first_missing(), 0);
        for q in 0..64 {
            s.insert(q);
        }
        assert_eq!(s.first_missing(), 64, "a full word");
        s.insert(65);
        assert_eq!(s.first_missing(), 64, "65 does not fill the gap at 64");
        s.insert(64);
        assert_eq!(s.first_missing(), 66);
        for q in 66..130 {
            s.insert(q);
        }
        assert_eq!(s.first_missing(), 130, "all seen: the count");
    }

    #[test]
    fn the_line_starts_with_the_agreed_fields() {
        let r = Report {
            round: 2,
            count: 10,
            sent: 10,
            acked: 10,
            rx_ok: 9,
            rx_corrupt: 1,
            rx_truncated: 2,
            rx_dup: 3,
            secs: 1.234,
            ..Report::default()
        };
        let line = r.line("VFU-FRAMES");
        assert!(
            line.starts_with(
                "VFU-FRAMES round=2 sent=10 rx_ok=9 rx_bad=3 rx_dup=3 missing=1 secs=1.23 "
            ),
            "{line}"
        );
        assert!(line.ends_with(" result=fail"), "{line}");
        assert!(!r.complete());
        let ok = Report { rx_ok: 10, ..r };
        assert!(ok.complete());
        assert!(ok.line("X").ends_with(" result=ok"));
    }
}
