//! A token bucket: at most `burst` packets at once, refilled at `pps`
//! packets per second, so that a flood of exception traffic on one port
//! cannot take the exception thread (or the kernel) from the others.
//!
//! Tokens are kept in integer units of 1/10^9 packet, so that a refill of
//! `elapsed_ns * pps` units is exact: no float, no drift, and the number of
//! packets admitted over any saturated interval is exactly
//! `burst + floor(pps * elapsed_ns / 10^9)`.

/// Token units per packet (one per nanosecond at 1 packet/s).
const UNITS_PER_PACKET: u128 = 1_000_000_000;

/// A rate limit: sustained packets per second, and the burst admitted at
/// once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pps: u64,
    burst: u32,
}

/// A rate limit that admits nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// No packet per second.
    #[error("rate limit: 0 packets/s admits nothing (leave the port unlimited instead)")]
    ZeroRate,
    /// No burst.
    #[error("rate limit: a burst of 0 admits nothing (at least 1)")]
    ZeroBurst,
}

impl RateLimit {
    /// `pps` packets per second sustained, `burst` at once; both at least 1.
    pub fn new(pps: u64, burst: u32) -> Result<RateLimit, RateLimitError> {
        if pps == 0 {
            return Err(RateLimitError::ZeroRate);
        }
        if burst == 0 {
            return Err(RateLimitError::ZeroBurst);
        }
        Ok(RateLimit { pps, burst })
    }

    /// Packets per second.
    pub fn pps(&self) -> u64 {
        self.pps
    }

    /// Burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// The bucket of one port. Starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens, in units of 1/10^9 packet; never above the capacity.
    units: u128,
    /// When `units` was last brought up to date, in ns of the caller's
    /// monotonic clock.
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket at time `now_ns`.
    pub fn new(limit: RateLimit, now_ns: u64) -> TokenBucket {
        TokenBucket {
            limit,
            units: Self::capacity(limit),
            last_ns: now_ns,
        }
    }

    fn capacity(limit: RateLimit) -> u128 {
        u128::from(limit.burst) * UNITS_PER_PACKET
    }

    /// The limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn refill(&mut self, now_ns: u64) {
        // A clock that went back (or a caller's older timestamp) adds
        // nothing; the bucket just waits for time to pass `last_ns`.
        let elapsed = now_ns.saturating_sub(self.last_ns);
        if elapsed == 0 {
            return;
        }
        self.last_ns = now_ns;
        let add = u128::from(elapsed) * u128::from(self.limit.pps);
        self.units = (self.units + add).min(Self::capacity(self.limit));
    }

    /// Take up to `n` packets' worth at time `now_ns`; returns how many
    /// may pass (the rest are over the limit).
    pub fn take(&mut self, n: u32, now_ns: u64) -> u32 {
        self.refill(now_ns);
        let whole = self.units / UNITS_PER_PACKET;
        // whole <= burst, a u32.
        let ok = whole.min(u128::from(n)) as u32;
        self.units -= u128::from(ok) * UNITS_PER_PACKET;
        ok
    }

    /// Whole packets available now, without taking any.
    pub fn available(&mut self, now_ns: u64) -> u32 {
        self.refill(now_ns);
        // At most burst, a u32.
        (self.units / UNITS_PER_PACKET) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn admits_nothing_is_refused() {
        assert_eq!(RateLimit::new(0, 10), Err(RateLimitError::ZeroRate));
        assert_eq!(RateLimit::new(10, 0), Err(RateLimitError::ZeroBurst));
    }

    #[test]
    fn burst_then_rate() {
        // 1000 packets/s, burst 50: 50 at once, then one per ms.
        let mut b = TokenBucket::new(RateLimit::new(1000, 50).unwrap(), 7);
        assert_eq!(b.take(80, 7), 50);
        assert_eq!(b.take(1, 7), 0);
        // 0.5 ms: half a token, nothing whole.
        assert_eq!(b.take(1, 7 + SEC / 2000), 0);
        // 1 ms in all: one token.
        assert_eq!(b.take(5, 7 + SEC / 1000), 1);
        // 10 s later: full again, never more than the burst.
        assert_eq!(b.available(7 + 10 * SEC), 50);
        assert_eq!(b.take(u32::MAX, 7 + 10 * SEC), 50);
    }

    #[test]
    fn fractions_carry_over() {
        // 3 packets/s with calls every 0.1 s: 0.3 packet per call. With
        // room for 5 the fractions carry over and one second gives
        // exactly 3.
        let mut b = TokenBucket::new(RateLimit::new(3, 5).unwrap(), 0);
        assert_eq!(b.take(5, 0), 5);
        let got: u32 = (1..=10).map(|i| b.take(10, i * SEC / 10)).sum();
        assert_eq!(got, 3);
        // With room for 1 the bucket caps: 0.3, 0.6, 0.9, 1.2 -> 1 taken
        // at 0.4 s (0.2 lost to the cap), then 0.3 .. 1.0 -> 1 at 0.8 s,
        // then 0.3, 0.6: 2 in the second.
        let mut b = TokenBucket::new(RateLimit::new(3, 1).unwrap(), 0);
        assert_eq!(b.take(1, 0), 1);
        let got: Vec<u32> = (1..=10).map(|i| b.take(1, i * SEC / 10)).collect();
        assert_eq!(got, [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn clock_going_back_adds_nothing() {
        let mut b = TokenBucket::new(RateLimit::new(1000, 1).unwrap(), SEC);
        assert_eq!(b.take(1, SEC), 1);
        assert_eq!(b.take(1, 0), 0);
        assert_eq!(b.take(1, SEC + SEC / 1000), 1);
    }

    proptest! {
        /// Saturated (every call asks for more than there is) and called
        /// before the bucket can fill up: the total admitted is exactly
        /// the burst plus what the rate earned.
        #[test]
        fn saturated_total_is_exact(
            pps in 1u64..10_000_000,
            burst in 2u32..10_000,
            steps in proptest::collection::vec(0u64..50_000_000, 1..200),
        ) {
            let mut b = TokenBucket::new(RateLimit::new(pps, burst).unwrap(), 0);
            // Longest step that cannot overfill the bucket: after a
            // saturated take less than one packet's worth is left.
            let fill_ns = u64::from(burst - 1) * 1_000_000_000 / pps;
            let mut now = 0u64;
            let mut total = u128::from(b.take(u32::MAX, now));
            for s in steps {
                now += s.min(fill_ns);
                total += u128::from(b.take(u32::MAX, now));
            }
            let earned = u128::from(pps) * u128::from(now) / UNITS_PER_PACKET;
            prop_assert_eq!(total, u128::from(burst) + earned);
        }

        /// Any demand: never more than the burst plus what the rate
        /// earned over the interval, never more than asked, and the same
        /// as a plain one-packet-at-a-time reference.
        #[test]
        fn never_over_the_limit_and_agrees_with_reference(
            pps in 1u64..1_000_000,
            burst in 1u32..1000,
            calls in proptest::collection::vec((0u64..20_000_000, 0u32..2000), 1..200),
        ) {
            let limit = RateLimit::new(pps, burst).unwrap();
            let mut b = TokenBucket::new(limit, 0);
            // Reference: tokens as an exact fraction num/10^9, refilled
            // and capped per call, taken one packet at a time.
            let cap = u128::from(burst) * UNITS_PER_PACKET;
            let (mut num, mut last) = (cap, 0u64);
            let (mut now, mut total) = (0u64, 0u128);
            for (dt, n) in calls {
                now += dt;
                let got = b.take(n, now);
                prop_assert!(got <= n);
                total += u128::from(got);
                num = (num + u128::from(now - last) * u128::from(pps)).min(cap);
                last = now;
                let mut want = 0;
                while want < n && num >= UNITS_PER_PACKET {
                    num -= UNITS_PER_PACKET;
                    want += 1;
                }
                prop_assert_eq!(got, want);
            }
            let earned = u128::from(pps) * u128::from(now) / UNITS_PER_PACKET;
            prop_assert!(total <= u128::from(burst) + earned);
        }
    }
}
