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
mod counters;
pub mod null;
pub mod ring_pair;

pub use counters::QueueCounters;

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
}

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
