//! Operator configuration: what an operator can say about a run, parsed
//! and validated before anything is started.
//!
//! [`run_config::RunConfig`] is the run configuration and its one
//! validation; the other modules parse and check its parts (ports, CPU
//! lists and choice, durations, pool sizing) so every front end (the
//! command line, later a fast-path.env file) reads them the same way.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod core_choice;
pub mod core_port_mapping;
pub mod cpu_list;
pub mod cpus;
pub mod duration;
pub mod env_syntax;
pub mod eth_peer;
pub mod fast_path_env;
pub mod fp_mask;
pub mod fwd_mode;
pub mod hugepage_size;
pub mod k8s;
pub mod pod_address;
pub mod pool_sizing;
pub mod port_spec;
pub mod run_config;
pub mod setting;
pub mod table_limits;
