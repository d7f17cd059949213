//! `fastpath demo`'s options.

use clap::Args;
use config::duration::{format_duration, parse_duration};
use config::run_config::MAX_DURATION;
use std::time::Duration;

/// `fastpath demo` options.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Stop after this long: seconds (`10`, `2.5`) or with a unit
    /// (`500ms`, `1m`). Ctrl-C stops earlier, with the same summary.
    #[arg(long, allow_hyphen_values = true, default_value = "10", value_parser = parse_demo_duration)]
    pub duration: Duration,
    /// Frames per second the two hosts send together, or `max`: as fast
    /// as the fast path takes them, with at most 256 frames on their way
    /// (a lost frame is written off after 50 ms).
    #[arg(long, allow_hyphen_values = true, default_value = "20000", value_parser = parse_rate)]
    pub rate: DemoRate,
    /// UDP flows (distinct 5-tuples) each host sends, 1 to 65535.
    #[arg(long, allow_hyphen_values = true, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub flows: u16,
    /// Length of each frame, 60 to 1514 bytes (without the FCS).
    #[arg(long, allow_hyphen_values = true, default_value_t = 64, value_parser = clap::value_parser!(u16).range(60..=1514))]
    pub packet_size: u16,
    /// The final summary as one JSON document on stdout (with the wire's
    /// figures as `wire`); the other lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

/// The source's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoRate {
    /// Frames per second, both hosts together.
    Pps(u64),
    /// As fast as the fast path takes them (`drivers::sim::wire::Rate::Max`).
    Max,
}

/// A duration as `fastpath run --duration` takes it: more than 0, at
/// most [`MAX_DURATION`].
pub fn parse_demo_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(Duration::ZERO) => Err(format!(
            "{s:?}: a demo of 0 s would show nothing; give a positive duration"
        )),
        Ok(d) if d > MAX_DURATION => Err(format!(
            "{s:?}: longer than the maximum {}",
            format_duration(MAX_DURATION)
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// `max`, or a whole number of frames per second, 1 to 100 million.
pub fn parse_rate(s: &str) -> Result<DemoRate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(DemoRate::Max);
    }
    match s.parse::<u64>() {
        Ok(n @ 1..=100_000_000) => Ok(DemoRate::Pps(n)),
        _ => Err(format!(
            "{s:?}: a rate is `max` or frames per second, a whole number from 1 to 100000000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_positive_and_bounded() {
        assert_eq!(parse_demo_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_demo_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["0", "0s", "-1", "x", "2y", "400d"] {
            assert!(parse_demo_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_parse_or_say_what_is_allowed() {
        assert_eq!(parse_rate("max"), Ok(DemoRate::Max));
        assert_eq!(parse_rate("MAX"), Ok(DemoRate::Max));
        assert_eq!(parse_rate("5000"), Ok(DemoRate::Pps(5000)));
        for bad in ["0", "-1", "1e6", "", "fast", "100000001"] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("`max` or frames per second"), "{bad}: {e}");
        }
    }
}
