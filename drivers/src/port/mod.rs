//! Ports: what the workers receive packets from and send them to.
//!
//! A [`Port`] is configured once, then split into RX and TX queues; each
//! queue is owned by exactly one worker and used through `&mut`, so queues
//! need no locks. Workers are generic over the queue types: a burst call is
//! a direct (inlinable) call, never a `dyn` dispatch per packet.
//!
//! Counters are kept per queue by the queue's owner ([`QueueCounters`],
//! single writer, relaxed) and summed by [`Port::stats`] on the control
//! thread.

pub mod af_packet;
pub mod carried;
mod counters;
mod dyn_port;
pub mod null;
pub mod ring_pair;

pub use counters::QueueCounters;
pub use dyn_port::{DynPort, DynRx, DynTx};

use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::net::MacAddr;
use crate::pool::PoolCache;

/// The receive half of one queue.
pub trait RxQueue: Send {
    /// Receive up to `max` packets onto the end of `out` (never more than
    /// `out` has room for). Ports that fill buffers take them from `cache`.
    /// Returns how many were received.
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize;
}

/// The transmit half of one queue.
pub trait TxQueue: Send {
    /// Send packets from the front of `pkts`. Sent packets are removed (a
    /// port that is done with a buffer frees it into `cache`). A packet the
    /// port can never send (e.g. a length the device cannot take) is
    /// removed too: the port frees it and counts it once, under a named
    /// reason in its statistics, and goes on with the rest. Only packets
    /// the queue had no room for stay in `pkts`, in order, for the caller
    /// to retry or drop (and count). Returns how many were sent, not
    /// counting the ones the port dropped.
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize;
}

/// Link state as a port reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// What a port can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Most RX queues.
    pub max_rx_queues: usize,
    /// Most TX queues.
    pub max_tx_queues: usize,
    /// Largest frame received, in bytes.
    pub max_rx_frame: usize,
}

/// Port counters, summed over queues. Names follow DPDK's rte_eth_stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the port dropped on receive because no buffer was free.
    pub rx_nombuf: u64,
    /// Received frames dropped as bad: frame errors, frames too long for
    /// a buffer (their reasons are in [`Port::xstats`]).
    pub ierrors: u64,
    /// Packets the port dropped on send itself (igbvf: bad length;
    /// af_packet: refused by the kernel). Refusals of a full queue are the
    /// caller's to count, except that the ring port still counts them
    /// here, assuming the caller drops them.
    pub oerrors: u64,
}

/// Static facts about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Position in the port table.
    pub id: PortId,
    /// Name given by the operator or derived from the device.
    pub name: String,
    /// Kind of port ("null", "ring", "igbvf", ...).
    pub kind: &'static str,
    /// Station address.
    pub mac: MacAddr,
    /// Limits.
    pub capabilities: Capabilities,
}

/// Why a port could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// More queues asked than the port has.
    #[error("port {port}: {asked} {dir} queues asked, it has at most {max}")]
    TooManyQueues {
        /// Port name.
        port: String,
        /// "rx" or "tx".
        dir: &'static str,
        /// Asked.
        asked: usize,
        /// Maximum.
        max: usize,
    },
    /// Queues were already handed out.
    #[error("port {0}: queues were already set up")]
    AlreadyStarted(String),
    /// Bad configuration.
    #[error("port {port}: {why}")]
    Config {
        /// Port name.
        port: String,
        /// What is wrong.
        why: String,
    },
    /// The port cannot do this.
    #[error("port {port}: {kind} ports cannot {what}")]
    Unsupported {
        /// Port name.
        port: String,
        /// Port kind.
        kind: &'static str,
        /// The operation.
        what: &'static str,
    },
    /// The device failed (the message says how).
    #[error("port {port}: {why}")]
    Device {
        /// Port name.
        port: String,
        /// What failed.
        why: String,
    },
}

/// What [`Port::service`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// Nothing to report.
    Idle,
    /// The device was reset under the port (a PF-initiated reset): its
    /// queues were stopped and recovery began.
    ResetDetected,
    /// Waiting for the workers to release the queues' buffers.
    WaitingForQueues,
    /// Waiting for the device (or its PF) to come back.
    WaitingForDevice,
    /// The device is back and the queues were asked to restart.
    Recovered,
    /// A stop asked with [`Port::stop`] is complete: the device no longer
    /// DMAs and every buffer is back.
    Stopped,
}

/// What a port did with a multicast list given to
/// [`Port::set_multicast`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MulticastOutcome {
    /// The port filters by exactly the list now.
    Exact,
    /// The port receives every multicast frame already (a software port,
    /// a promiscuous socket, or a port the operator set to all-multicast):
    /// the list changes nothing.
    AcceptsAll,
    /// The list was more than the device's filter holds (or the PF refused
    /// it), so the port asked for every multicast frame instead; `why`
    /// says what the device allows.
    AllMulticast {
        /// The limit met, with its source.
        why: String,
    },
    /// The device is being reset: the list is kept and sent with its
    /// recovery.
    Pending,
    /// The device could not take the list nor all-multicast: groups
    /// beyond what it took may not be received.
    Partial {
        /// What is not in force, and why.
        why: String,
    },
}

/// A named counter for [`Port::xstats`] (DPDK's rte_eth_xstats).
pub type XStat = (&'static str, u64);

/// The RX and TX queues a port hands out, in queue order.
pub type QueueSet<R, T> = (Vec<R>, Vec<T>);

/// A port: configuration, queues, link and counters.
pub trait Port: Send {
    /// Receive queue type.
    type Rx: RxQueue;
    /// Transmit queue type.
    type Tx: TxQueue;

    /// Static facts.
    fn info(&self) -> &PortInfo;
    /// Current link state.
    fn link(&self) -> LinkState;
    /// Counters so far.
    fn stats(&self) -> PortStats;
    /// Set up `rx` receive and `tx` transmit queues and hand them out. Can
    /// be called once.
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<Self::Rx, Self::Tx>, PortError>;

    /// Every counter the port keeps, by name: drops by reason, device
    /// counters, resets. Names are stable (scripts read them).
    fn xstats(&self) -> Vec<XStat> {
        Vec::new()
    }

    /// Control-path housekeeping, called by the control thread about every
    /// 100 ms while the workers run: device counters, link, and recovery
    /// when the device was reset under the port. Never blocks for long.
    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        Ok(ServiceEvent::Idle)
    }

    /// Read the device's own counters now, rather than at the next
    /// periodic read of [`service`](Self::service) (about a second apart):
    /// called once the workers have stopped, so the final figures of a run
    /// show the device's counters up to its last frame. A device that
    /// cannot answer keeps the counters it had (the next `service` sees
    /// why).
    fn refresh_stats(&mut self) {}

    /// Stop the port while its queues stay with the workers: the device
    /// stops DMA, then the workers give every buffer back at their next
    /// burst. Completion shows as [`ServiceEvent::Stopped`] from
    /// [`service`](Self::service); until [`start`](Self::start) the
    /// queues receive and send nothing.
    fn stop(&mut self) -> Result<(), PortError> {
        Err(PortError::Unsupported {
            port: self.info().name.clone(),
            kind: self.info().kind,
            what: "stop",
        })
    }

    /// Replace the link-layer multicast groups the port receives (besides
    /// broadcast and its own MAC) with `macs`, now and after every device
    /// reset. Control path only (the same thread as
    /// [`service`](Self::service)); may wait on the device's mailbox.
    /// Every address must be a multicast one. Software ports take every
    /// frame already: the default says so.
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        check_multicast(self.info(), macs)?;
        Ok(MulticastOutcome::AcceptsAll)
    }

    /// Start a stopped port again.
    fn start(&mut self) -> Result<(), PortError> {
        Err(PortError::Unsupported {
            port: self.info().name.clone(),
            kind: self.info().kind,
            what: "start",
        })
    }
}

/// A multicast list entry that is not a multicast address is the caller's
/// mistake, named before anything is sent.
pub fn check_multicast(info: &PortInfo, macs: &[MacAddr]) -> Result<(), PortError> {
    match macs.iter().find(|m| !m.is_multicast()) {
        Some(m) => Err(PortError::Config {
            port: info.name.clone(),
            why: format!("{m} is not a multicast address (its first byte's low bit is clear)"),
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_queue_counts(info: &PortInfo, rx: usize, tx: usize) -> Result<(), PortError> {
    for (dir, asked, max) in [
        ("rx", rx, info.capabilities.max_rx_queues),
        ("tx", tx, info.capabilities.max_tx_queues),
    ] {
        if asked > max {
            return Err(PortError::TooManyQueues {
                port: info.name.clone(),
                dir,
                asked,
                max,
            });
        }
    }
    Ok(())
}
