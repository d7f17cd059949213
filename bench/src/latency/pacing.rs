//! The source's open-loop schedule: when each burst is due, in TSC cycles.
//!
//! Burst `k` is due at `start + k * burst * hz / pps`, computed from `k`
//! each time rather than by adding an interval to the last deadline, so
//! rounding never accumulates: over a run the offered rate is the asked
//! one to within a cycle. A source that fell behind (descheduled, say)
//! finds several bursts due at once and sends them back to back, as an
//! open-loop load generator must: skipping them would hide the queueing
//! they cause.

/// Fractional bits of the fixed-point interval. The interval is rounded
/// up, so deadline `k` is the exact one, rounded down, or a cycle later,
/// for the first 2^32 bursts (over an hour of bursts of one at a million
/// a second); later ones drift by under `k / 2^32` cycles.
const FRAC_BITS: u32 = 32;

/// Why a rate cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacingError {
    /// A rate of 0 packets per second.
    #[error("a rate of 0 packets per second sends nothing")]
    ZeroRate,
    /// A burst of 0 packets.
    #[error("a burst of 0 packets sends nothing")]
    ZeroBurst,
    /// A TSC rate of 0.
    #[error("the TSC rate is 0")]
    ZeroHz,
    /// So slow a rate that one interval does not fit in 64 bits of cycles.
    #[error("{pps} packets per second in bursts of {burst} is an interval beyond 2^64 cycles")]
    TooSlow {
        /// Packets per second asked.
        pps: u64,
        /// Packets per burst.
        burst: u64,
    },
}

/// When each burst of a paced source is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    start: u64,
    /// Cycles between two bursts, fixed point with [`FRAC_BITS`] fraction
    /// bits.
    interval: u128,
}

impl Schedule {
    /// Bursts of `burst` packets at `pps` packets per second, on a clock
    /// of `hz` ticks per second, the first due at `start`.
    pub fn new(start: u64, hz: u64, pps: u64, burst: u64) -> Result<Schedule, PacingError> {
        if pps == 0 {
            return Err(PacingError::ZeroRate);
        }
        if burst == 0 {
            return Err(PacingError::ZeroBurst);
        }
        if hz == 0 {
            return Err(PacingError::ZeroHz);
        }
        // burst * hz fits in u128. Its quotient must fit in 64 bits so
        // that, shifted by FRAC_BITS, it stays within u128; the fraction
        // comes from dividing the remainder, shifted, on its own, and is
        // rounded up (see FRAC_BITS).
        let num = u128::from(burst) * u128::from(hz);
        let whole = num / u128::from(pps);
        let rem = num % u128::from(pps);
        if whole >> 64 != 0 {
            return Err(PacingError::TooSlow { pps, burst });
        }
        let interval = (whole << FRAC_BITS) + (rem << FRAC_BITS).div_ceil(u128::from(pps));
        Ok(Schedule { start, interval })
    }

    /// The cycle burst `k` is due at (wrapping with the TSC).
    #[inline]
    pub fn due(&self, k: u64) -> u64 {
        // Saturates centuries of cycles away, past any run.
        let offset = u128::from(k).saturating_mul(self.interval) >> FRAC_BITS;
        self.start
            .wrapping_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// Cycles between two bursts, rounded down.
    pub fn interval_cycles(&self) -> u64 {
        (self.interval >> FRAC_BITS) as u64
    }
}

/// A [`Schedule`] walked burst by burst.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    schedule: Schedule,
    next: u64,
    due: u64,
}

impl Pacer {
    /// Starts at burst 0.
    pub fn new(schedule: Schedule) -> Pacer {
        Pacer {
            schedule,
            next: 0,
            due: schedule.due(0),
        }
    }

    /// True when the next burst is due at `now` (same clock as the
    /// schedule; both far from wrapping, as a TSC is).
    #[inline]
    pub fn is_due(&self, now: u64) -> bool {
        now >= self.due
    }

    /// The next burst was sent (or given up): move to the one after.
    #[inline]
    pub fn advance(&mut self) {
        self.next += 1;
        self.due = self.schedule.due(self.next);
    }

    /// Bursts handed out so far.
    pub fn bursts(&self) -> u64 {
        self.next
    }
}

/// The packets per second of `percent` % of `max_pps`, rounded, at least 1.
pub fn rate_at(max_pps: f64, percent: u32) -> u64 {
    let pps = (max_pps * f64::from(percent) / 100.0).round();
    if pps.is_finite() && pps >= 1.0 {
        pps as u64
    } else {
        1
    }
}

/// A list of loads, percentages of the maximum: `10,50,90`; empty or
/// `none` for none.
pub fn parse_loads(s: &str) -> Result<Vec<u32>, String> {
    let s = s.trim();
    if s.is_empty() || s == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|p| {
            let p = p.trim().trim_end_matches('%');
            match p.parse::<u32>() {
                Ok(v @ 1..=100) => Ok(v),
                _ => Err(format!(
                    "'{p}' is not a load: give percentages of the measured maximum, 1 to 100"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact deadline, by long division of the whole product.
    fn exact(start: u64, hz: u64, pps: u64, burst: u64, k: u64) -> u64 {
        start + (u128::from(k) * u128::from(burst) * u128::from(hz) / u128::from(pps)) as u64
    }

    #[test]
    fn deadlines_are_the_exact_ones_or_a_cycle_later() {
        // 2.6 GHz, 1/3 of a cycle left over per burst in some cases, and
        // rates that divide evenly: none may drift from the exact figure
        // over 2^32 bursts (at 1 Mpps in bursts of one, 71 minutes).
        for &(hz, pps, burst) in &[
            (2_600_000_000u64, 7_000_000u64, 32u64),
            (2_600_000_000, 3, 1),
            (2_599_999_999, 65_432_101, 1),
            (1_000_000_000, 1_000_000_000, 1),
            (3_000_000_000, 123_456_789, 512),
        ] {
            let s = Schedule::new(1000, hz, pps, burst).unwrap();
            for k in (0..2_000_000u64).step_by(997).chain([u64::from(u32::MAX)]) {
                let want = exact(1000, hz, pps, burst, k);
                let got = s.due(k);
                assert!(
                    got == want || got == want + 1,
                    "hz {hz} pps {pps} burst {burst} k {k}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn interval_is_burst_over_rate() {
        let s = Schedule::new(0, 2_600_000_000, 6_500_000, 32).unwrap();
        // 32 packets at 6.5 Mpps: 4.923 us = 12800 cycles at 2.6 GHz.
        assert_eq!(s.interval_cycles(), 12_800);
        assert_eq!(s.due(10), 128_000);
        let s = Schedule::new(0, 2_600_000_000, 3, 1).unwrap();
        assert_eq!(s.interval_cycles(), 866_666_666);
        assert_eq!(s.due(3), 2_600_000_000);
    }

    #[test]
    fn pacer_walks_the_schedule() {
        let s = Schedule::new(100, 1000, 100, 2).unwrap(); // 20 cycles a burst
        let mut p = Pacer::new(s);
        assert!(!p.is_due(99));
        assert!(p.is_due(100));
        p.advance();
        assert!(!p.is_due(119));
        assert!(p.is_due(120));
        // Late by three bursts: all three are due at once.
        let now = 165;
        let mut sent = 0;
        while p.is_due(now) {
            p.advance();
            sent += 1;
        }
        assert_eq!((sent, p.bursts()), (3, 4));
    }

    #[test]
    fn bad_rates_are_errors() {
        assert_eq!(Schedule::new(0, 1, 0, 1), Err(PacingError::ZeroRate));
        assert_eq!(Schedule::new(0, 1, 1, 0), Err(PacingError::ZeroBurst));
        assert_eq!(Schedule::new(0, 0, 1, 1), Err(PacingError::ZeroHz));
        assert_eq!(
            Schedule::new(0, u64::MAX, 1, 2),
            Err(PacingError::TooSlow { pps: 1, burst: 2 })
        );
        assert!(Schedule::new(0, u64::MAX, 1, 1).is_ok());
    }

    #[test]
    fn load_lists() {
        assert_eq!(parse_loads("10,50,90"), Ok(vec![10, 50, 90]));
        assert_eq!(parse_loads(" 10%, 100 "), Ok(vec![10, 100]));
        assert_eq!(parse_loads(""), Ok(vec![]));
        assert_eq!(parse_loads("none"), Ok(vec![]));
        for bad in ["0", "101", "ten", "10,,50", "-5"] {
            let e = parse_loads(bad).unwrap_err();
            assert!(e.contains("1 to 100"), "{bad}: {e}");
        }
    }

    #[test]
    fn loads_are_rounded_shares_of_the_maximum() {
        assert_eq!(rate_at(61_234_567.0, 10), 6_123_457);
        assert_eq!(rate_at(61_234_567.0, 90), 55_111_110);
        assert_eq!(rate_at(61_234_567.0, 100), 61_234_567);
        assert_eq!(rate_at(0.0, 50), 1, "never a rate of 0");
        assert_eq!(rate_at(f64::NAN, 50), 1);
    }
}
