//! CPU lists and masks as operators and the kernel write them.
//!
//! The Linux list form ("0-3,7,9-10") is what `/sys/devices/system/cpu/online`,
//! `cpuset.cpus`, `taskset -c` and `fastpath run --cpus` use; the hex mask
//! ("0x6", "00000000,0000000f") is what 6WIND's `FP_MASK`, `taskset` and
//! `/proc/<pid>/status` `Cpus_allowed` use. Both become a
//! [`drivers::cpu::CpuSet`].

use drivers::cpu::{CpuId, CpuSet, MAX_CPU_ID};
use std::io;

/// Why a CPU list or mask was rejected. Each variant quotes the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// A list entry that is neither "N" nor "N-M".
    #[error("invalid CPU list entry {part:?}: expected a CPU number \"N\" or a range \"N-M\"")]
    BadEntry {
        /// The offending entry.
        part: String,
    },
    /// A range "N-M" with N > M.
    #[error("reversed CPU range {part:?}: the first CPU must not be above the last")]
    ReversedRange {
        /// The offending range.
        part: String,
    },
    /// A CPU number above [`MAX_CPU_ID`].
    #[error("CPU id {part:?} is too large: the maximum is {MAX_CPU_ID}")]
    IdTooLarge {
        /// The offending entry.
        part: String,
    },
    /// A mask with something other than hex digits and 32-bit word groups.
    #[error(
        "invalid CPU mask {part:?}: expected hex digits such as \"0x6\" or \"00000000,0000000f\""
    )]
    BadMask {
        /// The whole mask as given (trimmed).
        part: String,
    },
    /// A mask with a bit set above [`MAX_CPU_ID`].
    #[error("CPU mask {part:?} sets a CPU above {MAX_CPU_ID}")]
    MaskTooLarge {
        /// The whole mask as given (trimmed).
        part: String,
    },
}

/// Parses a Linux CPU list: "0-3,7,9-10". Surrounding whitespace (the
/// trailing newline of a sysfs file) is ignored and an empty string is the
/// empty set, as an empty `cpuset.cpus` file means.
pub fn parse_cpu_list(s: &str) -> Result<CpuSet, CpuListError> {
    let mut set = CpuSet::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(set);
    }
    for raw in s.split(',') {
        let part = raw.trim();
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (parse_cpu_number(a, part)?, parse_cpu_number(b, part)?),
            None => {
                let id = parse_cpu_number(part, part)?;
                (id, id)
            }
        };
        if first > last {
            return Err(CpuListError::ReversedRange {
                part: part.to_string(),
            });
        }
        for id in first..=last {
            set.insert(CpuId(id));
        }
    }
    Ok(set)
}

/// Parses a hex CPU mask: bit N set = CPU N. Accepts the 6WIND `FP_MASK`
/// and `taskset` forms ("0x6", "6") and the Linux comma-grouped form of
/// `/proc/<pid>/status` Cpus_allowed ("00000000,0000000f"), where each
/// group is one 32-bit word, most significant first.
pub fn parse_cpu_mask(s: &str) -> Result<CpuSet, CpuListError> {
    let trimmed = s.trim();
    let bad = || CpuListError::BadMask {
        part: trimmed.to_string(),
    };
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let groups: Vec<&str> = digits.split(',').collect();
    let multi = groups.len() > 1;
    let mut set = CpuSet::new();
    // Walk groups from the least significant (last) one.
    for (group_index, group) in groups.iter().rev().enumerate() {
        // A 32-bit word has at most 8 hex digits; a single group is an
        // arbitrarily long number (taskset accepts "0xffffffffff").
        if group.is_empty() || (multi && group.len() > 8) {
            return Err(bad());
        }
        for (nibble_index, ch) in group.chars().rev().enumerate() {
            let nibble = ch.to_digit(16).ok_or_else(bad)?;
            for bit in 0..4 {
                if nibble & (1 << bit) == 0 {
                    continue;
                }
                let cpu = group_index as u64 * 32 + nibble_index as u64 * 4 + bit;
                if cpu > u64::from(MAX_CPU_ID) {
                    return Err(CpuListError::MaskTooLarge {
                        part: trimmed.to_string(),
                    });
                }
                set.insert(CpuId(cpu as u32));
            }
        }
    }
    Ok(set)
}

/// Parses one decimal CPU number of a list entry. Only ASCII digits: `u32`'s
/// `FromStr` would also take "+5".
fn parse_cpu_number(digits: &str, part: &str) -> Result<u32, CpuListError> {
    let digits = digits.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuListError::BadEntry {
            part: part.to_string(),
        });
    }
    match digits.parse::<u32>() {
        Ok(id) if id <= MAX_CPU_ID => Ok(id),
        // All digits, so the only failure is overflow: too large either way.
        _ => Err(CpuListError::IdTooLarge {
            part: part.to_string(),
        }),
    }
}

/// The CPUs the kernel has online, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> io::Result<CpuSet> {
    const PATH: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(PATH)?;
    parse_cpu_list(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{PATH}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use drivers::cpu::thread_affinity;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set(ids: &[u32]) -> CpuSet {
        CpuSet::from_ids(ids.iter().copied().map(CpuId))
    }

    #[test]
    fn parse_list_forms() {
        assert_eq!(
            parse_cpu_list("0-3,7,9-10").unwrap(),
            set(&[0, 1, 2, 3, 7, 9, 10])
        );
        assert_eq!(parse_cpu_list("  5\n").unwrap(), set(&[5]));
        assert_eq!(parse_cpu_list("0-1\n").unwrap(), set(&[0, 1]));
        assert_eq!(parse_cpu_list("").unwrap(), CpuSet::new());
        assert_eq!(parse_cpu_list(" \n").unwrap(), CpuSet::new());
        assert_eq!(parse_cpu_list("3,1,2").unwrap(), set(&[1, 2, 3]));
        assert_eq!(parse_cpu_list("2-2").unwrap(), set(&[2]));
        assert_eq!(parse_cpu_list("65535").unwrap(), set(&[65535]));
    }

    #[test]
    fn parse_list_errors_quote_the_bad_part() {
        let cases = [
            ("0-3,x", CpuListError::BadEntry { part: "x".into() }),
            ("1,,2", CpuListError::BadEntry { part: "".into() }),
            ("1-", CpuListError::BadEntry { part: "1-".into() }),
            ("-1", CpuListError::BadEntry { part: "-1".into() }),
            ("+5", CpuListError::BadEntry { part: "+5".into() }),
            (
                "1-2-3",
                CpuListError::BadEntry {
                    part: "1-2-3".into(),
                },
            ),
            ("0x3", CpuListError::BadEntry { part: "0x3".into() }),
            ("0,5-3", CpuListError::ReversedRange { part: "5-3".into() }),
            (
                "65536",
                CpuListError::IdTooLarge {
                    part: "65536".into(),
                },
            ),
            (
                "0-99999999999",
                CpuListError::IdTooLarge {
                    part: "0-99999999999".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_cpu_list(input), Err(want), "input {input:?}");
        }
        let msg = parse_cpu_list("0,5-3").unwrap_err().to_string();
        assert!(msg.contains("\"5-3\""), "{msg}");
    }

    #[test]
    fn parse_mask_forms() {
        assert_eq!(parse_cpu_mask("0x6").unwrap(), set(&[1, 2]));
        assert_eq!(parse_cpu_mask("6").unwrap(), set(&[1, 2]));
        assert_eq!(parse_cpu_mask("0XF0\n").unwrap(), set(&[4, 5, 6, 7]));
        assert_eq!(parse_cpu_mask("0").unwrap(), CpuSet::new());
        assert_eq!(
            parse_cpu_mask("00000000,0000000f").unwrap(),
            set(&[0, 1, 2, 3])
        );
        assert_eq!(parse_cpu_mask("1,00000000").unwrap(), set(&[32]));
        assert_eq!(parse_cpu_mask("80000000,00000001").unwrap(), set(&[0, 63]));
        assert_eq!(parse_cpu_mask("0x100000000").unwrap(), set(&[32]));
        assert_eq!(parse_cpu_mask("aA").unwrap(), set(&[1, 3, 5, 7]));
    }

    #[test]
    fn parse_mask_errors() {
        for bad in ["", "0x", "0xg", "1,,2", "123456789,0", "0x-1", "1 2"] {
            assert!(
                matches!(parse_cpu_mask(bad), Err(CpuListError::BadMask { .. })),
                "{bad:?}"
            );
        }
        // Bit 65536 is one past MAX_CPU_ID.
        let huge = format!("1{}", "0".repeat(16384));
        assert!(matches!(
            parse_cpu_mask(&huge),
            Err(CpuListError::MaskTooLarge { .. })
        ));
        let msg = parse_cpu_mask("0xzz").unwrap_err().to_string();
        assert!(msg.contains("\"0xzz\""), "{msg}");
    }

    /// Renders `set` as a hex mask, comma-grouped in 32-bit words if asked.
    fn to_mask(set: &CpuSet, grouped: bool) -> String {
        let top = set.iter().last().map_or(0, |c| c.0 as usize);
        let mut words = vec![0u32; top / 32 + 1];
        for c in set.iter() {
            words[c.0 as usize / 32] |= 1 << (c.0 % 32);
        }
        let parts: Vec<String> = words.iter().rev().map(|w| format!("{w:08x}")).collect();
        if grouped {
            parts.join(",")
        } else {
            format!("0x{}", parts.concat())
        }
    }

    proptest! {
        #[test]
        fn list_round_trip(ids in prop::collection::btree_set(0u32..=MAX_CPU_ID, 0..64)) {
            let s = CpuSet::from_ids(ids.into_iter().map(CpuId));
            prop_assert_eq!(parse_cpu_list(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn dense_list_round_trip(ids in prop::collection::btree_set(0u32..200, 0..150)) {
            let s = CpuSet::from_ids(ids.into_iter().map(CpuId));
            prop_assert_eq!(parse_cpu_list(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn mask_round_trip(ids in prop::collection::btree_set(0u32..300, 0..40), grouped: bool) {
            let s = CpuSet::from_ids(ids.into_iter().map(CpuId));
            prop_assert_eq!(parse_cpu_mask(&to_mask(&s, grouped)).unwrap(), s);
        }

        /// Any input either parses to a set that prints back to itself, or
        /// fails with a message that quotes the offending part of the input.
        #[test]
        fn list_parser_accepts_or_quotes_the_bad_part(input in "[0-9,\\- x]{0,20}") {
            for parsed in [parse_cpu_list(&input), parse_cpu_mask(&input)] {
                match parsed {
                    Ok(s) => prop_assert_eq!(parse_cpu_list(&s.to_string()), Ok(s)),
                    Err(e) => {
                        let part = match &e {
                            CpuListError::BadEntry { part }
                            | CpuListError::ReversedRange { part }
                            | CpuListError::IdTooLarge { part }
                            | CpuListError::BadMask { part }
                            | CpuListError::MaskTooLarge { part } => part.clone(),
                        };
                        prop_assert!(input.contains(part.as_str()), "{:?} not in {:?}", part, input);
                        prop_assert!(e.to_string().contains(&format!("{part:?}")), "{}", e);
                    }
                }
            }
        }

        #[test]
        fn list_parser_agrees_with_an_oracle(input in prop_oneof![
            // Mostly lists (numbers past MAX_CPU_ID and reversed ranges
            // among them), and any string over the list's characters.
            " ?[0-9]{1,5}( ?- ?[0-9]{1,5})?( ?, ?[0-9]{1,5}( ?- ?[0-9]{1,5})?){0,3}\n?",
            "[0-9,\\- x\n]{0,20}",
        ]) {
            match (parse_cpu_list(&input), list_oracle(&input)) {
                (Ok(got), Ok(want)) => {
                    prop_assert_eq!(got, want.into_iter().map(CpuId).collect::<CpuSet>());
                }
                (Err(err), Err(entry)) => {
                    let msg = err.to_string();
                    prop_assert!(msg.contains(&format!("{entry:?}")), "{:?}: {}", input, msg);
                }
                (got, want) => prop_assert!(false, "{:?}: parsed {:?}, oracle {:?}", input, got, want),
            }
        }

        #[test]
        fn mask_parser_agrees_with_an_oracle(input in prop_oneof![
            // Masks of one number or of 32-bit words (too long ones among
            // them), and any string over the mask's characters.
            "(0[xX])?[0-9a-fA-F]{1,18}\n?",
            "(0[xX])?[0-9a-fA-F]{1,9}(,[0-9a-fA-F]{1,9}){1,2}",
            "( ?0[xX])?[0-9a-fA-F,xg \n]{0,18}",
        ]) {
            match (parse_cpu_mask(&input), mask_oracle(&input)) {
                (Ok(got), Some(want)) => {
                    prop_assert_eq!(got, want.into_iter().map(CpuId).collect::<CpuSet>());
                }
                (Err(err), None) => {
                    let msg = err.to_string();
                    prop_assert!(msg.contains(&format!("{:?}", input.trim())), "{:?}: {}", input, msg);
                }
                (got, want) => prop_assert!(false, "{:?}: parsed {:?}, oracle {:?}", input, got, want),
            }
        }

    }

    /// What `parse_cpu_list` must answer, from the grammar rather than from the
    /// parser: blank input is the empty set; otherwise entries between
    /// commas, each (spaces around it and its numbers aside) `N` or `N-M`,
    /// decimal, N <= M <= MAX_CPU_ID. `Err` names the first entry that is
    /// not one.
    fn list_oracle(input: &str) -> Result<BTreeSet<u32>, String> {
        let mut cpus = BTreeSet::new();
        if input.trim().is_empty() {
            return Ok(cpus);
        }
        for entry in input.split(',').map(str::trim) {
            let bounds: Vec<Option<u64>> = entry.split('-').map(|n| decimal(n.trim())).collect();
            let max = u64::from(MAX_CPU_ID);
            match bounds[..] {
                [Some(n)] if n <= max => {
                    cpus.insert(n as u32);
                }
                [Some(first), Some(last)] if first <= last && last <= max => {
                    cpus.extend(first as u32..=last as u32);
                }
                _ => return Err(entry.to_string()),
            }
        }
        Ok(cpus)
    }

    /// The value of a non-empty run of ASCII digits (saturating: any value
    /// above MAX_CPU_ID is as good as another), or None.
    fn decimal(digits: &str) -> Option<u64> {
        let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        all_digits.then(|| {
            digits.bytes().fold(0u64, |v, d| {
                v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            })
        })
    }

    /// What `parse_cpu_mask` must answer for inputs short enough to fit a
    /// u128: after an optional 0x, one hex number, or 32-bit words of 1 to
    /// 8 hex digits separated by commas, most significant first; bit N is
    /// CPU N. None: not a mask.
    fn mask_oracle(input: &str) -> Option<BTreeSet<u32>> {
        let trimmed = input.trim();
        let digits = ["0x", "0X"]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .unwrap_or(trimmed);
        let words: Vec<&str> = digits.split(',').collect();
        let is_hex = |w: &&str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_hexdigit());
        if !words.iter().all(is_hex) || (words.len() > 1 && words.iter().any(|w| w.len() > 8)) {
            return None;
        }
        let mut cpus = BTreeSet::new();
        for (word, digits) in words.iter().rev().enumerate() {
            let value = u128::from_str_radix(digits, 16).ok()?;
            let bits = (0..128u32).filter(|bit| value >> bit & 1 == 1);
            cpus.extend(bits.map(|bit| word as u32 * 32 + bit));
        }
        Some(cpus)
    }

    #[test]
    fn thread_affinity_is_non_empty_subset_of_online() {
        let affinity = thread_affinity().expect("sched_getaffinity");
        let online = online_cpus().expect("online cpus");
        assert!(!affinity.is_empty());
        assert!(
            affinity.is_subset(&online),
            "affinity {affinity} online {online}"
        );
    }
}
