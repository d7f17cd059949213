//! A port of any kind behind one type, for the control side: device
//! drivers hand out [`DynPort`]s, so the code that runs ports never names
//! a driver. The cost is one indirect call per burst (never per packet).

use super::{
    LinkState, MulticastOutcome, Port, PortError, PortInfo, PortStats, QueueSet, RxQueue,
    ServiceEvent, TxQueue, XStat,
};
use crate::burst::Burst;
use crate::net::MacAddr;
use crate::pool::PoolCache;
use std::fmt;

/// A receive queue of a [`DynPort`].
pub type DynRx = Box<dyn RxQueue>;
/// A transmit queue of a [`DynPort`].
pub type DynTx = Box<dyn TxQueue>;

impl RxQueue for DynRx {
    #[inline]
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        (**self).rx_burst(cache, out, max)
    }
}

impl TxQueue for DynTx {
    #[inline]
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        (**self).tx_burst(cache, pkts)
    }
}

/// The object-safe face of a [`Port`].
trait ObjectPort: Send + fmt::Debug {
    fn info(&self) -> &PortInfo;
    fn link(&self) -> LinkState;
    fn stats(&self) -> PortStats;
    fn xstats(&self) -> Vec<XStat>;
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<DynRx, DynTx>, PortError>;
    fn service(&mut self) -> Result<ServiceEvent, PortError>;
    fn refresh_stats(&mut self);
    fn stop(&mut self) -> Result<(), PortError>;
    fn start(&mut self) -> Result<(), PortError>;
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError>;
}

impl<P> ObjectPort for P
where
    P: Port + fmt::Debug,
    P::Rx: 'static,
    P::Tx: 'static,
{
    fn info(&self) -> &PortInfo {
        Port::info(self)
    }
    fn link(&self) -> LinkState {
        Port::link(self)
    }
    fn stats(&self) -> PortStats {
        Port::stats(self)
    }
    fn xstats(&self) -> Vec<XStat> {
        Port::xstats(self)
    }
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<DynRx, DynTx>, PortError> {
        let (r, t) = Port::queues(self, rx, tx)?;
        Ok((
            r.into_iter().map(|q| Box::new(q) as DynRx).collect(),
            t.into_iter().map(|q| Box::new(q) as DynTx).collect(),
        ))
    }
    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        Port::service(self)
    }
    fn refresh_stats(&mut self) {
        Port::refresh_stats(self)
    }
    fn stop(&mut self) -> Result<(), PortError> {
        Port::stop(self)
    }
    fn start(&mut self) -> Result<(), PortError> {
        Port::start(self)
    }
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        Port::set_multicast(self, macs)
    }
}

/// Any port, boxed.
#[derive(Debug)]
pub struct DynPort(Box<dyn ObjectPort>);

impl DynPort {
    /// Box a port.
    pub fn new<P>(port: P) -> DynPort
    where
        P: Port + fmt::Debug + 'static,
        P::Rx: 'static,
        P::Tx: 'static,
    {
        DynPort(Box::new(port))
    }
}

impl Port for DynPort {
    type Rx = DynRx;
    type Tx = DynTx;

    fn info(&self) -> &PortInfo {
        self.0.info()
    }
    fn link(&self) -> LinkState {
        self.0.link()
    }
    fn stats(&self) -> PortStats {
        self.0.stats()
    }
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<DynRx, DynTx>, PortError> {
        self.0.queues(rx, tx)
    }
    fn xstats(&self) -> Vec<XStat> {
        self.0.xstats()
    }
    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        self.0.service()
    }
    fn refresh_stats(&mut self) {
        self.0.refresh_stats()
    }
    fn stop(&mut self) -> Result<(), PortError> {
        self.0.stop()
    }
    fn start(&mut self) -> Result<(), PortError> {
        self.0.start()
    }
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        self.0.set_multicast(macs)
    }
}
