//! [`RawBuf`]: a pool buffer handed out or taken back without touching its
//! header, what DPDK's `rte_mempool_get_bulk` / `rte_mempool_put_bulk` do
//! with mbufs (an object pointer, nothing read or written in it).
//!
//! What it is for: code that takes buffers long before it uses them as
//! packets, and should not pay the header reset twice or touch a cold line
//! early. A receive queue refilling its descriptor ring needs only each
//! buffer's bus address (fixed for the buffer's life) and makes it a packet
//! when the device has written a frame into it; a stash of spare buffers
//! moves them in bulk between cores.
//!
//! What keeps it safe: a `RawBuf` is not an [`Mbuf`]. Its header may still
//! hold whatever its last user left there (length, port, flags), so it
//! offers nothing that reads those fields; [`RawBuf::into_mbuf`] resets the
//! header and is the only way to a packet. An `Mbuf` can be given up raw
//! ([`RawBuf::from`]) since nothing of its state is trusted afterwards.
//! Dropping a `RawBuf` returns it to its pool, as dropping an `Mbuf` does.

use crate::mbuf::Mbuf;
use crate::memory::Iova;

/// A buffer owned but not initialised as a packet (see the module docs).
///
/// Same size and representation as [`Mbuf`] (one pointer), so moving one
/// costs what moving a pointer does.
#[repr(transparent)]
pub struct RawBuf(Mbuf);

impl RawBuf {
    /// Make it a packet: its header is reset (empty, headroom restored, no
    /// port, no flags), as a buffer from [`PoolCache::alloc`] is.
    ///
    /// [`PoolCache::alloc`]: super::PoolCache::alloc
    #[inline(always)]
    pub fn into_mbuf(self) -> Mbuf {
        let mut m = self.0;
        m.reset();
        m
    }

    /// The bus address of the start of the buffer (its headroom), what a
    /// receive descriptor is given. Set when the pool was built and never
    /// changed, so it is valid whatever the last user did.
    #[inline(always)]
    pub fn buf_iova(&self) -> Iova {
        self.0.buf_iova()
    }

    /// Index of this buffer within its pool (set when the pool was built).
    #[inline(always)]
    pub fn index(&self) -> u32 {
        self.0.index()
    }
}

impl From<Mbuf> for RawBuf {
    /// Give a packet up as a raw buffer (to hand back with
    /// [`PoolCache::put_bulk`](super::PoolCache::put_bulk), or to keep).
    #[inline(always)]
    fn from(m: Mbuf) -> RawBuf {
        RawBuf(m)
    }
}

impl std::fmt::Debug for RawBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBuf")
            .field("pool", &self.0.pool_id())
            .field("index", &self.0.index())
            .finish()
    }
}
