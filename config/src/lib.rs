//! Operator configuration: CPU sets, and later fast-path.env and Kubernetes discovery.
#![forbid(unsafe_code)]

pub mod cpus;
