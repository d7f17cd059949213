//! Which worker polls which RX queue of each port.
//!
//! Without a core/port mapping every worker polls one RX queue of every
//! port (queue `w` belongs to worker `w`). With one
//! ([`config::core_port_mapping`]), a port gets one RX queue per CPU that
//! names it, the k-th of those CPUs (ascending) polling queue k, so two
//! CPUs on one port share its traffic by RSS. A ring port is the
//! exception: its RX queue `q` is fed by the peer's TX queue `q`, which
//! worker `q` owns, so it keeps one RX queue per worker and those are
//! shared out among the CPUs that poll it (queue `q` to worker `q` when
//! that worker polls the port, else round robin), so that nothing a
//! worker sends waits in a ring nobody reads.

use config::core_port_mapping::CorePortMapping;
use drivers::cpu::CpuId;

/// Per port, per RX queue: the index (into the workers) of the worker that
/// polls it. A port's queue count is the length of its list.
pub fn rx_plan(
    cpus: &[CpuId],
    nports: usize,
    mapping: Option<&CorePortMapping>,
    is_ring: impl Fn(usize) -> bool,
) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..cpus.len()).collect();
    let Some(map) = mapping else {
        return vec![all; nports];
    };
    (0..nports)
        .map(|p| {
            // Validation made every mapping CPU a worker; one that is not
            // (impossible through RunConfig::validate) polls nothing.
            let pollers: Vec<usize> = map
                .pollers(p)
                .iter()
                .filter_map(|c| cpus.iter().position(|w| w == c))
                .collect();
            if !is_ring(p) || pollers.is_empty() {
                return pollers;
            }
            all.iter()
                .map(|&q| {
                    if pollers.contains(&q) {
                        q
                    } else {
                        pollers[q % pollers.len()]
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(ids: &[u32]) -> Vec<CpuId> {
        ids.iter().copied().map(CpuId).collect()
    }

    fn map(s: &str) -> CorePortMapping {
        s.parse().unwrap()
    }

    #[test]
    fn without_a_mapping_every_worker_polls_every_port() {
        assert_eq!(
            rx_plan(&cpus(&[1, 2]), 2, None, |_| false),
            vec![vec![0, 1]; 2]
        );
    }

    #[test]
    fn a_port_gets_one_queue_per_cpu_naming_it() {
        let m = map("c10=0/c8=0/c6=1/c4=1:2");
        let plan = rx_plan(&cpus(&[4, 6, 8, 10]), 3, Some(&m), |_| false);
        // Port 0: CPUs 8 and 10 (workers 2, 3); port 1: 4 and 6; port 2: 4.
        assert_eq!(plan, vec![vec![2, 3], vec![0, 1], vec![0]]);
    }

    #[test]
    fn ring_ports_keep_a_queue_per_sender() {
        let m = map("c1=0/c2=1/c3=0:1");
        let plan = rx_plan(&cpus(&[1, 2, 3]), 2, Some(&m), |_| true);
        // Port 0 is polled by workers 0 and 2: queue 1 (sent by worker 1)
        // goes to one of them.
        assert_eq!(plan[0], vec![0, 2, 2]);
        assert_eq!(plan[1], vec![1, 1, 2]);
        for q in &plan {
            assert_eq!(q.len(), 3);
        }
    }
}
