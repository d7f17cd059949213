//! A copy of the router's tables for the operator (`fastpath show routes`,
//! `show neighbours`), made by the router's control thread on request:
//! that thread owns the model and the tables' publisher, so nothing is
//! shared with the workers and nothing is locked.

use crate::fib::NextHopId;
use crate::l3::{IpPrefix, NextHop, NextHopTable, PortIndex, RouterModel, Tables};
use drivers::net::MacAddr;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};

/// The routes the workers forward by and the neighbours the model knows.
#[derive(Debug, Clone, Default)]
pub struct TablesView {
    /// Every route of the published tables, IPv4 then IPv6, by prefix.
    pub routes: Vec<(IpPrefix, NextHopId)>,
    /// The next hops those routes point at.
    pub next_hops: NextHopTable,
    /// Every neighbour, by address then port.
    pub neighbours: Vec<(IpAddr, PortIndex, MacAddr)>,
}

impl TablesView {
    /// The view of `tables` (what the workers read) and `model`.
    pub fn new(tables: &Tables, model: &RouterModel) -> Self {
        let mut routes: Vec<(IpPrefix, NextHopId)> = tables
            .fib4()
            .routes()
            .map(|(p, id)| (IpPrefix::V4(p), id))
            .chain(tables.fib6().routes().map(|(p, id)| (IpPrefix::V6(p), id)))
            .collect();
        routes.sort();
        TablesView {
            routes,
            next_hops: tables.next_hops().clone(),
            neighbours: model.neighbours().collect(),
        }
    }

    /// The next hop `id`, if set.
    pub fn next_hop(&self, id: NextHopId) -> Option<&NextHop> {
        self.next_hops.get(id)
    }
}

/// A request for a [`TablesView`]: where to send it.
pub type TablesQuery = SyncSender<TablesView>;

/// Answers every pending query with a view made by `make` (called only
/// when one is pending). A client that gave up is no error.
pub fn answer_queries(queries: &Receiver<TablesQuery>, make: impl Fn() -> TablesView) {
    loop {
        match queries.try_recv() {
            Ok(reply) => {
                let _ = reply.try_send(make());
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
        }
    }
}
