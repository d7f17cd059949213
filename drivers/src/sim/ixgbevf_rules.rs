//! Each rule of the ixgbevf model broken on purpose by a raw register and
//! descriptor sequence written here (not the driver), and caught by name;
//! the Linux PF's answers and the faults; and one correct raw sequence
//! that runs clean with every buffer back.
//!
//! Raw sequences use the model's own constants (`super::ixgbevf`,
//! `super::ixgbevf_pf`, `super::adv`) and plain numbers with their
//! nic-facts.md sections, never the driver's.

use super::adv::{self, RxFrame};
use super::ixgbevf::*;
use super::ixgbevf_pf::{self as pf, Api};
use super::mailbox::{self as mbx};
use super::Iommu;
use crate::mbuf::Mbuf;
use crate::memory::{DmaArena, DmaSlice, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pool::{Pool, PoolConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
const PATIENCE: Duration = Duration::from_secs(20);
/// Buffers in the test pool.
const POOL: u32 = 64;

fn rxr(q: u32, off: u32) -> u32 {
    RX_BASE + STRIDE * q + off
}
fn txr(q: u32, off: u32) -> u32 {
    TX_BASE + STRIDE * q + off
}
/// SRRCTL: DROP_EN (bit 28) | advanced one-buffer | BSIZEPKT 2 KB (A.3).
const SRRCTL_2K: u32 = 0x1000_0000 | adv::SRRCTL_DESCTYPE_ONEBUF | 2;
/// A.7.1 step 4 (Linux): DCA_TXCTRL = DESC_RRO_EN | DATA_RRO_EN.
const DCA_TX_IN_ORDER: u32 = (1 << 9) | (1 << 13);
/// Context descriptor (A.4.4, A.7.1 step 8): MACLEN 14, L4T RSV, DTYP
/// context, DEXT, slot `idx`.
fn ctx_desc(idx: u32) -> [u32; 4] {
    [
        14 << 9,
        0,
        0x1800 | adv::TX_DTYP_CTXT | adv::TX_DEXT,
        idx << adv::TX_IDX_SHIFT,
    ]
}

struct Raw {
    dev: IxgbevfSim,
    bar: Arc<IxgbevfBar>,
    pool: Pool,
    arena: DmaArena,
    /// Read-to-clear bits seen and not consumed (A.5.1: cache every read).
    seen: std::cell::Cell<u32>,
}

fn raw_with(cfg: IxgbevfConfig) -> Raw {
    let iommu = Iommu::new();
    let dev = Ixgbevf::start(cfg, &iommu);
    let mut pc = PoolConfig::new("ixgbevf-rules", POOL).with_backing(MemoryBacking::NoHuge);
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

fn cfg(flavor: Flavor) -> IxgbevfConfig {
    IxgbevfConfig::new(flavor, Some(MacAddr(MAC)))
}

fn raw() -> Raw {
    raw_with(cfg(Flavor::X82599))
}

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

    /// Read VFMAILBOX, caching the read-to-clear bits (A.5.1).
    fn mbox(&self) -> u32 {
        let v = self.r(VFMAILBOX) | self.seen.get();
        self.seen.set(v & mbx::R2C);
        v
    }

    /// Take and clear `bit` from the cache, if it is there.
    fn take_bit(&self, bit: u32) -> bool {
        let v = self.mbox();
        self.seen.set(self.seen.get() & !bit);
        v & bit != 0
    }

    fn lock(&self) {
        let end = Instant::now() + PATIENCE;
        loop {
            self.w(VFMAILBOX, mbx::VFU);
            if self.mbox() & mbx::VFU != 0 {
                return;
            }
            assert!(Instant::now() < end, "VFU never granted");
        }
    }

    fn wait_bit(&self, bit: u32) {
        let end = Instant::now() + PATIENCE;
        while !self.take_bit(bit) {
            assert!(Instant::now() < end, "mailbox bit {bit:#x} never came");
            self.dev.flush();
        }
    }

    /// One legacy exchange (A.5.2): lock, write, REQ, PFACK, PFSTS, lock,
    /// read `reply_len` words, ACK.
    fn request(&self, msg: &[u32], reply_len: usize) -> Vec<u32> {
        self.lock();
        self.take_bit(mbx::PFSTS | mbx::PFACK);
        for (i, w) in msg.iter().enumerate() {
            self.w(VFMBMEM + 4 * i as u32, *w);
        }
        self.w(VFMAILBOX, mbx::REQ);
        self.wait_bit(mbx::PFACK);
        self.wait_bit(mbx::PFSTS);
        self.read_msg(reply_len)
    }

    fn read_msg(&self, len: usize) -> Vec<u32> {
        self.lock();
        let r = (0..len).map(|i| self.r(VFMBMEM + 4 * i as u32)).collect();
        self.w(VFMAILBOX, mbx::ACK);
        r
    }

    /// Read a message and release the buffer without ACK: a VF without
    /// CTS that ACKs gets a FAILURE back for every ACK.
    fn read_msg_quietly(&self, len: usize) -> Vec<u32> {
        self.lock();
        let r = (0..len).map(|i| self.r(VFMBMEM + 4 * i as u32)).collect();
        self.w(VFMAILBOX, 0);
        r
    }

    /// VFCTRL.RST, then wait for RSTD (A.6 steps 6-8).
    fn vf_reset(&self) {
        self.w(VFCTRL, VFCTRL_RST);
        self.r(VFSTATUS);
        self.wait_bit(mbx::RSTD);
    }

    /// A.6 steps 6-12: reset, VF_RESET, API 1.3, GET_QUEUES.
    fn init(&self) -> Vec<u32> {
        self.vf_reset();
        let r = self.request(&[pf::VF_RESET], 4);
        assert_eq!(r[0], pf::VF_RESET | pf::SUCCESS);
        let a = self.request(&[pf::API_NEGOTIATE, Api::V1_3.0, 0], 3);
        assert_eq!(a[0], pf::API_NEGOTIATE | pf::SUCCESS | pf::CTS);
        self.request(&[pf::GET_QUEUES, 0, 0, 0, 0], 5)
    }

    fn program_rx(&self, q: u32, base: u64, len: u32, srrctl: u32) {
        self.w(rxr(q, Q_CTL), 0);
        self.w(rxr(q, Q_BAL), lo(base));
        self.w(rxr(q, Q_BAH), hi(base));
        self.w(rxr(q, Q_LEN), len);
        self.w(rxr(q, Q_HEAD), 0);
        self.w(rxr(q, Q_TAIL), 0);
        self.w(rxr(q, RX_SRRCTL), srrctl);
        self.w(rxr(q, Q_CTL), adv::QUEUE_ENABLE);
    }

    /// A.7.2 order; the enable polled back.
    fn rx_ring(&self, q: u32, count: usize) -> DmaSlice {
        let ring = self.arena.carve(count * 16, 128).unwrap();
        self.program_rx(q, ring.iova().get(), (count * 16) as u32, SRRCTL_2K);
        self.poll_enable(rxr(q, Q_CTL), true);
        ring
    }

    /// A.7.1 order; the enable polled back.
    fn tx_ring(&self, q: u32, count: usize) -> DmaSlice {
        let ring = self.arena.carve(count * 16, 128).unwrap();
        let base = ring.iova().get();
        self.w(txr(q, Q_CTL), 1 << 26); // SWFLSH: disabled
        self.w(txr(q, Q_BAL), lo(base));
        self.w(txr(q, Q_BAH), hi(base));
        self.w(txr(q, Q_LEN), (count * 16) as u32);
        self.w(txr(q, TX_TDWBAH), 0);
        self.w(txr(q, TX_TDWBAL), 0);
        self.w(txr(q, Q_DCA), DCA_TX_IN_ORDER);
        self.w(txr(q, Q_HEAD), 0);
        self.w(txr(q, Q_TAIL), 0);
        self.w(txr(q, Q_CTL), adv::QUEUE_ENABLE | 32 | (1 << 8));
        self.poll_enable(txr(q, Q_CTL), true);
        ring
    }

    fn poll_enable(&self, ctl: u32, on: bool) {
        let end = Instant::now() + PATIENCE;
        while (self.r(ctl) & adv::QUEUE_ENABLE != 0) != on {
            assert!(Instant::now() < end, "ENABLE never read back {on}");
            std::thread::sleep(Duration::from_micros(10));
        }
    }

    fn buf(&self) -> Mbuf {
        self.pool.alloc().expect("a buffer")
    }

    fn post_rx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf) {
        let a = m.data_iova().get();
        put(ring, slot, [lo(a), hi(a), 0, 0]);
    }

    /// A data descriptor with CC and context slot 0 (A.4.3, A.8 #3).
    fn post_tx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf, len: u32) {
        self.post_tx_olinfo(ring, slot, m, len, adv::TX_CC);
    }

    fn post_tx_olinfo(&self, ring: &DmaSlice, slot: usize, m: &Mbuf, len: u32, olinfo: u32) {
        let a = m.data_iova().get();
        let cmd = len | adv::TX_DTYP_DATA | adv::TX_DEXT | adv::TX_IFCS | adv::TX_EOP | adv::TX_RS;
        put(
            ring,
            slot,
            [lo(a), hi(a), cmd, olinfo | len << adv::TX_PAYLEN_SHIFT],
        );
    }

    fn wait_dd(&self, ring: &DmaSlice, slot: usize, word: usize) {
        let end = Instant::now() + PATIENCE;
        while get(ring, slot, word) & 1 == 0 {
            assert!(Instant::now() < end, "no DD");
            self.dev.flush();
        }
    }
}

fn frame(len: usize) -> RxFrame {
    RxFrame {
        data: (0..len).map(|i| i as u8).collect(),
        ..RxFrame::default()
    }
}

// ---- the correct sequence -----------------------------------------------------

/// Reset → VF_RESET → API 1.3 → GET_QUEUES → SET_LPE → one RX and one TX
/// queue → a frame each way → a clean stop: no violation, every buffer
/// back in its pool, the statistics counted.
#[test]
fn a_correct_raw_sequence_runs_clean_and_loses_no_buffer() {
    let t = raw();
    let q = t.init();
    assert_eq!(q, vec![pf::GET_QUEUES | pf::SUCCESS | pf::CTS, 2, 2, 0, 0]);
    let lpe = t.request(&[pf::SET_LPE, 1518], 2);
    assert_eq!(lpe[0], pf::SET_LPE | pf::SUCCESS | pf::CTS);
    assert!(t.dev.pf(|p| p.rx_enabled && p.tx_enabled));
    let gprc0 = t.r(VFGPRC);

    // RX: 8 descriptors, 7 posted (the tail never catches the head).
    let rx = t.rx_ring(0, 8);
    let mut bufs: Vec<Mbuf> = (0..7).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&rx, i, m);
    }
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    t.w(rxr(0, Q_TAIL), 7);
    assert!(t.dev.inject_frame(0, frame(100)));
    t.wait_dd(&rx, 0, 2);
    assert_eq!(get(&rx, 0, 3) & 0xFFFF, 100);
    assert_ne!(get(&rx, 0, 2) & adv::RX_EOP, 0);
    bufs[0].set_len(100).unwrap();
    assert_eq!(bufs[0].data(), &frame(100).data[..]);

    // TX: a context descriptor in slot 0, then the data descriptor.
    let tx = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(60).unwrap().fill(0x5A);
    put(&tx, 0, ctx_desc(0));
    t.post_tx(&tx, 1, &m, 60);
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    t.w(txr(0, Q_TAIL), 2);
    t.wait_dd(&tx, 1, 3);
    assert_eq!(t.dev.take_wire(), vec![vec![0x5A; 60]]);
    assert_eq!(t.r(VFGPRC).wrapping_sub(gprc0), 1);
    assert_eq!(t.r(VFGPTC), 1);
    assert_eq!(t.r(VFGOTC_LSB), 64);

    // Stop (A.7.3): clear ENABLE, poll it to 0, then free.
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    t.w(txr(0, Q_CTL), 1 << 26);
    t.poll_enable(txr(0, Q_CTL), false);
    for b in bufs {
        t.pool.free(b);
    }
    t.pool.free(m);
    assert_eq!(t.pool.available(), POOL as usize, "a buffer was lost");
    t.dev.violations().assert_clean();
}

// ---- ring rules ------------------------------------------------------------------

#[test]
fn enable_before_tail() {
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    let base = ring.iova().get();
    t.w(rxr(0, RX_SRRCTL), SRRCTL_2K);
    t.w(rxr(0, Q_BAL), lo(base));
    t.w(rxr(0, Q_BAH), hi(base));
    t.w(rxr(0, Q_LEN), 128);
    t.w(rxr(0, Q_TAIL), 7); // before RXDCTL.ENABLE (A.7.2)
    t.dev.violations().expect("enable-before-tail");
}

/// A PF reset stops the queues under the driver, which learns of it
/// only from the mailbox: its tail writes until then are ignored, not a
/// broken rule (Linux's ixgbevf writes them, seen in the vfio-user lab).
/// Once the driver reprograms the queue, the rule holds again.
#[test]
fn tails_written_after_a_pf_reset_are_ignored_until_the_driver_reprograms() {
    let t = raw();
    t.init();
    let _ring = t.tx_ring(0, 8);
    t.dev.pf_reset_begin();
    t.w(txr(0, Q_TAIL), 3);
    t.w(txr(0, Q_TAIL), 4);
    assert_eq!(t.dev.with(|m, _| m.tx[0].ignored_tails), 2);
    assert!(t.dev.violations().all().is_empty());
    t.dev.pf_reset_end();
    t.w(txr(0, Q_CTL), 0);
    t.w(txr(0, Q_TAIL), 5);
    t.dev.violations().expect("enable-before-tail");
}

#[test]
fn ring_base_alignment_and_length_multiples() {
    let t = raw();
    let ring = t.arena.carve(8 * 16 + 64, 128).unwrap();
    t.program_rx(0, ring.iova().get() + 64, 128, SRRCTL_2K);
    t.dev.violations().expect("ring-base-alignment");
    let t = raw();
    let ring = t.arena.carve(16 * 16, 128).unwrap();
    // 12 descriptors: not a multiple of 8 (A.8 #5).
    t.program_rx(0, ring.iova().get(), 12 * 16, SRRCTL_2K);
    t.dev.violations().expect("ring-length");
}

#[test]
fn bsizepkt_is_in_kilobytes() {
    // Bytes in the field: 2048 & 0x7F = 0.
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    let bytes = std::hint::black_box(2048u32) & 0x7F;
    t.program_rx(0, ring.iova().get(), 128, (SRRCTL_2K & !0x7F) | bytes);
    t.dev.violations().expect("bsizepkt-units");
    // 16 KB promised for a 2 KB buffer: the device would overrun it.
    let t = raw();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 128, (SRRCTL_2K & !0x7F) | 16);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, Q_TAIL), 1);
    t.dev.violations().expect("bsizepkt-units");
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    drop(m);
}

#[test]
fn tail_beyond_the_ring() {
    let t = raw();
    t.rx_ring(0, 8);
    t.w(rxr(0, Q_TAIL), 8);
    t.dev.violations().expect("tail-out-of-range");
    let t = raw();
    t.init();
    t.tx_ring(1, 8);
    t.w(txr(1, Q_TAIL), 100);
    t.dev.violations().expect("tail-out-of-range");
}

#[test]
fn rdt_never_equals_rdh_with_a_full_ring() {
    let t = raw();
    let ring = t.rx_ring(0, 8);
    let bufs: Vec<Mbuf> = (0..8).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&ring, i, m);
    }
    t.w(rxr(0, Q_TAIL), 7);
    t.dev.violations().assert_clean();
    t.w(rxr(0, Q_TAIL), 0); // all 8 (A.8 #1)
    t.dev.violations().expect("rdt-equals-rdh");
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
}

// ---- write-back and ownership ---------------------------------------------------

/// The driver takes an RX descriptor the device still owns (no DD).
/// A posted RX descriptor must not look completed: a stale write-back
/// with DD and a length is caught; Linux's way (the old status left,
/// wb.upper.length zeroed, A.8 #2: it reads length != 0 as done) is not
/// a broken rule (seen in the vfio-user lab).
#[test]
fn rx_post_must_not_look_completed() {
    let t = raw();
    t.init();
    let ring = t.rx_ring(0, 8);
    t.dev.pause();
    let (m0, m1) = (t.buf(), t.buf());
    let (a0, a1) = (m0.data_iova().get(), m1.data_iova().get());
    // Linux: status with DD and EOP left, length 0.
    put(&ring, 0, [lo(a0), hi(a0), adv::RX_DD | adv::RX_EOP, 0]);
    t.w(rxr(0, Q_TAIL), 1);
    assert!(t.dev.violations().all().is_empty());
    // A stale write-back: DD and a length of 60.
    put(&ring, 1, [lo(a1), hi(a1), adv::RX_DD | adv::RX_EOP, 60]);
    t.w(rxr(0, Q_TAIL), 2);
    t.dev.violations().expect("rx-post-clears-dd");
    t.dev.resume();
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    drop((m0, m1));
}

#[test]
fn rx_descriptor_taken_before_its_write_back() {
    let t = raw();
    t.init();
    let ring = t.rx_ring(0, 8);
    t.dev.pause();
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, Q_TAIL), 1);
    let _len = get(&ring, 0, 3) & 0xFFFF; // no DD check (A.8 #2)
    t.pool.free(m);
    t.dev.violations().expect("rx-buffer-taken-before-dd");
}

#[test]
fn tx_buffer_freed_before_its_write_back() {
    let t = raw();
    t.init();
    let ring = t.tx_ring(0, 8);
    t.dev.pause();
    let mut m = t.buf();
    m.append(60).unwrap().fill(1);
    put(&ring, 0, ctx_desc(0));
    t.post_tx(&ring, 1, &m, 60);
    t.w(txr(0, Q_TAIL), 2);
    t.pool.free(m); // before DD
    t.dev.violations().expect("tx-buffer-freed-before-dd");
    t.dev.flush();
    t.dev.violations().expect("dma-into-freed-buffer");
}

// ---- the check-context rule (A.8 #3) ----------------------------------------------

/// 82599: CC missing is reported; the frame still goes out.
#[test]
fn cc_missing_on_82599_is_reported() {
    let t = raw();
    t.init();
    let ring = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(60).unwrap().fill(2);
    put(&ring, 0, ctx_desc(0));
    t.post_tx_olinfo(&ring, 1, &m, 60, 0);
    t.w(txr(0, Q_TAIL), 2);
    t.dev.violations().expect("tx-cc-missing");
    t.wait_dd(&ring, 1, 3);
    assert_eq!(t.dev.take_wire().len(), 1);
    assert!(!t.dev.tx_mdd_stopped(0));
    t.pool.free(m);
}

/// A packet in two data descriptors with CC on the first only, as Linux's
/// ixgbevf writes a multi-fragment skb (olinfo_status 0 on the further
/// descriptors, ixgbevf_tx_map): clean, and the frame goes out whole. CC
/// missing on the next packet's first descriptor is still reported.
#[test]
fn cc_counts_on_a_packets_first_descriptor_only() {
    let t = raw();
    t.init();
    let ring = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(100).unwrap().fill(4);
    let a = m.data_iova().get();
    let first = 40 | adv::TX_DTYP_DATA | adv::TX_DEXT | adv::TX_IFCS;
    let last = 60 | adv::TX_DTYP_DATA | adv::TX_DEXT | adv::TX_IFCS | adv::TX_EOP | adv::TX_RS;
    put(&ring, 0, ctx_desc(0));
    put(
        &ring,
        1,
        [
            lo(a),
            hi(a),
            first,
            adv::TX_CC | 100 << adv::TX_PAYLEN_SHIFT,
        ],
    );
    put(&ring, 2, [lo(a + 40), hi(a + 40), last, 0]);
    t.w(txr(0, Q_TAIL), 3);
    t.wait_dd(&ring, 2, 3);
    assert_eq!(t.dev.take_wire().len(), 1);
    t.dev.violations().assert_clean();
    t.post_tx_olinfo(&ring, 3, &m, 60, 0);
    t.w(txr(0, Q_TAIL), 4);
    t.dev.violations().expect("tx-cc-missing");
    t.wait_dd(&ring, 3, 3);
    t.pool.free(m);
}

/// X550: CC missing stops the queue (MDD): nothing goes out, the buffer
/// stays the device's until the queue is disabled, then comes back.
#[test]
fn cc_missing_on_x550_stops_the_queue() {
    let t = raw_with(cfg(Flavor::X550));
    t.init();
    let ring = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(60).unwrap().fill(3);
    put(&ring, 0, ctx_desc(0));
    t.post_tx_olinfo(&ring, 1, &m, 60, 0);
    t.w(txr(0, Q_TAIL), 2);
    t.dev.violations().expect("tx-cc-missing");
    assert!(t.dev.tx_mdd_stopped(0));
    t.dev.settle();
    assert!(t.dev.take_wire().is_empty(), "a stopped queue sent");
    // A good descriptor after it does not restart the queue.
    let mut m2 = t.buf();
    m2.append(60).unwrap().fill(4);
    t.post_tx(&ring, 2, &m2, 60);
    t.w(txr(0, Q_TAIL), 3);
    t.dev.settle();
    assert!(t.dev.take_wire().is_empty());
    t.w(txr(0, Q_CTL), 1 << 26);
    t.poll_enable(txr(0, Q_CTL), false);
    t.pool.free(m);
    t.pool.free(m2);
    assert_eq!(t.pool.available(), POOL as usize);
    t.dev.violations().assert_clean();
}

/// CC set but no context descriptor since the enable (A.7.1 step 8).
#[test]
fn context_descriptor_missing() {
    for flavor in [Flavor::X82599, Flavor::X550] {
        let t = raw_with(cfg(flavor));
        t.init();
        let ring = t.tx_ring(0, 8);
        let mut m = t.buf();
        m.append(60).unwrap().fill(5);
        t.post_tx(&ring, 0, &m, 60);
        t.w(txr(0, Q_TAIL), 1);
        t.dev.violations().expect("tx-context-missing");
        assert_eq!(t.dev.tx_mdd_stopped(0), flavor == Flavor::X550);
        t.dev.settle();
        t.w(txr(0, Q_CTL), 1 << 26);
        t.poll_enable(txr(0, Q_CTL), false);
        t.pool.free(m);
        t.dev.take_wire();
    }
}

/// A context in slot 1 does not cover a data descriptor naming slot 0.
#[test]
fn context_slot_must_match() {
    let t = raw();
    t.init();
    let ring = t.tx_ring(0, 8);
    let mut m = t.buf();
    m.append(60).unwrap().fill(6);
    put(&ring, 0, ctx_desc(1));
    t.post_tx(&ring, 1, &m, 60); // IDX 0
    t.w(txr(0, Q_TAIL), 2);
    t.dev.violations().expect("tx-context-missing");
    t.wait_dd(&ring, 1, 3);
    t.pool.free(m);
}

// ---- queues and registers -----------------------------------------------------------

#[test]
fn queue_beyond_the_pf_count_cannot_be_enabled() {
    let t = raw();
    t.init();
    // The PF gave 2 (GET_QUEUES); queue 2 exists as registers only.
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(2, ring.iova().get(), 128, SRRCTL_2K);
    t.dev.violations().expect("queue-not-assigned");
    assert_eq!(t.r(rxr(2, Q_CTL)) & adv::QUEUE_ENABLE, 0);
    t.w(rxr(2, Q_CTL), 0);
    // Clearing all eight (A.3 defaults) is fine.
    for q in 0..8 {
        t.w(rxr(q, Q_CTL), 0);
        t.w(txr(q, Q_CTL), 0);
        t.w(rxr(q, RX_SRRCTL), 0x402);
    }
    t.dev.violations().assert_clean();
}

#[test]
fn vf_rss_registers_exist_on_x550_only() {
    let t = raw_with(cfg(Flavor::X550));
    t.w(VFRSSRK0 + 4, 0x1234_5678);
    t.w(VFRETA0 + 60, 0x0100_0100);
    t.w(VFMRQC, 1);
    assert_eq!(t.r(VFRSSRK0 + 4), 0x1234_5678);
    assert_eq!(t.dev.with(|m, _| m.rss().2[15]), 0x0100_0100);
    let t = raw();
    t.w(VFMRQC, 1);
    t.dev.violations().expect("vf-rss-registers-not-present");
}

#[test]
fn register_access_outside_the_bar() {
    let t = raw();
    t.r(BAR_LEN as u32);
    t.dev.violations().expect("register-access");
    t.w(0x102, 1);
    t.dev.violations().expect("register-access");
}

// ---- the mailbox ---------------------------------------------------------------------

#[test]
fn mailbox_access_without_vfu() {
    let t = raw();
    t.w(VFMBMEM, pf::VF_RESET); // no lock
    t.dev.violations().expect("mailbox-access-without-vfu");
    t.r(VFMBMEM + 4);
    t.dev.violations().expect("mailbox-access-without-vfu");
}

#[test]
fn message_lengths_are_exact() {
    let t = raw();
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    // API_NEGOTIATE is 3 words (A.5.3); 2 leaves word 2 stale.
    t.request(&[pf::API_NEGOTIATE, Api::V1_2.0], 3);
    t.dev.violations().expect("mailbox-message-length");
    // GET_QUEUES is 5; 6 is too long.
    t.request(&[pf::GET_QUEUES, 0, 0, 0, 0, 0], 5);
    t.dev.violations().expect("mailbox-message-length");
    // The exact ones pass.
    t.request(&[pf::GET_QUEUES, 0, 0, 0, 0], 5);
    t.request(
        &[
            pf::SET_MULTICAST | 1 << 16,
            0x123,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ],
        1,
    );
    t.dev.violations().assert_clean();
}

#[test]
fn request_before_vf_reset_fails_without_cts() {
    let t = raw();
    t.vf_reset();
    let r = t.request(&[pf::GET_QUEUES, 0, 0, 0, 0], 1);
    assert_eq!(
        r[0],
        pf::GET_QUEUES | pf::FAILURE,
        "FAILURE, no CTS (A.5.4)"
    );
    t.dev.violations().expect("mailbox-request-before-vf-reset");
}

#[test]
fn mailbox_req_before_pfack() {
    let t = raw();
    t.dev.pause();
    t.lock();
    t.w(VFMBMEM, pf::VF_RESET);
    t.w(VFMAILBOX, mbx::REQ);
    t.lock();
    t.w(VFMBMEM, pf::VF_RESET);
    t.w(VFMAILBOX, mbx::REQ); // the PF has not read the first
    t.dev.violations().expect("mailbox-req-before-pfack");
}

/// PFSTS, PFACK and RSTD clear when read (A.5.1); RSTI is a level.
#[test]
fn read_to_clear_bits() {
    let t = raw();
    t.w(VFCTRL, VFCTRL_RST);
    assert_ne!(t.r(VFMAILBOX) & mbx::RSTD, 0);
    assert_eq!(t.r(VFMAILBOX) & mbx::RSTD, 0, "RSTD is read-to-clear");
    t.lock();
    t.w(VFMBMEM, pf::VF_RESET);
    t.w(VFMAILBOX, mbx::REQ);
    t.dev.settle();
    let v = t.r(VFMAILBOX);
    assert_eq!(v & (mbx::PFACK | mbx::PFSTS), mbx::PFACK | mbx::PFSTS);
    assert_eq!(t.r(VFMAILBOX) & mbx::R2C, 0);
    // The Linux driver ORs its cached bits into the lock write (trace:
    // VFMAILBOX = 0x34); that takes the lock and sets nothing else.
    t.w(VFMAILBOX, mbx::VFU | mbx::PFSTS | mbx::PFACK);
    assert_eq!(t.r(VFMAILBOX), mbx::VFU);
    t.w(VFMAILBOX, mbx::ACK);
    // RSTI stays while the PF is in reset.
    t.dev.pf_reset_begin();
    assert_ne!(t.r(VFMAILBOX) & mbx::RSTI, 0);
    assert_ne!(t.r(VFMAILBOX) & mbx::RSTI, 0);
    t.dev.pf_reset_end();
    let v = t.r(VFMAILBOX);
    assert_eq!(v & (mbx::RSTI | mbx::RSTD), mbx::RSTD);
}

// ---- the PF's answers --------------------------------------------------------------------

#[test]
fn vf_reset_reply_carries_the_mac_and_no_cts() {
    let mut c = cfg(Flavor::X82599);
    c.pf.mc_filter_type = 2;
    let t = raw_with(c);
    t.vf_reset();
    let r = t.request(&[pf::VF_RESET], 4);
    assert_eq!(r[0], pf::VF_RESET | pf::SUCCESS, "exactly, no CTS");
    assert_eq!(r[1].to_le_bytes(), [MAC[0], MAC[1], MAC[2], MAC[3]]);
    assert_eq!(r[2] & 0xFFFF, u16::from_le_bytes([MAC[4], MAC[5]]) as u32);
    assert_eq!(r[3], 2);
    // No admin MAC: FAILURE, and the VF may set its own.
    let t = raw_with(IxgbevfConfig::new(Flavor::X82599, None));
    t.vf_reset();
    assert_eq!(t.request(&[pf::VF_RESET], 1)[0], pf::VF_RESET | pf::FAILURE);
    let r = t.request(&[pf::SET_MAC_ADDR, 0x0000_AA02, 0x0000_0100], 1);
    assert_eq!(r[0], pf::SET_MAC_ADDR | pf::SUCCESS | pf::CTS);
    assert_eq!(
        t.dev.pf(|p| p.vf_mac),
        Some(MacAddr([0x02, 0xAA, 0, 0, 0, 0x01]))
    );
}

/// After a PF reset the ping comes without CTS; the VF that reads and
/// ACKs it gets a bare FAILURE, the only message that makes Linux's VF
/// reset itself (ixgbe_rcv_ack_from_vf; found in the vfio-user lab). A VF
/// that is clear to send gets no answer to its ACK.
#[test]
fn a_vf_without_cts_acking_a_ping_gets_a_failure() {
    let t = raw();
    t.init();
    t.dev.set_link(false);
    t.wait_bit(mbx::PFSTS);
    assert_eq!(t.read_msg(1)[0], pf::PF_CONTROL_MSG | pf::CTS);
    t.dev.settle();
    assert!(
        !t.take_bit(mbx::PFSTS),
        "clear to send: nothing after the ACK"
    );
    t.dev.set_link(true);
    t.wait_bit(mbx::PFSTS);
    t.read_msg(1);

    t.dev.pf_reset_begin();
    t.dev.pf_reset_end();
    t.wait_bit(mbx::PFSTS);
    assert_eq!(t.read_msg(1)[0], pf::PF_CONTROL_MSG, "the ping, no CTS");
    t.wait_bit(mbx::PFSTS);
    assert_eq!(t.read_msg(1)[0], pf::FAILURE, "a bare FAILURE for the ACK");
    // VF_RESET brings CTS back; the next ping's ACK is not answered.
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    t.dev.set_link(false);
    t.wait_bit(mbx::PFSTS);
    assert_eq!(t.read_msg(1)[0], pf::PF_CONTROL_MSG | pf::CTS);
    t.dev.settle();
    assert!(!t.take_bit(mbx::PFSTS));
}

#[test]
fn api_negotiation_follows_the_pf_list() {
    let t = raw();
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    // GET_QUEUES needs 1.1 (A.5.3); the VF is at 1.0 after VF_RESET.
    let r = t.request(&[pf::GET_QUEUES, 0, 0, 0, 0], 1);
    assert_eq!(r[0], pf::GET_QUEUES | pf::FAILURE | pf::CTS);
    for (api, ok) in [
        (Api::V1_7, false),
        (Api::V1_6, false),
        (Api::V1_5, false),
        (Api::V1_4, true),
    ] {
        let r = t.request(&[pf::API_NEGOTIATE, api.0, 0], 1);
        let flag = if ok { pf::SUCCESS } else { pf::FAILURE };
        assert_eq!(r[0], pf::API_NEGOTIATE | flag | pf::CTS, "{api:?}");
    }
    assert_eq!(t.dev.pf(|p| p.api), Api::V1_4);
    // A PF offering 1.0-1.3 only (DPDK's, A.5.3).
    let mut c = cfg(Flavor::X82599);
    c.pf.apis = vec![Api::V1_0, Api::V1_1, Api::V1_2, Api::V1_3];
    let t = raw_with(c);
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    let r = t.request(&[pf::API_NEGOTIATE, Api::V1_4.0, 0], 1);
    assert_eq!(r[0] & pf::FAILURE, pf::FAILURE);
    let r = t.request(&[pf::API_NEGOTIATE, Api::V1_3.0, 0], 1);
    assert_eq!(r[0] & pf::SUCCESS, pf::SUCCESS);
}

#[test]
fn get_queues_reports_the_pf_layout() {
    let mut c = cfg(Flavor::X540);
    c.pf.queues = (4, 4, 0, 0);
    let t = raw_with(c);
    assert_eq!(&t.init()[1..], &[4, 4, 0, 0]);
}

#[test]
fn untrusted_vf_limits() {
    let t = raw();
    t.init();
    // Another MAC than the admin's: refused (A.5.3).
    let r = t.request(&[pf::SET_MAC_ADDR, 0x0000_BB02, 0], 1);
    assert_eq!(r[0], pf::SET_MAC_ADDR | pf::FAILURE | pf::CTS);
    // The admin's own: fine.
    let w1 = u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]);
    let w2 = u16::from_le_bytes([MAC[4], MAC[5]]) as u32;
    let r = t.request(&[pf::SET_MAC_ADDR, w1, w2], 1);
    assert_eq!(r[0], pf::SET_MAC_ADDR | pf::SUCCESS | pf::CTS);
    // ALLMULTI from an untrusted VF is cut to MULTI.
    let r = t.request(&[pf::UPDATE_XCAST_MODE, 2], 2);
    assert_eq!(r, vec![pf::UPDATE_XCAST_MODE | pf::SUCCESS | pf::CTS, 1]);
    // PROMISC is refused on 82599.
    let r = t.request(&[pf::UPDATE_XCAST_MODE, 3], 1);
    assert_eq!(r[0] & pf::FAILURE, pf::FAILURE);
    // A trusted VF gets ALLMULTI.
    let mut c = cfg(Flavor::X550);
    c.pf.trusted = true;
    let t = raw_with(c);
    t.init();
    let r = t.request(&[pf::UPDATE_XCAST_MODE, 2], 2);
    assert_eq!(r[1], 2);
}

/// 82599 jumbo rule (A.8 #7): a jumbo PF keeps VF RX off after VF_RESET
/// until SET_LPE; with API 1.0 a jumbo VF frame keeps it off.
#[test]
fn set_lpe_and_the_82599_jumbo_rule() {
    let mut c = cfg(Flavor::X82599);
    c.pf.pf_mtu = 9000;
    let t = raw_with(c);
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    assert!(!t.dev.pf(|p| p.rx_enabled));
    // API 1.0 with a jumbo PF: SET_LPE leaves it off.
    t.request(&[pf::SET_LPE, 1518], 1);
    assert!(!t.dev.pf(|p| p.rx_enabled));
    // From 1.1 a jumbo PF allows it.
    t.request(&[pf::API_NEGOTIATE, Api::V1_1.0, 0], 1);
    t.request(&[pf::SET_LPE, 1518], 1);
    assert!(t.dev.pf(|p| p.rx_enabled));
    // API 1.0, PF MTU 1500, the VF asks for 9018: RX off.
    let t = raw();
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    t.request(&[pf::SET_LPE, 9018], 1);
    assert!(!t.dev.pf(|p| p.rx_enabled));
    assert_eq!(t.dev.pf(|p| p.max_frame), Some(9018));
}

#[test]
fn multicast_and_vlan_filters() {
    let t = raw();
    t.init();
    let mut msg = vec![pf::SET_MULTICAST | 3 << 16, 0x0222_0111, 0x0333];
    msg.resize(16, 0);
    t.request(&msg, 1);
    assert_eq!(t.dev.pf(|p| p.mc_hashes.clone()), vec![0x111, 0x222, 0x333]);
    let r = t.request(&[pf::SET_VLAN | 1 << 16, 100], 1);
    assert_eq!(r[0], pf::SET_VLAN | 1 << 16 | pf::SUCCESS | pf::CTS);
    assert_eq!(t.dev.pf(|p| p.vlans.clone()), vec![0, 100]);
    // With a port VLAN the PF refuses (A.5.3).
    let mut c = cfg(Flavor::X82599);
    c.pf.port_vlan = Some(7);
    let t = raw_with(c);
    t.init();
    let r = t.request(&[pf::SET_VLAN | 1 << 16, 100], 1);
    assert_eq!(r[0] & pf::FAILURE, pf::FAILURE);
    assert_eq!(t.dev.pf(|p| p.vlans.clone()), vec![7]);
}

/// RX overrun: with no buffer posted, frames beyond the FIFO are dropped
/// and counted; the ones held are delivered once buffers come.
#[test]
fn rx_overrun_drops_are_counted() {
    let mut c = cfg(Flavor::X82599);
    c.rx_fifo = 2;
    let t = raw_with(c);
    t.init();
    let ring = t.rx_ring(0, 8);
    let delivered: Vec<bool> = (0..5).map(|_| t.dev.inject(0, &[0x10; 64])).collect();
    assert_eq!(delivered, [true, true, false, false, false]);
    assert_eq!(t.dev.rx_dropped(0), 3);
    let bufs: Vec<Mbuf> = (0..2).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&ring, i, m);
    }
    t.w(rxr(0, Q_TAIL), 2);
    t.wait_dd(&ring, 1, 2);
    assert_eq!(t.r(VFGPRC), 2);
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    drop(bufs);
}

/// A frame bigger than BSIZEPKT spans descriptors, EOP on the last only
/// (A.8 #6).
#[test]
fn a_frame_spans_descriptors_with_eop_on_the_last() {
    let t = raw();
    t.init();
    let ring = t.arena.carve(8 * 16, 128).unwrap();
    t.program_rx(0, ring.iova().get(), 128, (SRRCTL_2K & !0x7F) | 1); // 1 KB
    t.poll_enable(rxr(0, Q_CTL), true);
    let bufs: Vec<Mbuf> = (0..2).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&ring, i, m);
    }
    t.w(rxr(0, Q_TAIL), 2);
    assert!(t.dev.inject_frame(0, frame(1500)));
    t.wait_dd(&ring, 1, 2);
    assert_eq!(get(&ring, 0, 3) & 0xFFFF, 1024);
    assert_eq!(get(&ring, 0, 2) & adv::RX_EOP, 0);
    assert_eq!(get(&ring, 1, 3) & 0xFFFF, 1500 - 1024);
    assert_ne!(get(&ring, 1, 2) & adv::RX_EOP, 0);
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    drop(bufs);
}

// ---- faults -------------------------------------------------------------------------------

/// PF reset: PF_CONTROL_MSG without CTS, RSTI, link down, queues stopped
/// with their buffers back; after it, RSTD, link up, and the VF's reset
/// and VF_RESET bring CTS back.
#[test]
fn pf_reset_and_recovery() {
    let t = raw();
    t.init();
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, Q_TAIL), 1);
    t.dev.pf_reset_begin();
    assert_eq!(t.r(VFLINKS) & LINKS_UP, 0);
    assert_ne!(t.mbox() & mbx::RSTI, 0);
    assert!(t.take_bit(mbx::PFSTS));
    let msg = t.read_msg(1);
    assert_eq!(msg[0], pf::PF_CONTROL_MSG, "a ping without CTS");
    // The PF answers that ACK with a bare FAILURE (ixgbe_rcv_ack_from_vf),
    // and every further ACK of this VF the same way: read it without ACK
    // before the next request, or it would be taken for its reply.
    t.wait_bit(mbx::PFSTS);
    assert_eq!(t.read_msg_quietly(1)[0], pf::FAILURE);
    assert_eq!(t.dev.rx_owned(0), 0, "the reset gave every buffer back");
    t.pool.free(m);
    // Requests meanwhile fail; the VF learned it from the ping: no rule
    // broken.
    let r = t.request(&[pf::GET_QUEUES, 0, 0, 0, 0], 1);
    assert_eq!(r[0], pf::GET_QUEUES | pf::FAILURE);
    t.dev.pf_reset_end();
    assert!(t.take_bit(mbx::RSTD));
    assert_ne!(t.r(VFLINKS) & LINKS_UP, 0);
    assert_eq!(&t.init()[1..], &[2, 2, 0, 0]);
    t.dev.violations().assert_clean();
}

#[test]
fn link_down_and_up_ping_with_cts() {
    let t = raw();
    t.init();
    assert_eq!(t.r(VFLINKS), LINKS_UP | LINKS_SPEED_10G);
    t.dev.set_link(false);
    assert_eq!(t.r(VFLINKS) & LINKS_UP, 0);
    assert!(t.take_bit(mbx::PFSTS));
    assert_eq!(t.read_msg(1)[0], pf::PF_CONTROL_MSG | pf::CTS);
    assert!(!t.dev.inject(0, &[0; 64]), "link down: dropped");
    t.dev.set_link(true);
    assert_ne!(t.r(VFLINKS) & LINKS_UP, 0);
    assert!(t.take_bit(mbx::PFSTS));
    assert_eq!(t.read_msg(1)[0], pf::PF_CONTROL_MSG | pf::CTS);
}

#[test]
fn mailbox_timeout_when_the_pf_stops_answering() {
    let t = raw();
    t.init();
    t.dev.set_pf_silent(true);
    t.lock();
    t.w(VFMBMEM, pf::GET_QUEUES);
    for i in 1..5 {
        t.w(VFMBMEM + 4 * i, 0);
    }
    t.w(VFMAILBOX, mbx::REQ);
    t.dev.settle();
    assert_eq!(t.mbox() & (mbx::PFACK | mbx::PFSTS), 0, "no answer");
}

#[test]
fn admin_mac_change_reaches_the_next_vf_reset() {
    let t = raw();
    t.init();
    let new = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    t.dev.admin_set_mac(new);
    // The old MAC is no longer the VF's to set (untrusted).
    let w1 = u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]);
    let w2 = u16::from_le_bytes([MAC[4], MAC[5]]) as u32;
    let r = t.request(&[pf::SET_MAC_ADDR, w1, w2], 1);
    assert_eq!(r[0] & pf::FAILURE, pf::FAILURE);
    t.vf_reset();
    let r = t.request(&[pf::VF_RESET], 3);
    assert_eq!(r[1].to_le_bytes(), [0x02, 0, 0, 0]);
    assert_eq!(r[2] & 0xFFFF, 0x9900);
}

// ---- interrupts and statistics ---------------------------------------------------------

/// VTEICR reads clear it; with VTEIAC/VTEIAM the message clears the cause
/// and masks the vector (the Linux driver's setting, REPORT.md), and a
/// VTEIMS re-arm sends a pending cause.
#[test]
fn interrupts_auto_clear_and_read_to_clear() {
    let t = raw();
    t.init();
    t.w(VTEICS, 0x1);
    assert_eq!(t.r(VTEICR), 0x1);
    assert_eq!(t.r(VTEICR), 0, "VTEICR is read-to-clear");
    // RX queue 0 → vector 0 (A.3 VTIVAR entry at bit 0), misc → vector 1.
    t.w(VTIVAR0, IVAR_ALLOC_VAL);
    t.w(VTIVAR_MISC, IVAR_ALLOC_VAL | 1);
    t.w(VTEIAC, 0x3);
    t.w(VTEIAM, 0x3);
    t.w(VTEIMS, 0x3);
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, Q_TAIL), 1);
    assert!(t.dev.inject(0, &[0xFF; 64]));
    t.wait_dd(&ring, 0, 2);
    let irq = t.dev.irq();
    assert_eq!(irq.sent[0], 1);
    assert_eq!(irq.eicr & 1, 0, "auto-cleared");
    assert_eq!(irq.eims & 1, 0, "auto-masked");
    assert_eq!(t.r(VFMPRC), 1, "a multicast frame");
    // Without auto-clear the cause stays for VTEICR, and re-arming a
    // pending cause sends it.
    t.w(VTEIAC, 0);
    t.w(VTEIAM, 0);
    t.w(VTEICS, 0x1);
    assert_eq!(t.dev.irq().sent[0], 1, "masked: nothing sent");
    t.w(VTEIMS, 0x1);
    assert_eq!(t.dev.irq().sent[0], 2);
    assert_eq!(t.r(VTEICR) & 1, 1);
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    t.pool.free(m);
}

/// GORC/GOTC are 36 bits over LSB/MSB, the packet counters 32 (A.2).
#[test]
fn statistics_widths_and_wrap() {
    let t = raw();
    t.init();
    t.dev.set_stat(VFGORC_LSB, (1 << 36) - 10);
    assert_eq!(t.r(VFGORC_MSB), 0xF);
    assert_eq!(t.r(VFGORC_LSB), u32::MAX - 9);
    t.dev.set_stat(VFGPRC, u32::MAX as u64);
    let ring = t.rx_ring(0, 8);
    let m = t.buf();
    t.post_rx(&ring, 0, &m);
    t.w(rxr(0, Q_TAIL), 1);
    assert!(t.dev.inject(0, &[0; 60]));
    t.wait_dd(&ring, 0, 2);
    // 60 + 4 (FCS) octets past 2^36 - 10: 54.
    assert_eq!((t.r(VFGORC_MSB), t.r(VFGORC_LSB)), (0, 54));
    assert_eq!(t.r(VFGPRC), 0, "32-bit wrap");
    // Writes do not clear them (A.2).
    t.w(VFGORC_LSB, 0xFFFF);
    t.w(VFGPRC, 5);
    assert_eq!((t.r(VFGORC_LSB), t.r(VFGPRC)), (54, 0));
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    t.pool.free(m);
}

// ---- the real Linux driver ---------------------------------------------------------------

/// The Linux ixgbevf driver's own control and mailbox accesses (probe and
/// link up, recorded against the vfio-user prototype) replayed on the
/// model: the model accepts every one (no violation), and every mailbox
/// word the driver read back is what this PF answers, given the PF setup
/// that trace ran with (admin MAC 02:00:00:12:34:56, APIs 1.0-1.3, one
/// queue each way).
#[test]
fn the_linux_drivers_control_sequence_is_accepted() {
    let trace = include_str!("testdata/ixgbevf-linux-control-trace.txt");
    let mut c = IxgbevfConfig::new(
        Flavor::X82599,
        Some(MacAddr([0x02, 0, 0, 0x12, 0x34, 0x56])),
    );
    c.pf.apis = vec![Api::V1_0, Api::V1_1, Api::V1_2, Api::V1_3];
    c.pf.queues = (1, 1, 0, 0);
    let t = raw_with(c);
    let mut mismatches = Vec::new();
    let mut accesses = 0;
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let off = u32::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap();
        let val = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap();
        accesses += 1;
        if f[0] == "W" {
            t.w(off, val);
            if off == VFMAILBOX && val & mbx::REQ != 0 {
                // The driver polls for the answer; let the PF give it.
                t.dev.settle();
            }
        } else {
            let got = t.r(off);
            if (VFMBMEM..VFMBMEM + 64).contains(&off) && got != val {
                mismatches.push(format!("{off:#06x}: trace {val:#010x}, model {got:#010x}"));
            }
        }
    }
    assert!(accesses > 700, "the trace is there");
    t.dev.violations().assert_clean();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let ids: Vec<u32> = t.dev.requests().iter().map(|w| w & 0xFFFF).collect();
    assert_eq!(&ids[..2], &[pf::VF_RESET, pf::API_NEGOTIATE]);
    assert!(ids.contains(&pf::GET_QUEUES) && ids.contains(&pf::UPDATE_XCAST_MODE));
}

/// VFCTRL.RST under traffic: the queues stop at once and every buffer goes
/// back, CTS is gone until the next VF_RESET, and VF_RESET restores the
/// PF's defaults (A.5.4: filters reset, VLAN 0 back, API 1.0).
#[test]
fn vf_reset_under_traffic_returns_every_buffer_and_needs_vf_reset_again() {
    let t = raw();
    t.init();
    t.request(&[pf::SET_VLAN | 1 << 16, 42], 1);
    let ring = t.rx_ring(0, 8);
    let bufs: Vec<Mbuf> = (0..7).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&ring, i, m);
    }
    t.w(rxr(0, Q_TAIL), 7);
    assert_eq!(t.dev.rx_owned(0), 7);
    t.vf_reset();
    assert_eq!(t.dev.rx_owned(0), 0);
    assert_eq!(t.r(rxr(0, Q_CTL)) & adv::QUEUE_ENABLE, 0);
    assert!(!t.dev.pf(|p| p.cts));
    drop(bufs);
    assert_eq!(t.pool.available(), POOL as usize);
    t.request(&[pf::VF_RESET], 4);
    assert_eq!(t.dev.pf(|p| (p.vlans.clone(), p.api)), (vec![0], Api::V1_0));
    t.dev.violations().assert_clean();
}

/// An FLR clears the queue registers but not TDWBAL/H (A.8 #15); the PF
/// clears those on VF_RESET.
#[test]
fn flr_keeps_the_head_write_back_address() {
    use crate::pci::PciFunction;
    let t = raw();
    t.init();
    t.w(txr(0, TX_TDWBAL), 0x1000);
    t.w(txr(0, Q_LEN), 128);
    t.bar.function_reset().unwrap();
    t.bar.set_bus_master(true).unwrap();
    assert_eq!(t.r(txr(0, TX_TDWBAL)), 0x1000);
    assert_eq!(t.r(txr(0, Q_LEN)), 0);
    t.wait_bit(mbx::RSTD);
    t.request(&[pf::VF_RESET], 1);
    assert_eq!(t.r(txr(0, TX_TDWBAL)), 0);
}

/// Many frames each way through 8-descriptor rings, round the wrap point
/// several times: RX refilled one descriptor at a time (the tail one
/// behind the head, A.8 #1), TX with a context descriptor before every
/// packet as Linux does (A.8 #3); every payload checked, no buffer lost.
#[test]
fn traffic_wraps_the_rings_without_loss() {
    let t = raw_with(cfg(Flavor::X550));
    t.init();
    let rx = t.rx_ring(0, 8);
    let mut posted: Vec<Option<Mbuf>> = (0..8).map(|_| None).collect();
    for (i, p) in posted.iter_mut().enumerate().take(7) {
        let m = t.buf();
        t.post_rx(&rx, i, &m);
        *p = Some(m);
    }
    t.w(rxr(0, Q_TAIL), 7);
    let tx = t.tx_ring(0, 8);
    let (mut rx_next, mut tx_next) = (0usize, 0usize);
    for n in 0..40usize {
        let len = 60 + (n * 37) % 1400;
        let data: Vec<u8> = (0..len).map(|i| (i + n) as u8).collect();
        // RX: the frame lands in the next slot.
        assert!(t.dev.inject(0, &data));
        t.wait_dd(&rx, rx_next, 2);
        assert_eq!(get(&rx, rx_next, 3) & 0xFFFF, len as u32);
        let mut m = posted[rx_next].take().expect("posted");
        m.set_len(len).unwrap();
        assert_eq!(m.data(), &data[..], "frame {n}");
        t.pool.free(m);
        // Refill the slot the tail points at, then move the tail on.
        let slot = (rx_next + 7) % 8;
        let fresh = t.buf();
        t.post_rx(&rx, slot, &fresh);
        posted[slot] = Some(fresh);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        t.w(rxr(0, Q_TAIL), ((slot + 1) % 8) as u32);
        rx_next = (rx_next + 1) % 8;
        // TX: context + data, two descriptors per packet.
        let mut m = t.buf();
        m.append(len).unwrap().copy_from_slice(&data);
        put(&tx, tx_next, ctx_desc(0));
        t.post_tx(&tx, (tx_next + 1) % 8, &m, len as u32);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        t.w(txr(0, Q_TAIL), ((tx_next + 2) % 8) as u32);
        t.wait_dd(&tx, (tx_next + 1) % 8, 3);
        t.pool.free(m);
        tx_next = (tx_next + 2) % 8;
        assert_eq!(t.dev.take_wire(), vec![data]);
    }
    assert_eq!(t.r(VFGPRC), 40);
    assert_eq!(t.r(VFGPTC), 40);
    t.w(rxr(0, Q_CTL), 0);
    t.poll_enable(rxr(0, Q_CTL), false);
    t.w(txr(0, Q_CTL), 1 << 26);
    t.poll_enable(txr(0, Q_CTL), false);
    drop(posted);
    assert_eq!(t.pool.available(), POOL as usize, "a buffer was lost");
    t.dev.violations().assert_clean();
}

/// The newer protocol (A.5.2) reads the buffer without VFU once API 1.5 is
/// negotiated; under 1.4 that read breaks the rule.
#[test]
fn lockless_reads_only_with_the_newer_protocol() {
    let mut c = cfg(Flavor::X550);
    c.pf.apis.push(Api::V1_5);
    let t = raw_with(c);
    t.vf_reset();
    t.request(&[pf::VF_RESET], 4);
    t.request(&[pf::API_NEGOTIATE, Api::V1_4.0, 0], 1);
    t.r(VFMBMEM);
    t.dev.violations().expect("mailbox-access-without-vfu");
    t.request(&[pf::API_NEGOTIATE, Api::V1_5.0, 0], 1);
    t.dev.settle();
    t.r(VFMBMEM);
    t.dev.violations().assert_clean();
}

/// With TCs the PF's default queue is the VF's TX queue (A.6 step 12),
/// even when its index is beyond the TX count.
#[test]
fn with_tcs_the_default_queue_may_transmit() {
    let mut c = cfg(Flavor::X82599);
    c.pf.queues = (1, 4, 4, 3);
    let t = raw_with(c);
    assert_eq!(&t.init()[1..], &[1, 4, 4, 3]);
    t.tx_ring(3, 8);
    t.dev.violations().assert_clean();
    t.w(txr(2, Q_CTL), adv::QUEUE_ENABLE);
    t.dev.violations().expect("queue-not-assigned");
}
