//! The lines `lat-bench` prints: one per offered load, a summary, and the
//! figures they carry (latency percentiles in nanoseconds and TSC cycles).
//!
//! Every figure is `key=value` on one line, so a script reads a line with
//! one `split`; a value that could not be measured is `-`.

use super::tally::Tally;
use hdrhistogram::Histogram;
use std::fmt;

/// Latency percentiles of one run, in TSC cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// 99.99th.
    pub p9999: u64,
    /// The largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (to its precision: each value is the
    /// highest of its bucket, as hdrhistogram reports them); `None` when
    /// it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        })
    }
}

/// Nanoseconds of `cycles` at `hz` TSC ticks per second.
pub fn cycles_to_ns(cycles: u64, hz: u64) -> f64 {
    if hz == 0 {
        return f64::NAN;
    }
    cycles as f64 * 1e9 / hz as f64
}

/// Millions of packets per second, `packets` over `secs`.
pub fn mpps(packets: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        packets as f64 / secs / 1e6
    } else {
        f64::NAN
    }
}

/// How the load of a run was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// This percentage of the measured maximum, paced.
    Percent(u32),
    /// As fast as the source can (the maximum's measurement).
    Max,
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::Percent(p) => write!(f, "{p}%"),
            Load::Max => f.write_str("max"),
        }
    }
}

/// One run's line.
#[derive(Debug, Clone)]
pub struct LoadLine {
    /// The load asked.
    pub load: Load,
    /// Packets per burst of the source.
    pub burst: usize,
    /// The rate asked, packets per second (`None`: unpaced).
    pub target_pps: Option<u64>,
    /// Seconds the source ran (warm-up included).
    pub secs: f64,
    /// The percentiles of the packets stamped after the warm-up.
    pub latency: Option<Percentiles>,
    /// How many latencies those are.
    pub measured: u64,
    /// The TSC rate.
    pub hz: u64,
    /// Where the packets went.
    pub tally: Tally,
    /// Bursts the source could not make (no free buffer).
    pub src_nombuf: u64,
    /// The forwarder's busy share of its cycles, 0..=1.
    pub fwd_busy: f64,
}

/// `key=value` with `-` for a value that is not there.
fn opt<T: fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for LoadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let ns = |pick: fn(&Percentiles) -> u64| {
            opt(self
                .latency
                .as_ref()
                .map(|p| format!("{:.1}", cycles_to_ns(pick(p), self.hz))))
        };
        let cyc = |pick: fn(&Percentiles) -> u64| opt(self.latency.as_ref().map(pick));
        write!(
            f,
            "lat load={} offered_mpps={:.3} achieved_mpps={:.3} burst={} \
             p50_ns={} p99_ns={} p999_ns={} p9999_ns={} max_ns={} \
             sent={} received={} dropped={} lost={}",
            self.load,
            mpps(t.offered, self.secs),
            mpps(t.received, self.secs),
            self.burst,
            ns(|p| p.p50),
            ns(|p| p.p99),
            ns(|p| p.p999),
            ns(|p| p.p9999),
            ns(|p| p.max),
            t.offered,
            t.received,
            t.dropped(),
            opt(t.lost()),
        )?;
        write!(
            f,
            " target_mpps={} p50_cyc={} p99_cyc={} p999_cyc={} p9999_cyc={} max_cyc={} \
             measured={} unmeasured={} dropped_input_ring={} dropped_fwd={} src_nombuf={} \
             fwd_busy_pct={:.1} secs={:.3}",
            opt(self.target_pps.map(|p| format!("{:.3}", p as f64 / 1e6))),
            cyc(|p| p.p50),
            cyc(|p| p.p99),
            cyc(|p| p.p999),
            cyc(|p| p.p9999),
            cyc(|p| p.max),
            self.measured,
            t.unmeasured,
            t.refused_at_source,
            t.fwd_dropped,
            self.src_nombuf,
            self.fwd_busy * 100.0,
            self.secs,
        )
    }
}

/// The last line: the whole run in one.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The maximum the loads are shares of, packets per second.
    pub max_pps: f64,
    /// Load lines printed (the maximum's not counted).
    pub cases: usize,
    /// Every run's counts, the maximum's included.
    pub tally: Tally,
    /// Bursts the source could not make, every run.
    pub src_nombuf: u64,
    /// Buffers back in the pool at the end, and the pool's size.
    pub buffers: (usize, usize),
    /// The TSC rate.
    pub hz: u64,
}

impl Summary {
    /// True when nothing was lost or miscounted, every latency was
    /// measured and every buffer came back.
    pub fn clean(&self) -> bool {
        self.tally.lost() == Some(0)
            && self.tally.unmeasured == 0
            && self.src_nombuf == 0
            && self.buffers.0 == self.buffers.1
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "lat summary cases={} max_mpps={:.3} sent={} received={} dropped={} lost={} \
             unmeasured={} src_nombuf={} buffers={}/{} tsc_mhz={:.1} status={}",
            self.cases,
            self.max_pps / 1e6,
            t.offered,
            t.received,
            t.dropped(),
            opt(t.lost()),
            t.unmeasured,
            self.src_nombuf,
            self.buffers.0,
            self.buffers.1,
            self.hz as f64 / 1e6,
            if self.clean() { "ok" } else { "FAILED" },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally {
            offered: 3_000_000,
            refused_at_source: 0,
            fwd_rx: 3_000_000,
            fwd_tx: 2_999_990,
            fwd_dropped: 10,
            received: 2_999_990,
            unmeasured: 0,
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).unwrap();
        assert_eq!(Percentiles::of(&h), None);
        // 9980 of 1000 cycles, 19 of 5000, one of 1_000_000: p99 (the
        // 9900th value) is 1000, p99.9 (the 9990th) and p99.99 (the
        // 9999th) 5000, max 1e6.
        h.record_n(1000, 9980).unwrap();
        h.record_n(5000, 19).unwrap();
        h.record(1_000_000).unwrap();
        let p = Percentiles::of(&h).unwrap();
        assert_eq!((p.p50, p.p99), (1000, 1000));
        assert_eq!(p.p999, h.highest_equivalent(5000));
        assert_eq!(p.p9999, h.highest_equivalent(5000));
        assert_eq!(p.max, h.highest_equivalent(1_000_000));
    }

    #[test]
    fn a_load_line_has_every_figure_as_key_value() {
        let line = LoadLine {
            load: Load::Percent(10),
            burst: 32,
            target_pps: Some(1_000_000),
            secs: 3.0,
            latency: Some(Percentiles {
                p50: 520,
                p99: 1300,
                p999: 2600,
                p9999: 26_000,
                max: 260_000,
            }),
            measured: 2_500_000,
            hz: 2_600_000_000,
            tally: tally(),
            src_nombuf: 0,
            fwd_busy: 0.125,
        };
        assert_eq!(
            line.to_string(),
            "lat load=10% offered_mpps=1.000 achieved_mpps=1.000 burst=32 \
             p50_ns=200.0 p99_ns=500.0 p999_ns=1000.0 p9999_ns=10000.0 max_ns=100000.0 \
             sent=3000000 received=2999990 dropped=10 lost=0 \
             target_mpps=1.000 p50_cyc=520 p99_cyc=1300 p999_cyc=2600 p9999_cyc=26000 \
             max_cyc=260000 measured=2500000 unmeasured=0 dropped_input_ring=0 \
             dropped_fwd=10 src_nombuf=0 fwd_busy_pct=12.5 secs=3.000"
        );
    }

    #[test]
    fn what_was_not_measured_is_a_dash() {
        let line = LoadLine {
            load: Load::Max,
            burst: 1,
            target_pps: None,
            secs: 1.0,
            latency: None,
            measured: 0,
            hz: 1_000_000_000,
            tally: Tally {
                received: 5,
                ..Tally::default()
            },
            src_nombuf: 0,
            fwd_busy: 1.0,
        };
        let s = line.to_string();
        assert!(s.starts_with("lat load=max "), "{s}");
        for key in [
            "p50_ns=-",
            "max_ns=-",
            "p99_cyc=-",
            "target_mpps=-",
            "lost=-",
        ] {
            assert!(s.split(' ').any(|kv| kv == key), "{key} in {s}");
        }
    }

    #[test]
    fn the_summary_fails_on_any_loss_or_missing_buffer() {
        let s = Summary {
            max_pps: 61_500_000.0,
            cases: 4,
            tally: tally(),
            src_nombuf: 0,
            buffers: (8192, 8192),
            hz: 2_600_000_000,
        };
        assert!(s.clean());
        assert_eq!(
            s.to_string(),
            "lat summary cases=4 max_mpps=61.500 sent=3000000 received=2999990 dropped=10 \
             lost=0 unmeasured=0 src_nombuf=0 buffers=8192/8192 tsc_mhz=2600.0 status=ok"
        );
        let lost = Summary {
            tally: Tally {
                received: 2_999_989,
                ..tally()
            },
            ..s.clone()
        };
        assert!(!lost.clean());
        assert!(lost.to_string().contains(" lost=1 "));
        assert!(lost.to_string().ends_with("status=FAILED"));
        assert!(!Summary {
            buffers: (8191, 8192),
            ..s.clone()
        }
        .clean());
        assert!(!Summary {
            tally: Tally {
                unmeasured: 1,
                ..tally()
            },
            ..s
        }
        .clean());
    }

    #[test]
    fn conversions() {
        assert_eq!(cycles_to_ns(2600, 2_600_000_000), 1000.0);
        assert!(cycles_to_ns(1, 0).is_nan());
        assert_eq!(mpps(3_000_000, 1.5), 2.0);
        assert!(mpps(1, 0.0).is_nan());
    }
}
