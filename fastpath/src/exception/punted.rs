//! What a worker hands the exception thread: a packet and the fast-path
//! port it came in on.
//!
//! The port travels beside the buffer, not in `mbuf.port`: the input port
//! is the RX binding the worker received the packet on, and some ports
//! (the ring ports) leave `mbuf.port` as it was.

use drivers::mbuf::{Mbuf, PortId};

/// A packet for the kernel, from port `port`.
#[derive(Debug)]
pub struct Punted {
    /// The fast-path port it was received on: its exception interface is
    /// where the kernel sees it.
    pub port: PortId,
    /// The frame, as received (Ethernet header first).
    pub mbuf: Mbuf,
}
