//! The burst: a fixed-capacity array of packets moved as a unit between
//! ports, stages and pools.
//!
//! A burst never allocates: it lives on the worker's stack (or in its
//! state) with room for [`MAX_BURST`] buffers, and the configured burst size
//! (32 by default, as in DPDK) decides how many are asked for at a time.

use crate::mbuf::Mbuf;
use arrayvec::ArrayVec;

/// Largest burst a port is asked for (testpmd's MAX_PKT_BURST).
pub const MAX_BURST: usize = 512;
/// Default burst size (testpmd's and l3fwd's default).
pub const DEFAULT_BURST: usize = 32;

/// Up to [`MAX_BURST`] packets.
pub type Burst = ArrayVec<Mbuf, MAX_BURST>;
