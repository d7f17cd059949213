//! Forwarding information base: the IPv4 longest-prefix-match table
//! ([`dir24_8`]), the types it is keyed and valued by ([`next_hop`]), and a
//! plain reference implementation the property tests check it against
//! ([`reference`]); the same three for IPv6 ([`lpm6`], [`prefix6`] with the
//! shared [`NextHopId`], [`reference6`]).
//!
//! The tables are `Send + Sync` and `Clone`: lookups take `&self`, updates `&mut self`.
//! Publishing updates to the workers (RCU/QSBR snapshots) lives elsewhere.

pub mod dir24_8;
pub mod error;
mod first_level;
mod group_pool;
pub mod lpm6;
pub mod next_hop;
pub mod prefix6;
pub mod reference;
pub mod reference6;
mod rule_map;
mod span_fill;

pub use dir24_8::Dir24Lpm;
pub use error::FibError;
pub use lpm6::Lpm6;
pub use next_hop::{NextHopId, Prefix4, PrefixError};
pub use prefix6::{Prefix6, Prefix6Error};
pub use reference::ReferenceLpm;
pub use reference6::ReferenceLpm6;
