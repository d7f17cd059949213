//! CPU identities, CPU sets, thread pinning and the cycle counter.
//!
//! The fast path pins one worker thread per fast-path core and reports
//! cycles/packet, so it needs: a CPU set type that speaks the Linux list
//! ("0-3,7") and hex mask ("0xf", "00000000,0000000f") formats, the calling
//! thread's affinity, pinning with a real errno, and a cheap cycle counter
//! with a known frequency.
//!
//! Everything that calls into libc or reads a CPU register is here so the
//! `unsafe` stays in this crate.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Highest CPU id accepted by the parsers. Linux NR_CPUS tops out at 8192
/// today; 65535 leaves room while still catching typos like "100000".
pub const MAX_CPU_ID: u32 = 65535;

/// A logical CPU number, as the kernel numbers them (`/sys/devices/system/cpu/cpuN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub u32);

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

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

/// A set of CPUs. Iteration is in ascending order.
///
/// A `BTreeSet` rather than a bitmap: sets are small, built at start-up and
/// never touched on the hot path, and any id up to [`MAX_CPU_ID`] just works.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    cpus: BTreeSet<CpuId>,
}

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        CpuSet::default()
    }

    /// The set of the given CPUs (duplicates are fine).
    pub fn from_ids(ids: impl IntoIterator<Item = CpuId>) -> Self {
        CpuSet {
            cpus: ids.into_iter().collect(),
        }
    }

    /// Parses a Linux CPU list as found in `/sys/devices/system/cpu/online`,
    /// `cpuset.cpus` or `taskset -c`: "0-3,7,9-10". Surrounding whitespace
    /// (the trailing newline of a sysfs file) is ignored and an empty string
    /// is the empty set, as an empty `cpuset.cpus` file means.
    pub fn parse_list(s: &str) -> Result<CpuSet, CpuListError> {
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
            set.cpus.extend((first..=last).map(CpuId));
        }
        Ok(set)
    }

    /// Parses a hex CPU mask: bit N set = CPU N. Accepts the 6WIND `FP_MASK`
    /// and `taskset` forms ("0x6", "6") and the Linux comma-grouped form of
    /// `/proc/<pid>/status` Cpus_allowed ("00000000,0000000f"), where each
    /// group is one 32-bit word, most significant first.
    pub fn parse_mask(s: &str) -> Result<CpuSet, CpuListError> {
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
                    set.cpus.insert(CpuId(cpu as u32));
                }
            }
        }
        Ok(set)
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: CpuId) -> bool {
        self.cpus.contains(&c)
    }

    /// Adds `c` (no-op if present).
    pub fn insert(&mut self, c: CpuId) {
        self.cpus.insert(c);
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.cpus.len()
    }

    /// Whether the set has no CPU.
    pub fn is_empty(&self) -> bool {
        self.cpus.is_empty()
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = CpuId> + '_ {
        self.cpus.iter().copied()
    }

    /// The CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            cpus: self.cpus.intersection(&other.cpus).copied().collect(),
        }
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.cpus.is_subset(&other.cpus)
    }

    /// The CPUs of `self` that are not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            cpus: self.cpus.difference(&other.cpus).copied().collect(),
        }
    }
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

impl FromIterator<CpuId> for CpuSet {
    fn from_iter<I: IntoIterator<Item = CpuId>>(iter: I) -> Self {
        CpuSet::from_ids(iter)
    }
}

/// Canonical Linux list form, "0-3,7"; empty string for the empty set.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.iter().peekable();
        let mut first_range = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while let Some(&next) = ids.peek() {
                if next.0 != end.0 + 1 {
                    break;
                }
                end = next;
                ids.next();
            }
            if !first_range {
                f.write_str(",")?;
            }
            first_range = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Debug shows the list form: `CpuSet("0-3,7")` reads better in test
/// failures than a list of `CpuId(n)`.
impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet(\"{self}\")")
    }
}

/// Bits in one word of the kernel's CPU mask (`unsigned long`).
const MASK_WORD_BITS: usize = libc::c_ulong::BITS as usize;
/// glibc's `cpu_set_t` size: the first buffer we try.
const DEFAULT_MASK_BITS: usize = 1024;
/// Largest mask we will offer the kernel, matching [`MAX_CPU_ID`].
const MAX_MASK_BITS: usize = MAX_CPU_ID as usize + 1;

/// The CPUs the calling thread may run on (`sched_getaffinity(0, ..)`).
///
/// Starts with a 1024-CPU buffer and doubles it while the kernel answers
/// EINVAL, which it does when the buffer is smaller than its own CPU mask
/// (kernels built for more than 1024 CPUs).
pub fn thread_affinity() -> io::Result<CpuSet> {
    let mut bits = DEFAULT_MASK_BITS;
    loop {
        let mut words: Vec<libc::c_ulong> = vec![0; bits / MASK_WORD_BITS];
        let bytes = std::mem::size_of_val(words.as_slice());
        // SAFETY: `words` is a live, writable buffer of exactly `bytes` bytes;
        // the kernel writes at most `bytes` bytes into it. The mask layout is
        // an array of unsigned long, the same as `cpu_set_t`.
        let rc = unsafe {
            libc::sched_getaffinity(0, bytes, words.as_mut_ptr().cast::<libc::cpu_set_t>())
        };
        if rc == 0 {
            return Ok(mask_words_to_set(&words));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINVAL) && bits < MAX_MASK_BITS {
            bits *= 2;
            continue;
        }
        return Err(err);
    }
}

/// Pins the calling thread to exactly `cpu` (`sched_setaffinity(0, {cpu})`).
///
/// Returns the kernel's errno: EINVAL when the CPU does not exist, is offline
/// or is outside the cgroup cpuset. Note that threads spawned afterwards
/// inherit this mask, so pin workers after spawning them.
pub fn pin_current_thread(cpu: CpuId) -> io::Result<()> {
    let index = cpu.0 as usize;
    if index >= MAX_MASK_BITS {
        // No kernel has such a CPU; refuse before allocating a huge mask.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let bits = DEFAULT_MASK_BITS.max((index / MASK_WORD_BITS + 1) * MASK_WORD_BITS);
    let mut words: Vec<libc::c_ulong> = vec![0; bits / MASK_WORD_BITS];
    words[index / MASK_WORD_BITS] |= 1 << (index % MASK_WORD_BITS);
    let bytes = std::mem::size_of_val(words.as_slice());
    // SAFETY: `words` is a live buffer of exactly `bytes` bytes laid out as the
    // kernel's CPU mask (array of unsigned long); the kernel only reads it.
    let rc = unsafe { libc::sched_setaffinity(0, bytes, words.as_ptr().cast::<libc::cpu_set_t>()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bit `i % word_bits` of word `i / word_bits` is CPU `i`, as `CPU_SET` does.
fn mask_words_to_set(words: &[libc::c_ulong]) -> CpuSet {
    let mut set = CpuSet::new();
    for (w, &word) in words.iter().enumerate() {
        for bit in 0..MASK_WORD_BITS {
            if word & (1 << bit) != 0 {
                set.insert(CpuId((w * MASK_WORD_BITS + bit) as u32));
            }
        }
    }
    set
}

/// The CPUs the kernel has online, from `/sys/devices/system/cpu/online`.
pub fn online_cpus() -> io::Result<CpuSet> {
    const PATH: &str = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(PATH)?;
    CpuSet::parse_list(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{PATH}: {e}")))
}

/// Reads the CPU cycle counter: the TSC on x86_64, the virtual counter
/// (`cntvct_el0`) on aarch64, nanoseconds of a monotonic clock elsewhere.
///
/// Cheap (tens of cycles) and not serializing: meant for per-burst and
/// per-loop accounting, not for timing a few instructions. Convert with
/// [`tsc_hz`].
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC exists on every x86_64 CPU and only reads the time
        // stamp counter; it touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ticks: u64;
        // SAFETY: reading CNTVCT_EL0 is allowed at EL0 on Linux (the kernel
        // enables user access for the vDSO) and has no side effects.
        unsafe {
            core::arch::asm!("mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags));
        }
        ticks
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fallback_clock_ns()
    }
}

/// Nanoseconds since the first call, for targets without a known counter.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fallback_clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64
}

/// Ticks per second of [`rdtsc`].
///
/// Used to turn cycle counts into time and back: cycles/packet and busy %
/// figures of `fastpath cores`, TX flush deadlines expressed in cycles.
/// Measured once against the monotonic clock (about 25 ms, on the first call)
/// and cached; call it at start-up, not from a worker loop. The x86 TSC is
/// assumed invariant (constant rate across frequency changes), as on every
/// CPU a fast path runs on.
pub fn tsc_hz() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(measure_tsc_hz)
}

fn measure_tsc_hz() -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let freq: u64;
        // SAFETY: CNTFRQ_EL0 is readable at EL0 and has no side effects; it
        // holds the frequency of the counter read by `rdtsc`.
        unsafe {
            core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack, preserves_flags));
        }
        if freq != 0 {
            return freq;
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        return 1_000_000_000;
    }
    #[allow(unreachable_code)]
    measure_against_clock(Duration::from_millis(25))
}

/// Counts ticks over `span` of wall time. Being descheduled at either end only
/// widens the error by a few microseconds out of `span`.
fn measure_against_clock(span: Duration) -> u64 {
    let t0 = Instant::now();
    let c0 = rdtsc();
    std::thread::sleep(span);
    let t1 = Instant::now();
    let c1 = rdtsc();
    let ns = (t1 - t0).as_nanos().max(1);
    let ticks = u128::from(c1.wrapping_sub(c0));
    ((ticks * 1_000_000_000 / ns) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[u32]) -> CpuSet {
        CpuSet::from_ids(ids.iter().copied().map(CpuId))
    }

    #[test]
    fn parse_list_forms() {
        assert_eq!(
            CpuSet::parse_list("0-3,7,9-10").unwrap(),
            set(&[0, 1, 2, 3, 7, 9, 10])
        );
        assert_eq!(CpuSet::parse_list("  5\n").unwrap(), set(&[5]));
        assert_eq!(CpuSet::parse_list("0-1\n").unwrap(), set(&[0, 1]));
        assert_eq!(CpuSet::parse_list("").unwrap(), CpuSet::new());
        assert_eq!(CpuSet::parse_list(" \n").unwrap(), CpuSet::new());
        assert_eq!(CpuSet::parse_list("3,1,2").unwrap(), set(&[1, 2, 3]));
        assert_eq!(CpuSet::parse_list("2-2").unwrap(), set(&[2]));
        assert_eq!(CpuSet::parse_list("65535").unwrap(), set(&[65535]));
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
            assert_eq!(CpuSet::parse_list(input), Err(want), "input {input:?}");
        }
        let msg = CpuSet::parse_list("0,5-3").unwrap_err().to_string();
        assert!(msg.contains("\"5-3\""), "{msg}");
    }

    #[test]
    fn display_canonical() {
        assert_eq!(set(&[]).to_string(), "");
        assert_eq!(set(&[4]).to_string(), "4");
        assert_eq!(set(&[0, 1]).to_string(), "0-1");
        assert_eq!(set(&[0, 1, 2, 3, 7, 9, 10]).to_string(), "0-3,7,9-10");
        assert_eq!(set(&[1, 3, 5]).to_string(), "1,3,5");
        assert_eq!(format!("{:?}", set(&[0, 1, 5])), "CpuSet(\"0-1,5\")");
        assert_eq!(CpuId(12).to_string(), "12");
    }

    #[test]
    fn parse_mask_forms() {
        assert_eq!(CpuSet::parse_mask("0x6").unwrap(), set(&[1, 2]));
        assert_eq!(CpuSet::parse_mask("6").unwrap(), set(&[1, 2]));
        assert_eq!(CpuSet::parse_mask("0XF0\n").unwrap(), set(&[4, 5, 6, 7]));
        assert_eq!(CpuSet::parse_mask("0").unwrap(), CpuSet::new());
        assert_eq!(
            CpuSet::parse_mask("00000000,0000000f").unwrap(),
            set(&[0, 1, 2, 3])
        );
        assert_eq!(CpuSet::parse_mask("1,00000000").unwrap(), set(&[32]));
        assert_eq!(
            CpuSet::parse_mask("80000000,00000001").unwrap(),
            set(&[0, 63])
        );
        assert_eq!(CpuSet::parse_mask("0x100000000").unwrap(), set(&[32]));
        assert_eq!(CpuSet::parse_mask("aA").unwrap(), set(&[1, 3, 5, 7]));
    }

    #[test]
    fn parse_mask_errors() {
        for bad in ["", "0x", "0xg", "1,,2", "123456789,0", "0x-1", "1 2"] {
            assert!(
                matches!(CpuSet::parse_mask(bad), Err(CpuListError::BadMask { .. })),
                "{bad:?}"
            );
        }
        // Bit 65536 is one past MAX_CPU_ID.
        let huge = format!("1{}", "0".repeat(16384));
        assert!(matches!(
            CpuSet::parse_mask(&huge),
            Err(CpuListError::MaskTooLarge { .. })
        ));
        let msg = CpuSet::parse_mask("0xzz").unwrap_err().to_string();
        assert!(msg.contains("\"0xzz\""), "{msg}");
    }

    #[test]
    fn set_operations() {
        let a = set(&[0, 1, 2, 3]);
        let b = set(&[2, 3, 4]);
        assert_eq!(a.intersection(&b), set(&[2, 3]));
        assert_eq!(a.difference(&b), set(&[0, 1]));
        assert!(set(&[1, 2]).is_subset(&a));
        assert!(!b.is_subset(&a));
        assert!(CpuSet::new().is_subset(&a));
        let mut c = CpuSet::new();
        assert!(c.is_empty());
        c.insert(CpuId(9));
        c.insert(CpuId(1));
        c.insert(CpuId(9));
        assert_eq!(c.len(), 2);
        assert!(c.contains(CpuId(9)) && !c.contains(CpuId(2)));
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![CpuId(1), CpuId(9)]);
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
            prop_assert_eq!(CpuSet::parse_list(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn dense_list_round_trip(ids in prop::collection::btree_set(0u32..200, 0..150)) {
            let s = CpuSet::from_ids(ids.into_iter().map(CpuId));
            prop_assert_eq!(CpuSet::parse_list(&s.to_string()).unwrap(), s);
        }

        #[test]
        fn mask_round_trip(ids in prop::collection::btree_set(0u32..300, 0..40), grouped: bool) {
            let s = CpuSet::from_ids(ids.into_iter().map(CpuId));
            prop_assert_eq!(CpuSet::parse_mask(&to_mask(&s, grouped)).unwrap(), s);
        }

        #[test]
        fn list_parser_agrees_with_an_oracle(input in prop_oneof![
            // Mostly lists (numbers past MAX_CPU_ID and reversed ranges
            // among them), and any string over the list's characters.
            " ?[0-9]{1,5}( ?- ?[0-9]{1,5})?( ?, ?[0-9]{1,5}( ?- ?[0-9]{1,5})?){0,3}\n?",
            "[0-9,\\- x\n]{0,20}",
        ]) {
            match (CpuSet::parse_list(&input), list_oracle(&input)) {
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
            match (CpuSet::parse_mask(&input), mask_oracle(&input)) {
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

    /// What `parse_list` must answer, from the grammar rather than from the
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

    /// What `parse_mask` must answer for inputs short enough to fit a
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

    #[test]
    fn pin_to_each_allowed_cpu() {
        // A spawned thread, so the test harness thread keeps its mask.
        std::thread::spawn(|| {
            let allowed = thread_affinity().expect("sched_getaffinity");
            for cpu in allowed.iter() {
                pin_current_thread(cpu).unwrap_or_else(|e| panic!("pin to {cpu}: {e}"));
                assert_eq!(thread_affinity().unwrap(), CpuSet::from_ids([cpu]));
            }
        })
        .join()
        .expect("pinning thread panicked");
    }

    #[test]
    fn pin_to_absent_cpu_fails_with_einval() {
        std::thread::spawn(|| {
            let before = thread_affinity().unwrap();
            let err = pin_current_thread(CpuId(4000)).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
            let err = pin_current_thread(CpuId(u32::MAX)).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
            // A failed call leaves the mask alone.
            assert_eq!(thread_affinity().unwrap(), before);
        })
        .join()
        .expect("pinning thread panicked");
    }

    #[test]
    fn mask_words_layout() {
        let words: [libc::c_ulong; 2] = [0b101, 1];
        assert_eq!(
            mask_words_to_set(&words),
            set(&[0, 2, MASK_WORD_BITS as u32])
        );
    }

    #[test]
    fn tsc_hz_is_plausible_and_rdtsc_monotonic() {
        let hz = tsc_hz();
        assert!((100_000_000..=10_000_000_000).contains(&hz), "tsc_hz {hz}");
        assert_eq!(tsc_hz(), hz, "cached");
        let mut last = rdtsc();
        for _ in 0..100_000 {
            let now = rdtsc();
            assert!(now >= last, "rdtsc went back: {last} -> {now}");
            last = now;
        }
        // 10 ms of sleep is roughly 10 ms of ticks.
        let c0 = rdtsc();
        std::thread::sleep(Duration::from_millis(10));
        let ticks = rdtsc() - c0;
        assert!(ticks >= hz / 100 * 9 / 10, "ticks {ticks} hz {hz}");
    }
}
