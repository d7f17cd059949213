//! Everything in fastpath that touches a device, raw memory or a system call.
//!
//! All `unsafe` code of the project lives in this crate, behind small,
//! documented chokepoints; the other crates forbid it. The hot-path types are
//! here too: [`mbuf::Mbuf`] (a packet buffer), [`pool::Pool`] with its per-core
//! [`pool::PoolCache`], the lock-free [`ring::Ring`], and the [`port`] traits
//! with the software ports.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(not(loom))]
pub mod mmio;
pub mod rcu;
pub mod ring;
pub mod sync;

#[cfg(not(loom))]
pub mod burst;
#[cfg(not(loom))]
pub mod cpu;
#[cfg(not(loom))]
pub mod exception;
#[cfg(not(loom))]
pub mod lab_frames;
#[cfg(not(loom))]
pub mod mbuf;
#[cfg(not(loom))]
pub mod memory;
#[cfg(not(loom))]
pub mod net;
#[cfg(not(loom))]
pub mod pci;
#[cfg(not(loom))]
pub mod pmd;
#[cfg(not(loom))]
pub mod pool;
#[cfg(not(loom))]
pub mod port;
/// Device models for tests: no hardware. Test and `sim` builds only.
#[cfg(all(not(loom), any(test, feature = "sim")))]
pub mod sim;
pub mod test_netns;
pub mod testing;
#[cfg(not(loom))]
pub mod vfio;
