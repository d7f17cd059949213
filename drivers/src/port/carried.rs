//! A ring port's slot: one buffer and its data length packed in 8 bytes.
//!
//! A ring port's receiver counts the bytes it takes without reading any
//! buffer's header; the sender, which reads each length once anyway to count
//! its own bytes, puts the length beside the pointer. Packed into the
//! pointer's unused top 16 bits, a slot stays 8 bytes, as a plain pointer
//! ring's: a 16-byte (pointer, length) slot doubled the ring's copying and
//! cost 0.7 cycles per packet forwarded (fwd-ab, README "Where the time
//! goes").
//!
//! The packing needs every buffer header below 2^48, which user-space
//! addresses are on x86-64 and aarch64 Linux unless a mapping is asked for
//! higher (5-level paging): [`crate::pool::Pool`] checks its memory when it
//! is built ([`fits_below_carry_limit`]) and refuses one that ends higher.

use crate::mbuf::{Mbuf, MbufHeader};
use std::ptr::NonNull;

/// Bits of a header address a [`Carried`] keeps.
pub const ADDRESS_BITS: u32 = 48;

/// True when every address in `[start, start + len)` fits in
/// [`ADDRESS_BITS`].
pub fn fits_below_carry_limit(start: usize, len: usize) -> bool {
    start
        .checked_add(len)
        .is_some_and(|end| (end as u64) <= 1u64 << ADDRESS_BITS)
}

/// A buffer and its data length (`data_len`, at most `u16::MAX`), owned.
/// Dropping it frees the buffer, as dropping the [`Mbuf`] would.
#[derive(Debug)]
pub struct Carried(u64);

impl Carried {
    /// Pack `buf` with its length (read from its header here, once).
    #[inline(always)]
    pub fn new(buf: Mbuf) -> Carried {
        let len = buf.len() as u64;
        // Exposed: `into_buf` makes the pointer back from the integer.
        let addr = buf.into_header().as_ptr().expose_provenance() as u64;
        // Pools refuse memory above 2^48 (module comment), so the top bits
        // are free for the length.
        debug_assert!(addr >> ADDRESS_BITS == 0, "buffer header above 2^48");
        Carried(addr | len << ADDRESS_BITS)
    }

    /// The buffer's data length when it was packed.
    #[inline(always)]
    pub fn len(&self) -> u32 {
        (self.0 >> ADDRESS_BITS) as u32
    }

    /// True when the buffer held no data.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer back.
    #[inline(always)]
    pub fn into_buf(self) -> Mbuf {
        let addr = (self.0 & ((1u64 << ADDRESS_BITS) - 1)) as usize;
        let hdr = std::ptr::with_exposed_provenance_mut::<MbufHeader>(addr);
        std::mem::forget(self);
        // SAFETY: `addr` is the header pointer `new` took out of an owned
        // `Mbuf` (its top bits were zero, so masking restores it exactly);
        // this `Carried` was its only owner and is forgotten above, so the
        // buffer is owned by exactly one `Mbuf` again. Non-null: it came
        // from a `NonNull`.
        unsafe { Mbuf::from_header(NonNull::new_unchecked(hdr)) }
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        // A slot dropped with the ring (packets still in flight at
        // teardown): the buffer goes back to its pool.
        // `self` is being dropped, so the copy made here is the one owner
        // left; `into_buf` forgets the copy, the `Mbuf` frees the buffer.
        drop(Carried(self.0).into_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBacking;
    use crate::pool::{Pool, PoolConfig};

    #[test]
    fn the_limit_is_2_pow_48_exclusive_of_the_end() {
        assert!(fits_below_carry_limit(0x7fff_0000_0000, 0x1_0000_0000));
        assert!(fits_below_carry_limit((1 << 48) - 4096, 4096));
        assert!(!fits_below_carry_limit((1 << 48) - 4096, 4097));
        assert!(!fits_below_carry_limit(1 << 56, 1));
        assert!(
            !fits_below_carry_limit(usize::MAX, 2),
            "no wrap to a low end"
        );
    }

    #[test]
    fn buffer_and_length_round_trip_and_a_dropped_slot_frees() {
        let pool =
            Pool::new(&PoolConfig::new("carried", 4).with_backing(MemoryBacking::NoHuge)).unwrap();
        let mut cache = pool.cache();
        let mut m = cache.alloc().unwrap();
        m.append(1514).unwrap().fill(0xab);
        let before = m.data().as_ptr();
        let c = Carried::new(m);
        assert_eq!(c.len(), 1514);
        let m = c.into_buf();
        assert_eq!((m.len(), m.data().as_ptr()), (1514, before));
        assert!(m.data().iter().all(|&b| b == 0xab));
        let mut big = cache.alloc().unwrap();
        let room = big.tailroom();
        big.append(room).unwrap();
        assert_eq!(Carried::new(big).len() as usize, room, "dropped here");
        drop(m);
        drop(cache);
        assert_eq!(pool.available(), 4, "both buffers back");
    }
}
