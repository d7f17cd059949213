//! The control side of the tables: a model of the kernel's routing state
//! that takes typed updates (what the rtnetlink mirror reports) and emits
//! the [`TableOp`]s that bring [`Tables`](super::tables::Tables) up to date.
//!
//! What a route resolves to, in order of precedence for a prefix:
//! 1. one of our addresses (a /32): [`NextHop::Local`];
//! 2. a route the kernel has (`ip route`): its gateways, port, blackhole
//!    or unreachable;
//! 3. a neighbour (port, IP) whose address falls, by longest match, in a
//!    connected route on the same port: a host route to it, resolved, so
//!    one FIB lookup gives the final next hop (the kernel keeps such
//!    neighbours in its ARP table, not as routes).
//!
//! Next hops are shared: every route through gateway G on port P points at
//! one id, whose entry becomes [`NextHop::Resolved`] when the neighbour G
//! is learned and [`NextHop::Unresolved`] when it goes. Ids are reference
//! counted and reused; an id freed in a batch is cleared at the batch's end
//! and only reused by a later batch, so no op in a batch can clobber an id
//! another op of the same batch still needs.
//!
//! IPv4 and IPv6 alike: routes are keyed by [`IpPrefix`], and the host
//! routes of neighbours are /32 or /128.

use super::ip_prefix::IpPrefix;
use super::next_hop::{NextHop, PortIndex};
use super::tables::{PortConf, TableOp};
use crate::fib::NextHopId;
use config::table_limits::TableLimits;
use drivers::net::MacAddr;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// A gateway of a route: its address and the port it is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gateway {
    /// Output port.
    pub port: PortIndex,
    /// Its address.
    pub ip: IpAddr,
}

/// What a kernel route says to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Through one or more gateways (more than one: ECMP).
    Via(Vec<Gateway>),
    /// Directly connected on a port (`proto kernel scope link`): the
    /// destination itself is the neighbour.
    Connected(PortIndex),
    /// `blackhole`.
    Blackhole,
    /// `unreachable` or `prohibit`.
    Unreachable,
}

/// A change in the kernel's state, as the mirror reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A route added or replaced.
    RouteAdd {
        /// Destination.
        prefix: IpPrefix,
        /// What to do.
        target: RouteTarget,
    },
    /// A route removed.
    RouteDel {
        /// Destination.
        prefix: IpPrefix,
    },
    /// A neighbour learned or changed (reachable, stale, permanent...).
    NeighAdd {
        /// Where.
        port: PortIndex,
        /// Its address.
        ip: IpAddr,
        /// Its link address.
        mac: MacAddr,
    },
    /// A neighbour gone (or failed).
    NeighDel {
        /// Where.
        port: PortIndex,
        /// Its address.
        ip: IpAddr,
    },
    /// An address of ours added to a port.
    AddrAdd {
        /// Where.
        port: PortIndex,
        /// The address.
        ip: IpAddr,
    },
    /// An address of ours removed.
    AddrDel {
        /// Where.
        port: PortIndex,
        /// The address.
        ip: IpAddr,
    },
    /// A port's MAC address or MTU.
    Port {
        /// Which.
        port: PortIndex,
        /// Its configuration.
        conf: PortConf,
    },
}

/// An update the model refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A multipath route with no gateway.
    #[error("route {0} has no gateway")]
    NoGateway(IpPrefix),
    /// A route through a gateway of the other family (RFC 5549's IPv4
    /// over IPv6 next hops is not supported).
    #[error("route {prefix} through gateway {gateway} of the other family")]
    GatewayFamily {
        /// The route.
        prefix: IpPrefix,
        /// The gateway.
        gateway: IpAddr,
    },
    /// Every next-hop id is in use.
    #[error("next-hop ids exhausted ({0} in use)")]
    NextHopsExhausted(u32),
    /// A new route beyond `--max-routes` (FP_OPTIONS `--max-route`).
    #[error("route {prefix} refused: the route table is full ({max} routes, --max-routes)")]
    RoutesFull {
        /// The route.
        prefix: IpPrefix,
        /// The limit.
        max: usize,
    },
    /// A new neighbour beyond `--max-neighbours` (FP_OPTIONS `--max-neigh`).
    #[error(
        "neighbour {ip} refused: the neighbour table is full ({max} neighbours, --max-neighbours)"
    )]
    NeighboursFull {
        /// The neighbour.
        ip: IpAddr,
        /// The limit.
        max: usize,
    },
}

/// What a FIB entry is made to point at; equal keys share one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NhKey {
    /// A neighbour (gateway or host) on a port.
    Neighbour(Gateway),
    /// A connected route's port.
    Connected(PortIndex),
    Local,
    Blackhole,
    Unreachable,
    /// ECMP over sorted, distinct gateways.
    Group(Vec<Gateway>),
}

#[derive(Debug, Clone, Copy)]
struct Held {
    id: NextHopId,
    refs: usize,
}

/// The control side's model (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct RouterModel {
    routes: BTreeMap<IpPrefix, RouteTarget>,
    /// Our addresses, with the ports holding them.
    addrs: BTreeSet<(IpAddr, PortIndex)>,
    /// Neighbours, ordered by address so a prefix's are one range.
    neighbours: BTreeMap<(IpAddr, PortIndex), MacAddr>,
    /// What each FIB prefix points at now.
    installed: BTreeMap<IpPrefix, NhKey>,
    ids: HashMap<NhKey, Held>,
    /// The value last sent for each id.
    values: HashMap<NextHopId, NextHop>,
    free: Vec<NextHopId>,
    next_id: u32,
    /// Ids released in the current batch, cleared at its end.
    released: Vec<NextHopId>,
    /// Most routes and neighbours taken.
    limits: TableLimits,
}

impl RouterModel {
    /// An empty model (matching empty [`Tables`](super::tables::Tables)).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty model that refuses routes and neighbours beyond `limits`
    /// ([`ModelError::RoutesFull`], [`ModelError::NeighboursFull`]).
    pub fn with_limits(limits: TableLimits) -> Self {
        RouterModel {
            limits,
            ..Self::default()
        }
    }

    /// Takes one update and appends the ops it needs to `ops`. A refused
    /// update changes nothing, except when next-hop ids run out midway:
    /// then the ops appended so far must still be applied (they keep the
    /// tables and the model in step).
    pub fn update(&mut self, u: &Update, ops: &mut Vec<TableOp>) -> Result<(), ModelError> {
        let result = self.take(u, ops);
        self.end_batch(ops);
        result
    }

    fn take(&mut self, u: &Update, ops: &mut Vec<TableOp>) -> Result<(), ModelError> {
        match u {
            Update::RouteAdd { prefix, target } => {
                check_target(*prefix, target)?;
                match self.limits.max_routes {
                    Some(max) if self.routes.len() >= max && !self.routes.contains_key(prefix) => {
                        return Err(ModelError::RoutesFull {
                            prefix: *prefix,
                            max,
                        });
                    }
                    _ => {}
                }
                let target = normalise(target);
                self.routes.insert(*prefix, target);
                self.route_changed(*prefix, ops)?;
            }
            Update::RouteDel { prefix } => {
                if self.routes.remove(prefix).is_some() {
                    self.route_changed(*prefix, ops)?;
                }
            }
            Update::NeighAdd { port, ip, mac } => {
                let key = (*ip, *port);
                match self.limits.max_neighbours {
                    Some(max)
                        if self.neighbours.len() >= max && !self.neighbours.contains_key(&key) =>
                    {
                        return Err(ModelError::NeighboursFull { ip: *ip, max });
                    }
                    _ => {}
                }
                if self.neighbours.insert(key, *mac) != Some(*mac) {
                    self.neighbour_changed(*port, *ip, ops)?;
                }
            }
            Update::NeighDel { port, ip } => {
                if self.neighbours.remove(&(*ip, *port)).is_some() {
                    self.neighbour_changed(*port, *ip, ops)?;
                }
            }
            Update::AddrAdd { port, ip } => {
                if self.addrs.insert((*ip, *port)) {
                    self.host_changed(*ip, ops)?;
                }
            }
            Update::AddrDel { port, ip } => {
                if self.addrs.remove(&(*ip, *port)) {
                    self.host_changed(*ip, ops)?;
                }
            }
            Update::Port { port, conf } => ops.push(TableOp::SetPort {
                port: *port,
                conf: *conf,
            }),
        }
        Ok(())
    }

    /// Takes updates in order, returning the ops of all of them; stops at
    /// the first refused update (the ops before it are returned with the
    /// error's index, and must still be applied).
    pub fn update_all<'a>(
        &mut self,
        updates: impl IntoIterator<Item = &'a Update>,
    ) -> (Vec<TableOp>, Result<(), (usize, ModelError)>) {
        let mut ops = Vec::new();
        for (i, u) in updates.into_iter().enumerate() {
            if let Err(e) = self.update(u, &mut ops) {
                return (ops, Err((i, e)));
            }
        }
        (ops, Ok(()))
    }

    /// Routes installed in the FIB.
    pub fn installed_routes(&self) -> usize {
        self.installed.len()
    }

    /// Next-hop ids in use.
    pub fn next_hops_in_use(&self) -> usize {
        self.ids.len()
    }

    /// Every neighbour: address, port, link address; by address.
    pub fn neighbours(&self) -> impl Iterator<Item = (IpAddr, PortIndex, MacAddr)> + '_ {
        self.neighbours
            .iter()
            .map(|(&(ip, port), &mac)| (ip, port, mac))
    }

    fn route_changed(
        &mut self,
        prefix: IpPrefix,
        ops: &mut Vec<TableOp>,
    ) -> Result<(), ModelError> {
        self.reevaluate(prefix, ops)?;
        // Which neighbours get host routes depends on the longest-matching
        // route of each, so any route change may move those inside it.
        let hosts: Vec<IpAddr> = self.neighbours_in(prefix).collect();
        for h in hosts {
            self.host_changed(h, ops)?;
        }
        Ok(())
    }

    fn neighbour_changed(
        &mut self,
        port: PortIndex,
        ip: IpAddr,
        ops: &mut Vec<TableOp>,
    ) -> Result<(), ModelError> {
        let key = NhKey::Neighbour(Gateway { port, ip });
        if let Some(held) = self.ids.get(&key).copied() {
            self.send_value(held.id, &key, ops);
        }
        self.host_changed(ip, ops)
    }

    /// Re-evaluates the host prefix of `ip` (an address or neighbour
    /// changed).
    fn host_changed(&mut self, ip: IpAddr, ops: &mut Vec<TableOp>) -> Result<(), ModelError> {
        self.reevaluate(IpPrefix::host(ip), ops)
    }

    fn neighbours_in(&self, prefix: IpPrefix) -> impl Iterator<Item = IpAddr> + '_ {
        let (first, last_addr) = prefix.bounds();
        let lo = (first, PortIndex(0));
        let hi = (last_addr, PortIndex(u16::MAX));
        let mut last = None;
        self.neighbours
            .range(lo..=hi)
            .filter_map(move |((ip, _), _)| {
                // One entry per address, whatever the ports.
                (last.replace(*ip) != Some(*ip)).then_some(*ip)
            })
    }

    /// What `prefix` should point at now.
    fn wanted(&self, prefix: IpPrefix) -> Option<NhKey> {
        let host = prefix.host_addr();
        if let Some(ip) = host {
            let lo = (ip, PortIndex(0));
            let hi = (ip, PortIndex(u16::MAX));
            if self.addrs.range(lo..=hi).next().is_some() {
                return Some(NhKey::Local);
            }
        }
        let exact = self.routes.get(&prefix);
        if let Some(t) = exact {
            return Some(match (t, host) {
                // A connected /32 to a known neighbour: that neighbour.
                (RouteTarget::Connected(port), Some(ip))
                    if self.neighbours.contains_key(&(ip, *port)) =>
                {
                    NhKey::Neighbour(Gateway { port: *port, ip })
                }
                _ => key_of(t),
            });
        }
        let ip = host?;
        // A neighbour on the port of the connected route that covers it.
        let covering = IpPrefix::covering(ip).find_map(|p| self.routes.get(&p))?;
        match covering {
            RouteTarget::Connected(port) if self.neighbours.contains_key(&(ip, *port)) => {
                Some(NhKey::Neighbour(Gateway { port: *port, ip }))
            }
            _ => None,
        }
    }

    fn reevaluate(&mut self, prefix: IpPrefix, ops: &mut Vec<TableOp>) -> Result<(), ModelError> {
        let want = self.wanted(prefix);
        let have = self.installed.get(&prefix);
        if want.as_ref() == have {
            return Ok(());
        }
        match want {
            Some(key) => {
                let id = self.acquire(&key, ops)?;
                ops.push(match prefix {
                    IpPrefix::V4(prefix) => TableOp::AddRoute4 {
                        prefix,
                        next_hop: id,
                    },
                    IpPrefix::V6(prefix) => TableOp::AddRoute6 {
                        prefix,
                        next_hop: id,
                    },
                });
                if let Some(old) = self.installed.insert(prefix, key) {
                    self.release(&old);
                }
            }
            None => {
                ops.push(match prefix {
                    IpPrefix::V4(prefix) => TableOp::DelRoute4 { prefix },
                    IpPrefix::V6(prefix) => TableOp::DelRoute6 { prefix },
                });
                if let Some(old) = self.installed.remove(&prefix) {
                    self.release(&old);
                }
            }
        }
        Ok(())
    }

    fn acquire(&mut self, key: &NhKey, ops: &mut Vec<TableOp>) -> Result<NextHopId, ModelError> {
        if let Some(held) = self.ids.get_mut(key) {
            held.refs += 1;
            return Ok(held.id);
        }
        // A group holds its members, each a next hop of its own.
        let members = match key {
            NhKey::Group(gws) => {
                let mut ids = Vec::with_capacity(gws.len());
                for g in gws {
                    match self.acquire(&NhKey::Neighbour(*g), ops) {
                        Ok(id) => ids.push(id),
                        Err(e) => {
                            for g in &gws[..ids.len()] {
                                self.release(&NhKey::Neighbour(*g));
                            }
                            return Err(e);
                        }
                    }
                }
                Some(ids)
            }
            _ => None,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.next_id <= crate::fib::dir24_8::MAX_NEXT_HOP => {
                self.next_id += 1;
                NextHopId(self.next_id - 1)
            }
            None => {
                if let NhKey::Group(gws) = key {
                    for g in gws {
                        self.release(&NhKey::Neighbour(*g));
                    }
                }
                return Err(ModelError::NextHopsExhausted(self.next_id));
            }
        };
        self.ids.insert(key.clone(), Held { id, refs: 1 });
        let value = match members {
            Some(ids) => NextHop::Multipath(ids.into()),
            None => self.value_of(key),
        };
        self.values.insert(id, value.clone());
        ops.push(TableOp::SetNextHop {
            id,
            next_hop: value,
        });
        Ok(id)
    }

    fn release(&mut self, key: &NhKey) {
        let Some(held) = self.ids.get_mut(key) else {
            return;
        };
        held.refs -= 1;
        if held.refs > 0 {
            return;
        }
        let id = held.id;
        self.ids.remove(key);
        self.values.remove(&id);
        self.released.push(id);
        if let NhKey::Group(gws) = key {
            for g in gws {
                self.release(&NhKey::Neighbour(*g));
            }
        }
    }

    /// Sends `key`'s current value for `id` if it differs from the last.
    fn send_value(&mut self, id: NextHopId, key: &NhKey, ops: &mut Vec<TableOp>) {
        let value = self.value_of(key);
        if self.values.get(&id) != Some(&value) {
            self.values.insert(id, value.clone());
            ops.push(TableOp::SetNextHop {
                id,
                next_hop: value,
            });
        }
    }

    /// The value of a non-group key from the current neighbours.
    fn value_of(&self, key: &NhKey) -> NextHop {
        match key {
            NhKey::Neighbour(g) => match self.neighbours.get(&(g.ip, g.port)) {
                Some(mac) => NextHop::Resolved {
                    port: g.port,
                    mac: *mac,
                },
                None => NextHop::Unresolved {
                    port: g.port,
                    via: Some(g.ip),
                },
            },
            NhKey::Connected(port) => NextHop::Unresolved {
                port: *port,
                via: None,
            },
            NhKey::Local => NextHop::Local,
            NhKey::Blackhole => NextHop::Blackhole,
            NhKey::Unreachable => NextHop::Unreachable,
            // Groups are valued from their members' ids in `acquire`.
            NhKey::Group(_) => NextHop::Multipath(Box::new([])),
        }
    }

    fn end_batch(&mut self, ops: &mut Vec<TableOp>) {
        for id in self.released.drain(..) {
            ops.push(TableOp::ClearNextHop { id });
            self.free.push(id);
        }
    }
}

fn check_target(prefix: IpPrefix, t: &RouteTarget) -> Result<(), ModelError> {
    if let RouteTarget::Via(gws) = t {
        if gws.is_empty() {
            return Err(ModelError::NoGateway(prefix));
        }
        if let Some(g) = gws.iter().find(|g| g.ip.is_ipv6() != prefix.is_v6()) {
            return Err(ModelError::GatewayFamily {
                prefix,
                gateway: g.ip,
            });
        }
    }
    Ok(())
}

/// Gateways sorted and deduplicated, so equal groups share an id.
fn normalise(t: &RouteTarget) -> RouteTarget {
    match t {
        RouteTarget::Via(gws) => {
            let mut gws = gws.clone();
            gws.sort();
            gws.dedup();
            RouteTarget::Via(gws)
        }
        t => t.clone(),
    }
}

fn key_of(t: &RouteTarget) -> NhKey {
    match t {
        RouteTarget::Via(gws) => match gws.as_slice() {
            [one] => NhKey::Neighbour(*one),
            _ => NhKey::Group(gws.clone()),
        },
        RouteTarget::Connected(port) => NhKey::Connected(*port),
        RouteTarget::Blackhole => NhKey::Blackhole,
        RouteTarget::Unreachable => NhKey::Unreachable,
    }
}
