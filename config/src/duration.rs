//! Durations as an operator writes them: seconds ("10", "2.5") or a number
//! with a unit ("500ms", "10s", "1m", "1h").
//!
//! Only finite, non-negative values that a [`Duration`] can hold parse;
//! whether 0 or a very long time makes sense is for the setting's own
//! validation.

use std::time::Duration;

/// Why a duration was rejected. Each variant quotes the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number, or an unknown unit.
    #[error(
        "{0:?} is not a duration: expected seconds (10, 2.5) or a number with a unit \
         (500ms, 10s, 1m, 1h)"
    )]
    Syntax(String),
    /// NaN or infinite.
    #[error("{0:?} is not a finite duration")]
    NotFinite(String),
    /// Below zero.
    #[error("{0:?} is negative: a duration is 0 or more")]
    Negative(String),
    /// More than a `Duration` holds.
    #[error("{0:?} is too long to represent")]
    TooLong(String),
}

/// Units in nanoseconds, longest suffix first so "ms" is not read as
/// "m" + "s"; no suffix means seconds.
const UNITS: [(&str, f64); 5] = [
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
    ("", 1e9),
];

/// Parses "10", "2.5", "500ms", "10s", "1m", "1h" (surrounding whitespace
/// ignored).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let (number, scale) = UNITS
        .iter()
        .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((t, 1e9));
    // Rust's f64 parser also takes "inf", "nan" and "infinity": name those
    // as such rather than as syntax errors. A sign or digits are required
    // before any unit, so "s" alone or "ms" is a syntax error.
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| DurationError::Syntax(text.to_string()))?;
    if number.trim().is_empty() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    let nanos = (value * scale).round();
    if !nanos.is_finite() {
        return Err(DurationError::NotFinite(text.to_string()));
    }
    if nanos < 0.0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    // u64::MAX as f64 rounds up to 2^64, which does not fit: compare with
    // "not below" so the cast below never saturates.
    if nanos >= u64::MAX as f64 {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// "2.5 s", "500 ms", "2 m": a duration written back for messages.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s != 0.0 && s < 1.0 {
        format!("{} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seconds_and_units() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10"), Ok(ms(10_000)));
        assert_eq!(parse_duration("2.5"), Ok(ms(2_500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration(" 1m\n"), Ok(ms(60_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("-0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_named() {
        for (text, want) in [
            ("inf", DurationError::NotFinite("inf".into())),
            ("infinity", DurationError::NotFinite("infinity".into())),
            ("nan", DurationError::NotFinite("nan".into())),
            ("NaNs", DurationError::NotFinite("NaNs".into())),
            ("1e400", DurationError::NotFinite("1e400".into())),
            ("-1", DurationError::Negative("-1".into())),
            ("-5ms", DurationError::Negative("-5ms".into())),
            ("1e20", DurationError::TooLong("1e20".into())),
            ("", DurationError::Syntax("".into())),
            ("s", DurationError::Syntax("s".into())),
            ("ms", DurationError::Syntax("ms".into())),
            ("10 sec", DurationError::Syntax("10 sec".into())),
            ("1d", DurationError::Syntax("1d".into())),
            ("½", DurationError::Syntax("½".into())),
        ] {
            assert_eq!(parse_duration(text), Err(want), "{text:?}");
        }
        let msg = parse_duration("1d").unwrap_err().to_string();
        assert!(msg.contains("\"1d\"") && msg.contains("500ms"), "{msg}");
    }

    #[test]
    fn formatted_for_messages() {
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(format_duration(Duration::from_millis(50)), "50 ms");
        assert_eq!(format_duration(Duration::ZERO), "0 s");
    }

    proptest! {
        /// Whatever the text, a parse gives a duration or an error that
        /// quotes the text; never a panic.
        #[test]
        fn any_text_parses_or_is_quoted(text in "\\PC{0,12}") {
            match parse_duration(&text) {
                Ok(d) => prop_assert!(d.as_secs_f64().is_finite()),
                Err(e) => {
                    let quoted = format!("{text:?}");
                    prop_assert!(e.to_string().contains(&quoted), "{}", e);
                }
            }
        }

        #[test]
        fn millis_round_trip(ms in 0u64..10_000_000) {
            prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        }
    }
}
