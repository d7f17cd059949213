//! The data the pipeline stages read, and the operations that change it.
//!
//! [`Tables`] is what a worker holds a shared reference to. It changes only
//! through [`Tables::apply`] with a [`TableOp`]: the control side
//! ([`super::model::RouterModel`]) turns kernel events into op batches, and
//! a left-right (or RCU) publisher applies each batch to its copies. The
//! same ops in the same order give the same tables, whatever the copy, so
//! `apply` is deterministic and never consults anything but the op.

use super::next_hop::{NextHop, NextHopTable, PortIndex};
use crate::fib::{Dir24Lpm, Lpm6, NextHopId, Prefix4, Prefix6};
use drivers::net::MacAddr;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The Ethernet MTU (RFC 894) when a port has not been told otherwise.
pub const DEFAULT_MTU: u16 = 1500;

/// What the pipeline needs to know of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConf {
    /// Its station address: the source of frames sent, and the unicast
    /// destination it accepts.
    pub mac: MacAddr,
    /// The largest IP packet it sends (layer 3 MTU, as `ip link` shows).
    pub mtu: u16,
}

/// One change to [`Tables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOp {
    /// Set (or replace) next hop `id`.
    SetNextHop {
        /// Which.
        id: NextHopId,
        /// Its new value.
        next_hop: NextHop,
    },
    /// Unset next hop `id` (no route points at it any more).
    ClearNextHop {
        /// Which.
        id: NextHopId,
    },
    /// Add or replace an IPv4 route.
    AddRoute4 {
        /// Destination prefix.
        prefix: Prefix4,
        /// Its next hop, set by an earlier op.
        next_hop: NextHopId,
    },
    /// Remove an IPv4 route.
    DelRoute4 {
        /// Destination prefix.
        prefix: Prefix4,
    },
    /// Add or replace an IPv6 route.
    AddRoute6 {
        /// Destination prefix.
        prefix: Prefix6,
        /// Its next hop, set by an earlier op.
        next_hop: NextHopId,
    },
    /// Remove an IPv6 route.
    DelRoute6 {
        /// Destination prefix.
        prefix: Prefix6,
    },
    /// Set a port's address and MTU (growing the port list as needed).
    SetPort {
        /// Which.
        port: PortIndex,
        /// Its configuration.
        conf: PortConf,
    },
}

/// FIBs, next hops and ports: everything the stages look up.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    fib4: Dir24Lpm,
    fib6: Lpm6,
    next_hops: NextHopTable,
    ports: Vec<Option<PortConf>>,
    failed_ops: u64,
}

impl Tables {
    /// Empty tables: no route, no port.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty tables over a given IPv4 FIB (e.g. one with a larger group
    /// pool).
    pub fn with_fib4(fib4: Dir24Lpm) -> Self {
        Tables {
            fib4,
            ..Self::default()
        }
    }

    /// Applies one op. An op the tables refuse (the FIB's group pool
    /// exhausted, a next-hop id beyond what the FIB holds) leaves them as
    /// they were and is counted in [`Tables::failed_ops`]; the refusal is
    /// the same on every copy.
    pub fn apply(&mut self, op: &TableOp) {
        match op {
            TableOp::SetNextHop { id, next_hop } => {
                if !self.next_hops.set(*id, next_hop.clone()) {
                    self.failed_ops += 1;
                }
            }
            TableOp::ClearNextHop { id } => self.next_hops.clear(*id),
            TableOp::AddRoute4 { prefix, next_hop } => {
                if self.fib4.add(*prefix, *next_hop).is_err() {
                    self.failed_ops += 1;
                }
            }
            TableOp::DelRoute4 { prefix } => {
                self.fib4.delete(*prefix);
            }
            TableOp::AddRoute6 { prefix, next_hop } => {
                if self.fib6.add(*prefix, *next_hop).is_err() {
                    self.failed_ops += 1;
                }
            }
            TableOp::DelRoute6 { prefix } => {
                self.fib6.delete(*prefix);
            }
            TableOp::SetPort { port, conf } => {
                let i = port.index();
                if i >= self.ports.len() {
                    self.ports.resize(i + 1, None);
                }
                if let Some(p) = self.ports.get_mut(i) {
                    *p = Some(*conf);
                }
            }
        }
    }

    /// Applies a batch, in order.
    pub fn apply_all<'a>(&mut self, ops: impl IntoIterator<Item = &'a TableOp>) {
        for op in ops {
            self.apply(op);
        }
    }

    /// The IPv4 FIB.
    #[inline]
    pub fn fib4(&self) -> &Dir24Lpm {
        &self.fib4
    }

    /// The IPv6 FIB.
    #[inline]
    pub fn fib6(&self) -> &Lpm6 {
        &self.fib6
    }

    /// The next hops.
    #[inline]
    pub fn next_hops(&self) -> &NextHopTable {
        &self.next_hops
    }

    /// A port's configuration, if set.
    #[inline]
    pub fn port(&self, port: PortIndex) -> Option<&PortConf> {
        self.ports.get(port.index())?.as_ref()
    }

    /// The IPv4 route's next hop for `dst` and flow hash `hash` (a group
    /// resolved to one member).
    #[inline]
    pub fn route4(&self, dst: Ipv4Addr, hash: u32) -> Option<&NextHop> {
        self.next_hops.select(self.fib4.lookup(dst)?, hash)
    }

    /// The IPv6 route's next hop for `dst` and flow hash `hash`.
    #[inline]
    pub fn route6(&self, dst: Ipv6Addr, hash: u32) -> Option<&NextHop> {
        self.next_hops.select(self.fib6.lookup(dst)?, hash)
    }

    /// Ops the FIB refused (see [`Tables::apply`]).
    pub fn failed_ops(&self) -> u64 {
        self.failed_ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_build_a_route_to_a_port() {
        let mut t = Tables::new();
        let nh = NextHop::Resolved {
            port: PortIndex(1),
            mac: MacAddr::local(7),
        };
        let conf = PortConf {
            mac: MacAddr::local(1),
            mtu: 9000,
        };
        t.apply_all(&[
            TableOp::SetPort {
                port: PortIndex(1),
                conf,
            },
            TableOp::SetNextHop {
                id: NextHopId(0),
                next_hop: nh.clone(),
            },
            TableOp::AddRoute4 {
                prefix: "10.0.0.0/8".parse().unwrap(),
                next_hop: NextHopId(0),
            },
        ]);
        assert_eq!(t.route4(Ipv4Addr::new(10, 9, 9, 9), 0), Some(&nh));
        assert_eq!(t.route4(Ipv4Addr::new(11, 0, 0, 0), 0), None);
        assert_eq!(t.port(PortIndex(1)), Some(&conf));
        assert_eq!(t.port(PortIndex(0)), None);
        t.apply(&TableOp::DelRoute4 {
            prefix: "10.0.0.0/8".parse().unwrap(),
        });
        t.apply(&TableOp::ClearNextHop { id: NextHopId(0) });
        assert_eq!(t.route4(Ipv4Addr::new(10, 9, 9, 9), 0), None);
        assert!(t.next_hops().is_empty());
        assert_eq!(t.failed_ops(), 0);
    }
}
