//! Forwarding information base: the IPv4 longest-prefix-match table
//! ([`dir24_8`]), the types it is keyed and valued by ([`next_hop`]), and a
//! plain reference implementation the property tests check it against
//! ([`reference`]).
//!
//! The table is `Send + Sync`: lookups take `&self`, updates `&mut self`.
//! Publishing updates to the workers (RCU/QSBR snapshots) lives elsewhere.

pub mod dir24_8;
pub mod error;
pub mod next_hop;
pub mod reference;

pub use dir24_8::Dir24Lpm;
pub use error::FibError;
pub use next_hop::{NextHopId, Prefix4, PrefixError};
pub use reference::ReferenceLpm;
