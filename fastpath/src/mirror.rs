//! The kernel mirror: follows the pod kernel's links, addresses, routes
//! and neighbours over rtnetlink, for the interfaces the fast path owns
//! (its exception interfaces), and reports each change as a typed
//! [`KernelEvent`].
//!
//! [`KernelMirror::open`] subscribes to the rtnetlink groups, then dumps
//! the kernel's state; [`KernelMirror::poll`] (non-blocking) or
//! [`KernelMirror::wait`] (blocking, with a timeout) hand out the events.
//! Messages about other interfaces, other tables or unsupported route
//! types are ignored and counted ([`MirrorCounters`]); when events were
//! lost (socket overrun, interrupted dump) the mirror dumps again and
//! reports the difference, so the caller sees only adds and deletes.
//!
//! A control thread runs it like this:
//!
//! ```no_run
//! use fastpath::mirror::{KernelEvent, KernelMirror, MirrorConfig};
//! use std::time::Duration;
//!
//! let mut mirror = KernelMirror::open(&MirrorConfig::new(["fp0", "fp1"]))?;
//! let mut events = Vec::new();
//! loop {
//!     mirror.wait(Duration::from_millis(10), &mut events)?;
//!     for ev in events.drain(..) {
//!         match ev {
//!             KernelEvent::RouteAdd(route) => { /* the route in force for route.prefix */ }
//!             KernelEvent::RouteDel(route) => { /* no route left for route.prefix */ }
//!             other => println!("{other}"),
//!         }
//!     }
//! }
//! # Ok::<(), fastpath::mirror::MirrorError>(())
//! ```
//!
//! Routes are reported per (table, prefix): of the kernel's routes to a
//! prefix (several metrics, IPv4 alternatives appended at one metric) only
//! the one in force, the first of the lowest metric ([`RouteSet`]). The
//! pieces, one per file: [`translate()`] (netlink message to event),
//! [`admit()`] (ours or not), [`MirrorState`] and [`RouteSet`] (the view),
//! [`datagram`] and [`socket`] (the wire), [`KernelMirror`] (all of it).

pub mod admit;
pub mod counters;
pub mod datagram;
pub mod error;
pub mod event;
pub mod kernel_mirror;
pub mod route_set;
pub mod socket;
pub mod state;
pub mod translate;

pub use admit::{admit, Admission};
pub use counters::{IgnoreReason, MirrorCounters, ResyncReason};
pub use error::MirrorError;
pub use event::{
    Addr, IfIndex, KernelEvent, Link, Neigh, NeighState, NextHop, Route, RouteKind, RoutePrefix,
};
pub use kernel_mirror::{KernelMirror, MirrorConfig};
pub use route_set::{RouteSet, RouteUpdate};
pub use state::MirrorState;
pub use translate::{translate, MAIN_TABLE};
