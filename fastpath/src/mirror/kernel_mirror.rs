//! [`KernelMirror`]: the rtnetlink sockets, the initial dump, the live
//! updates and the resyncs.

use super::admit::{admit, Admission};
use super::counters::{IgnoreReason, MirrorCounters, ResyncReason};
use super::datagram::{split, Parsed};
use super::error::MirrorError;
use super::event::{IfIndex, KernelEvent};
use super::route_set::RouteUpdate;
use super::socket::{Received, RouteSocket};
use super::state::MirrorState;
use super::translate::{translate, MAIN_TABLE};
use netlink_packet_core::{NetlinkPayload, NLM_F_APPEND, NLM_F_REPLACE};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::NeighbourMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

/// The rtnetlink groups followed (enum rtnetlink_groups, linux/rtnetlink.h).
const GROUPS: [u32; 6] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_NEIGH,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV6_ROUTE,
];

/// The kernel queue asked by default for the subscription socket: room for a burst
/// of some thousands of route changes (the kernel caps it at
/// net.core.rmem_max; an overrun costs a resync, not correctness).
const EVENT_QUEUE: usize = 4 << 20;

/// How many times a dump interrupted by a concurrent change is taken again
/// before the mirror settles for it and tries later.
const DUMP_ATTEMPTS: u32 = 4;

/// How long one dump may take before the mirror gives up.
const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// The datagrams one `poll` reads at most, so a flood of changes cannot
/// hold the calling thread; the rest wait for the next call.
const DATAGRAMS_PER_POLL: usize = 256;

/// What the mirror follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The interfaces that are ours, by name (the exception interfaces).
    pub interfaces: Vec<String>,
    /// The routing table mirrored; [`MAIN_TABLE`] unless told otherwise.
    pub table: u32,
    /// The kernel queue asked for the subscription socket, in bytes
    /// (capped by net.core.rmem_max); 4 MiB unless told otherwise.
    pub event_queue: usize,
}

impl MirrorConfig {
    /// Follows the main table for these interfaces.
    pub fn new<S: Into<String>>(interfaces: impl IntoIterator<Item = S>) -> MirrorConfig {
        MirrorConfig {
            interfaces: interfaces.into_iter().map(Into::into).collect(),
            table: MAIN_TABLE,
            event_queue: EVENT_QUEUE,
        }
    }
}

/// The kernel's links, addresses, routes and neighbours for our
/// interfaces, kept in step over rtnetlink.
pub struct KernelMirror {
    events: RouteSocket,
    dumps: RouteSocket,
    names: BTreeSet<String>,
    table: u32,
    state: MirrorState,
    counters: MirrorCounters,
    /// Events not yet handed out (the initial dump's).
    pending: Vec<KernelEvent>,
    resync: Option<ResyncReason>,
    event_queue: usize,
}

/// The four dumps of a full view, links first so the others can be
/// sorted by interface.
fn dump_requests() -> [(RouteNetlinkMessage, &'static str); 4] {
    [
        (RouteNetlinkMessage::GetLink(LinkMessage::default()), "link"),
        (
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            "address",
        ),
        (
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
            "route",
        ),
        (
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
            "neighbour",
        ),
    ]
}

/// How a route add changes its prefix's routes, from the notification's
/// flags: the kernel passes on the request's NLM_F_REPLACE or NLM_F_APPEND
/// (linux/netlink.h); a plain add goes in front.
fn added_route(flags: u16) -> RouteUpdate {
    if flags & NLM_F_REPLACE != 0 {
        RouteUpdate::Replace
    } else if flags & NLM_F_APPEND != 0 {
        RouteUpdate::Append
    } else {
        RouteUpdate::Prepend
    }
}

/// Applies `ev` to `state`, a route add as `add` says.
fn apply(state: &mut MirrorState, ev: KernelEvent, add: RouteUpdate, out: &mut Vec<KernelEvent>) {
    match ev {
        KernelEvent::RouteAdd(r) => state.update_route(r, add, out),
        ev => state.apply(ev, out),
    }
}

impl KernelMirror {
    /// Subscribes to the kernel's changes, then dumps its state; the
    /// dump's events come out of the first [`poll`](Self::poll) or
    /// [`wait`](Self::wait). Subscribing first means no change between the
    /// dump and the subscription can be missed (one seen twice is harmless:
    /// the view only reports real changes).
    pub fn open(config: &MirrorConfig) -> Result<KernelMirror, MirrorError> {
        let mut events = RouteSocket::open()?;
        let event_queue = events.set_queue_size(config.event_queue)?;
        events.subscribe(&GROUPS)?;
        let mut mirror = KernelMirror {
            events,
            dumps: RouteSocket::open()?,
            names: config.interfaces.iter().cloned().collect(),
            table: config.table,
            state: MirrorState::default(),
            counters: MirrorCounters::default(),
            pending: Vec::new(),
            resync: None,
            event_queue,
        };
        let fresh = mirror.dump_all()?;
        MirrorState::default().diff(&fresh, &mut mirror.pending);
        mirror.state = fresh;
        Ok(mirror)
    }

    /// Hands out, onto `out`, the changes that are already there, without
    /// waiting; returns how many. Call it every few milliseconds, or use
    /// [`wait`](Self::wait).
    pub fn poll(&mut self, out: &mut Vec<KernelEvent>) -> Result<usize, MirrorError> {
        let start = out.len();
        out.append(&mut self.pending);
        for _ in 0..DATAGRAMS_PER_POLL {
            if !self.receive(None, out)? {
                break;
            }
        }
        self.resync_if_needed(out)?;
        let n = out.len() - start;
        self.counters.events = self.counters.events.saturating_add(n as u64);
        Ok(n)
    }

    /// Like [`poll`](Self::poll), but waits up to `timeout` for a change
    /// when there is none yet.
    pub fn wait(
        &mut self,
        timeout: Duration,
        out: &mut Vec<KernelEvent>,
    ) -> Result<usize, MirrorError> {
        let start = out.len();
        if self.pending.is_empty() && self.resync.is_none() && !timeout.is_zero() {
            self.receive(Some(timeout), out)?;
        }
        let n = out.len() - start;
        self.counters.events = self.counters.events.saturating_add(n as u64);
        Ok(n + self.poll(out)?)
    }

    /// The view: our links, their addresses, the routes in force through
    /// them, their neighbours.
    pub fn state(&self) -> &MirrorState {
        &self.state
    }

    /// The index of our interface `name`, if it exists now.
    pub fn ifindex(&self, name: &str) -> Option<IfIndex> {
        self.state
            .links()
            .find(|l| l.name == name)
            .map(|l| l.ifindex)
    }

    /// The counters.
    pub fn counters(&self) -> &MirrorCounters {
        &self.counters
    }

    /// The kernel queue the subscription socket got, in bytes.
    pub fn event_queue_bytes(&self) -> usize {
        self.event_queue
    }

    /// Reads one datagram of the subscription socket and applies it;
    /// false if there was none.
    fn receive(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<KernelEvent>,
    ) -> Result<bool, MirrorError> {
        match self.events.recv(timeout)? {
            Received::Nothing => Ok(false),
            Received::Overrun => {
                self.resync.get_or_insert(ResyncReason::Overrun);
                Ok(true)
            }
            Received::Truncated => {
                self.resync.get_or_insert(ResyncReason::Truncated);
                Ok(true)
            }
            Received::Datagram => {
                for parsed in split(self.events.datagram()) {
                    match parsed {
                        Parsed::Message { msg, .. } => match msg.payload {
                            NetlinkPayload::InnerMessage(m) => {
                                self.count_message();
                                let wants = self.live(&m, msg.header.flags, out);
                                if wants {
                                    self.resync.get_or_insert(ResyncReason::LinkChange);
                                }
                            }
                            NetlinkPayload::Overrun(_) => {
                                self.resync.get_or_insert(ResyncReason::Overrun);
                            }
                            _ => self.counters.ignore(IgnoreReason::OtherMessage),
                        },
                        Parsed::Unparsed | Parsed::Garbage => {
                            self.counters.ignore(IgnoreReason::ParseError)
                        }
                    }
                }
                Ok(true)
            }
        }
    }

    fn count_message(&mut self) {
        self.counters.messages = self.counters.messages.saturating_add(1);
    }

    /// Applies one live message (with its netlink header's flags) to the
    /// view; true if it calls for a resync.
    fn live(&mut self, m: &RouteNetlinkMessage, flags: u16, out: &mut Vec<KernelEvent>) -> bool {
        let ev = match translate(m, self.table) {
            Ok(ev) => ev,
            Err(why) => {
                self.counters.ignore(why);
                return false;
            }
        };
        match admit(&self.names, &self.state, ev) {
            Admission::Apply(ev) => {
                apply(&mut self.state, ev, added_route(flags), out);
                false
            }
            Admission::ApplyThenResync(ev) => {
                apply(&mut self.state, ev, added_route(flags), out);
                true
            }
            Admission::Ignore(why) => {
                self.counters.ignore(why);
                false
            }
        }
    }

    fn resync_if_needed(&mut self, out: &mut Vec<KernelEvent>) -> Result<(), MirrorError> {
        let Some(why) = self.resync.take() else {
            return Ok(());
        };
        self.counters.resync(why);
        let fresh = self.dump_all()?;
        self.state.diff(&fresh, out);
        self.state = fresh;
        Ok(())
    }

    /// Dumps links, addresses, routes and neighbours into a fresh view,
    /// again if a dump was interrupted (up to [`DUMP_ATTEMPTS`] times; if
    /// the last is still interrupted it is kept, and another resync is
    /// scheduled).
    fn dump_all(&mut self) -> Result<MirrorState, MirrorError> {
        let mut attempt = 1;
        loop {
            let mut fresh = MirrorState::default();
            let mut interrupted = false;
            for (req, what) in dump_requests() {
                interrupted |= self.dump_one(req, what, &mut fresh)?;
            }
            self.counters.dumps = self.counters.dumps.saturating_add(1);
            if !interrupted {
                return Ok(fresh);
            }
            self.counters.resync(ResyncReason::DumpInterrupted);
            if attempt == DUMP_ATTEMPTS {
                self.resync.get_or_insert(ResyncReason::DumpInterrupted);
                return Ok(fresh);
            }
            attempt += 1;
        }
    }

    /// One dump into `fresh`; true if the kernel flagged it interrupted.
    fn dump_one(
        &mut self,
        req: RouteNetlinkMessage,
        what: &'static str,
        fresh: &mut MirrorState,
    ) -> Result<bool, MirrorError> {
        let seq = self.dumps.request_dump(req, what)?;
        let mut interrupted = false;
        // The view's events during a dump are not reported: the dump's
        // result is compared with the old view as a whole.
        let mut unreported = Vec::new();
        loop {
            match self.dumps.recv(Some(DUMP_TIMEOUT))? {
                Received::Nothing => {
                    return Err(MirrorError::DumpTimeout {
                        what,
                        secs: DUMP_TIMEOUT.as_secs(),
                    })
                }
                // Lost answers: the dump is incomplete, take it again.
                Received::Overrun | Received::Truncated => interrupted = true,
                Received::Datagram => {}
            }
            for parsed in split(self.dumps.datagram()) {
                let (msg, intr) = match parsed {
                    Parsed::Message { msg, interrupted } => (msg, interrupted),
                    Parsed::Unparsed | Parsed::Garbage => {
                        self.counters.ignore(IgnoreReason::ParseError);
                        continue;
                    }
                };
                if msg.header.sequence_number != seq {
                    continue;
                }
                interrupted |= intr;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(interrupted),
                    NetlinkPayload::Error(e) => {
                        return Err(MirrorError::Dump {
                            what,
                            source: e.code.map_or_else(
                                || io::Error::other("error message without a code"),
                                |c| io::Error::from_raw_os_error(-c.get()),
                            ),
                        })
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        self.count_message();
                        match translate(&m, self.table) {
                            Ok(ev) => match admit(&self.names, fresh, ev) {
                                // A dump lists the routes of one metric in
                                // the kernel's order.
                                Admission::Apply(ev) | Admission::ApplyThenResync(ev) => {
                                    apply(fresh, ev, RouteUpdate::Append, &mut unreported)
                                }
                                Admission::Ignore(why) => self.counters.ignore(why),
                            },
                            Err(why) => self.counters.ignore(why),
                        }
                        unreported.clear();
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The subscription socket, for a caller that waits on several file
/// descriptors at once (poll, epoll): readable means [`KernelMirror::poll`]
/// has work. Call `poll` now and then even when it is not readable: a
/// resync put off after repeatedly interrupted dumps waits for a call.
impl AsFd for KernelMirror {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }
}
