//! Each rule of the igbvf model broken on purpose, by a raw register and
//! descriptor sequence (or a faulty driver step) written here, and caught
//! by name; plus the PF-side behaviours the driver relies on.
//!
//! Raw sequences use the model's own constants (`super::igbvf`, `super::adv`)
//! and plain numbers with their reference sections, never the driver's.

use super::adv::{self, RxFrame};
use super::igbvf::*;
use super::mailbox::{self as mbx};
use super::{BusMasterOff, Iommu, SimDevice};
use crate::mbuf::Mbuf;
use crate::memory::{DmaArena, DmaSlice, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::pci::PciFunction;
use crate::pool::{Pool, PoolConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const PATIENCE: Duration = Duration::from_secs(20);

/// RX/TX queue register `off` of queue `q` (C.2: + 0x100·q).
fn rxr(q: u32, off: u32) -> u32 {
    RX_BASE + STRIDE * q + off
}
fn txr(q: u32, off: u32) -> u32 {
    TX_BASE + STRIDE * q + off
}
// Offsets in a queue block (C.2).
const BAL: u32 = 0x00;
const BAH: u32 = 0x04;
const LEN: u32 = 0x08;
const SRRCTL: u32 = 0x0C;
const HEAD: u32 = 0x10;
const DCA: u32 = 0x14;
const TAIL: u32 = 0x18;
const CTL: u32 = 0x28;
/// SRRCTL: DROP_EN (bit 31, C.3) | advanced one-buffer | 2 KiB.
const SRRCTL_2K: u32 = 0x8000_0000 | adv::SRRCTL_DESCTYPE_ONEBUF | 2;

/// A model, its BAR, a pool and a descriptor arena in its IOMMU.
struct Raw {
    dev: IgbvfSim,
    bar: Arc<IgbvfBar>,
    pool: Pool,
    arena: DmaArena,
    /// Read-to-clear bits seen and not consumed yet (C.5.1: every read is
    /// OR-ed into a cached copy).
    seen: std::cell::Cell<u32>,
}

fn raw_with(cfg: IgbvfConfig, policy: BusMasterOff) -> Raw {
    let iommu = Iommu::new();
    let dev = SimDevice::start_with(&iommu, policy, |d| Igbvf::new(cfg, d));
    let mut pc = PoolConfig::new("rules", 64).with_backing(MemoryBacking::NoHuge);
    pc.cache_size = 0;
    pc.dma = Some(iommu.mapper());
    let pool = Pool::new(&pc).unwrap();
    let arena = DmaArena::new(64 << 10, &MemoryBacking::NoHuge, &iommu.mapper()).unwrap();
    Raw {
        bar: dev.bar(),
        dev,
        pool,
        arena,
        seen: std::cell::Cell::new(0),
    }
}

fn raw() -> Raw {
    raw_with(
        IgbvfConfig::new(Flavor::I82576, Some(crate::net::MacAddr(MAC))),
        BusMasterOff::Violation,
    )
}

/// Write descriptor `slot` of `ring` (as a driver does: volatile stores).
fn put(ring: &DmaSlice, slot: usize, d: [u32; 4]) {
    assert!((slot + 1) * 16 <= ring.len());
    for (i, w) in d.iter().enumerate() {
        // SAFETY: in bounds (asserted), 4-byte aligned inside a 128-byte
        // aligned slice; volatile because the device reads it.
        unsafe {
            ring.as_ptr()
                .as_ptr()
                .add(slot * 16 + 4 * i)
                .cast::<u32>()
                .write_volatile(w.to_le())
        }
    }
}

/// Read dword `w` of descriptor `slot`.
fn get(ring: &DmaSlice, slot: usize, w: usize) -> u32 {
    assert!((slot + 1) * 16 <= ring.len() && w < 4);
    // SAFETY: as in `put`.
    u32::from_le(unsafe {
        ring.as_ptr()
            .as_ptr()
            .add(slot * 16 + 4 * w)
            .cast::<u32>()
            .read_volatile()
    })
}

fn lo(a: u64) -> u32 {
    a as u32
}
fn hi(a: u64) -> u32 {
    (a >> 32) as u32
}

impl Raw {
    fn w(&self, off: u32, v: u32) {
        self.bar.write32(off, v);
    }
    fn r(&self, off: u32) -> u32 {
        self.bar.read32(off)
    }

    /// VF_RESET by hand, as C.5.2 says: lock, write, REQ, PFACK, PFSTS,
    /// lock, read, ACK. The PF then enables the VF's RX and TX (C.5.3).
    fn vf_reset_handshake(&self) -> u32 {
        self.request(&[MSG_VF_RESET])
    }

    fn lock(&self) {
        let end = Instant::now() + PATIENCE;
        loop {
            self.w(V2PMAILBOX, mbx::VFU);
            let v = self.r(V2PMAILBOX);
            self.seen.set(self.seen.get() | (v & mbx::R2C));
            if v & mbx::VFU != 0 {
                return;
            }
            assert!(Instant::now() < end, "VFU never granted");
        }
    }

    fn wait_bit(&self, bit: u32) {
        let end = Instant::now() + PATIENCE;
        loop {
            let v = self.r(V2PMAILBOX) | self.seen.get();
            self.seen.set(v & mbx::R2C & !bit);
            if v & bit != 0 {
                return;
            }
            assert!(Instant::now() < end, "mailbox bit {bit:#x} never came");
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    fn request(&self, msg: &[u32]) -> u32 {
        self.lock();
        for (i, w) in msg.iter().enumerate() {
            self.w(VMBMEM + 4 * i as u32, *w);
        }
        self.w(V2PMAILBOX, mbx::REQ);
        self.wait_bit(mbx::PFACK);
        self.wait_bit(mbx::PFSTS);
        self.lock();
        let reply = self.r(VMBMEM);
        self.w(V2PMAILBOX, mbx::ACK);
        reply
    }

    /// Program RX queue `q` over `count` descriptors (C.7.2 order) and
    /// enable it; RDT stays at 0.
    fn rx_ring(&self, q: u32, count: usize) -> DmaSlice {
        let ring = self.arena.carve(count * 16, 128).unwrap();
        self.program_rx(q, ring.iova().get(), (count * 16) as u32, SRRCTL_2K);
        ring
    }

    fn program_rx(&self, q: u32, base: u64, len: u32, srrctl: u32) {
        self.w(rxr(q, SRRCTL), srrctl);
        self.w(rxr(q, BAL), lo(base));
        self.w(rxr(q, BAH), hi(base));
        self.w(rxr(q, LEN), len);
        self.w(rxr(q, HEAD), 0);
        self.w(rxr(q, TAIL), 0);
        self.w(rxr(q, CTL), adv::QUEUE_ENABLE);
    }

    fn tx_ring(&self, q: u32, count: usize) -> DmaSlice {
        let ring = self.arena.carve(count * 16, 128).unwrap();
        let base = ring.iova().get();
        self.w(txr(q, LEN), (count * 16) as u32);
        self.w(txr(q, BAL), lo(base));
        self.w(txr(q, BAH), hi(base));
        self.w(txr(q, HEAD), 0);
        self.w(txr(q, TAIL), 0);
        self.w(txr(q, DCA), 0); // in-order write-backs (C.3)
        self.w(txr(q, CTL), adv::QUEUE_ENABLE);
        ring
    }

    fn buf(&self) -> Mbuf {
        self.pool.alloc().expect("a buffer")
    }

    /// Post `m` in RX descriptor `slot` (read format, hdr_addr 0, C.4.1).
    fn post_rx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf) {
        let a = m.data_iova().get();
        put(ring, slot, [lo(a), hi(a), 0, 0]);
    }

    /// A TX data descriptor for `len` bytes of `m`: DTYP data | DEXT |
    /// IFCS | EOP | RS, PAYLEN = len (C.4.2, C.9 #4).
    fn post_tx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf, len: u32) {
        let a = m.data_iova().get();
        let cmd = len | adv::TX_DTYP_DATA | adv::TX_DEXT | adv::TX_IFCS | adv::TX_EOP | adv::TX_RS;
        put(ring, slot, [lo(a), hi(a), cmd, len << adv::TX_PAYLEN_SHIFT]);
    }

    /// Wait for DD in RX descriptor `slot` (the device thread is running).
    fn wait_rx_dd(&self, ring: &DmaSlice, slot: usize) {
        let end = Instant::now() + PATIENCE;
        while get(ring, slot, 2) & adv::RX_DD == 0 {
            assert!(Instant::now() < end, "no DD");
            self.dev.flush();
        }
    }

    /// Clear ENABLE and poll it back to 0 (the correct stop, C.6).
    fn disable_and_wait(&self, ctl: u32) {
        self.w(ctl, 0);
        let end = Instant::now() + PATIENCE;
        while self.r(ctl) & adv::QUEUE_ENABLE != 0 {
            assert!(Instant::now() < end, "ENABLE never read back 0");
            std::thread::sleep(Duration::from_micros(10));
        }
    }
}

fn frame(len: usize) -> RxFrame {
    RxFrame {
        data: (0..len).map(|i| i as u8).collect(),
        ..RxFrame::default()
    }
}

// ---- rings ----------------------------------------------------------------

#[test]
fn enable_before_tail() {
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    let base = ring.iova().get();
    t.w(rxr(0, SRRCTL), SRRCTL_2K);
    t.w(rxr(0, BAL), lo(base));
    t.w(rxr(0, BAH), hi(base));
    t.w(rxr(0, LEN), 128);
    t.w(rxr(0, TAIL), 5); // before RXDCTL.ENABLE
    t.dev.violations().expect("enable-before-tail");
}

#[test]
fn descriptor_written_after_tail() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    t.dev.pause();
    let m = t.buf();
    // Tail first, descriptor after: the device may fetch the old contents
    // (C.9 #16: the tail only after a write barrier).
    t.w(rxr(0, TAIL), 1);
    t.post_rx(&ring, 0, &m);
    t.dev.flush();
    t.dev.violations().expect("descriptor-written-after-tail");
    // What the device saw at the tail write was zeros: no buffer at all.
    t.dev.violations().expect("dma-outside-mapping");
    // A frame then lands in a buffer the device was never handed.
    assert!(t.dev.inject_frame(0, frame(64)));
    t.dev.flush();
    t.dev.violations().expect("dma-into-unowned-buffer");
}

#[test]
fn rdt_equals_rdh_with_a_full_ring() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let bufs: Vec<Mbuf> = (0..8).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&ring, i, m);
    }
    t.w(rxr(0, TAIL), 7);
    t.dev.violations().assert_clean();
    t.w(rxr(0, TAIL), 0); // all 8: RDT = RDH with a full ring
    t.dev.violations().expect("rdt-equals-rdh");
    t.w(rxr(0, TAIL), 9);
    t.dev.violations().expect("tail-out-of-range");
    t.w(rxr(0, CTL), 0);
    assert_eq!(t.r(rxr(0, CTL)) & adv::QUEUE_ENABLE, 0);
}

#[test]
fn ring_base_alignment_and_length() {
    let t = raw();
    let ring = t.arena.carve(8 * 16 + 64, 128).unwrap();
    t.program_rx(0, ring.iova().get() + 64, 128, SRRCTL_2K);
    t.dev.violations().expect("ring-base-alignment");
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 100, SRRCTL_2K);
    t.dev.violations().expect("ring-length");
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 0, SRRCTL_2K);
    t.dev.violations().expect("ring-length");
}

#[test]
fn ring_reprogrammed_while_enabled() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    t.w(rxr(0, BAL), lo(ring.iova().get()) + 128);
    t.dev.violations().expect("ring-reprogrammed-while-enabled");
    // Cleared but not read back: still enabled as far as the device knows.
    t.w(rxr(0, CTL), 0);
    t.w(rxr(0, LEN), 256);
    t.dev.violations().expect("ring-reprogrammed-while-enabled");
    // Read back 0: now it may be reprogrammed.
    assert_eq!(t.r(rxr(0, CTL)) & adv::QUEUE_ENABLE, 0);
    t.w(rxr(0, LEN), 256);
}

#[test]
fn bsizepkt_is_in_kib() {
    // 2 KiB of data room, SRRCTL says 4 KiB: the device would overrun it.
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 128, (SRRCTL_2K & !0x7F) | 4);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.dev.violations().expect("bsizepkt-units");
    t.disable_and_wait(rxr(0, CTL));
    drop(m);
    // A byte count in the field (2048 & 0x7F = 0) is caught at enable.
    let bytes_in_the_field = std::hint::black_box(2048u32) & 0x7F;
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(
        0,
        ring.iova().get(),
        128,
        (SRRCTL_2K & !0x7F) | bytes_in_the_field,
    );
    t.dev.violations().expect("bsizepkt-units");
}

#[test]
fn srrctl_desctype_must_be_one_buffer() {
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    // 0x0A000000 = header split always (C.3).
    t.program_rx(0, ring.iova().get(), 128, 0x0A00_0000 | 2);
    t.dev.violations().expect("srrctl-desctype");
}

#[test]
fn rx_post_clears_dd() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    let a = m.data_iova().get();
    // A stale write-back left in place: status dword with DD.
    put(&ring, 0, [lo(a), hi(a), adv::RX_DD | adv::RX_EOP, 60]);
    t.w(rxr(0, TAIL), 1);
    t.dev.violations().expect("rx-post-clears-dd");
    t.disable_and_wait(rxr(0, CTL));
    drop(m);
}

#[test]
fn tx_descriptor_format_and_paylen() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.tx_ring(0, 8);
    let m = t.buf();
    let a = m.data_iova().get();
    // Legacy layout (no DEXT).
    put(&ring, 0, [lo(a), hi(a), 60 | adv::TX_EOP | adv::TX_RS, 0]);
    t.w(txr(0, TAIL), 1);
    t.dev.violations().expect("tx-descriptor-format");
    // Advanced data without IFCS.
    let cmd = 60 | adv::TX_DTYP_DATA | adv::TX_DEXT | adv::TX_EOP | adv::TX_RS;
    put(&ring, 1, [lo(a), hi(a), cmd, 60 << adv::TX_PAYLEN_SHIFT]);
    t.w(txr(0, TAIL), 2);
    t.dev.violations().expect("tx-descriptor-format");
    // Good layout, wrong PAYLEN: caught when the frame is assembled.
    let m2 = t.buf();
    t.post_tx(&ring, 2, &m2, 60);
    put(
        &ring,
        2,
        [
            get(&ring, 2, 0),
            get(&ring, 2, 1),
            get(&ring, 2, 2),
            61 << adv::TX_PAYLEN_SHIFT,
        ],
    );
    t.w(txr(0, TAIL), 3);
    t.dev.settle();
    t.dev.violations().expect("tx-paylen");
    t.dev.violations().assert_clean();
    drop((m, m2));
}

/// TX write-backs come back out of order when the driver leaves
/// DCA_TXCTRL.TX_WB_RO_EN set (C.3), in order when it clears it.
#[test]
fn tx_write_backs_reorder_only_when_relaxed_ordering_is_left_on() {
    for relaxed in [false, true] {
        let t = raw();
        t.vf_reset_handshake();
        let ring = t.tx_ring(0, 8);
        if relaxed {
            t.w(txr(0, DCA), DCA_TXCTRL_TX_WB_RO_EN);
        }
        let bufs: Vec<Mbuf> = (0..3)
            .map(|i| {
                let mut m = t.buf();
                m.append(60).unwrap().fill(i);
                m
            })
            .collect();
        t.dev.pause();
        for (i, m) in bufs.iter().enumerate() {
            t.post_tx(&ring, i, m, 60);
        }
        t.w(txr(0, TAIL), 3);
        t.dev.flush();
        let dd = |i| get(&ring, i, 3) & adv::TX_DD != 0;
        if relaxed {
            assert!(dd(2) && !dd(0), "the newest first, the oldest later");
            t.dev.flush();
            t.dev.flush();
        }
        assert!(dd(0) && dd(1) && dd(2));
        for m in bufs {
            t.pool.free(m);
        }
        assert_eq!(t.dev.take_wire().len(), 3);
    }
}

// ---- buffer ownership -----------------------------------------------------

#[test]
fn tx_buffer_freed_before_dd() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.tx_ring(0, 8);
    t.dev.pause(); // the device has not sent it yet, whatever the timing
    let mut m = t.buf();
    m.append(60).unwrap().fill(0xAB);
    t.post_tx(&ring, 0, &m, 60);
    t.w(txr(0, TAIL), 1);
    t.pool.free(m); // before DD
    t.dev.violations().expect("tx-buffer-freed-before-dd");
    // The device then reads a buffer that is back in its pool.
    t.dev.flush();
    t.dev.violations().expect("dma-into-freed-buffer");
}

#[test]
fn tx_buffer_freed_after_dd_is_fine() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(60).unwrap().fill(0xAB);
    t.post_tx(&ring, 0, &m, 60);
    t.w(txr(0, TAIL), 1);
    let end = Instant::now() + PATIENCE;
    while get(&ring, 0, 3) & adv::TX_DD == 0 {
        assert!(Instant::now() < end);
        t.dev.flush();
    }
    t.pool.free(m);
    assert_eq!(t.dev.take_wire(), vec![vec![0xAB; 60]]);
    t.dev.violations().assert_clean();
}

/// A faulty driver that consumes an RX descriptor without checking DD
/// (it reads the length, hands the buffer up, the buffer is freed).
#[test]
fn rx_descriptor_consumed_before_dd() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    t.dev.pause();
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    // No DD check: "a frame of length dword 3" is taken.
    let _len = get(&ring, 0, 3) & 0xFFFF;
    t.pool.free(m);
    t.dev.violations().expect("rx-buffer-taken-before-dd");
}

#[test]
fn buffer_reused_while_device_owned() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.post_rx(&ring, 1, &m); // the same buffer again
    t.w(rxr(0, TAIL), 2);
    t.dev
        .violations()
        .expect("buffer-reused-while-device-owned");
    t.w(rxr(0, CTL), 0);
    t.r(rxr(0, CTL));
    drop(m);
}

#[test]
fn buffer_posted_after_free() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    let a = m.data_iova().get();
    t.pool.free(m);
    put(&ring, 0, [lo(a), hi(a), 0, 0]);
    t.w(rxr(0, TAIL), 1);
    t.dev.violations().expect("buffer-posted-after-free");
    t.w(rxr(0, CTL), 0);
    t.r(rxr(0, CTL));
}

/// The device writes late after a disable, into a buffer the driver
/// already freed.
#[test]
fn late_write_after_disable_into_a_freed_buffer() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.dev.settle(); // fetched
    t.dev.pause();
    assert!(t.dev.inject_frame(0, frame(100))); // arriving
    t.w(rxr(0, CTL), 0); // disable asked, not read back
    t.pool.free(m);
    t.dev
        .violations()
        .expect("buffer-freed-before-queue-disabled");
    t.dev.flush(); // the device still works on the queue
    t.dev.violations().expect("dma-into-freed-buffer");
    assert_eq!(t.r(rxr(0, CTL)) & adv::QUEUE_ENABLE, 0);
}

#[test]
fn va_passed_as_iova() {
    let t = raw();
    // The ring's virtual address instead of its IOVA.
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.as_ptr().as_ptr() as u64, 128, SRRCTL_2K);
    t.dev.violations().expect("va-passed-as-iova");
    // A buffer's virtual address in a descriptor.
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let mut m = t.buf();
    let va = m.append(1).unwrap().as_ptr() as u64;
    put(&ring, 0, [lo(va), hi(va), 0, 0]);
    t.w(rxr(0, TAIL), 1);
    t.dev.violations().expect("va-passed-as-iova");
    drop(m);
}

#[test]
fn dma_outside_any_mapping() {
    let t = raw();
    t.program_rx(0, 0x1234_0000, 128, SRRCTL_2K);
    t.dev.violations().expect("dma-outside-mapping");
}

#[test]
fn unmap_while_the_device_owns_the_ring() {
    let t = raw();
    let arena = DmaArena::new(4096, &MemoryBacking::NoHuge, &t.dev.iommu().mapper()).unwrap();
    let ring = arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 128, SRRCTL_2K);
    drop((ring, arena)); // unmapped with the queue enabled
    t.dev.violations().expect("unmap-while-device-owns");
    // Bus mastering off first: the device cannot DMA, unmapping is safe.
    let t = raw();
    let arena = DmaArena::new(4096, &MemoryBacking::NoHuge, &t.dev.iommu().mapper()).unwrap();
    let ring = arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 128, SRRCTL_2K);
    t.bar.set_bus_master(false).unwrap();
    drop((ring, arena));
    t.dev.violations().assert_clean();
}

// ---- PCI function ---------------------------------------------------------

#[test]
fn dma_with_bus_mastering_off() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.bar.set_bus_master(false).unwrap(); // queue still running
    assert!(t.dev.inject_frame(0, frame(64)));
    t.dev.flush();
    t.dev.violations().expect("dma-with-bus-master-off");
    assert_eq!(get(&ring, 0, 2) & adv::RX_DD, 0, "nothing written");
    // Back on: the device goes on.
    t.bar.set_bus_master(true).unwrap();
    t.wait_rx_dd(&ring, 0);
    t.disable_and_wait(rxr(0, CTL));
    drop(m);
}

#[test]
fn bus_mastering_off_can_hold_instead() {
    let t = raw_with(
        IgbvfConfig::new(Flavor::I82576, Some(crate::net::MacAddr(MAC))),
        BusMasterOff::Hold,
    );
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.bar.set_bus_master(false).unwrap();
    assert!(t.dev.inject_frame(0, frame(64)));
    t.dev.flush();
    assert!(t.dev.with(|m, _| m.rx[0].blocked) > 0);
    assert_eq!(get(&ring, 0, 2) & adv::RX_DD, 0);
    t.disable_and_wait(rxr(0, CTL));
    drop(m);
}

#[test]
fn function_reset_stops_dma_and_clears_bus_mastering() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.bar.function_reset().unwrap();
    // Everything is the driver's again: freeing is fine.
    t.pool.free(m);
    assert_eq!(t.r(rxr(0, CTL)) & adv::QUEUE_ENABLE, 0);
    assert_eq!(t.r(rxr(0, BAL)), 0);
    // The PF saw the reset: no CTS until VF_RESET (C.5.3).
    assert!(!t.dev.pf(|p| p.cts));
    t.dev.violations().assert_clean();
}

// ---- mailbox --------------------------------------------------------------

#[test]
fn mailbox_access_without_vfu() {
    let t = raw();
    t.w(VMBMEM, MSG_VF_RESET); // no lock taken
    t.dev.violations().expect("mailbox-access-without-vfu");
    t.r(VMBMEM + 4);
    t.dev.violations().expect("mailbox-access-without-vfu");
}

#[test]
fn request_before_vf_reset_is_nacked() {
    let t = raw();
    let reply = t.request(&[MSG_SET_LPE, 1522]);
    assert_eq!(reply, MSG_SET_LPE | mbx::MSG_NACK, "NACK without CTS");
    t.dev.violations().expect("mailbox-request-before-vf-reset");
    let reply = t.vf_reset_handshake();
    assert_eq!(reply & !mbx::MSG_CTS, MSG_VF_RESET | mbx::MSG_ACK);
    let reply = t.request(&[MSG_SET_LPE, 1522]);
    assert_eq!(reply, MSG_SET_LPE | mbx::MSG_ACK | mbx::MSG_CTS);
}

#[test]
fn mailbox_req_before_pfack() {
    let t = raw();
    t.dev.pause();
    t.lock();
    t.w(VMBMEM, MSG_VF_RESET);
    t.w(V2PMAILBOX, mbx::REQ);
    t.lock();
    t.w(VMBMEM, MSG_SET_LPE);
    t.w(V2PMAILBOX, mbx::REQ); // the PF has not read the first one
    t.dev.violations().expect("mailbox-req-before-pfack");
}

#[test]
fn pfack_and_pfsts_are_separate_steps_and_pfu_holds_the_buffer() {
    let mut cfg = IgbvfConfig::new(Flavor::I82576, None);
    cfg.pf.reply = Duration::ZERO;
    cfg.pf.write_hold = Duration::from_secs(3600);
    let t = raw_with(cfg, BusMasterOff::Violation);
    t.lock();
    t.w(VMBMEM, MSG_VF_RESET);
    t.w(V2PMAILBOX, mbx::REQ);
    // PFACK comes; the PF then holds the buffer (PFU) while it writes and
    // PFSTS waits for the write to end.
    t.wait_bit(mbx::PFACK);
    let end = Instant::now() + PATIENCE;
    while t.r(V2PMAILBOX) & mbx::PFU == 0 {
        assert!(Instant::now() < end, "PFU never raised");
    }
    assert_eq!(
        t.r(V2PMAILBOX) & mbx::PFSTS,
        0,
        "PFSTS before the write ended"
    );
    t.w(V2PMAILBOX, mbx::VFU);
    assert_eq!(
        t.r(V2PMAILBOX) & mbx::VFU,
        0,
        "VFU granted while PFU is set"
    );
    // The write ends (as if an hour passed): PFSTS, then read-to-clear.
    t.dev.flush();
    let v = t.r(V2PMAILBOX);
    assert_eq!(v & (mbx::PFSTS | mbx::PFU), mbx::PFSTS);
    assert_eq!(t.r(V2PMAILBOX) & mbx::R2C, 0, "PFSTS clears on read");
}

#[test]
fn pf_nacks_an_ack_from_a_vf_without_cts() {
    let mut cfg = IgbvfConfig::new(Flavor::I82576, None);
    cfg.nack_interval = Duration::ZERO;
    let t = raw_with(cfg, BusMasterOff::Violation);
    t.vf_reset_handshake();
    // The PF pings after taking CTS away (igb_reset, C.5.3).
    t.dev.pf_ping(true);
    t.wait_bit(mbx::PFSTS);
    t.lock();
    assert_eq!(t.r(VMBMEM), MSG_PF_CONTROL, "no CTS");
    t.w(V2PMAILBOX, mbx::ACK);
    // ACK without CTS: the PF answers NACK (what Linux's link check
    // reads as "reset the VF", C.6 step 13).
    t.wait_bit(mbx::PFSTS);
    t.lock();
    assert_eq!(t.r(VMBMEM), mbx::MSG_NACK);
    t.w(V2PMAILBOX, mbx::ACK);
}

#[test]
fn pf_reset_raises_rsti_then_rstd() {
    let t = raw();
    t.vf_reset_handshake();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, TAIL), 1);
    t.dev.pf_reset_begin();
    // The PF's reset stopped the queue: the buffer is the driver's.
    t.pool.free(m);
    let v = t.r(V2PMAILBOX);
    assert_eq!(v & (mbx::RSTI | mbx::PFSTS), mbx::RSTI | mbx::PFSTS);
    assert_eq!(t.r(V2PMAILBOX) & mbx::RSTI, mbx::RSTI, "RSTI is a level");
    t.dev.pf_reset_end();
    assert_eq!(t.r(V2PMAILBOX) & (mbx::RSTI | mbx::RSTD), mbx::RSTD);
    assert_eq!(t.r(V2PMAILBOX) & mbx::RSTD, 0, "RSTD clears on read");
    // Until VF_RESET, no CTS.
    t.request(&[MSG_SET_LPE, 1522]);
    t.dev.violations().expect("mailbox-request-before-vf-reset");
    t.dev.violations().assert_clean();
}

// ---- registers ------------------------------------------------------------

#[test]
fn register_access_outside_the_bar_or_unaligned() {
    let t = raw();
    assert_eq!(t.r(0x4000), !0);
    t.dev.violations().expect("register-access");
    t.w(0x0C42, 1);
    t.dev.violations().expect("register-access");
}

#[test]
fn queue_one_does_not_exist_on_i350() {
    let t = raw_with(
        IgbvfConfig::new(Flavor::I350, None),
        BusMasterOff::Violation,
    );
    t.w(rxr(1, CTL), adv::QUEUE_ENABLE);
    t.dev.violations().expect("queue-not-present");
    // And it does on an 82576.
    let t = raw();
    t.r(rxr(1, CTL));
    t.dev.violations().assert_clean();
}

#[test]
fn link_flaps_show_in_status() {
    let t = raw();
    assert_eq!(t.r(STATUS) & STATUS_LU, STATUS_LU);
    t.dev.set_link(false);
    assert_eq!(t.r(STATUS) & STATUS_LU, 0);
    t.dev.set_link(true);
    assert_eq!(t.r(STATUS) & STATUS_LU, STATUS_LU);
}

// ---- the DMA-safe stop ----------------------------------------------------

/// With a disable that takes time and readbacks, the device writes late
/// after ENABLE is cleared. A correct stop (clear, poll ENABLE until 0,
/// then free) finds every late write in a buffer nobody reused; the broken
/// stop (free right after clearing ENABLE) is caught.
#[test]
fn dma_safe_stop_passes_and_the_broken_stop_is_caught() {
    let cfg = || {
        let mut c = IgbvfConfig::new(Flavor::I82576, None);
        c.delays.disable_time = Duration::from_micros(100);
        c.delays.disable_reads = 3;
        c
    };
    for correct in [true, false] {
        let t = raw_with(cfg(), BusMasterOff::Violation);
        t.vf_reset_handshake();
        let ring = t.rx_ring(0, 8);
        let bufs: Vec<Mbuf> = (0..7).map(|_| t.buf()).collect();
        for (i, m) in bufs.iter().enumerate() {
            t.post_rx(&ring, i, m);
        }
        t.w(rxr(0, TAIL), 7);
        t.dev.settle(); // all fetched
        t.dev.pause();
        for _ in 0..3 {
            assert!(t.dev.inject_frame(0, frame(200)));
        }
        t.w(rxr(0, CTL), 0); // disable asked
        if correct {
            // The device is still at work: it writes late, into buffers
            // the driver still leaves alone.
            t.dev.flush();
            assert_eq!(t.dev.rx_late_writes(0), 3);
            // Poll ENABLE back to 0 (reads it 3 times, >= 100 µs).
            t.disable_and_wait(rxr(0, CTL));
            for m in bufs {
                t.pool.free(m);
            }
            t.dev.violations().assert_clean();
        } else {
            for m in bufs {
                t.pool.free(m); // at once
            }
            t.dev
                .violations()
                .expect("buffer-freed-before-queue-disabled");
            t.dev.flush(); // the late writes land in freed buffers
            t.dev.violations().expect("dma-into-freed-buffer");
            assert_eq!(t.dev.rx_late_writes(0), 0, "no write was performed");
        }
    }
}
