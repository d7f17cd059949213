//! Every kind of port the forwarder can open, behind one type.
//!
//! Workers are generic over queue types; a forwarder whose ports are of
//! different kinds uses this enum, which costs one `match` per burst (not per
//! packet). A run on one kind only (the benchmarks) can use that port type
//! directly.

use drivers::burst::Burst;
use drivers::pci::PciAddress;
use drivers::pmd::igbvf::{IgbvfError, IgbvfPort, IgbvfRx, IgbvfTx, ServiceEvent};
use drivers::pool::PoolCache;
use drivers::port::null::{NullPort, NullRx, NullTx};
use drivers::port::ring_pair::{RingPort, RingRx, RingTx};
use drivers::port::{LinkState, Port, PortError, PortInfo, PortStats, QueueSet, RxQueue, TxQueue};
use drivers::vfio::{Bar, Container, Device, DmaMapping};
use std::sync::Arc;

/// A null, ring or VF port.
#[derive(Debug)]
pub enum AnyPort {
    /// See [`NullPort`].
    Null(NullPort),
    /// See [`RingPort`].
    Ring(RingPort),
    /// An igbvf VF through vfio (boxed: it is much larger than the others).
    Igbvf(Box<VfPort>),
}

/// An igbvf VF opened through vfio, with the DMA mappings of its queues'
/// descriptor rings.
///
/// Fields drop in declaration order: the port first (it disables the
/// queues, so the device stops DMA), then the ring mappings, then the vfio
/// device. The queues themselves belong to the workers and are dropped
/// before the ports (see `Forwarder::stop`); the pool's mapping is held by
/// the forwarder and goes after every port.
#[derive(Debug)]
pub struct VfPort {
    port: IgbvfPort<Bar>,
    rings: Vec<DmaMapping>,
    address: PciAddress,
    container: Arc<Container>,
    _device: Device,
}

impl VfPort {
    /// A VF port on an opened vfio device, brought up.
    pub fn new(
        port: IgbvfPort<Bar>,
        address: PciAddress,
        container: Arc<Container>,
        device: Device,
    ) -> VfPort {
        VfPort {
            port,
            rings: Vec::new(),
            address,
            container,
            _device: device,
        }
    }

    /// The VF's PCI address.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    /// Recoveries from PF resets so far.
    pub fn recoveries(&self) -> u64 {
        self.port.recoveries()
    }

    /// Control-path housekeeping (counters, PF-reset detection and
    /// recovery); see [`IgbvfPort::service`]. Call about every 100 ms.
    pub fn service(&mut self) -> Result<ServiceEvent, IgbvfError> {
        self.port.service()
    }
}

/// Receive queue of an [`AnyPort`].
#[derive(Debug)]
pub enum AnyRx {
    /// Null.
    Null(NullRx),
    /// Ring.
    Ring(RingRx),
    /// igbvf.
    Igbvf(IgbvfRx<Bar>),
}

/// Transmit queue of an [`AnyPort`].
#[derive(Debug)]
pub enum AnyTx {
    /// Null.
    Null(NullTx),
    /// Ring.
    Ring(RingTx),
    /// igbvf.
    Igbvf(IgbvfTx<Bar>),
}

impl RxQueue for AnyRx {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        match self {
            AnyRx::Null(q) => q.rx_burst(cache, out, max),
            AnyRx::Ring(q) => q.rx_burst(cache, out, max),
            AnyRx::Igbvf(q) => q.rx_burst(cache, out, max),
        }
    }
}

impl TxQueue for AnyTx {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        match self {
            AnyTx::Null(q) => q.tx_burst(cache, pkts),
            AnyTx::Ring(q) => q.tx_burst(cache, pkts),
            AnyTx::Igbvf(q) => q.tx_burst(cache, pkts),
        }
    }
}

impl AnyPort {
    /// The VF behind this port, if it is one.
    pub fn vf_mut(&mut self) -> Option<&mut VfPort> {
        match self {
            AnyPort::Igbvf(v) => Some(v),
            _ => None,
        }
    }
}

impl Port for AnyPort {
    type Rx = AnyRx;
    type Tx = AnyTx;

    fn info(&self) -> &PortInfo {
        match self {
            AnyPort::Null(p) => p.info(),
            AnyPort::Ring(p) => p.info(),
            AnyPort::Igbvf(v) => v.port.info(),
        }
    }

    fn link(&self) -> LinkState {
        match self {
            AnyPort::Null(p) => p.link(),
            AnyPort::Ring(p) => p.link(),
            AnyPort::Igbvf(v) => v.port.link(),
        }
    }

    fn stats(&self) -> PortStats {
        match self {
            AnyPort::Null(p) => p.stats(),
            AnyPort::Ring(p) => p.stats(),
            AnyPort::Igbvf(v) => v.port.stats(),
        }
    }

    /// For a VF, also DMA-maps every queue's descriptor ring: the first
    /// burst hands the ring to the device, so it must be reachable before
    /// the queues go to the workers.
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<AnyRx, AnyTx>, PortError> {
        match self {
            AnyPort::Null(p) => {
                let (r, t) = p.queues(rx, tx)?;
                Ok((
                    r.into_iter().map(AnyRx::Null).collect(),
                    t.into_iter().map(AnyTx::Null).collect(),
                ))
            }
            AnyPort::Ring(p) => {
                let (r, t) = p.queues(rx, tx)?;
                Ok((
                    r.into_iter().map(AnyRx::Ring).collect(),
                    t.into_iter().map(AnyTx::Ring).collect(),
                ))
            }
            AnyPort::Igbvf(v) => {
                let (r, t) = v.port.queues(rx, tx)?;
                let name = v.port.info().name.clone();
                let map_err = |what: String, e: drivers::vfio::VfioError| PortError::Config {
                    port: name.clone(),
                    why: format!("cannot DMA-map the {what} descriptor ring: {e}"),
                };
                for (i, q) in r.iter().enumerate() {
                    let m = v
                        .container
                        .dma_map(q.dma_region())
                        .map_err(|e| map_err(format!("RX {i}"), e))?;
                    v.rings.push(m);
                }
                for (i, q) in t.iter().enumerate() {
                    let m = v
                        .container
                        .dma_map(q.dma_region())
                        .map_err(|e| map_err(format!("TX {i}"), e))?;
                    v.rings.push(m);
                }
                Ok((
                    r.into_iter().map(AnyRx::Igbvf).collect(),
                    t.into_iter().map(AnyTx::Igbvf).collect(),
                ))
            }
        }
    }
}
