//! Simulated VFs as ports of a run (`fastpath run --ports sim:ixgbevf`):
//! the ixgbevf device model ([`super::ixgbevf`]) with our ixgbevf driver
//! on it, so the whole fast path, driver included, runs without the
//! hardware, as DPDK's vdevs (net_null, net_ring) let one try testpmd.
//!
//! Every simulated port of a run lives in one [`SimSpace`]: one DMA space
//! (the model's [`Iommu`], where the pool is mapped as it would be in a
//! vfio container) and one modelled PF with its embedded switch
//! ([`Veb`]), whose VF `n` has the admin MAC [`sim_vf_mac`]`(n)`. A frame
//! one port sends to another's MAC arrives on that port; broadcast,
//! multicast and unknown unicast go to the PF's uplink, which has no wire
//! here: they are dropped there and counted ([`SimSpace::switch_xstats`]).
//! The driver runs with its hardware timing ([`Timing::default`]), not the
//! shortened waits of the unit tests.
//!
//! A model records every rule the driver breaks ([`Violations`]); here it
//! never panics for one: the owner of the space takes them
//! ([`SimSpace::take_violations`]) and fails its audit.

use super::ixgbevf::{Flavor, Ixgbevf, IxgbevfBar, IxgbevfConfig as ModelConfig, IxgbevfSim};
use super::veb::{Veb, VebConfig, MAX_PORTS};
use super::{Iommu, Violation};
use crate::memory::DmaMapper;
use crate::net::MacAddr;
use crate::pci::{PciFunction, SupportedDevice, INTEL};
use crate::pmd::ixgbevf::{IxgbevfConfig, IxgbevfError, IxgbevfPort, IxgbevfRx, IxgbevfTx, Timing};
use crate::pool::Pool;
use crate::port::{LinkState, Port, PortError, PortInfo, PortStats, QueueSet, ServiceEvent, XStat};
use std::sync::Arc;

/// A device model a simulated port can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfModel {
    /// An ixgbevf VF of this flavor.
    Ixgbevf(Flavor),
}

/// The admin MAC the modelled PF gives VF `n` of a run: locally
/// administered (02:), `09` for the 82599 family, then the VF number.
pub fn sim_vf_mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0x09, 0x00, 0x00, 0x00, n])
}

/// Most simulated VFs in one space: the switch's ports (64 pools).
pub const MAX_SIM_VFS: usize = MAX_PORTS;

/// Why a simulated port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SimPortError {
    /// The pool is not mapped in this space.
    #[error(
        "simulated port {port}: the buffer pool is not mapped in the model's DMA space \
         (build the pool with PoolConfig::dma set to SimSpace::mapper)"
    )]
    PoolNotMapped {
        /// Port name.
        port: String,
    },
    /// More VFs than the modelled PF has MACs for.
    #[error("simulated port {port}: at most {MAX_SIM_VFS} simulated VFs in one run")]
    TooManyVfs {
        /// Port name.
        port: String,
    },
    /// The supported-device table has no row for the model's device id
    /// (a model the table does not list).
    #[error("simulated port {port}: no supported-device row for 8086:{device_id:04x}")]
    NoDeviceRow {
        /// Port name.
        port: String,
        /// The model's device id.
        device_id: u16,
    },
    /// Our driver could not bring the modelled VF up.
    #[error("simulated port {port} ({model}): {source}")]
    Driver {
        /// Port name.
        port: String,
        /// The model, as the table names it.
        model: &'static str,
        /// What failed.
        source: IxgbevfError,
    },
}

/// The DMA space and modelled PF that every simulated port of a run
/// shares.
#[derive(Debug)]
pub struct SimSpace {
    iommu: Arc<Iommu>,
    veb: Arc<Veb>,
    vfs: usize,
}

impl Default for SimSpace {
    fn default() -> Self {
        SimSpace::new()
    }
}

impl SimSpace {
    /// An empty space: no VF yet, nothing mapped, the PF's link up. From
    /// now on its DMA space is told of every buffer hand-off of every pool
    /// (the ownership checks, `crate::pool::watch`), a lock and a lookup
    /// per buffer: make one only for a run that has simulated ports.
    pub fn new() -> SimSpace {
        SimSpace {
            iommu: Iommu::new(),
            // The uplink keeps no frame (there is no wire to look at):
            // each is dropped there and counted.
            veb: Veb::new(VebConfig {
                uplink_frames: 0,
                ..VebConfig::default()
            }),
            vfs: 0,
        }
    }

    /// The PF's switch.
    pub fn veb(&self) -> &Arc<Veb> {
        &self.veb
    }

    /// The switch's own counters, named as xstats: frames sent to the
    /// uplink (all dropped there: no wire) and frames not switched while
    /// the PF's link was down or it was resetting.
    pub fn switch_xstats(&self) -> Vec<XStat> {
        let c = self.veb.counters();
        vec![
            ("uplink_packets", c.uplink_frames),
            ("uplink_dropped", c.uplink_dropped),
            ("link_down_dropped", c.down_drops),
        ]
    }

    /// Where the pool is mapped (`PoolConfig::dma`), as a vfio container
    /// would be.
    pub fn mapper(&self) -> Arc<dyn DmaMapper> {
        self.iommu.mapper()
    }

    /// Start a model of `model` as the next VF of the space and bring it
    /// up with our driver. `cfg` names the port, its rings and where their
    /// memory comes from; the MAC is the PF's ([`sim_vf_mac`]). `pool`
    /// must be mapped in [`mapper`](Self::mapper).
    pub fn open(
        &mut self,
        model: VfModel,
        cfg: &crate::pmd::VfConfig,
        pool: &Pool,
    ) -> Result<SimVfPort, SimPortError> {
        let port = cfg.name.clone();
        if !pool.is_mapped_by(&self.mapper()) {
            return Err(SimPortError::PoolNotMapped { port });
        }
        let vf = match u8::try_from(self.vfs) {
            Ok(n) if self.vfs < MAX_SIM_VFS => n,
            _ => return Err(SimPortError::TooManyVfs { port }),
        };
        let VfModel::Ixgbevf(flavor) = model;
        let device_id = flavor.device_id();
        let device: SupportedDevice =
            *crate::pci::lookup(INTEL, device_id).ok_or_else(|| SimPortError::NoDeviceRow {
                port: port.clone(),
                device_id,
            })?;
        let mut dev = Ixgbevf::start_on(
            &self.veb,
            ModelConfig::new(flavor, Some(sim_vf_mac(vf))),
            &self.iommu,
        )
        .map_err(|_| SimPortError::TooManyVfs { port })?;
        dev.audited_by_owner();
        let veb_port = dev.veb_port().unwrap_or(usize::MAX);
        let bar = dev.bar();
        let mut pcfg = IxgbevfConfig::for_device(cfg.id, cfg.name.clone(), device, self.mapper());
        pcfg.rx_ring = cfg.rx_ring;
        pcfg.tx_ring = cfg.tx_ring;
        pcfg.mtu = cfg.mtu;
        pcfg.mac = cfg.mac;
        pcfg.backing = cfg.backing.clone();
        pcfg.data_room = pool.data_room();
        pcfg.timing = Timing::default();
        pcfg.pci = Some(Arc::clone(&bar) as Arc<dyn PciFunction>);
        let port = IxgbevfPort::new(bar, pcfg).map_err(|source| SimPortError::Driver {
            port: cfg.name.clone(),
            model: device.name,
            source,
        })?;
        self.vfs += 1;
        Ok(SimVfPort {
            port,
            dev,
            model: device.name,
            veb: Arc::clone(&self.veb),
            veb_port,
        })
    }

    /// Violations recorded so far and not taken.
    pub fn pending_violations(&self) -> usize {
        self.iommu.violations().count()
    }

    /// Take every violation recorded so far (call it again once the ports
    /// are gone: stopping a device is checked too).
    pub fn take_violations(&self) -> Vec<Violation> {
        self.iommu.violations().take()
    }
}

/// A modelled VF with our driver on it: a port that owns its device.
///
/// Dropped in the DMA-safe order, as a VF on vfio: the driver first (its
/// queues read back disabled, the VF reset, bus mastering off, then its
/// rings unmapped), then the model's thread. The pool is unmapped after
/// every port, by its owner.
#[derive(Debug)]
pub struct SimVfPort {
    // Declaration order is drop order: the driver before the device.
    port: IxgbevfPort<IxgbevfBar>,
    dev: IxgbevfSim,
    model: &'static str,
    veb: Arc<Veb>,
    veb_port: usize,
}

impl SimVfPort {
    /// The model, as the supported-device table names it ("82599 VF").
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// The running model.
    pub fn device(&self) -> &IxgbevfSim {
        &self.dev
    }
}

impl Port for SimVfPort {
    type Rx = IxgbevfRx<IxgbevfBar>;
    type Tx = IxgbevfTx<IxgbevfBar>;

    fn info(&self) -> &PortInfo {
        Port::info(&self.port)
    }

    fn link(&self) -> LinkState {
        Port::link(&self.port)
    }

    fn stats(&self) -> PortStats {
        Port::stats(&self.port)
    }

    /// The driver's counters, then the model's own: frames its RX FIFO
    /// dropped (an overrun while the driver posted no buffer; the VF has
    /// no register for it), and what the PF's switch did for this VF:
    /// frames taken from it and switched to it, and its drops (a source
    /// MAC not the VF's, a destination its filter refuses, its inbox
    /// full).
    fn xstats(&self) -> Vec<XStat> {
        let mut x = Port::xstats(&self.port);
        x.push(("sim_rx_fifo_drops", self.dev.rx_dropped(0)));
        let c = self.veb.port_counters(self.veb_port).unwrap_or_default();
        x.extend([
            ("sim_switch_tx_packets", c.tx_frames),
            ("sim_switch_rx_packets", c.rx_frames),
            ("sim_switch_tx_spoofed", c.tx_spoofed),
            ("sim_switch_rx_filtered", c.rx_filtered),
            ("sim_switch_inbox_overflow", c.inbox_overflow),
        ]);
        x
    }

    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<Self::Rx, Self::Tx>, PortError> {
        Port::queues(&mut self.port, rx, tx)
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        Port::service(&mut self.port)
    }

    fn stop(&mut self) -> Result<(), PortError> {
        Port::stop(&mut self.port)
    }

    fn start(&mut self) -> Result<(), PortError> {
        Port::start(&mut self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::burst::Burst;
    use crate::mbuf::PortId;
    use crate::memory::MemoryBacking;
    use crate::pool::PoolConfig;
    use crate::port::{RxQueue, TxQueue};
    use std::time::{Duration, Instant};

    /// Short rings on ordinary pages: no hugepages needed.
    fn test_cfg(i: u16) -> crate::pmd::VfConfig {
        let mut c = crate::pmd::VfConfig::new(PortId(i), format!("sim{i}"));
        c.backing = MemoryBacking::NoHuge;
        c.rx_ring = 64;
        c.tx_ring = 64;
        c
    }

    fn pool(space: &SimSpace, n: u32) -> Pool {
        let mut c = PoolConfig::new("simvf", n).with_backing(MemoryBacking::NoHuge);
        c.cache_size = 32;
        c.dma = Some(space.mapper());
        Pool::new(&c).unwrap()
    }

    #[test]
    fn ports_take_the_pf_macs_switch_to_each_other_and_stop_clean() {
        let mut space = SimSpace::new();
        let pool = pool(&space, 1024);
        let mut a = space
            .open(VfModel::Ixgbevf(Flavor::X550), &test_cfg(0), &pool)
            .unwrap();
        let mut b = space
            .open(VfModel::Ixgbevf(Flavor::X82599), &test_cfg(1), &pool)
            .unwrap();
        assert_eq!(a.info().mac, sim_vf_mac(0));
        assert_eq!(b.info().mac, sim_vf_mac(1));
        assert_eq!(a.model(), "X550 VF");
        assert!(a.link().up);
        let (arx, mut atx) = a.queues(1, 1).unwrap();
        let (mut brx, _btx) = b.queues(1, 1).unwrap();
        let mut cache = pool.cache();
        // A frame from a to b's MAC crosses the PF's switch to b; one to
        // a MAC no VF has goes to the uplink, where it is dropped.
        let mut frame: Vec<u8> = (0..60u8).collect();
        frame[..6].copy_from_slice(&sim_vf_mac(1).0);
        frame[6..12].copy_from_slice(&sim_vf_mac(0).0);
        let mut stray = frame.clone();
        stray[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
        let mut out = Burst::new();
        for f in [&frame, &stray] {
            let mut m = cache.alloc().unwrap();
            m.append(f.len()).unwrap().copy_from_slice(f);
            out.push(m);
        }
        atx[0].tx_burst(&mut cache, &mut out);
        assert!(out.is_empty());
        let mut got = Burst::new();
        let end = Instant::now() + Duration::from_secs(10);
        while got.is_empty() && Instant::now() < end {
            brx[0].rx_burst(&mut cache, &mut got, 32);
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data(), &frame[..]);
        cache.free_bulk(&mut got);
        while space.switch_xstats()[1].1 == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            space.switch_xstats(),
            vec![
                ("uplink_packets", 1),
                ("uplink_dropped", 1),
                ("link_down_dropped", 0)
            ]
        );
        let x = a.xstats();
        assert!(x.contains(&("sim_switch_tx_packets", 2)), "{x:?}");
        let x = b.xstats();
        assert!(x.contains(&("sim_switch_rx_packets", 1)), "{x:?}");
        assert!(a.xstats().contains(&("sim_rx_fifo_drops", 0)));
        drop((arx, atx, brx, _btx, cache, a, b));
        assert_eq!(space.take_violations(), Vec::new());
        assert_eq!(pool.available(), pool.count());
    }

    #[test]
    fn a_pool_outside_the_space_is_refused() {
        let mut space = SimSpace::new();
        let other = SimSpace::new();
        let pool = pool(&other, 256);
        let e = space
            .open(VfModel::Ixgbevf(Flavor::X540), &test_cfg(0), &pool)
            .unwrap_err();
        assert!(matches!(e, SimPortError::PoolNotMapped { .. }), "{e}");
    }

    /// A violation does not panic when the port drops: it stays for the
    /// owner's audit.
    #[test]
    fn violations_are_left_for_the_owner() {
        let mut space = SimSpace::new();
        let pool = pool(&space, 256);
        let a = space
            .open(VfModel::Ixgbevf(Flavor::X540), &test_cfg(0), &pool)
            .unwrap();
        // A read outside BAR0: the register-access rule.
        use crate::mmio::RegisterSpace;
        a.device().bar().read32(0x10_0000);
        drop(a);
        let v = space.take_violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].rule.name, "register-access");
    }
}
