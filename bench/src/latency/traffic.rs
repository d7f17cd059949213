//! One run of the source and the sink, on the rig's calling thread: a
//! paced (or unpaced) stream of stamped packets into the forwarder, and
//! the delay of every packet that comes out.
//!
//! One thread does both, alternating: when a burst is due it is made and
//! sent, and in between the sink polls. Both read the one TSC of the one
//! CPU, so a delay never mixes two CPUs' counters. The stamp is taken
//! once per burst, right before the burst is handed to the port, and the
//! arrival once per burst the sink receives, right after it is taken
//! from the port, so a delay covers: the source's enqueue, the wait in
//! the input ring until the forwarder polls, the forwarding, the wait in
//! the output ring, and the sink's dequeue. While the source is making a
//! burst the sink does not poll: that wait (a fraction of a microsecond
//! at burst 32) is in the figure too.

use super::pacing::{Pacer, PacingError, Schedule};
use super::rig::{Ends, Rig};
use super::tally::Tally;
use drivers::burst::{Burst, MAX_BURST};
use drivers::cpu::rdtsc;
use drivers::port::{RxQueue, TxQueue};
use hdrhistogram::Histogram;

/// Where the stamp sits in a frame: after an Ethernet header (14 bytes),
/// which `mac` mode rewrites and `io` mode leaves alone.
pub const STAMP_OFFSET: usize = 14;
/// The stamp: the TSC, 8 bytes little-endian.
pub const STAMP_LEN: usize = 8;
/// The shortest frame that holds the stamp.
pub const MIN_FRAME: usize = STAMP_OFFSET + STAMP_LEN;

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Packets per second asked; `None`: as fast as the source can.
    pub pps: Option<u64>,
    /// Packets per source burst (1..=MAX_BURST).
    pub burst: usize,
    /// Frame length (MIN_FRAME..=the pool's data room).
    pub frame_len: usize,
    /// TSC cycles of warm-up: packets stamped before its end are counted
    /// but their delays are not recorded.
    pub warmup_cycles: u64,
    /// TSC cycles the source sends for, warm-up included.
    pub run_cycles: u64,
    /// After the source stops, at most this many cycles to wait for the
    /// last packets (then what is missing is reported as lost).
    pub drain_cycles: u64,
    /// The TSC rate.
    pub hz: u64,
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where the packets went.
    pub tally: Tally,
    /// Seconds the source ran.
    pub secs: f64,
    /// Bursts the source could not make (no free buffer).
    pub src_nombuf: u64,
    /// The forwarder's busy share during the run, 0..=1.
    pub fwd_busy: f64,
}

/// Delays of consecutive packets, which are mostly equal (a burst shares
/// its stamp and its arrival), recorded as one `record_n` per run of
/// equal values.
struct Recorder<'h> {
    hist: &'h mut Histogram<u64>,
    value: u64,
    count: u64,
    /// Packets with no usable delay.
    unmeasured: u64,
}

impl Recorder<'_> {
    #[inline]
    fn add(&mut self, value: u64) {
        if value != self.value {
            self.flush();
            self.value = value;
        }
        self.count += 1;
    }

    fn flush(&mut self) {
        if self.count > 0 && self.hist.record_n(self.value, self.count).is_err() {
            // Beyond the histogram's range: counted, never clamped.
            self.unmeasured += self.count;
        }
        self.count = 0;
    }
}

/// Runs `plan` on `rig`: delays of packets stamped after the warm-up go
/// into `hist` (in TSC cycles); counts cover the whole run. An error if
/// the rate cannot be scheduled.
pub fn run(rig: &mut Rig, plan: &Plan, hist: &mut Histogram<u64>) -> Result<Outcome, PacingError> {
    let burst_size = plan.burst.clamp(1, MAX_BURST);
    let (ends, counters) = rig.ends_and_counters();
    let fwd_before = counters.snapshot();
    let mut rec = Recorder {
        hist,
        value: 0,
        count: 0,
        unmeasured: 0,
    };
    let mut out = Burst::new();
    let mut got = Burst::new();
    let (mut offered, mut refused, mut received, mut nombuf) = (0u64, 0u64, 0u64, 0u64);
    let start = rdtsc();
    let record_from = start.wrapping_add(plan.warmup_cycles);
    let end = start.wrapping_add(plan.run_cycles);
    let mut pacer = match plan.pps {
        Some(pps) => Some(Pacer::new(Schedule::new(
            start,
            plan.hz,
            pps,
            burst_size as u64,
        )?)),
        None => None,
    };
    loop {
        let now = rdtsc();
        if now >= end {
            break;
        }
        let due = pacer.as_ref().is_none_or(|p| p.is_due(now));
        if due {
            if let Some(p) = pacer.as_mut() {
                p.advance();
            }
            if ends.cache.alloc_bulk(&mut out, burst_size) {
                for m in out.iter_mut() {
                    // Within the data room: checked when the plan was made.
                    let _ = m.set_len(plan.frame_len);
                }
                let stamp = rdtsc().to_le_bytes();
                for m in out.iter_mut() {
                    if let Some(d) = m.data_mut().get_mut(STAMP_OFFSET..MIN_FRAME) {
                        d.copy_from_slice(&stamp);
                    }
                }
                offered += burst_size as u64;
                ends.source.tx_burst(&mut ends.cache, &mut out);
                // What the input ring refused stays in `out`.
                refused += out.len() as u64;
                ends.cache.free_bulk(&mut out);
            } else {
                nombuf += 1;
            }
        }
        received += drain_once(ends, &mut got, record_from, &mut rec);
    }
    let stopped = rdtsc();
    // Drain: until every packet that entered the input ring is received
    // or counted as dropped by the forwarder, or the time is up (then
    // the tally shows what is missing, and where).
    let entered = offered - refused;
    let give_up = stopped.wrapping_add(plan.drain_cycles);
    loop {
        received += drain_once(ends, &mut got, record_from, &mut rec);
        let f = counters.snapshot().since(&fwd_before);
        let settled = f.rx >= entered && f.tx + f.dropped() >= f.rx && received >= f.tx;
        if settled || rdtsc() >= give_up {
            break;
        }
    }
    rec.flush();
    let fwd = counters.snapshot().since(&fwd_before);
    Ok(Outcome {
        tally: Tally {
            offered,
            refused_at_source: refused,
            fwd_rx: fwd.rx,
            fwd_tx: fwd.tx,
            fwd_dropped: fwd.dropped(),
            received,
            unmeasured: rec.unmeasured,
        },
        secs: stopped.wrapping_sub(start) as f64 / plan.hz as f64,
        src_nombuf: nombuf,
        fwd_busy: fwd.busy_ratio(),
    })
}

/// One poll of the sink: every packet received has its delay recorded
/// (if stamped after `record_from`) and is freed. Returns how many.
#[inline]
fn drain_once(ends: &mut Ends, got: &mut Burst, record_from: u64, rec: &mut Recorder<'_>) -> u64 {
    let n = ends.sink.rx_burst(&mut ends.cache, got, MAX_BURST);
    if n == 0 {
        return 0;
    }
    let now = rdtsc();
    for m in got.iter() {
        let stamp = m
            .data()
            .get(STAMP_OFFSET..MIN_FRAME)
            .and_then(|b| <[u8; STAMP_LEN]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        match stamp {
            Some(t) if t < record_from => {}
            Some(t) if t <= now => rec.add(now - t),
            // Later than its arrival, or too short to hold a stamp.
            _ => rec.unmeasured += 1,
        }
    }
    ends.cache.free_bulk(got);
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::rig::RigConfig;
    use drivers::cpu::tsc_hz;
    use drivers::memory::MemoryBacking;
    use fastpath::fwd_mode::FwdMode;

    /// The plumbing, not the timing: every packet the source offers is
    /// counted somewhere, the ports' counters agree, and every buffer is
    /// back at the end. Runs the forwarder on the second allowed CPU for
    /// about 20 ms.
    #[test]
    fn every_packet_is_accounted_for_and_every_buffer_returns() {
        let cpus = crate::pick_cpus(None).unwrap();
        if cpus.len() < 2 {
            drivers::skip_test!(
                "the rig needs two CPUs (the forwarder busy-polls one); {} allowed",
                cpus.len()
            );
            return;
        }
        let hz = tsc_hz();
        let mut rig = Rig::start(&RigConfig {
            fwd_cpu: cpus[1],
            gen_cpu: cpus[0],
            fwd_burst: 32,
            mode: FwdMode::Io,
            ring_size: 256,
            cache_size: 256,
            backing: MemoryBacking::NoHuge,
        })
        .unwrap();
        let mut hist = Histogram::<u64>::new_with_bounds(1, hz * 60, 3).unwrap();
        let mut total = Tally::default();
        // Unpaced (the input ring overflows: refusals are counted), then
        // paced at a low rate, in bursts of 32 and of 1.
        for (pps, burst) in [(None, 32), (Some(100_000), 32), (Some(100_000), 1)] {
            hist.reset();
            let o = run(
                &mut rig,
                &Plan {
                    pps,
                    burst,
                    frame_len: 64,
                    warmup_cycles: 0,
                    run_cycles: hz / 100,
                    drain_cycles: hz * 10,
                    hz,
                },
                &mut hist,
            )
            .unwrap();
            let t = o.tally;
            assert!(t.offered > 0, "{t:?}");
            assert_eq!(t.lost(), Some(0), "{t:?}");
            assert_eq!(t.offered, t.received + t.dropped(), "{t:?}");
            assert_eq!((t.unmeasured, o.src_nombuf), (0, 0), "{t:?}");
            assert_eq!(hist.len(), t.received, "every delay recorded");
            total = total.plus(&t);
        }
        let ports = rig.port_stats();
        assert_eq!(ports[2].opackets, total.entered());
        assert_eq!(ports[2].oerrors, total.refused_at_source);
        assert_eq!(ports[0].ipackets, total.fwd_rx);
        assert_eq!(ports[1].opackets, total.fwd_tx);
        assert_eq!(ports[3].ipackets, total.received);
        let audit = rig.stop();
        // (The test's own thread stays pinned: libtest runs each test on
        // a thread of its own, which ends with it.)
        assert!(audit.clean(), "{audit:?}");
    }
}
