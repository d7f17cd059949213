//! FP_MASK's words (`min`, `half`, `max`, `auto`) turned into CPUs, out of
//! the CPUs this process may use and the machine's core topology.
//!
//! 6WIND's meaning (anchors.md section 2.2): `min` is one physical core
//! per socket, `half` half the physical cores, `max` all physical cores
//! but one, `auto` the product's default (half on Turbo Router, min on
//! Virtual Accelerator). Our choices where 6WIND's text leaves one:
//! - Only the allowed CPUs count (affinity and cgroup cpuset, see
//!   [`crate::cpus`]): in a pod, "the machine" is the container's cpuset.
//! - One logical CPU per physical core (its lowest allowed thread): two
//!   busy-polling workers on hyperthread siblings share one core's
//!   execution units, so the sibling is left alone.
//! - The physical core of the first allowed CPU is kept out (it is the
//!   "one" of `max`, for every word): the control and exception threads
//!   live there, as with `--cores N`. With a single allowed physical core
//!   every word gives no CPU, and that is an error naming the allowed set.
//! - `half` is half the allowed physical cores, rounded down, at least
//!   one, taken in ascending order (socket after socket).
//! - `auto` is `half`: this program is a router, like Turbo Router.

use crate::cpus::{allowed_cpus, CpuConfigError};
use drivers::cpu::{CpuId, CpuSet};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// An FP_MASK word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FpMaskWord {
    /// One physical core per socket.
    Min,
    /// Half the physical cores.
    Half,
    /// All physical cores but one.
    Max,
    /// Our default: `half`.
    Auto,
}

impl fmt::Display for FpMaskWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FpMaskWord::Min => "min",
            FpMaskWord::Half => "half",
            FpMaskWord::Max => "max",
            FpMaskWord::Auto => "auto",
        })
    }
}

impl FpMaskWord {
    /// The word, if `s` is one.
    pub fn parse(s: &str) -> Option<FpMaskWord> {
        Some(match s {
            "min" => FpMaskWord::Min,
            "half" => FpMaskWord::Half,
            "max" => FpMaskWord::Max,
            "auto" => FpMaskWord::Auto,
            _ => return None,
        })
    }
}

/// Where a CPU sits: its socket and physical core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuPlace {
    /// `physical_package_id`.
    pub package: u32,
    /// `core_id` (unique within its package).
    pub core: u32,
}

/// The places of the CPUs that matter; a CPU missing from it is taken as
/// its own physical core on socket 0.
pub type Topology = BTreeMap<CpuId, CpuPlace>;

/// Why a word gave no CPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "FP_MASK={word} gives no CPU: the allowed CPUs {allowed} are {cores} physical core(s), and the \
     first is kept for the control thread; give a CPU list instead (such as {example})"
)]
pub struct FpMaskError {
    /// The word.
    pub word: FpMaskWord,
    /// The allowed CPUs.
    pub allowed: CpuSet,
    /// Physical cores among them.
    pub cores: usize,
    /// A list that would work.
    pub example: String,
}

/// The CPUs `word` means among `allowed`, with `topology` saying which
/// CPUs share a physical core and a socket.
pub fn resolve_word(
    word: FpMaskWord,
    allowed: &CpuSet,
    topology: &Topology,
) -> Result<CpuSet, FpMaskError> {
    // One representative (the lowest allowed thread) per physical core, in
    // ascending CPU order.
    let mut seen: Vec<CpuPlace> = Vec::new();
    let mut cores: Vec<(CpuId, CpuPlace)> = Vec::new();
    for cpu in allowed.iter() {
        let place = topology.get(&cpu).copied().unwrap_or(CpuPlace {
            package: 0,
            // Unknown: its own core, numbered apart from any real one.
            core: u32::MAX - cpu.0,
        });
        if !seen.contains(&place) {
            seen.push(place);
            cores.push((cpu, place));
        }
    }
    let total = cores.len();
    let candidates = cores.get(1..).unwrap_or(&[]);
    let picked: Vec<CpuId> = match word {
        FpMaskWord::Min => {
            let mut packages = Vec::new();
            candidates
                .iter()
                .filter(|(_, p)| {
                    let first = !packages.contains(&p.package);
                    packages.push(p.package);
                    first
                })
                .map(|(c, _)| *c)
                .collect()
        }
        FpMaskWord::Half | FpMaskWord::Auto => candidates
            .iter()
            .take((total / 2).max(1))
            .map(|(c, _)| *c)
            .collect(),
        FpMaskWord::Max => candidates.iter().map(|(c, _)| *c).collect(),
    };
    if picked.is_empty() {
        return Err(FpMaskError {
            word,
            allowed: allowed.clone(),
            cores: total,
            example: allowed
                .iter()
                .next()
                .map_or_else(|| "1".to_string(), |c| c.to_string()),
        });
    }
    Ok(CpuSet::from_ids(picked))
}

/// The places of `cpus` from `<root>/sys/devices/system/cpu/cpuN/topology`
/// (`physical_package_id`, `core_id`); a CPU whose files cannot be read is
/// left out (see [`Topology`]).
pub fn read_topology_at(root: &Path, cpus: &CpuSet) -> Topology {
    let read = |cpu: CpuId, name: &str| -> Option<u32> {
        let path = root
            .join("sys/devices/system/cpu")
            .join(format!("cpu{}", cpu.0))
            .join("topology")
            .join(name);
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    };
    cpus.iter()
        .filter_map(|cpu| {
            Some((
                cpu,
                CpuPlace {
                    package: read(cpu, "physical_package_id")?,
                    core: read(cpu, "core_id")?,
                },
            ))
        })
        .collect()
}

/// Why a word could not be turned into CPUs on this machine.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The allowed CPUs could not be read.
    #[error(transparent)]
    Cpus(#[from] CpuConfigError),
    /// The word gives no CPU.
    #[error(transparent)]
    NoCpu(#[from] FpMaskError),
}

/// [`resolve_word`] on the running system: the CPUs this process may use
/// ([`allowed_cpus`]) and the topology under `/sys`.
pub fn resolve_word_here(word: FpMaskWord) -> Result<CpuSet, ResolveError> {
    let allowed = allowed_cpus()?;
    let topology = read_topology_at(Path::new("/"), &allowed.set);
    Ok(resolve_word(word, &allowed.set, &topology)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_list::parse_cpu_list;

    fn set(s: &str) -> CpuSet {
        parse_cpu_list(s).unwrap()
    }

    /// `sockets` sockets of `cores` cores with 2 threads each, numbered as
    /// Linux does on Intel: thread 0 of every core first, then thread 1.
    fn smt(sockets: u32, cores: u32) -> Topology {
        let n = sockets * cores;
        (0..2 * n)
            .map(|cpu| {
                let i = cpu % n;
                (
                    CpuId(cpu),
                    CpuPlace {
                        package: i / cores,
                        core: i % cores,
                    },
                )
            })
            .collect()
    }

    fn word(w: FpMaskWord, allowed: &str, topo: &Topology) -> String {
        match resolve_word(w, &set(allowed), topo) {
            Ok(s) => s.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn words_on_two_sockets_with_hyperthreads() {
        // 2 sockets x 4 cores x 2 threads: CPUs 0-7 thread 0, 8-15 thread 1.
        let t = smt(2, 4);
        assert_eq!(word(FpMaskWord::Min, "0-15", &t), "1,4");
        assert_eq!(word(FpMaskWord::Half, "0-15", &t), "1-4");
        assert_eq!(word(FpMaskWord::Auto, "0-15", &t), "1-4");
        assert_eq!(word(FpMaskWord::Max, "0-15", &t), "1-7");
        // Only siblings allowed on some cores: one thread each.
        assert_eq!(word(FpMaskWord::Max, "2,3,10,11", &t), "3");
        assert_eq!(word(FpMaskWord::Max, "10-11", &t), "11");
    }

    #[test]
    fn words_on_a_small_pod() {
        // A 2-CPU VM: two cores, no siblings.
        let t = smt(1, 2)
            .into_iter()
            .filter(|(c, _)| c.0 < 2)
            .collect::<Topology>();
        for w in [
            FpMaskWord::Min,
            FpMaskWord::Half,
            FpMaskWord::Max,
            FpMaskWord::Auto,
        ] {
            assert_eq!(word(w, "0-1", &t), "1", "{w}");
        }
        // A cpuset of 3 CPUs with unknown topology: each its own core.
        assert_eq!(word(FpMaskWord::Max, "4-6", &Topology::new()), "5-6");
        assert_eq!(word(FpMaskWord::Half, "4-6", &Topology::new()), "5");
        assert_eq!(word(FpMaskWord::Min, "4-6", &Topology::new()), "5");
    }

    #[test]
    fn one_physical_core_gives_no_cpu() {
        let t = smt(1, 4);
        // CPUs 1 and 5 are the two threads of core 1.
        let e = word(FpMaskWord::Max, "1,5", &t);
        assert_eq!(
            e,
            "error: FP_MASK=max gives no CPU: the allowed CPUs 1,5 are 1 physical core(s), and \
             the first is kept for the control thread; give a CPU list instead (such as 1)"
        );
        assert!(word(FpMaskWord::Min, "3", &t).starts_with("error: FP_MASK=min"));
    }

    #[test]
    fn topology_is_read_from_sysfs_files() {
        let dir = tempfile::tempdir().unwrap();
        for (cpu, pkg, core) in [(0, 0, 0), (1, 0, 0), (2, 1, 0)] {
            let d = dir
                .path()
                .join(format!("sys/devices/system/cpu/cpu{cpu}/topology"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("physical_package_id"), format!("{pkg}\n")).unwrap();
            std::fs::write(d.join("core_id"), format!("{core}\n")).unwrap();
        }
        let t = read_topology_at(dir.path(), &set("0-3"));
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[&CpuId(2)],
            CpuPlace {
                package: 1,
                core: 0
            }
        );
        // 0 and 1 are siblings, 2 on the other socket, 3 unknown.
        assert_eq!(word(FpMaskWord::Max, "0-3", &t), "2-3");
        assert_eq!(word(FpMaskWord::Min, "0-3", &t), "2-3");
    }
}
