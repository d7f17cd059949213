//! Simulated VFs as ports of a run (`fastpath run --ports sim:ixgbevf`,
//! `sim:iavf`): a device model ([`super::ixgbevf`], [`super::iavf`]) with
//! our driver for it on top, so the whole fast path, driver included, runs
//! without the hardware, as DPDK's vdevs (net_null, net_ring) let one try
//! testpmd.
//!
//! Every simulated port of a run lives in one [`SimSpace`]: one DMA space
//! (the model's [`Iommu`], where the pool is mapped as it would be in a
//! vfio container) and one modelled PF with its embedded switch
//! ([`Veb`]), whose VF `n` has the admin MAC [`sim_vf_mac`]`(n)`, whatever
//! its model: the switch is device-neutral, so ixgbevf and iavf VFs of one
//! run switch frames to each other (no real PF has both kinds; the mix is
//! there to try drivers against each other). A frame one port sends to
//! another's MAC arrives on that port; broadcast, multicast and unknown
//! unicast go to the PF's uplink, which has no wire here: they are
//! dropped there and counted ([`SimSpace::switch_xstats`]). The drivers
//! run with their hardware timing (`Timing::default()`), not the
//! shortened waits of the unit tests.
//!
//! A model records every rule the driver breaks ([`Violations`]); here it
//! never panics for one: the owner of the space takes them
//! ([`SimSpace::take_violations`]) and fails its audit.
//!
//! [`Violations`]: super::Violations

use super::iavf::{Flavor as IavfFlavor, Iavf, IavfBar, IavfConfig as IavfModelConfig, IavfSim};
use super::ixgbevf::{
    Flavor as IxgbevfFlavor, Ixgbevf, IxgbevfBar, IxgbevfConfig as IxgbevfModelConfig, IxgbevfSim,
};
use super::veb::{Veb, VebConfig, MAX_PORTS};
use super::wire::{Wire, WireConfig, WireError};
use super::{DeviceModel, Iommu, SimDevice, Violation};
use crate::memory::DmaMapper;
use crate::net::MacAddr;
use crate::pci::{PciFunction, SupportedDevice, INTEL};
use crate::pmd::iavf::{IavfConfig, IavfError, IavfPort};
use crate::pmd::ixgbevf::{IxgbevfConfig, IxgbevfError, IxgbevfPort};
use crate::pmd::VfConfig;
use crate::pool::Pool;
use crate::port::{
    DynPort, LinkState, MulticastOutcome, Port, PortError, PortInfo, PortStats, QueueSet,
    ServiceEvent, XStat,
};
use std::sync::Arc;

/// A device model a simulated port can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfModel {
    /// An ixgbevf VF of this flavor.
    Ixgbevf(IxgbevfFlavor),
    /// An iavf VF of this flavor.
    Iavf(IavfFlavor),
}

impl VfModel {
    /// The model's PCI device id.
    pub fn device_id(self) -> u16 {
        match self {
            VfModel::Ixgbevf(f) => f.device_id(),
            VfModel::Iavf(f) => f.device_id(),
        }
    }
}

/// The admin MAC the modelled PF gives VF `n` of a run, whatever its
/// model: locally administered (02:), `09` for the simulated PF, then
/// the VF number.
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
        source: DriverError,
    },
}

/// Why a driver could not bring its modelled VF up.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The ixgbevf driver's.
    #[error(transparent)]
    Ixgbevf(#[from] IxgbevfError),
    /// The iavf driver's.
    #[error(transparent)]
    Iavf(#[from] IavfError),
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

/// The next VF of a space, checked and numbered, before its model starts.
struct NextVf {
    /// Port name.
    port: String,
    /// The PF's MAC for it.
    mac: MacAddr,
    /// Its row of the supported-device table.
    device: SupportedDevice,
}

impl NextVf {
    fn too_many(&self) -> SimPortError {
        SimPortError::TooManyVfs {
            port: self.port.clone(),
        }
    }

    fn driver_error(&self, source: impl Into<DriverError>) -> SimPortError {
        SimPortError::Driver {
            port: self.port.clone(),
            model: self.device.name,
            source: source.into(),
        }
    }
}

/// Starts a `$model` (configured by `$model_cfg`) as the space's VF `$vf`
/// and brings our `$driver` (configured by `$driver_cfg`) up on it,
/// returning from the function with the port or the error. The steps are
/// the same for every driver; only the types differ (the drivers'
/// configurations share field names, not a type).
macro_rules! start_with_driver {
    ($space:ident, $vf:ident, $flavor:expr, $cfg:expr, $pool:expr,
     $model:ident, $model_cfg:ident, $driver:ident, $driver_cfg:ident) => {{
        let (cfg, pool): (&VfConfig, &Pool) = ($cfg, $pool);
        let mcfg = $model_cfg::new($flavor, Some($vf.mac));
        let mut dev =
            $model::start_on(&$space.veb, mcfg, &$space.iommu).map_err(|_| $vf.too_many())?;
        // Before anything can fail: a device dropped with a violation
        // pending leaves it to the space's audit instead of panicking.
        dev.audited_by_owner();
        let veb_port = dev.veb_port();
        let bar = dev.bar();
        let mut c = $driver_cfg::for_device(cfg.id, cfg.name.clone(), $vf.device, $space.mapper());
        c.rx_ring = cfg.rx_ring;
        c.tx_ring = cfg.tx_ring;
        c.mtu = cfg.mtu;
        c.mac = cfg.mac;
        c.backing = cfg.backing.clone();
        c.filters = cfg.filters.clone();
        c.data_room = pool.data_room();
        // The hardware's waits, not the unit tests' short ones.
        c.timing = Default::default();
        c.pci = Some(Arc::clone(&bar) as Arc<dyn PciFunction>);
        let port = $driver::new(bar, c).map_err(|e| $vf.driver_error(e))?;
        Ok($space.adopt(port, dev, veb_port, &$vf))
    }};
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

    /// Starts a wire on the PF's uplink ([`Wire`]): hosts sending to the
    /// VFs, and a sink for what they send out.
    pub fn start_wire(&self, cfg: WireConfig) -> Result<Wire, WireError> {
        Wire::start(&self.veb, cfg)
    }

    /// Where the pool is mapped (`PoolConfig::dma`), as a vfio container
    /// would be.
    pub fn mapper(&self) -> Arc<dyn DmaMapper> {
        self.iommu.mapper()
    }

    /// Start a model of `model` as the next VF of the space and bring it
    /// up with our driver for it, as a port of any driver (what a run
    /// takes). See [`open_ixgbevf`](Self::open_ixgbevf) and
    /// [`open_iavf`](Self::open_iavf).
    pub fn open(
        &mut self,
        model: VfModel,
        cfg: &VfConfig,
        pool: &Pool,
    ) -> Result<DynPort, SimPortError> {
        match model {
            VfModel::Ixgbevf(f) => self.open_ixgbevf(f, cfg, pool).map(DynPort::new),
            VfModel::Iavf(f) => self.open_iavf(f, cfg, pool).map(DynPort::new),
        }
    }

    /// Start an ixgbevf model of `flavor` as the next VF of the space and
    /// bring it up with our ixgbevf driver. `cfg` names the port, its
    /// rings and where their memory comes from; the MAC is the PF's
    /// ([`sim_vf_mac`]). `pool` must be mapped in
    /// [`mapper`](Self::mapper).
    pub fn open_ixgbevf(
        &mut self,
        flavor: IxgbevfFlavor,
        cfg: &VfConfig,
        pool: &Pool,
    ) -> Result<SimIxgbevfPort, SimPortError> {
        let vf = self.next_vf(VfModel::Ixgbevf(flavor), cfg, pool)?;
        start_with_driver!(
            self,
            vf,
            flavor,
            cfg,
            pool,
            Ixgbevf,
            IxgbevfModelConfig,
            IxgbevfPort,
            IxgbevfConfig
        )
    }

    /// Start an iavf model of `flavor` (an X710/XL710 VF behind an i40e
    /// PF, or an adaptive VF behind an ice PF) as the next VF of the space
    /// and bring it up with our iavf driver, as
    /// [`open_ixgbevf`](Self::open_ixgbevf) does.
    pub fn open_iavf(
        &mut self,
        flavor: IavfFlavor,
        cfg: &VfConfig,
        pool: &Pool,
    ) -> Result<SimIavfPort, SimPortError> {
        let vf = self.next_vf(VfModel::Iavf(flavor), cfg, pool)?;
        start_with_driver!(
            self,
            vf,
            flavor,
            cfg,
            pool,
            Iavf,
            IavfModelConfig,
            IavfPort,
            IavfConfig
        )
    }

    /// Checks that `pool` is in this space and that the PF has a VF left,
    /// and finds the model's row of the supported-device table.
    fn next_vf(&self, model: VfModel, cfg: &VfConfig, pool: &Pool) -> Result<NextVf, SimPortError> {
        let port = cfg.name.clone();
        if !pool.is_mapped_by(&self.mapper()) {
            return Err(SimPortError::PoolNotMapped { port });
        }
        let n = match u8::try_from(self.vfs) {
            Ok(n) if self.vfs < MAX_SIM_VFS => n,
            _ => return Err(SimPortError::TooManyVfs { port }),
        };
        let device_id = model.device_id();
        let device =
            *crate::pci::lookup(INTEL, device_id).ok_or_else(|| SimPortError::NoDeviceRow {
                port: port.clone(),
                device_id,
            })?;
        Ok(NextVf {
            port,
            mac: sim_vf_mac(n),
            device,
        })
    }

    /// The driver `port` is up on `dev`: the VF is the space's.
    fn adopt<P, M: DeviceModel>(
        &mut self,
        port: P,
        dev: SimDevice<M>,
        veb_port: Option<usize>,
        vf: &NextVf,
    ) -> SimVfPort<P, M> {
        self.vfs += 1;
        SimVfPort {
            port,
            dev,
            model: vf.device.name,
            veb: Arc::clone(&self.veb),
            // A model started on the switch has a port on it.
            veb_port: veb_port.unwrap_or(usize::MAX),
        }
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

/// What a simulated port reads from its running model that the driver
/// cannot see.
pub trait ModelRxDrops {
    /// RX frames the model's queue 0 dropped: the queue off, or its FIFO
    /// full while the driver posted no buffer (an overrun).
    fn rx_model_drops(&self) -> u64;
}

impl ModelRxDrops for IxgbevfSim {
    /// The VF has no drop counter register (nic-facts.md A.2): only the
    /// model counts these.
    fn rx_model_drops(&self) -> u64 {
        self.rx_dropped(0)
    }
}

impl ModelRxDrops for IavfSim {
    /// The VSI's rx_discards (GET_STATS, `vf_rx_discards`) count these
    /// too, plus frames the link being down lost, and only as often as
    /// the driver asks; this is the queue's own count, now.
    fn rx_model_drops(&self) -> u64 {
        self.with(|m, _| m.rx[0].counts.discards)
    }
}

/// A modelled VF with our driver `P` on it: a port that owns its device
/// (a model `M` running).
///
/// Dropped in the DMA-safe order, as a VF on vfio: the driver first (its
/// queues read back disabled, the VF reset, bus mastering off, then its
/// rings unmapped), then the model's thread. The pool is unmapped after
/// every port, by its owner.
#[derive(Debug)]
pub struct SimVfPort<P, M: DeviceModel> {
    // Declaration order is drop order: the driver before the device.
    port: P,
    dev: SimDevice<M>,
    model: &'static str,
    veb: Arc<Veb>,
    veb_port: usize,
}

/// Our ixgbevf driver on an ixgbevf model.
pub type SimIxgbevfPort = SimVfPort<IxgbevfPort<IxgbevfBar>, Ixgbevf>;
/// Our iavf driver on an iavf model.
pub type SimIavfPort = SimVfPort<IavfPort<IavfBar>, Iavf>;

impl<P, M: DeviceModel> SimVfPort<P, M> {
    /// The model, as the supported-device table names it ("82599 VF").
    pub fn model(&self) -> &'static str {
        self.model
    }

    /// The running model.
    pub fn device(&self) -> &SimDevice<M> {
        &self.dev
    }
}

impl<P, M> Port for SimVfPort<P, M>
where
    P: Port,
    M: DeviceModel,
    SimDevice<M>: ModelRxDrops,
{
    type Rx = P::Rx;
    type Tx = P::Tx;

    fn info(&self) -> &PortInfo {
        self.port.info()
    }

    fn link(&self) -> LinkState {
        self.port.link()
    }

    fn stats(&self) -> PortStats {
        self.port.stats()
    }

    /// The driver's counters, then the model's own: frames its RX queue
    /// dropped ([`ModelRxDrops`]), and what the PF's switch did for this
    /// VF: frames taken from it and switched to it, and its drops (a
    /// source MAC not the VF's, a destination its filter refuses, its
    /// inbox full).
    fn xstats(&self) -> Vec<XStat> {
        let mut x = self.port.xstats();
        x.push(("sim_rx_fifo_drops", self.dev.rx_model_drops()));
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
        self.port.queues(rx, tx)
    }

    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        self.port.service()
    }

    fn refresh_stats(&mut self) {
        self.port.refresh_stats()
    }

    fn stop(&mut self) -> Result<(), PortError> {
        self.port.stop()
    }

    fn start(&mut self) -> Result<(), PortError> {
        self.port.start()
    }

    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        self.port.set_multicast(macs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::burst::Burst;
    use crate::mbuf::PortId;
    use crate::memory::MemoryBacking;
    use crate::pool::{PoolCache, PoolConfig};
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

    /// A frame from VF `from` (sending on `tx`) to VF `to`'s MAC crosses
    /// the PF's switch to `to` (receiving on `rx`), unchanged; one to a
    /// MAC no VF has goes to the uplink, where it is dropped.
    fn cross(
        space: &SimSpace,
        cache: &mut PoolCache,
        (tx, from): (&mut impl TxQueue, u8),
        (rx, to): (&mut impl RxQueue, u8),
    ) {
        let uplink = space.switch_xstats()[1].1;
        let mut frame: Vec<u8> = (0..60u8).map(|b| b ^ from ^ (to << 4)).collect();
        frame[..6].copy_from_slice(&sim_vf_mac(to).0);
        frame[6..12].copy_from_slice(&sim_vf_mac(from).0);
        frame[12..14].copy_from_slice(&[0x88, 0xB5]);
        let mut stray = frame.clone();
        stray[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
        let mut out = Burst::new();
        for f in [&frame, &stray] {
            let mut m = cache.alloc().unwrap();
            m.append(f.len()).unwrap().copy_from_slice(f);
            out.push(m);
        }
        tx.tx_burst(cache, &mut out);
        assert!(out.is_empty(), "VF {from} sent {} of 2", 2 - out.len());
        let mut got = Burst::new();
        let end = Instant::now() + Duration::from_secs(10);
        while got.is_empty() && Instant::now() < end {
            rx.rx_burst(cache, &mut got, 32);
        }
        assert_eq!(got.len(), 1, "VF {from} to VF {to}");
        assert_eq!(got[0].data(), &frame[..], "VF {from} to VF {to}");
        cache.free_bulk(&mut got);
        while space.switch_xstats()[1].1 == uplink && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(space.switch_xstats()[1].1, uplink + 1, "VF {from}'s stray");
    }

    /// Runs `port`'s housekeeping until its link is up.
    fn link_up(port: &mut impl Port) {
        let end = Instant::now() + Duration::from_secs(10);
        while !port.link().up {
            port.service().unwrap();
            assert!(
                Instant::now() < end,
                "{}: link still down",
                port.info().name
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn ports_take_the_pf_macs_switch_to_each_other_and_stop_clean() {
        let mut space = SimSpace::new();
        let pool = pool(&space, 1024);
        let mut a = space
            .open_ixgbevf(IxgbevfFlavor::X550, &test_cfg(0), &pool)
            .unwrap();
        let mut b = space
            .open_ixgbevf(IxgbevfFlavor::X82599, &test_cfg(1), &pool)
            .unwrap();
        assert_eq!(a.info().mac, sim_vf_mac(0));
        assert_eq!(b.info().mac, sim_vf_mac(1));
        assert_eq!(a.model(), "X550 VF");
        assert!(a.link().up);
        let (arx, mut atx) = a.queues(1, 1).unwrap();
        let (mut brx, _btx) = b.queues(1, 1).unwrap();
        let mut cache = pool.cache();
        cross(&space, &mut cache, (&mut atx[0], 0), (&mut brx[0], 1));
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

    /// iavf VFs of both flavors and an ixgbevf VF on the one PF: each
    /// takes the PF's MAC for its number in the space, whatever its
    /// driver, and frames cross the switch between every two of them,
    /// both ways; the ports drop clean, as a run's do, through the
    /// driver-neutral `open`.
    #[test]
    fn iavf_and_ixgbevf_vfs_switch_to_each_other_and_stop_clean() {
        let mut space = SimSpace::new();
        let pool = pool(&space, 2048);
        let mut a = space
            .open_iavf(IavfFlavor::Xl710, &test_cfg(0), &pool)
            .unwrap();
        let mut b = space
            .open(VfModel::Ixgbevf(IxgbevfFlavor::X82599), &test_cfg(1), &pool)
            .unwrap();
        let mut c = space
            .open(VfModel::Iavf(IavfFlavor::Adaptive), &test_cfg(2), &pool)
            .unwrap();
        assert_eq!(a.model(), "XL710/X710 VF");
        assert_eq!(a.device().with(|m, _| m.config().flavor), IavfFlavor::Xl710);
        for (p, info) in [a.info(), b.info(), c.info()].into_iter().enumerate() {
            assert_eq!(info.mac, sim_vf_mac(p as u8), "{info:?}");
        }
        assert_eq!(a.info().kind, "iavf");
        assert_eq!(c.info().kind, "iavf");
        assert_eq!(b.info().kind, "ixgbevf");
        let (mut arx, mut atx) = a.queues(1, 1).unwrap();
        let (mut brx, mut btx) = b.queues(1, 1).unwrap();
        let (mut crx, mut ctx) = c.queues(1, 1).unwrap();
        // An iavf VF's queues are enabled, and its link reported, once its
        // RX queue posted buffers (a first burst) and its housekeeping ran.
        let mut cache = pool.cache();
        let mut none = Burst::new();
        arx[0].rx_burst(&mut cache, &mut none, 32);
        crx[0].rx_burst(&mut cache, &mut none, 32);
        assert!(none.is_empty());
        link_up(&mut a);
        link_up(&mut b);
        link_up(&mut c);
        cross(&space, &mut cache, (&mut atx[0], 0), (&mut brx[0], 1));
        cross(&space, &mut cache, (&mut btx[0], 1), (&mut arx[0], 0));
        cross(&space, &mut cache, (&mut atx[0], 0), (&mut crx[0], 2));
        cross(&space, &mut cache, (&mut ctx[0], 2), (&mut arx[0], 0));
        cross(&space, &mut cache, (&mut ctx[0], 2), (&mut brx[0], 1));
        cross(&space, &mut cache, (&mut btx[0], 1), (&mut crx[0], 2));
        // a sent 4 (2 crossed), received 2; the xstats are the driver's,
        // then the model's and the switch's for that VF.
        let x = a.xstats();
        for want in [
            ("tx_packets", 4),
            ("rx_packets", 2),
            ("sim_rx_fifo_drops", 0),
            ("sim_switch_tx_packets", 4),
            ("sim_switch_rx_packets", 2),
            ("sim_switch_tx_spoofed", 0),
            ("sim_switch_rx_filtered", 0),
            ("sim_switch_inbox_overflow", 0),
        ] {
            assert!(x.contains(&want), "{want:?} not in {x:?}");
        }
        assert!(x.iter().any(|(n, _)| *n == "vf_rx_discards"), "{x:?}");
        let x = c.xstats();
        assert!(x.contains(&("sim_switch_rx_packets", 2)), "{x:?}");
        assert_eq!(space.switch_xstats()[1], ("uplink_dropped", 6));
        drop((arx, atx, brx, btx, crx, ctx, cache, a, b, c));
        assert_eq!(space.take_violations(), Vec::new());
        assert_eq!(pool.available(), pool.count());
    }

    #[test]
    fn a_pool_outside_the_space_is_refused() {
        let mut space = SimSpace::new();
        let other = SimSpace::new();
        let pool = pool(&other, 256);
        let e = space
            .open_ixgbevf(IxgbevfFlavor::X540, &test_cfg(0), &pool)
            .unwrap_err();
        assert!(matches!(e, SimPortError::PoolNotMapped { .. }), "{e}");
    }

    /// A violation does not panic when the port drops: it stays for the
    /// owner's audit, whatever the model.
    #[test]
    fn violations_are_left_for_the_owner() {
        let mut space = SimSpace::new();
        let pool = pool(&space, 512);
        let a = space
            .open_ixgbevf(IxgbevfFlavor::X540, &test_cfg(0), &pool)
            .unwrap();
        let b = space
            .open_iavf(IavfFlavor::Adaptive, &test_cfg(1), &pool)
            .unwrap();
        // A read outside BAR0: each model's register-access rule.
        use crate::mmio::RegisterSpace;
        a.device().bar().read32(0x10_0000);
        b.device().bar().read32(0x10_0000);
        drop((a, b));
        let v = space.take_violations();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|v| v.rule.name == "register-access"), "{v:?}");
    }

    /// A 60-byte frame from the wire to `dst`.
    fn wire_frame(dst: MacAddr) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x77]);
        f[12..14].copy_from_slice(&[0x86, 0xDD]);
        f
    }

    /// Waits until the switch's filter for VF 0 (what its PF published)
    /// takes frames to `dst` (`takes`) or refuses them.
    fn published(space: &SimSpace, dst: MacAddr, takes: bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while space.veb().filter(0).unwrap().accepts(&wire_frame(dst)) != takes {
            assert!(Instant::now() < end, "{dst}: filter never {takes}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The runtime multicast list on one VF of `model`: a group not in
    /// the list is refused by the PF's filter (the switch never delivers
    /// it), a joined one arrives, the list is sent again after a PF
    /// reset, and a list too long for the device gives all-multicast or
    /// says why not.
    fn runtime_multicast(model: VfModel) {
        use crate::port::MulticastOutcome;
        let mut space = SimSpace::new();
        let pool = pool(&space, 512);
        let mut port = space.open(model, &test_cfg(0), &pool).unwrap();
        let (mut rx, mut tx) = port.queues(1, 1).unwrap();
        let mut cache = pool.cache();
        let mut b = Burst::new();
        rx[0].rx_burst(&mut cache, &mut b, 32);
        link_up(&mut port);
        let joined = MacAddr([0x33, 0x33, 0xFF, 0x00, 0x00, 0x05]);
        let other = MacAddr([0x33, 0x33, 0xFF, 0x00, 0x07, 0x06]);
        published(&space, joined, false);
        assert_eq!(space.veb().inject_from_wire(&wire_frame(joined)), 0);
        assert_eq!(
            port.set_multicast(&[joined]).unwrap(),
            MulticastOutcome::Exact,
            "{model:?}"
        );
        let receive = |port: &mut DynPort,
                       rx: &mut crate::port::DynRx,
                       cache: &mut PoolCache,
                       dst: MacAddr| {
            published(&space, dst, true);
            assert_eq!(space.veb().inject_from_wire(&wire_frame(dst)), 1);
            let mut got = Burst::new();
            let end = Instant::now() + Duration::from_secs(10);
            while got.is_empty() {
                rx.rx_burst(cache, &mut got, 32);
                port.service().unwrap();
                assert!(Instant::now() < end, "{model:?}: {dst} never arrived");
            }
            assert_eq!(&got[0].data()[..6], &dst.0);
            cache.free_bulk(&mut got);
        };
        receive(&mut port, &mut rx[0], &mut cache, joined);
        published(&space, other, false);
        assert_eq!(space.veb().inject_from_wire(&wire_frame(other)), 0);
        // A PF reset: the PF forgets the list; the recovery sends it.
        space.veb().pf_reset_begin();
        assert!(space.veb().wait_applied(Duration::from_secs(10)));
        let end = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        loop {
            let ev = port.service().unwrap();
            seen |= ev == ServiceEvent::ResetDetected;
            if seen && ev == ServiceEvent::Recovered {
                break;
            }
            if ev == ServiceEvent::ResetDetected {
                space.veb().pf_reset_end();
            }
            rx[0].rx_burst(&mut cache, &mut b, 32);
            tx[0].tx_burst(&mut cache, &mut b);
            assert!(Instant::now() < end, "{model:?}: no recovery");
            std::thread::sleep(Duration::from_millis(1));
        }
        rx[0].rx_burst(&mut cache, &mut b, 32);
        link_up(&mut port);
        receive(&mut port, &mut rx[0], &mut cache, joined);
        // More groups than an untrusted VF gets (ixgbevf: 30 hashes, then
        // ALLMULTI, which the PF limits to MULTI, A.5.3; iavf: the PF's
        // filter limit, then multicast promiscuous, which the PF ignores
        // for an untrusted VF, B.6 step 14): the outcome says so.
        let many: Vec<MacAddr> = (0..40u8).map(|i| MacAddr([1, 0, 0x5E, 0, 1, i])).collect();
        let out = port.set_multicast(&many).unwrap();
        assert!(
            matches!(
                out,
                MulticastOutcome::Partial { .. } | MulticastOutcome::AllMulticast { .. }
            ),
            "{model:?}: {out:?}"
        );
        if let VfModel::Ixgbevf(_) = model {
            // The first 30 still pass under MULTI.
            receive(&mut port, &mut rx[0], &mut cache, many[0]);
        }
        // Back to one group: the others are refused again.
        assert_eq!(
            port.set_multicast(&[joined]).unwrap(),
            MulticastOutcome::Exact
        );
        published(&space, many[0], false);
        receive(&mut port, &mut rx[0], &mut cache, joined);
        drop((rx, tx, cache, port));
        assert_eq!(space.take_violations(), Vec::new());
    }

    #[test]
    fn ixgbevf_runtime_multicast_list() {
        runtime_multicast(VfModel::Ixgbevf(IxgbevfFlavor::X550));
    }

    #[test]
    fn iavf_runtime_multicast_list() {
        runtime_multicast(VfModel::Iavf(IavfFlavor::Xl710));
    }
}
