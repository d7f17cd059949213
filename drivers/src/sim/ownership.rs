//! Who owns each buffer and ring: the driver, the pool, or a device queue.
//!
//! A queue takes a buffer when the driver hands its descriptor over (the
//! tail write) and gives it back when it writes the descriptor back (RX:
//! DD; TX: DD on an RS descriptor, for every buffer up to it), when a queue
//! disable completes (ENABLE reads back 0), or at a reset. Pools report
//! every buffer they hand out or take back (`crate::pool::watch`). A
//! descriptor ring is owned by its queue from enable to disable.
//!
//! Broken hand-offs are violations, named after what the driver did:
//! freeing a buffer the device owns (before DD, or before the disable
//! completed), posting it twice, posting a freed one; and, on the device
//! side, writing a buffer the driver took back.

use super::violation::{Rule, Violations};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// One queue of one device in a DMA space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueueTag {
    /// Device number in its DMA space ([`super::Iommu::attach`]).
    pub dev: u32,
    /// Transmit (true) or receive queue.
    pub tx: bool,
    /// Queue index.
    pub index: u8,
}

impl fmt::Display for QueueTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = if self.tx { "TX" } else { "RX" };
        write!(f, "dev{} {d} queue {}", self.dev, self.index)
    }
}

/// The DMA and ownership rules, with the sections of one device family.
#[derive(Clone, Copy, Debug)]
pub struct DmaRules {
    /// An access the IOMMU has no mapping for.
    pub outside_mapping: Rule,
    /// An access at an address that is a mapped region's *virtual* address.
    pub va_as_iova: Rule,
    /// DMA attempted while PCI bus mastering is off.
    pub bus_master_off: Rule,
    /// RX buffer freed (or reposted) before the device wrote its descriptor
    /// back: the driver consumed a descriptor without DD.
    pub rx_taken_before_dd: Rule,
    /// TX buffer freed before DD came back on its RS descriptor.
    pub tx_freed_before_dd: Rule,
    /// Buffer freed after clearing ENABLE but before it read back 0.
    pub freed_before_disabled: Rule,
    /// Buffer posted again while the device still owns it.
    pub reused_while_owned: Rule,
    /// Buffer posted while it sits in its pool (freed).
    pub posted_after_free: Rule,
    /// The device wrote (or read) a buffer the driver took back.
    pub dma_into_freed: Rule,
    /// The device accessed memory it was never handed.
    pub dma_unowned: Rule,
    /// Memory unmapped while a device with bus mastering on owns part of it.
    pub unmap_while_owned: Rule,
}

/// A device access, as the ownership check sees it.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// The queue doing it.
    pub queue: QueueTag,
    /// The descriptor whose buffer it is, or the ring.
    pub slot: Slot,
    /// First byte.
    pub iova: u64,
    /// Bytes.
    pub len: usize,
    /// A write (else a read).
    pub write: bool,
}

/// Whose memory one owned range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A buffer named in descriptor `n` of the queue.
    Desc(u16),
    /// The queue's descriptor ring.
    Ring,
}

#[derive(Debug)]
struct Owned {
    end: u64,
    queue: QueueTag,
    slot: Slot,
    rules: &'static DmaRules,
    /// The driver freed it while owned (already reported).
    revoked: bool,
}

#[derive(Debug)]
struct Element {
    end: u64,
    in_pool: bool,
}

/// The ownership table of one DMA space.
#[derive(Debug, Default)]
pub struct Ownership {
    owned: BTreeMap<u64, Owned>,
    by_slot: HashMap<(QueueTag, u16), u64>,
    rings: HashMap<QueueTag, u64>,
    /// Pool buffers seen through the watch, by IOVA.
    elements: BTreeMap<u64, Element>,
    /// Queues whose disable was asked and has not completed.
    disabling: HashMap<QueueTag, ()>,
    /// Bus mastering of each device (for the unmap check).
    bus_master: HashMap<u32, bool>,
    /// The longest range ever in `owned`, and in `elements`: an entry
    /// overlapping `start..` starts at or after `start - longest`, so a
    /// lookup walks back only that far (a few entries, not every buffer
    /// of a megabyte), and still finds every overlap.
    longest_owned: u64,
    longest_element: u64,
}

impl Ownership {
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (&u64, &Owned)> {
        self.owned
            .range(start.saturating_sub(self.longest_owned)..end)
            .filter(move |(s, o)| **s < end && o.end > start)
    }

    fn in_pool(&self, start: u64, end: u64) -> bool {
        self.elements
            .range(start.saturating_sub(self.longest_element)..end)
            .any(|(s, e)| *s < end && e.end > start && e.in_pool)
    }

    /// Record a device's bus mastering (the unmap check honours it).
    pub fn set_bus_master(&mut self, dev: u32, on: bool) {
        self.bus_master.insert(dev, on);
    }

    /// The driver handed descriptor `slot` of `queue`, naming
    /// `iova..iova + len`, to the device. False (and a violation) if the
    /// buffer is already the device's or sits in its pool.
    pub fn take(
        &mut self,
        queue: QueueTag,
        slot: u16,
        iova: u64,
        len: u64,
        rules: &'static DmaRules,
        v: &Violations,
    ) -> bool {
        let end = iova + len.max(1);
        if let Some((s, o)) = self.overlapping(iova, end).next() {
            v.record(
                rules.reused_while_owned,
                format!(
                    "{queue} descriptor {slot} posts {iova:#x}+{len}, which {} still owns ({}, {s:#x}..{:#x})",
                    o.queue,
                    slot_name(o.slot),
                    o.end
                ),
            );
            return false;
        }
        if self.in_pool(iova, end) {
            v.record(
                rules.posted_after_free,
                format!("{queue} descriptor {slot} posts {iova:#x}+{len}, a buffer that is back in its pool"),
            );
        }
        if let Some(old) = self.by_slot.remove(&(queue, slot)) {
            self.owned.remove(&old);
        }
        self.longest_owned = self.longest_owned.max(end - iova);
        self.owned.insert(
            iova,
            Owned {
                end,
                queue,
                slot: Slot::Desc(slot),
                rules,
                revoked: false,
            },
        );
        self.by_slot.insert((queue, slot), iova);
        true
    }

    /// The device gave descriptor `slot`'s buffer back (write-back).
    pub fn release(&mut self, queue: QueueTag, slot: u16) {
        if let Some(s) = self.by_slot.remove(&(queue, slot)) {
            self.owned.remove(&s);
        }
    }

    /// The queue's ring is the device's from now on.
    pub fn take_ring(&mut self, queue: QueueTag, iova: u64, len: u64, rules: &'static DmaRules) {
        self.release_ring(queue);
        self.longest_owned = self.longest_owned.max(len.max(1));
        self.owned.insert(
            iova,
            Owned {
                end: iova + len.max(1),
                queue,
                slot: Slot::Ring,
                rules,
                revoked: false,
            },
        );
        self.rings.insert(queue, iova);
    }

    fn release_ring(&mut self, queue: QueueTag) {
        if let Some(s) = self.rings.remove(&queue) {
            self.owned.remove(&s);
        }
    }

    /// Everything `queue` owns goes back (disable completed, reset).
    pub fn release_queue(&mut self, queue: QueueTag) {
        self.by_slot.retain(|(q, _), s| {
            if *q == queue {
                self.owned.remove(s);
                false
            } else {
                true
            }
        });
        self.release_ring(queue);
        self.disabling.remove(&queue);
    }

    /// The driver cleared the queue's ENABLE; it is not disabled yet.
    pub fn set_disabling(&mut self, queue: QueueTag, on: bool) {
        if on {
            self.disabling.insert(queue, ());
        } else {
            self.disabling.remove(&queue);
        }
    }

    /// Check a device access. False (and a violation) if the driver took
    /// the memory back or never gave it: the access must then not be
    /// performed.
    pub fn check_access(&self, a: Access, rules: &DmaRules, v: &Violations) -> bool {
        let Access {
            queue,
            slot,
            iova,
            len,
            write,
        } = a;
        let len = len as u64;
        let end = iova + len.max(1);
        let verb = if write { "writes" } else { "reads" };
        let mine = self
            .overlapping(iova, end)
            .find(|(s, o)| o.queue == queue && o.slot == slot && **s <= iova && o.end >= end);
        match mine {
            Some((_, o)) if !o.revoked && !self.in_pool(iova, end) => true,
            Some(_) => {
                v.record(
                    rules.dma_into_freed,
                    format!(
                        "{queue} {verb} {iova:#x}+{len} ({}) after the driver freed it",
                        slot_name(slot)
                    ),
                );
                false
            }
            None if self.in_pool(iova, end) => {
                v.record(
                    rules.dma_into_freed,
                    format!(
                        "{queue} {verb} {iova:#x}+{len} ({}), a buffer in its pool",
                        slot_name(slot)
                    ),
                );
                false
            }
            None => {
                v.record(
                    rules.dma_unowned,
                    format!(
                        "{queue} {verb} {iova:#x}+{len} ({}), which the driver never handed to it",
                        slot_name(slot)
                    ),
                );
                false
            }
        }
    }

    /// A pool handed out (`to_pool` false) or took back a buffer.
    pub fn pool_handoff(&mut self, iova: u64, len: u64, to_pool: bool, v: &Violations) {
        let end = iova + len;
        if to_pool {
            let disabling = &self.disabling;
            let mut hits = Vec::new();
            for (s, o) in self
                .owned
                .range_mut(iova.saturating_sub(self.longest_owned)..end)
                .filter(|(s, o)| **s < end && o.end > iova && !o.revoked)
            {
                o.revoked = true;
                let rule = if disabling.contains_key(&o.queue) {
                    o.rules.freed_before_disabled
                } else if o.queue.tx {
                    o.rules.tx_freed_before_dd
                } else {
                    o.rules.rx_taken_before_dd
                };
                hits.push((
                    rule,
                    format!(
                        "buffer {iova:#x}+{len} freed to its pool while {} owns it ({}, {s:#x}..{:#x}){}",
                        o.queue,
                        slot_name(o.slot),
                        o.end,
                        if disabling.contains_key(&o.queue) {
                            ": the queue's ENABLE was cleared but has not read back 0"
                        } else {
                            ": not written back yet"
                        }
                    ),
                ));
            }
            for (rule, detail) in hits {
                v.record(rule, detail);
            }
        }
        self.longest_element = self.longest_element.max(end - iova);
        self.elements.insert(
            iova,
            Element {
                end,
                in_pool: to_pool,
            },
        );
    }

    /// `iova..iova + len` is being unmapped: violations for what a device
    /// with bus mastering on still owns there; then forget the range.
    pub fn unmap(&mut self, iova: u64, len: u64, v: &Violations) {
        let end = iova + len;
        for (s, o) in self.owned.range(iova..end) {
            if self.bus_master.get(&o.queue.dev).copied().unwrap_or(true) {
                v.record(
                    o.rules.unmap_while_owned,
                    format!(
                        "{s:#x}..{:#x} ({}) unmapped while {} owns it and bus mastering is on",
                        o.end,
                        slot_name(o.slot),
                        o.queue
                    ),
                );
            }
        }
        let gone: Vec<u64> = self.owned.range(iova..end).map(|(s, _)| *s).collect();
        for s in gone {
            if let Some(o) = self.owned.remove(&s) {
                match o.slot {
                    Slot::Desc(n) => {
                        self.by_slot.remove(&(o.queue, n));
                    }
                    Slot::Ring => {
                        self.rings.remove(&o.queue);
                    }
                }
            }
        }
        let gone: Vec<u64> = self.elements.range(iova..end).map(|(s, _)| *s).collect();
        for s in gone {
            self.elements.remove(&s);
        }
    }

    /// Bytes from `iova` to the end of the pool buffer it is in, if a pool
    /// reported that buffer.
    pub fn element_room(&self, iova: u64) -> Option<u64> {
        self.elements
            .range(..=iova)
            .next_back()
            .filter(|(_, e)| e.end > iova)
            .map(|(_, e)| e.end - iova)
    }

    /// Buffers `queue` owns now.
    pub fn owned_by(&self, queue: QueueTag) -> usize {
        self.by_slot.keys().filter(|(q, _)| *q == queue).count()
    }
}

fn slot_name(s: Slot) -> String {
    match s {
        Slot::Desc(n) => format!("descriptor {n}'s buffer"),
        Slot::Ring => "descriptor ring".to_string(),
    }
}
