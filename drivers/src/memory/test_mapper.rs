//! A DMA address space for tests of code that only needs IOVAs to exist
//! (pools, descriptor rings): it hands out contiguous IOVAs from a counter
//! and maps nothing. Device models use `sim`'s translation instead, which
//! also checks every DMA access.

use super::dma_map::{DmaMapError, DmaMapper, IovaLayout};
use super::iova::Iova;
use super::region::DmaRegion;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bump-allocated IOVAs, or IOVA = virtual address ([`TestMapper::identity`]).
#[derive(Debug)]
pub struct TestMapper {
    next: AtomicU64,
    identity: bool,
    mapped: AtomicUsize,
}

impl TestMapper {
    /// IOVAs from `base` on, each region aligned to its page size.
    pub fn at(base: u64) -> TestMapper {
        TestMapper {
            next: AtomicU64::new(base),
            identity: false,
            mapped: AtomicUsize::new(0),
        }
    }

    /// IOVA = virtual address, for the synchronous model that reaches
    /// memory through the IOVA as a pointer.
    pub fn identity() -> TestMapper {
        TestMapper {
            next: AtomicU64::new(0),
            identity: true,
            mapped: AtomicUsize::new(0),
        }
    }

    /// Regions mapped and not unmapped yet.
    pub fn mapped(&self) -> usize {
        // Relaxed: a statistic read by the test thread after the fact.
        self.mapped.load(Ordering::Relaxed)
    }
}

impl DmaMapper for TestMapper {
    fn map(&self, region: &DmaRegion) -> Result<IovaLayout, DmaMapError> {
        let base = if self.identity {
            region.as_ptr().as_ptr() as u64
        } else {
            let align = region.page_size().bytes() as u64;
            // Relaxed: the counter only has to hand out disjoint ranges.
            let mut cur = self.next.load(Ordering::Relaxed);
            loop {
                let start = cur.next_multiple_of(align);
                match self.next.compare_exchange_weak(
                    cur,
                    start + region.len() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break start,
                    Err(now) => cur = now,
                }
            }
        };
        self.mapped.fetch_add(1, Ordering::Relaxed);
        Ok(IovaLayout::Contiguous {
            base: Iova::new(base),
        })
    }

    fn unmap(&self, _region: &DmaRegion, _layout: &IovaLayout) -> Result<(), DmaMapError> {
        self.mapped.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "test"
    }
}
