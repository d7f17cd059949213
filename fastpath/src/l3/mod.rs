//! The router: tables the control side fills ([`tables`], [`model`]) and
//! the pipeline stages that forward IPv4 and IPv6 by them.
//!
//! Every packet a worker receives in L3 mode ends as exactly one of:
//! sent on a port, punted to the kernel with a [`PuntReason`], or dropped
//! with a [`DropReason`]; each reason has its own counter.
//!
//! [`PuntReason`]: crate::reasons::PuntReason
//! [`DropReason`]: crate::reasons::DropReason

pub mod eth_input;
pub mod fast_path;
pub mod fib_lookup;
pub mod ip4_input;
pub mod ip6_input;
pub mod ip_forward;
pub mod ip_prefix;
pub mod l3_worker;
pub mod model;
pub mod next_hop;
pub mod output;
pub mod pipeline;
pub mod published;
pub mod resolve;
pub mod rewrite;
pub mod ring_loop;
pub mod tables;

#[cfg(test)]
mod fast_path_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod pipeline_tests;

pub use ip_prefix::{IpPrefix, IpPrefixError};
pub use l3_worker::{L3Worker, SeedFrames, TablesReader, PUNT_RING_SIZE};
pub use model::{Gateway, ModelError, RouteTarget, RouterModel, Update};
pub use next_hop::{NextHop, NextHopTable, PortIndex};
pub use pipeline::{Ctx, L3Out, L3Punt, Meta, Next, Pipeline, PuntBurst};
pub use published::TablesPublisher;
pub use tables::{PortConf, TableOp, Tables, DEFAULT_MTU};
