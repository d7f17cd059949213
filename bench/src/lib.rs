//! Shared helpers of the benchmark binaries (`src/bin/`).
#![forbid(unsafe_code)]

pub mod latency;

use config::cpu_list::parse_cpu_list;
use config::cpus::{allowed_cpus, check_requested};
use drivers::cpu::CpuId;

/// The CPUs a benchmark may use: `--cpus LIST` if given (checked against the
/// process's affinity and cgroup cpuset), else every allowed CPU.
pub fn pick_cpus(arg: Option<&str>) -> Result<Vec<CpuId>, String> {
    let allowed = allowed_cpus().map_err(|e| e.to_string())?;
    let set = match arg {
        None => allowed.set.clone(),
        Some(list) => {
            let set = parse_cpu_list(list).map_err(|e| format!("--cpus: {e}"))?;
            check_requested(&set, &allowed).map_err(|e| e.to_string())?;
            set
        }
    };
    if set.is_empty() {
        return Err("no CPU to run on".into());
    }
    Ok(set.iter().collect())
}
