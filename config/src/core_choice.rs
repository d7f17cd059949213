//! Which CPUs the workers run on: a count picked from the allowed CPUs, or
//! an exact list, checked against what this process may use.

use crate::cpus::{check_requested, AllowedCpus, CpuConfigError};
use drivers::cpu::{CpuId, CpuSet};

/// Which CPUs the workers run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreChoice {
    /// This many cores, picked from the allowed CPUs (the first allowed CPU
    /// is left to the control thread when there is more than one).
    Count(usize),
    /// Exactly these CPUs.
    List(CpuSet),
}

impl Default for CoreChoice {
    fn default() -> Self {
        CoreChoice::Count(1)
    }
}

impl CoreChoice {
    /// How many workers this choice gives (known without looking at the
    /// machine, so the pool can be sized before any CPU is read).
    pub fn workers(&self) -> usize {
        match self {
            CoreChoice::Count(n) => *n,
            CoreChoice::List(set) => set.len(),
        }
    }

    /// The worker CPUs, in ascending order, out of `allowed`. A count
    /// skips the first allowed CPU when there are several: it stays with
    /// the control thread, which sleeps most of the time but must not be
    /// starved by a busy-polling worker.
    pub fn choose(&self, allowed: &AllowedCpus) -> Result<Vec<CpuId>, CpuConfigError> {
        match self {
            CoreChoice::List(set) => {
                check_requested(set, allowed)?;
                Ok(set.iter().collect())
            }
            CoreChoice::Count(n) => {
                let all: Vec<CpuId> = allowed.set.iter().collect();
                let usable: &[CpuId] = if all.len() > 1 { &all[1..] } else { &all };
                match usable.get(..*n) {
                    Some(cpus) if *n > 0 => Ok(cpus.to_vec()),
                    _ => Err(CpuConfigError::TooFewCpus {
                        asked: *n,
                        usable: usable.len(),
                        allowed: Box::new(allowed.clone()),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_list::parse_cpu_list;

    fn allowed(list: &str) -> AllowedCpus {
        let set = parse_cpu_list(list).unwrap();
        AllowedCpus {
            set: set.clone(),
            affinity: set,
            cgroup: None,
        }
    }

    fn ids(v: &[u32]) -> Vec<CpuId> {
        v.iter().copied().map(CpuId).collect()
    }

    #[test]
    fn a_count_skips_the_first_allowed_cpu_when_there_are_several() {
        assert_eq!(
            CoreChoice::Count(2).choose(&allowed("2-5")).unwrap(),
            ids(&[3, 4])
        );
        assert_eq!(
            CoreChoice::Count(1).choose(&allowed("7")).unwrap(),
            ids(&[7])
        );
        assert_eq!(CoreChoice::Count(3).workers(), 3);
    }

    #[test]
    fn too_many_cores_name_the_allowed_set() {
        let e = CoreChoice::Count(3).choose(&allowed("0-1")).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                CpuConfigError::TooFewCpus {
                    asked: 3,
                    usable: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            msg.contains("3 worker cores asked, but 1 can be used: allowed CPUs are 0-1"),
            "{msg}"
        );
        assert!(CoreChoice::Count(0).choose(&allowed("0-1")).is_err());
    }

    #[test]
    fn a_list_must_be_allowed() {
        let list = CoreChoice::List(parse_cpu_list("1,3").unwrap());
        assert_eq!(list.workers(), 2);
        assert_eq!(list.choose(&allowed("0-3")).unwrap(), ids(&[1, 3]));
        let e = list.choose(&allowed("0-2")).unwrap_err();
        assert!(e.to_string().contains("CPU 3 is not allowed"), "{e}");
    }
}
