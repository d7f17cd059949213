//! The router: tables the control side fills ([`tables`], [`model`]) and
//! the pipeline stages that forward IPv4 and IPv6 by them.
//!
//! Every packet a worker receives in L3 mode ends as exactly one of:
//! sent on a port, punted to the kernel with a [`PuntReason`], or dropped
//! with a [`DropReason`]; each reason has its own counter.
//!
//! [`PuntReason`]: crate::reasons::PuntReason
//! [`DropReason`]: crate::reasons::DropReason

pub mod model;
pub mod next_hop;
pub mod tables;

#[cfg(test)]
mod model_tests;

pub use model::{Gateway, ModelError, RouteTarget, RouterModel, Update};
pub use next_hop::{NextHop, NextHopTable, PortIndex};
pub use tables::{PortConf, TableOp, Tables, DEFAULT_MTU};
