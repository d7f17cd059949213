//! The fast path: per-core workers that move packets between ports, their
//! counters, and the forwarder that starts, watches and stops them.
//!
//! Everything here is safe code; devices, memory and system calls are behind
//! the `drivers` crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod advice;
pub mod any_port;
pub mod check;
pub mod cli;
pub mod companion;
pub mod control;
pub mod counters;
pub mod demo;
pub mod exception;
pub mod fib;
pub mod forwarder;
pub mod fwd_mode;
pub mod l3;
pub mod mirror;
pub mod packet;
pub mod port_drops;
pub mod reasons;
pub mod report;
pub mod router;
pub mod run;
pub mod rx_plan;
pub mod sim_ports;
pub mod stop_signals;
pub mod summary_json;
pub mod tables;
pub mod worker;
