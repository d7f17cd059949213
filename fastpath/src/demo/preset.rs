//! The demo's run configuration: what `fastpath run` would be given, and
//! where its pool's memory comes from.

use super::args::DemoArgs;
use crate::forwarder::StartError;
use config::core_choice::CoreChoice;
use config::fwd_mode::FwdMode;
use config::port_spec::{IavfModel, IxgbevfModel, PortSpec, SimModel};
use config::run_config::{RunConfig, RunConfigError, ValidRunConfig};
use drivers::memory::{hugepage_status, HugepageSize, HugepageStatus, MemoryBacking, PageSize};
use drivers::pool::{PoolConfig, PoolError};

/// The ports: an 82599 VF under our ixgbevf driver and an XL710 VF under
/// our iavf driver, two VFs of one modelled PF (`--ports
/// sim:ixgbevf,sim:iavf`).
pub fn demo_ports() -> Vec<PortSpec> {
    vec![
        PortSpec::Sim(SimModel::Ixgbevf(IxgbevfModel::X82599)),
        PortSpec::Sim(SimModel::Iavf(IavfModel::Xl710)),
    ]
}

/// `fastpath run --ports sim:ixgbevf,sim:iavf --mode l3 --cores 1
/// --tx-first 0 --duration D`, on hugepages when enough 2M pages are
/// free, else on ordinary pages; the second value is the line that says
/// so (none on hugepages).
pub fn demo_config(args: &DemoArgs) -> Result<(ValidRunConfig, Option<String>), RunConfigError> {
    let huge_2m = hugepage_status()
        .into_iter()
        .find(|s| s.size == PageSize::Size2M);
    demo_config_with(args, huge_2m)
}

/// [`demo_config`] with the 2M hugepage pool as `huge_2m` says (`None`:
/// the kernel offers none).
pub fn demo_config_with(
    args: &DemoArgs,
    huge_2m: Option<HugepageStatus>,
) -> Result<(ValidRunConfig, Option<String>), RunConfigError> {
    let base = RunConfig {
        ports: demo_ports(),
        // Simulated VFs have one queue pair each: one worker.
        cores: CoreChoice::Count(1),
        mode: FwdMode::L3,
        duration: Some(args.duration),
        // The wire brings the traffic; nothing loops.
        tx_first: Some(0),
        backing: MemoryBacking::NoHuge,
        ..RunConfig::default()
    };
    let on_pages = base.clone().validate()?;
    let need = hugepages_needed(&on_pages);
    let free = huge_2m.map_or((0, 0), |s| (s.free, s.total));
    if free.0 >= need {
        let cfg = RunConfig {
            backing: MemoryBacking::Hugepages(HugepageSize::Size2M),
            ..base
        };
        return Ok((cfg.validate()?, None));
    }
    let note = format!(
        "fastpath demo: {} of {} 2M hugepages free, {need} needed: the pool is on ordinary pages (enough for simulated VFs)",
        free.0, free.1
    );
    Ok((on_pages, Some(note)))
}

/// 2M pages the demo takes: the pool's, and one per port for its rings
/// (each port's ring memory is a region of its own, far below 2 MiB).
fn hugepages_needed(cfg: &ValidRunConfig) -> u64 {
    let element = PoolConfig::new("mbuf_pool", cfg.nb_mbuf()).element_size() as u64;
    let page = PageSize::Size2M.bytes() as u64;
    (u64::from(cfg.nb_mbuf()) * element).div_ceil(page) + cfg.ports.len() as u64
}

/// The start failed because the hugepages that looked free could not be
/// had (another process took them, a hugetlb cgroup limit).
pub fn is_hugepage_failure(e: &StartError, cfg: &ValidRunConfig) -> bool {
    matches!(cfg.backing, MemoryBacking::Hugepages(_))
        && matches!(e, StartError::Pool(PoolError::Memory { .. }))
}

/// `cfg` on ordinary pages.
pub fn on_ordinary_pages(cfg: &ValidRunConfig) -> Result<ValidRunConfig, RunConfigError> {
    RunConfig {
        backing: MemoryBacking::NoHuge,
        ..cfg.config().clone()
    }
    .validate()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args() -> DemoArgs {
        DemoArgs {
            duration: Duration::from_secs(3),
            rate: super::super::args::DemoRate::Max,
            flows: 4,
            packet_size: 64,
            json: false,
        }
    }

    fn pool_2m(free: u64, total: u64) -> Option<HugepageStatus> {
        Some(HugepageStatus {
            size: PageSize::Size2M,
            total,
            free,
        })
    }

    /// Hugepages when enough are free, else ordinary pages and a line
    /// that says how many were free and needed; never an error.
    #[test]
    fn hugepages_only_when_enough_are_free() {
        let (flat, _) = demo_config_with(&args(), None).unwrap();
        let need = hugepages_needed(&flat);
        let (cfg, note) = demo_config_with(&args(), pool_2m(need, need + 10)).unwrap();
        assert_eq!(cfg.backing, MemoryBacking::Hugepages(HugepageSize::Size2M));
        assert_eq!(note, None);
        for (huge, want) in [
            (None, format!("0 of 0 2M hugepages free, {need} needed")),
            (
                pool_2m(need - 1, 512),
                format!("{} of 512 2M hugepages free, {need} needed", need - 1),
            ),
        ] {
            let (cfg, note) = demo_config_with(&args(), huge).unwrap();
            assert_eq!(cfg.backing, MemoryBacking::NoHuge);
            let note = note.expect("a line about the pages");
            assert!(note.contains(&want), "{note}");
            assert!(note.contains("ordinary pages"), "{note}");
        }
    }

    #[test]
    fn the_preset_is_a_valid_l3_run_over_two_simulated_vfs() {
        let (cfg, note) = demo_config(&args()).unwrap();
        assert_eq!(cfg.mode, FwdMode::L3);
        assert_eq!(cfg.duration, Some(Duration::from_secs(3)));
        assert_eq!(
            cfg.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["sim:ixgbevf:82599", "sim:iavf:xl710"]
        );
        // Either hugepages, silently, or ordinary pages with a line.
        assert_eq!(note.is_some(), cfg.backing == MemoryBacking::NoHuge);
        assert!(hugepages_needed(&cfg) >= 3);
        let flat = on_ordinary_pages(&cfg).unwrap();
        assert_eq!(flat.backing, MemoryBacking::NoHuge);
    }
}
