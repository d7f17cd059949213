//! CPU identities, CPU sets, thread pinning and the cycle counter.
//!
//! The fast path pins one worker thread per fast-path core and reports
//! cycles/packet, so it needs: a CPU set type (printed in the Linux list
//! form, "0-3,7"), the calling thread's affinity, pinning with a real
//! errno, and a cheap cycle counter with a known frequency.
//!
//! Everything that calls into libc or reads a CPU register is here so the
//! `unsafe` stays in this crate. Reading CPU lists and masks that an
//! operator or a sysfs file writes is the `config` crate's job
//! (`config::cpu_list`).

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Highest CPU id a [`CpuSet`] is expected to hold, and the largest mask
/// offered to the kernel. Linux NR_CPUS tops out at 8192
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

    fn set(ids: &[u32]) -> CpuSet {
        CpuSet::from_ids(ids.iter().copied().map(CpuId))
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
