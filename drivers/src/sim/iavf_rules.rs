//! The iavf model driven by a raw register-level driver written here (not
//! the PMD): the B.6 initialisation through the admin queue, frames both
//! ways, each rule broken on purpose and caught by name, the PF's answers
//! and every fault.
//!
//! Raw sequences use the model's own constants (`super::iavf*`) and plain
//! numbers with their nic-facts.md sections, never a driver's.

use super::iavf::*;
use super::iavf_aq::{self as aq, flags};
use super::iavf_pf::{self as pf, op, status};
use super::iavf_queue as q;
use super::Iommu;
use crate::mbuf::Mbuf;
use crate::memory::{DmaArena, DmaSlice, MemoryBacking};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pool::{Pool, PoolConfig};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x30];
pub(super) const PATIENCE: Duration = Duration::from_secs(20);
/// Buffers in the test pool.
pub(super) const POOL: u32 = 128;
/// AQ entries (B.3.2: 32).
const AQ_LEN: u32 = 32;
/// The vsi_id the model's PF hands out (checked from the reply).
pub(super) const RING: u32 = 64;
/// RX buffer size given to the PF: a multiple of 128 (B.8 #4).
const RX_BUF: u32 = 1024;

pub(super) fn poke(s: &DmaSlice, off: usize, b: &[u8]) {
    assert!(off + b.len() <= s.len());
    for (i, x) in b.iter().enumerate() {
        // SAFETY: in bounds (asserted); volatile because the device reads
        // this memory behind the compiler's back.
        unsafe { s.as_ptr().as_ptr().add(off + i).write_volatile(*x) }
    }
}

pub(super) fn peek(s: &DmaSlice, off: usize, len: usize) -> Vec<u8> {
    assert!(off + len <= s.len());
    // SAFETY: as in `poke`; the device writes it.
    (0..len)
        .map(|i| unsafe { s.as_ptr().as_ptr().add(off + i).read_volatile() })
        .collect()
}

pub(super) fn u64_at(s: &DmaSlice, off: usize) -> u64 {
    u64::from_le_bytes(peek(s, off, 8).try_into().unwrap())
}

pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// A reply or event from the ARQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Msg {
    pub(super) op: u32,
    pub(super) status: i32,
    pub(super) data: Vec<u8>,
}

pub(super) struct Raw {
    pub(super) dev: IavfSim,
    pub(super) bar: Arc<IavfBar>,
    pub(super) pool: Pool,
    pub(super) arena: DmaArena,
    pub(super) atq: DmaSlice,
    pub(super) arq: DmaSlice,
    pub(super) atq_bufs: Vec<DmaSlice>,
    pub(super) arq_bufs: Vec<DmaSlice>,
    /// ATQ next to use, ARQ next to clean (B.3.2).
    pub(super) ntu: Cell<u32>,
    pub(super) ntc: Cell<u32>,
    /// Events read while waiting for a reply.
    pub(super) events: RefCell<Vec<Vec<u8>>>,
    pub(super) vsi: Cell<u16>,
}

pub(super) fn raw_with(cfg: IavfConfig) -> Raw {
    raw_on(None, cfg)
}

/// A raw driver on a model alone, or on a VF of `veb`'s PF (in its own
/// DMA space).
pub(super) fn raw_on(veb: Option<&Arc<super::veb::Veb>>, cfg: IavfConfig) -> Raw {
    let iommu = Iommu::new();
    let dev = match veb {
        Some(v) => Iavf::start_on(v, cfg, &iommu).expect("a free switch port"),
        None => Iavf::start(cfg, &iommu),
    };
    let mut pc = PoolConfig::new("iavf-rules", POOL).with_backing(MemoryBacking::NoHuge);
    pc.cache_size = 0;
    pc.dma = Some(iommu.mapper());
    let pool = Pool::new(&pc).unwrap();
    let arena = DmaArena::new(2 << 20, &MemoryBacking::NoHuge, &iommu.mapper()).unwrap();
    let bufs = |a: &DmaArena| -> Vec<DmaSlice> {
        (0..AQ_LEN)
            .map(|_| a.carve(aq::BUF_LEN, 4096).unwrap())
            .collect()
    };
    let atq = arena.carve(32 * AQ_LEN as usize, 4096).unwrap();
    let arq = arena.carve(32 * AQ_LEN as usize, 4096).unwrap();
    let atq_bufs = bufs(&arena);
    let arq_bufs = bufs(&arena);
    Raw {
        bar: dev.bar(),
        dev,
        pool,
        arena,
        atq,
        arq,
        atq_bufs,
        arq_bufs,
        ntu: Cell::new(0),
        ntc: Cell::new(0),
        events: RefCell::new(Vec::new()),
        vsi: Cell::new(0),
    }
}

pub(super) fn cfg(flavor: Flavor) -> IavfConfig {
    IavfConfig::new(flavor, Some(MacAddr(MAC)))
}

fn raw() -> Raw {
    raw_with(cfg(Flavor::Xl710))
}

/// virtchnl_queue_select (B.4.3).
pub(super) fn queue_select(vsi: u16, rx: u32, tx: u32) -> Vec<u8> {
    let mut m = vsi.to_le_bytes().to_vec();
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&rx.to_le_bytes());
    m.extend_from_slice(&tx.to_le_bytes());
    m
}

/// One queue pair's rings for CONFIG_VSI_QUEUES.
#[derive(Clone, Copy)]
pub(super) struct Pair {
    queue: u16,
    tx_len: u16,
    tx_base: u64,
    rx_len: u32,
    rx_base: u64,
    buf: u32,
    max_pkt: u32,
}

/// CONFIG_VSI_QUEUES with B.4.4's exact length (one spare element).
fn vsi_queues(vsi: u16, pairs: &[Pair]) -> Vec<u8> {
    let mut m = vec![0u8; 8 + 64 * (pairs.len() + 1)];
    m[0..2].copy_from_slice(&vsi.to_le_bytes());
    m[2..4].copy_from_slice(&(pairs.len() as u16).to_le_bytes());
    for (i, p) in pairs.iter().enumerate() {
        let t = 8 + 64 * i;
        m[t..t + 2].copy_from_slice(&vsi.to_le_bytes());
        m[t + 2..t + 4].copy_from_slice(&p.queue.to_le_bytes());
        m[t + 4..t + 6].copy_from_slice(&p.tx_len.to_le_bytes());
        m[t + 8..t + 16].copy_from_slice(&p.tx_base.to_le_bytes());
        let r = t + 24;
        m[r..r + 2].copy_from_slice(&vsi.to_le_bytes());
        m[r + 2..r + 4].copy_from_slice(&p.queue.to_le_bytes());
        m[r + 4..r + 8].copy_from_slice(&p.rx_len.to_le_bytes());
        m[r + 12..r + 16].copy_from_slice(&p.buf.to_le_bytes());
        m[r + 16..r + 20].copy_from_slice(&p.max_pkt.to_le_bytes());
        m[r + 24..r + 32].copy_from_slice(&p.rx_base.to_le_bytes());
    }
    m
}

/// CONFIG_IRQ_MAP: (vector, rx map, tx map) entries, one spare (B.4.4).
fn irq_map(vsi: u16, maps: &[(u16, u16, u16)]) -> Vec<u8> {
    let mut m = vec![0u8; 2 + 12 * (maps.len() + 1)];
    m[0..2].copy_from_slice(&(maps.len() as u16).to_le_bytes());
    for (i, (v, rx, tx)) in maps.iter().enumerate() {
        let e = 2 + 12 * i;
        m[e..e + 2].copy_from_slice(&vsi.to_le_bytes());
        m[e + 2..e + 4].copy_from_slice(&v.to_le_bytes());
        m[e + 4..e + 6].copy_from_slice(&rx.to_le_bytes());
        m[e + 6..e + 8].copy_from_slice(&tx.to_le_bytes());
    }
    m
}

/// ADD/DEL_ETH_ADDR with one spare element (B.4.4).
pub(super) fn eth_addrs(vsi: u16, macs: &[([u8; 6], u8)]) -> Vec<u8> {
    let mut m = vec![0u8; 4 + 8 * (macs.len() + 1)];
    m[0..2].copy_from_slice(&vsi.to_le_bytes());
    m[2..4].copy_from_slice(&(macs.len() as u16).to_le_bytes());
    for (i, (a, ty)) in macs.iter().enumerate() {
        m[4 + 8 * i..10 + 8 * i].copy_from_slice(a);
        m[10 + 8 * i] = *ty;
    }
    m
}

/// A TX data descriptor's qword1 (B.5.2): DTYPE 0, ICRC | EOP | RS, size.
fn tx_qw1(len: usize, cmd: u64) -> u64 {
    cmd << q::CMD_SHIFT | (len as u64) << q::BUF_SZ_SHIFT
}

pub(super) const TX_CMD: u64 = q::CMD_ICRC | q::CMD_EOP | q::CMD_RS;

pub(super) fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&MAC);
    f
}

impl Raw {
    pub(super) fn w(&self, off: u32, v: u32) {
        self.bar.write32(off, v);
    }
    pub(super) fn r(&self, off: u32) -> u32 {
        self.bar.read32(off)
    }

    pub(super) fn wait(&self, what: &str, mut cond: impl FnMut(&Raw) -> bool) {
        let end = Instant::now() + PATIENCE;
        while !cond(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            self.dev.flush();
        }
    }

    /// Wait in real time, without flushing (a flush lets every delay pass).
    pub(super) fn wait_real(&self, mut cond: impl FnMut(&Raw) -> bool) {
        let end = Instant::now() + PATIENCE;
        while !cond(self) {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// B.6 step 2: RSTAT reads COMPLETED or VFACTIVE.
    pub(super) fn wait_reset_done(&self) {
        self.wait("VFGEN_RSTAT done", |t| {
            matches!(t.r(VFGEN_RSTAT) & 3, VFR_COMPLETED | VFR_VFACTIVE)
        });
    }

    /// B.3.2 ATQ and ARQ init.
    pub(super) fn init_aq(&self) {
        self.ntu.set(0);
        self.ntc.set(0);
        let (atq, arq) = (self.atq.iova().get(), self.arq.iova().get());
        self.w(VF_ATQH, 0);
        self.w(VF_ATQT, 0);
        self.w(VF_ATQLEN, AQ_LEN | aq::LEN_ENABLE);
        self.w(VF_ATQBAL, atq as u32);
        self.w(VF_ATQBAH, (atq >> 32) as u32);
        assert_eq!(self.r(VF_ATQBAL), atq as u32);
        for i in 0..AQ_LEN as usize {
            self.arm_arq(i);
        }
        self.w(VF_ARQH, 0);
        self.w(VF_ARQT, 0);
        self.w(VF_ARQLEN, AQ_LEN | aq::LEN_ENABLE);
        self.w(VF_ARQBAL, arq as u32);
        self.w(VF_ARQBAH, (arq >> 32) as u32);
        self.w(VF_ARQT, AQ_LEN - 1);
        assert_eq!(self.r(VF_ARQBAL), arq as u32);
    }

    /// B.3.2 shutdown: head, tail, LEN, BAL, BAH = 0 for both queues.
    pub(super) fn shutdown_aq(&self) {
        for r in [
            VF_ATQH, VF_ATQT, VF_ATQLEN, VF_ATQBAL, VF_ATQBAH, VF_ARQH, VF_ARQT, VF_ARQLEN,
            VF_ARQBAL, VF_ARQBAH,
        ] {
            self.w(r, 0);
        }
    }

    pub(super) fn arm_arq(&self, i: usize) {
        let mut d = [0u8; 32];
        d[0..2].copy_from_slice(&(flags::BUF | flags::LB).to_le_bytes());
        d[4..6].copy_from_slice(&(aq::BUF_LEN as u16).to_le_bytes());
        let a = self.arq_bufs[i].iova().get();
        d[24..28].copy_from_slice(&((a >> 32) as u32).to_le_bytes());
        d[28..32].copy_from_slice(&(a as u32).to_le_bytes());
        poke(&self.arq, 32 * i, &d);
    }

    /// Put a message on the ATQ with these flags; returns the written-back
    /// flags once the head passed it.
    pub(super) fn send_flags(&self, opc: u32, data: &[u8], fl: u16) -> u16 {
        let slot = self.ntu.get() as usize;
        let next = self.post_atq(opc, data, fl);
        // B.3.2: completion is ATQH == next_to_use.
        self.wait("ATQH to pass the descriptor", |t| t.r(VF_ATQH) == next);
        le16(&peek(&self.atq, 32 * slot, 2), 0)
    }

    /// Put a message on the ATQ and ring the tail; returns next_to_use.
    pub(super) fn post_atq(&self, opc: u32, data: &[u8], fl: u16) -> u32 {
        let slot = self.ntu.get() as usize;
        let mut d = [0u8; 32];
        d[0..2].copy_from_slice(&fl.to_le_bytes());
        d[2..4].copy_from_slice(&aq::OP_SEND_TO_PF.to_le_bytes());
        d[4..6].copy_from_slice(&(data.len() as u16).to_le_bytes());
        d[8..12].copy_from_slice(&opc.to_le_bytes());
        let a = self.atq_bufs[slot].iova().get();
        d[24..28].copy_from_slice(&((a >> 32) as u32).to_le_bytes());
        d[28..32].copy_from_slice(&(a as u32).to_le_bytes());
        poke(&self.atq_bufs[slot], 0, data);
        poke(&self.atq, 32 * slot, &d);
        // Descriptors (and payloads) visible before the doorbell: pairs
        // with the device reading them after it sees the write.
        fence(Ordering::Release);
        let next = (slot as u32 + 1) % AQ_LEN;
        self.ntu.set(next);
        self.w(VF_ATQT, next);
        next
    }

    /// B.3.1 flags for a payload of `len`.
    pub(super) fn flags_for(len: usize) -> u16 {
        let mut f = flags::SI;
        if len > 0 {
            f |= flags::BUF | flags::RD;
        }
        if len > aq::LB_THRESHOLD {
            f |= flags::LB;
        }
        f
    }

    pub(super) fn send(&self, opc: u32, data: &[u8]) {
        let fl = self.send_flags(opc, data, Self::flags_for(data.len()));
        assert_eq!(
            fl & (flags::DD | flags::CMP | flags::ERR),
            flags::DD | flags::CMP
        );
    }

    /// The next ARQ message, if one comes within a few device passes.
    pub(super) fn try_recv(&self, passes: usize) -> Option<Msg> {
        for _ in 0..passes {
            if self.r(VF_ARQH) & aq::PTR_MASK != self.ntc.get() {
                let i = self.ntc.get() as usize;
                let d = peek(&self.arq, 32 * i, 32);
                assert_ne!(le16(&d, 0) & flags::DD, 0, "ARQ descriptor without DD");
                let len = le16(&d, 4) as usize;
                let m = Msg {
                    op: le32(&d, 8),
                    status: le32(&d, 12) as i32,
                    data: peek(&self.arq_bufs[i], 0, len),
                };
                self.arm_arq(i);
                self.w(VF_ARQT, i as u32);
                self.ntc.set((i as u32 + 1) % AQ_LEN);
                return Some(m);
            }
            self.dev.flush();
        }
        None
    }

    pub(super) fn recv(&self) -> Msg {
        self.try_recv(10_000).expect("an ARQ message")
    }

    /// Send and wait for the reply with the same opcode; events read
    /// meanwhile are kept (B.8 #11).
    pub(super) fn request(&self, opc: u32, data: &[u8]) -> (i32, Vec<u8>) {
        self.send(opc, data);
        loop {
            let m = self.recv();
            if m.op == op::EVENT {
                self.events.borrow_mut().push(m.data);
                continue;
            }
            assert_eq!(m.op, opc, "reply to another opcode");
            return (m.status, m.data);
        }
    }

    pub(super) fn ok(&self, opc: u32, data: &[u8]) -> Vec<u8> {
        let (s, d) = self.request(opc, data);
        assert_eq!(s, status::SUCCESS, "op {opc} refused");
        d
    }

    pub(super) fn version(&self) {
        let mut v = 1u32.to_le_bytes().to_vec();
        v.extend_from_slice(&1u32.to_le_bytes());
        let r = self.ok(op::VERSION, &v);
        assert_eq!((le32(&r, 0), le32(&r, 4)), (1, 1));
    }

    pub(super) fn resources(&self, caps: u32) -> Vec<u8> {
        let r = self.ok(op::GET_VF_RESOURCES, &caps.to_le_bytes());
        assert!(r.len() >= 36);
        // The vsi_res of type SRIOV (B.6 step 5).
        assert_eq!(le32(&r, 24) as i32, pf::VSI_SRIOV);
        self.vsi.set(le16(&r, 20));
        r
    }

    /// RESET_VF (no reply), then B.7: ARQLEN.ENABLE reads 0, RSTAT done,
    /// the AQ again.
    pub(super) fn reset_vf(&self) {
        // The AQ goes with the reset: its head is not waited for.
        self.post_atq(op::RESET_VF, &[], flags::SI);
        self.wait("ARQLEN.ENABLE = 0", |t| {
            t.r(VF_ARQLEN) & aq::LEN_ENABLE == 0
        });
        self.wait_reset_done();
        self.init_aq();
    }

    /// B.6 steps 2-5 with a VF reset after VERSION.
    pub(super) fn init(&self) -> Vec<u8> {
        self.wait_reset_done();
        self.init_aq();
        self.version();
        self.reset_vf();
        assert_eq!(self.r(VFGEN_RSTAT), VFR_VFACTIVE);
        self.version();
        self.resources(pf::cap::L2 | pf::cap::RSS_PF | pf::cap::WB_ON_ITR)
    }

    pub(super) fn buf(&self) -> Mbuf {
        self.pool.alloc().expect("a buffer")
    }

    pub(super) fn post_rx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf) {
        let mut d = [0u8; 32];
        d[0..8].copy_from_slice(&m.data_iova().get().to_le_bytes());
        poke(ring, 32 * slot, &d);
    }

    pub(super) fn post_tx(&self, ring: &DmaSlice, slot: usize, m: &Mbuf, cmd: u64) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&m.data_iova().get().to_le_bytes());
        d[8..16].copy_from_slice(&tx_qw1(m.data().len(), cmd).to_le_bytes());
        poke(ring, 16 * slot, &d);
    }

    /// Rings for queue 0: TX `RING` × 16 bytes, RX `RING` × 32 bytes.
    pub(super) fn rings(&self) -> (DmaSlice, DmaSlice) {
        (
            self.arena.carve(16 * RING as usize, 128).unwrap(),
            self.arena.carve(32 * RING as usize, 128).unwrap(),
        )
    }

    pub(super) fn pair(&self, tx: &DmaSlice, rx: &DmaSlice) -> Pair {
        Pair {
            queue: 0,
            tx_len: RING as u16,
            tx_base: tx.iova().get(),
            rx_len: RING,
            rx_base: rx.iova().get(),
            buf: RX_BUF,
            max_pkt: 1518 + 8,
        }
    }

    /// Init, then queue 0 configured, mapped to vector 1 and enabled with
    /// `posted` RX buffers behind the tail.
    pub(super) fn up(&self, posted: usize) -> (DmaSlice, DmaSlice, Vec<Mbuf>) {
        self.init();
        let (tx, rx) = self.rings();
        let vsi = self.vsi.get();
        self.ok(
            op::CONFIG_VSI_QUEUES,
            &vsi_queues(vsi, &[self.pair(&tx, &rx)]),
        );
        self.ok(op::CONFIG_IRQ_MAP, &irq_map(vsi, &[(1, 1, 1), (0, 0, 0)]));
        let bufs: Vec<Mbuf> = (0..posted).map(|_| self.buf()).collect();
        for (i, m) in bufs.iter().enumerate() {
            self.post_rx(&rx, i, m);
        }
        // Descriptors (and payloads) visible before the doorbell: pairs
        // with the device reading them after it sees the write.
        fence(Ordering::Release);
        // B.6 step 9: RX tail before the enable; TX tail 0.
        self.w(QRX_TAIL, posted as u32);
        self.w(QTX_TAIL, 0);
        self.ok(op::ENABLE_QUEUES, &queue_select(vsi, 1, 1));
        (tx, rx, bufs)
    }

    pub(super) fn wait_rx_dd(&self, rx: &DmaSlice, slot: usize) -> u64 {
        let mut qw1 = 0;
        self.wait("RX DD", |_| {
            qw1 = u64_at(rx, 32 * slot + 8);
            qw1 & q::RX_DD != 0
        });
        qw1
    }

    pub(super) fn wait_tx_done(&self, tx: &DmaSlice, slot: usize) {
        self.wait("TX DTYPE 0xF", |_| {
            u64_at(tx, 16 * slot + 8) & q::DTYPE_MASK == q::DTYPE_DONE
        });
    }

    pub(super) fn stop_and_free(&self, bufs: Vec<Mbuf>) {
        self.ok(op::DISABLE_QUEUES, &queue_select(self.vsi.get(), 1, 1));
        for b in bufs {
            self.pool.free(b);
        }
    }
}

// ---- the correct sequence ---------------------------------------------------------

/// B.6: RSTAT, AQ, VERSION, RESET_VF, VERSION, GET_VF_RESOURCES,
/// CONFIG_VSI_QUEUES, CONFIG_IRQ_MAP, ADD_ETH_ADDR, ENABLE_QUEUES; frames
/// both ways with their contents; GET_STATS; DISABLE_QUEUES: no violation
/// and every buffer back.
#[test]
fn a_correct_raw_sequence_runs_clean_and_loses_no_buffer() {
    clean_run(Flavor::Xl710);
}

/// The same on an adaptive VF behind the ice PF.
#[test]
fn the_adaptive_vf_runs_the_same_sequence_clean() {
    clean_run(Flavor::Adaptive);
}

fn clean_run(flavor: Flavor) {
    let t = raw_with(cfg(flavor));
    let res = t.init();
    // 4 pairs by default (B.8 #9), the admin MAC, key/LUT sizes (B.2).
    assert_eq!(le16(&res, 0), 1);
    assert_eq!(le16(&res, 2), 4);
    assert_eq!(le32(&res, 12), 52);
    assert_eq!(le32(&res, 16), 64);
    assert_eq!(&res[30..36], &MAC);
    // Negotiation: the request ANDed with the offer.
    assert_eq!(
        le32(&res, 8),
        pf::cap::L2 | pf::cap::RSS_PF | pf::cap::WB_ON_ITR
    );
    let vsi = t.vsi.get();
    t.ok(op::ADD_ETH_ADDR, &eth_addrs(vsi, &[(MAC, 1)]));
    let (tx, rx, mut bufs) = t.up_after_init();
    // The link state follows ENABLE_QUEUES.
    let ev = t.recv();
    assert_eq!(ev.op, op::EVENT);
    assert_eq!(le32(&ev.data, 0) as i32, pf::event::LINK_CHANGE);
    assert_eq!(ev.data[8], 1);

    // RX: a frame lands in descriptor 0 with DD, EOF, its length.
    let f = frame(100, 7);
    assert!(t.dev.inject(0, &f));
    let qw1 = t.wait_rx_dd(&rx, 0);
    assert_ne!(qw1 & q::RX_EOF, 0);
    assert_eq!((qw1 >> q::RX_LEN_SHIFT) & 0x3FFF, 100);
    assert_eq!((qw1 >> q::RX_PTYPE_SHIFT) & 0xFF, 1);
    bufs[0].set_len(100).unwrap();
    assert_eq!(bufs[0].data(), &f[..]);

    // TX: one data descriptor with ICRC | EOP | RS (B.5.2).
    let mut m = t.buf();
    let out = frame(60, 0x40);
    m.append(60).unwrap().copy_from_slice(&out);
    t.post_tx(&tx, 0, &m, TX_CMD);
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QTX_TAIL, 1);
    t.wait_tx_done(&tx, 0);
    assert_eq!(t.dev.take_wire(), vec![out]);

    // GET_STATS (B.4.3 virtchnl_eth_stats).
    let s = t.ok(op::GET_STATS, &queue_select(vsi, 0, 0));
    assert_eq!(s.len(), pf::ETH_STATS_LEN);
    let w = |i: usize| u64::from_le_bytes(s[8 * i..8 * i + 8].try_into().unwrap());
    assert_eq!((w(0), w(1), w(6), w(7)), (100, 1, 60, 1));

    t.stop_and_free(bufs);
    t.pool.free(m);
    assert_eq!(t.pool.available(), POOL as usize, "a buffer was lost");
    assert_eq!(t.dev.rx_owned(0) + t.dev.tx_owned(0), 0);
    t.dev.violations().assert_clean();
}

impl Raw {
    /// `up` without `init` (the caller did it).
    pub(super) fn up_after_init(&self) -> (DmaSlice, DmaSlice, Vec<Mbuf>) {
        let (tx, rx) = self.rings();
        let vsi = self.vsi.get();
        self.ok(
            op::CONFIG_VSI_QUEUES,
            &vsi_queues(vsi, &[self.pair(&tx, &rx)]),
        );
        self.ok(op::CONFIG_IRQ_MAP, &irq_map(vsi, &[(1, 1, 1), (0, 0, 0)]));
        let posted = RING as usize - 1;
        let bufs: Vec<Mbuf> = (0..posted).map(|_| self.buf()).collect();
        for (i, m) in bufs.iter().enumerate() {
            self.post_rx(&rx, i, m);
        }
        // Descriptors (and payloads) visible before the doorbell: pairs
        // with the device reading them after it sees the write.
        fence(Ordering::Release);
        self.w(QRX_TAIL, posted as u32);
        self.w(QTX_TAIL, 0);
        self.ok(op::ENABLE_QUEUES, &queue_select(vsi, 1, 1));
        (tx, rx, bufs)
    }
}

/// Linux iavf's order from the lab trace (iavf-sequence.md): no RESET_VF
/// (RSTAT already VFACTIVE), RSS through the registers, CONFIG_IRQ_MAP and
/// ADD_ETH_ADDR before CONFIG_VSI_QUEUES, the RX tail written before
/// CONFIG_VSI_QUEUES, ITR and DYN_CTL writes: all accepted.
#[test]
fn the_linux_drivers_sequence_from_the_lab_trace_is_accepted() {
    let t = raw();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
    t.init_aq();
    t.version();
    let res = t.resources(0x1abd_80f9);
    assert_eq!(le32(&res, 8), 0x1abd_80f9 & t.dev.pf(|p| p.setup.offered));
    let vsi = t.vsi.get();
    t.w(VFINT_ITRN, 0);
    t.w(VFINT_ITRN + 0x40, 0x19);
    t.w(VFINT_DYN_CTL0, 0x19);
    t.w(VFINT_ICR0_ENA, ICR0_ADMINQ);
    t.w(VFQF_HENA, 0x8000_0000);
    t.w(VFQF_HENA + 4, 0x8000_7a1e);
    for i in 0..13 {
        t.w(VFQF_HKEY + 4 * i, 0x1234_5678 ^ i);
    }
    for i in 0..16 {
        t.w(VFQF_HLUT + 4 * i, 0);
    }
    // Vector 1 gets RX/TX queue 0, vector 0 last with empty maps (B.6 #11).
    let map = irq_map(vsi, &[(1, 1, 1), (0, 0, 0)]);
    assert_eq!(map.len(), 38);
    t.ok(op::CONFIG_IRQ_MAP, &map);
    let macs = eth_addrs(vsi, &[(MAC, 2), ([0x33, 0x33, 0, 0, 0, 1], 2)]);
    assert_eq!(macs.len(), 28);
    t.ok(op::ADD_ETH_ADDR, &macs);
    t.w(VFINT_DYN_CTLN, 0x19);
    let (tx, rx) = t.rings();
    let bufs: Vec<Mbuf> = (0..RING as usize - 1).map(|_| t.buf()).collect();
    for (i, m) in bufs.iter().enumerate() {
        t.post_rx(&rx, i, m);
    }
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QRX_TAIL, RING - 1);
    let qs = vsi_queues(vsi, &[t.pair(&tx, &rx)]);
    assert_eq!(qs.len(), 136);
    t.ok(op::CONFIG_VSI_QUEUES, &qs);
    t.ok(op::ENABLE_QUEUES, &queue_select(vsi, 1, 1));
    // Interrupts: each reply raised vector 0, which Linux re-arms.
    assert!(t.dev.irq().sent[0] >= 1);
    assert_eq!(t.r(VFINT_ICR0) & ICR0_ADMINQ, ICR0_ADMINQ);
    assert_eq!(t.r(VFINT_ICR0), 0, "ICR0 is read-to-clear");
    // Traffic with vector 1 armed.
    t.w(VFINT_DYN_CTLN, 0x19);
    assert!(t.dev.inject(0, &frame(98, 1)));
    t.wait_rx_dd(&rx, 0);
    t.wait("vector 1", |t| t.dev.irq().sent[1] == 1);
    // GET_STATS, then DISABLE_QUEUES as Linux does at close.
    t.ok(op::GET_STATS, &queue_select(vsi, 0, 0));
    t.stop_and_free(bufs);
    assert_eq!(t.pool.available(), POOL as usize);
    t.dev.violations().assert_clean();
}

// ---- virtchnl rules ---------------------------------------------------------------

#[test]
fn wrong_message_lengths_get_opcode_mismatch() {
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    // Without the spare element B.4.4 counts.
    let mut short = eth_addrs(vsi, &[(MAC, 1)]);
    short.truncate(4 + 8);
    let (s, _) = t.request(op::ADD_ETH_ADDR, &short);
    assert_eq!(s, status::ERR_OPCODE_MISMATCH);
    t.dev.violations().expect("virtchnl-message-length");
    let (s, _) = t.request(op::ENABLE_QUEUES, &queue_select(vsi, 1, 1)[..11]);
    assert_eq!(s, status::ERR_OPCODE_MISMATCH);
    t.dev.violations().expect("virtchnl-message-length");
    let mut v = vec![1, 0, 0, 0, 1, 0, 0, 0];
    v.push(0);
    let (s, _) = t.request(op::VERSION, &v);
    assert_eq!(s, status::ERR_OPCODE_MISMATCH);
    t.dev.violations().expect("virtchnl-message-length");
}

#[test]
fn messages_before_resources_are_refused() {
    let t = raw();
    t.init_aq();
    t.version();
    let (s, _) = t.request(op::ENABLE_QUEUES, &queue_select(3, 1, 1));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("virtchnl-before-resources");
}

#[test]
fn unknown_opcodes_are_not_supported() {
    let t = raw();
    t.init();
    let (s, _) = t.request(44, &[]);
    assert_eq!(s, status::ERR_NOT_SUPPORTED);
    t.dev.violations().assert_clean();
}

#[test]
fn ring_alignment_length_and_buffer_checks() {
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    let (tx, rx) = t.rings();
    let mut p = t.pair(&tx, &rx);
    p.rx_base += 64;
    let (s, _) = t.request(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[p]));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("ring-base-alignment");
    // i40e: RX a multiple of 32 (B.8 #2).
    let mut p = t.pair(&tx, &rx);
    p.rx_len = 48;
    let (s, _) = t.request(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[p]));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("ring-length");
    // i40e takes TX 8; ice wants 64..8160.
    let mut p = t.pair(&tx, &rx);
    p.tx_len = 8;
    t.ok(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[p]));
    let a = raw_with(cfg(Flavor::Adaptive));
    a.init();
    let (tx2, rx2) = a.rings();
    let mut p = a.pair(&tx2, &rx2);
    p.tx_len = 8;
    let (s, _) = a.request(op::CONFIG_VSI_QUEUES, &vsi_queues(a.vsi.get(), &[p]));
    assert_eq!(s, status::ERR_PARAM);
    a.dev.violations().expect("ring-length");
    // B.8 #4: databuffer_size a multiple of 128.
    let mut p = t.pair(&tx, &rx);
    p.buf = 1000;
    let (s, _) = t.request(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[p]));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("rx-buffer-size");
    // A queue beyond the pairs given.
    let mut p = t.pair(&tx, &rx);
    p.queue = 4;
    let (s, _) = t.request(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[p]));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("virtchnl-parameter");
}

#[test]
fn enable_needs_config_and_an_irq_map() {
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    let (s, _) = t.request(op::ENABLE_QUEUES, &queue_select(vsi, 1, 1));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("enable-before-config");
    let (tx, rx) = t.rings();
    t.ok(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[t.pair(&tx, &rx)]));
    // TX alone unmapped is fine (DPDK maps only RX, B.6 step 11).
    t.ok(op::ENABLE_QUEUES, &queue_select(vsi, 0, 1));
    t.dev.violations().assert_clean();
    t.ok(op::ENABLE_QUEUES, &queue_select(vsi, 1, 0));
    t.dev.violations().expect("queue-not-mapped-to-vector");
    t.ok(op::DISABLE_QUEUES, &queue_select(vsi, 1, 1));
}

// ---- admin-queue rules ------------------------------------------------------------

#[test]
fn an_indirect_message_without_buf_is_refused() {
    let t = raw();
    t.init_aq();
    let v = [1, 0, 0, 0, 1, 0, 0, 0];
    let fl = t.send_flags(op::VERSION, &v, flags::SI);
    assert_ne!(fl & flags::ERR, 0);
    t.dev.violations().expect("aq-message-without-buf");
    assert!(t.try_recv(20).is_none(), "a refused descriptor got a reply");
    let fl = t.send_flags(op::VERSION, &v, flags::SI | flags::BUF);
    assert_ne!(fl & flags::ERR, 0);
    t.dev.violations().expect("aq-buffer-without-rd");
    // A large payload needs LB (after a B.3.2 shutdown of the AQ).
    t.shutdown_aq();
    t.init();
    let big = irq_map(t.vsi.get(), &[(0, 0, 0); 50]);
    assert!(big.len() > aq::LB_THRESHOLD);
    t.send_flags(op::CONFIG_IRQ_MAP, &big, flags::SI | flags::BUF | flags::RD);
    t.dev.violations().expect("aq-large-buffer-without-lb");
}

#[test]
fn a_misaligned_aq_ring_is_reported() {
    let t = raw();
    let base = t.atq.iova().get() + 512;
    t.w(VF_ATQLEN, AQ_LEN | aq::LEN_ENABLE);
    t.w(VF_ATQBAL, base as u32);
    t.w(VF_ATQBAH, (base >> 32) as u32);
    t.w(VF_ATQT, 1);
    t.dev.flush();
    t.dev.violations().expect("aq-ring-setup");
    t.w(VF_ATQT, AQ_LEN + 3);
    t.dev.violations().expect("aq-tail-out-of-range");
}

// ---- data-path rules --------------------------------------------------------------

#[test]
fn tail_beyond_the_ring() {
    let t = raw();
    let (_tx, _rx, bufs) = t.up(8);
    t.w(QTX_TAIL, RING + 1);
    t.dev.violations().expect("tail-out-of-range");
    t.stop_and_free(bufs);
    // Written before enable: caught at ENABLE_QUEUES.
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    let (tx, rx) = t.rings();
    t.ok(op::CONFIG_VSI_QUEUES, &vsi_queues(vsi, &[t.pair(&tx, &rx)]));
    t.ok(op::CONFIG_IRQ_MAP, &irq_map(vsi, &[(1, 1, 1)]));
    t.w(QRX_TAIL, RING + 5);
    t.ok(op::ENABLE_QUEUES, &queue_select(vsi, 1, 0));
    t.dev.violations().expect("tail-out-of-range");
}

#[test]
fn tx_tail_before_enable() {
    let t = raw();
    t.init();
    t.w(QTX_TAIL, 3);
    t.dev.violations().expect("tail-before-enable");
    // An RX tail before the enable is what B.8 #5 asks for.
    t.w(QRX_TAIL, 3);
    t.dev.violations().assert_clean();
}

#[test]
fn a_tail_on_a_queue_not_given_is_reported() {
    let t = raw();
    t.init();
    t.w(QTX_TAIL + 4 * 4, 0);
    t.dev.violations().expect("queue-not-assigned");
}

#[test]
fn tx_buffer_freed_before_dd() {
    let t = raw();
    let (tx, _rx, bufs) = t.up(8);
    t.dev.pause();
    let mut m = t.buf();
    m.append(60).unwrap().fill(1);
    t.post_tx(&tx, 0, &m, TX_CMD);
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QTX_TAIL, 1);
    t.pool.free(m);
    t.dev.violations().expect("tx-buffer-freed-before-dd");
    // Still paused: a flush handles the admin queue before the data path,
    // so the queue stops before it would read the freed buffer.
    t.stop_and_free(bufs);
    t.dev.resume();
}

#[test]
fn rx_buffer_taken_before_dd() {
    let t = raw();
    let (_tx, _rx, mut bufs) = t.up(8);
    let m = bufs.remove(0);
    t.pool.free(m);
    t.dev.violations().expect("rx-buffer-taken-before-dd");
    t.stop_and_free(bufs);
}

#[test]
fn rx_post_with_dd_set_and_tx_without_icrc() {
    let t = raw();
    let (tx, rx, bufs) = t.up(8);
    let m = t.buf();
    let mut d = [0u8; 32];
    d[0..8].copy_from_slice(&m.data_iova().get().to_le_bytes());
    d[8] = 1;
    poke(&rx, 32 * 8, &d);
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QRX_TAIL, 9);
    t.dev.violations().expect("rx-post-clears-dd");
    let mut n = t.buf();
    n.append(60).unwrap().fill(2);
    t.post_tx(&tx, 0, &n, q::CMD_EOP | q::CMD_RS);
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QTX_TAIL, 1);
    t.dev.violations().expect("tx-icrc");
    t.wait_tx_done(&tx, 0);
    t.stop_and_free(bufs);
    t.pool.free(m);
    t.pool.free(n);
}

#[test]
fn a_full_ring_is_an_overrun() {
    let t = raw();
    let (_tx, rx, bufs) = t.up(RING as usize - 1);
    let m = t.buf();
    t.post_rx(&rx, RING as usize - 1, &m);
    // Tail = head: every descriptor the device's (B.8 #5).
    t.w(QRX_TAIL, 0);
    t.dev.violations().expect("tail-equals-head");
    t.stop_and_free(bufs);
    t.pool.free(m);
}

#[test]
fn a_frame_spans_buffers_with_eof_on_the_last() {
    let t = raw();
    let (_tx, rx, bufs) = t.up(8);
    let f = frame(RX_BUF as usize + 300, 3);
    assert!(t.dev.inject(0, &f));
    let qw0 = t.wait_rx_dd(&rx, 0);
    let qw1 = t.wait_rx_dd(&rx, 1);
    assert_eq!(qw0 & q::RX_EOF, 0);
    assert_ne!(qw1 & q::RX_EOF, 0);
    assert_eq!((qw0 >> q::RX_LEN_SHIFT) & 0x3FFF, RX_BUF as u64);
    assert_eq!((qw1 >> q::RX_LEN_SHIFT) & 0x3FFF, 300);
    t.stop_and_free(bufs);
    t.dev.violations().assert_clean();
}

#[test]
fn register_access_outside_the_bar() {
    let t = raw();
    t.r(BAR_LEN as u32);
    t.dev.violations().expect("register-access");
    t.w(VF_ATQT + 2, 0);
    t.dev.violations().expect("register-access");
}

// ---- PF policy and RSS --------------------------------------------------------------

#[test]
fn untrusted_vf_promiscuous_mode_and_mac() {
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    let mut p = vsi.to_le_bytes().to_vec();
    p.extend_from_slice(&3u16.to_le_bytes());
    // Both Linux PFs answer SUCCESS and change nothing.
    t.ok(op::CONFIG_PROMISCUOUS_MODE, &p);
    assert_eq!(t.dev.pf(|p| (p.promisc, p.promisc_refused)), (0, 1));
    // A unicast MAC other than the admin's.
    let (s, _) = t.request(
        op::ADD_ETH_ADDR,
        &eth_addrs(vsi, &[([2, 9, 9, 9, 9, 9], 1)]),
    );
    assert_eq!(s, status::ERR_PARAM);
    // Trusted: both allowed.
    t.dev.set_trusted(true);
    t.ok(op::CONFIG_PROMISCUOUS_MODE, &p);
    assert_eq!(t.dev.pf(|p| p.promisc), 3);
    t.ok(
        op::ADD_ETH_ADDR,
        &eth_addrs(vsi, &[([2, 9, 9, 9, 9, 9], 1)]),
    );
    t.dev.violations().assert_clean();
}

#[test]
fn rss_over_virtchnl_picks_the_lut_queue_with_the_hash() {
    let mut c = cfg(Flavor::Xl710);
    c.pf.queue_pairs = 2;
    let t = raw_with(c);
    t.init();
    let vsi = t.vsi.get();
    let caps = t.ok(op::GET_RSS_HENA_CAPS, &[]);
    assert_eq!(caps.len(), 8);
    let mut key = vsi.to_le_bytes().to_vec();
    key.extend_from_slice(&52u16.to_le_bytes());
    key.extend((0..52).map(|i| i as u8 ^ 0x6d));
    key.push(0);
    t.ok(op::CONFIG_RSS_KEY, &key);
    let mut lut = vsi.to_le_bytes().to_vec();
    lut.extend_from_slice(&64u16.to_le_bytes());
    lut.extend([1u8; 64]);
    lut.push(0);
    t.ok(op::CONFIG_RSS_LUT, &lut);
    t.ok(op::SET_RSS_HENA, &u64::MAX.to_le_bytes());
    // A wrong key size (B.6 step 8).
    let mut bad = vsi.to_le_bytes().to_vec();
    bad.extend_from_slice(&40u16.to_le_bytes());
    bad.extend([0u8; 41]);
    let (s, _) = t.request(op::CONFIG_RSS_KEY, &bad);
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("rss-size");
    // An IPv4/UDP frame: queue 1 (every LUT entry), hash and ptype 24.
    let mut f = frame(64, 0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[20..22].fill(0); // not a fragment
    f[23] = 17;
    assert_eq!(t.dev.with(|m, _| m.rss_pick(&f).0), 1);
    let (tx, rx) = t.rings();
    let rx1 = t.arena.carve(32 * RING as usize, 128).unwrap();
    let mut p1 = t.pair(&tx, &rx1);
    p1.queue = 1;
    p1.tx_len = 0;
    t.ok(
        op::CONFIG_VSI_QUEUES,
        &vsi_queues(vsi, &[t.pair(&tx, &rx), p1]),
    );
    t.ok(op::CONFIG_IRQ_MAP, &irq_map(vsi, &[(1, 3, 1)]));
    let m = t.buf();
    t.post_rx(&rx1, 0, &m);
    // Descriptors (and payloads) visible before the doorbell: pairs
    // with the device reading them after it sees the write.
    fence(Ordering::Release);
    t.w(QRX_TAIL + 4, 1);
    t.ok(op::ENABLE_QUEUES, &queue_select(vsi, 2, 0));
    assert!(t.dev.receive(&f));
    let qw1 = t.wait_rx_dd(&rx1, 0);
    assert_eq!((qw1 >> q::RX_FLTSTAT_SHIFT) & 3, 3);
    assert_eq!((qw1 >> q::RX_PTYPE_SHIFT) & 0xFF, 24);
    let hash = (u64_at(&rx1, 0) >> 32) as u32;
    assert_eq!(Some(hash), t.dev.with(|m, _| m.rss_pick(&f).1));
    t.ok(op::DISABLE_QUEUES, &queue_select(vsi, 2, 0));
    t.pool.free(m);
    t.dev.violations().assert_clean();
}

// ---- faults ----------------------------------------------------------------------

/// B.7: RESET_IMPENDING first, ARQLEN.ENABLE 0, RSTAT INPROGRESS, queues
/// stopped and their buffers back; tails ignored until the driver is
/// back; COMPLETED when the PF is; VFACTIVE once the ARQ is enabled; the
/// whole negotiation again.
#[test]
fn pf_reset_and_recovery() {
    let t = raw();
    let (_tx, _rx, bufs) = t.up(8);
    assert_eq!(t.recv().op, op::EVENT); // the link state
    t.dev.pf_reset_begin();
    let e = t.try_recv(1).expect("RESET_IMPENDING");
    assert_eq!(e.op, op::EVENT);
    assert_eq!(le32(&e.data, 0) as i32, pf::event::RESET_IMPENDING);
    assert_eq!(t.r(VF_ARQLEN) & aq::LEN_ENABLE, 0);
    assert_eq!(t.r(VFGEN_RSTAT), VFR_INPROGRESS);
    assert_eq!(t.dev.rx_owned(0), 0);
    t.w(QRX_TAIL, 3);
    t.dev.flush();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_INPROGRESS);
    t.dev.pf_reset_end();
    // COMPLETED, then VFACTIVE a device pass later on the model's own
    // thread: either may be read here.
    assert!(matches!(t.r(VFGEN_RSTAT), VFR_COMPLETED | VFR_VFACTIVE));
    t.dev.flush();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
    t.init_aq();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
    t.version();
    // The queues are gone with the reset: enabling needs a config again.
    let (s, _) = t.request(op::ENABLE_QUEUES, &queue_select(t.vsi.get(), 1, 1));
    assert_eq!(s, status::ERR_PARAM);
    t.dev.violations().expect("virtchnl-before-resources");
    t.resources(pf::cap::L2);
    for b in bufs {
        t.pool.free(b);
    }
    assert_eq!(t.pool.available(), POOL as usize);
    t.dev.violations().assert_clean();
}

#[test]
fn reset_states_take_their_time() {
    let mut c = cfg(Flavor::Xl710);
    c.reset_time = Duration::from_secs(3600);
    let t = raw_with(c);
    t.init_aq();
    t.version();
    t.post_atq(op::RESET_VF, &[], flags::SI);
    t.wait_real(|t| t.r(VFGEN_RSTAT) == VFR_INPROGRESS);
    assert_eq!(t.dev.sent_ops(), vec![op::VERSION, op::RESET_VF]);
    assert_eq!(t.r(VF_ARQH), 0, "RESET_VF has no reply; the ARQ is reset");
    assert_eq!(t.r(VF_ATQLEN) & aq::LEN_ENABLE, 0);
    // A flush lets the reset time pass: COMPLETED, and a pass later the
    // PF's VFACTIVE, before the VF has touched its admin queue (Linux's
    // iavf waits for VFACTIVE first, B.7).
    t.wait_reset_done();
    assert!(matches!(t.r(VFGEN_RSTAT), VFR_COMPLETED | VFR_VFACTIVE));
    t.dev.flush();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
    assert_eq!(t.r(VF_ARQLEN) & aq::LEN_ENABLE, 0, "the VF's ARQ still off");
    t.init_aq();
    assert_eq!(t.r(VFGEN_RSTAT), VFR_VFACTIVE);
}

#[test]
fn deadbeef_reads_during_a_reset() {
    let mut c = cfg(Flavor::Xl710);
    c.reset_time = Duration::from_secs(3600);
    c.deadbeef_in_reset = true;
    let t = raw_with(c);
    t.init_aq();
    t.post_atq(op::RESET_VF, &[], flags::SI);
    t.wait_real(|t| t.r(VFGEN_RSTAT) != VFR_VFACTIVE);
    assert_eq!(t.r(VFGEN_RSTAT), DEADBEEF);
    assert_eq!(t.r(VFGEN_RSTAT) & 3, 3);
}

#[test]
fn link_flap_sends_link_change_events() {
    let t = raw();
    let (_tx, _rx, bufs) = t.up(8);
    assert_eq!(t.recv().data[8], 1);
    t.dev.set_link(false);
    let e = t.recv();
    assert_eq!(
        (e.op, le32(&e.data, 0) as i32, e.data[8]),
        (op::EVENT, 1, 0)
    );
    // With ADV_LINK_SPEED not negotiated: the legacy 10G code.
    assert_eq!(le32(&e.data, 4), pf::LINK_SPEED_10G_LEGACY);
    assert!(!t.dev.inject(0, &frame(64, 0)), "link down drops");
    t.dev.set_link(true);
    assert_eq!(t.recv().data[8], 1);
    t.stop_and_free(bufs);
}

#[test]
fn admin_queue_timeout_when_the_pf_stops_answering() {
    let t = raw();
    t.init();
    t.dev.set_pf_silent(true);
    // The send completes (ATQH moves, DD), no reply ever comes.
    t.send(op::GET_STATS, &queue_select(t.vsi.get(), 0, 0));
    assert!(t.try_recv(50).is_none());
    assert_eq!(t.dev.pf(|p| p.unanswered), 1);
    t.dev.set_pf_silent(false);
    t.ok(op::GET_STATS, &queue_select(t.vsi.get(), 0, 0));
}

#[test]
fn admin_queue_interrupt_is_one_shot_until_rearmed() {
    let t = raw();
    t.init_aq();
    t.w(VFINT_ICR0_ENA, ICR0_ADMINQ);
    t.w(VFINT_DYN_CTL0, DYN_INTENA);
    t.version();
    assert_eq!(t.dev.irq().sent[0], 1);
    assert_eq!(t.r(VFINT_DYN_CTL0) & DYN_INTENA, 0);
    t.version();
    assert_eq!(t.dev.irq().sent[0], 1, "masked until re-armed");
    t.w(VFINT_DYN_CTL0, DYN_INTENA);
    assert_eq!(t.dev.irq().sent[0], 2, "the pending cause on re-arm");
}

#[test]
fn queue_pairs_default_to_4_and_cap_at_16() {
    let mut c = cfg(Flavor::Adaptive);
    c.pf.queue_pairs = 20;
    let t = raw_with(c);
    let r = t.init();
    assert_eq!((le16(&r, 2), le16(&r, 22)), (16, 16));
    // Queue 16 does not exist: its tail is outside the 16 registers.
    t.w(QTX_TAIL + 4 * 15, 0);
    t.dev.violations().assert_clean();
}

#[test]
fn a_version_1_0_vf_gets_the_base_mode_offloads() {
    let t = raw();
    t.init_aq();
    let r = t.ok(op::VERSION, &[1, 0, 0, 0, 0, 0, 0, 0]);
    // The PF answers its own version (B.4.1).
    assert_eq!((le32(&r, 0), le32(&r, 4)), (1, 1));
    // v1.0: GET_VF_RESOURCES has no payload (B.4.4).
    let (s, _) = t.request(op::GET_VF_RESOURCES, &0u32.to_le_bytes());
    assert_eq!(s, status::ERR_OPCODE_MISMATCH);
    t.dev.violations().expect("virtchnl-message-length");
    let r = t.ok(op::GET_VF_RESOURCES, &[]);
    assert_eq!(le32(&r, 8), pf::cap::BASE_MODE);
}

#[test]
fn mac_and_vlan_filters_follow_add_and_del() {
    let t = raw();
    t.init();
    let vsi = t.vsi.get();
    let mc = [0x01, 0x00, 0x5e, 0, 0, 1];
    t.ok(op::ADD_ETH_ADDR, &eth_addrs(vsi, &[(mc, 2)]));
    assert!(t.dev.pf(|p| p.macs.contains(&MacAddr(mc))));
    t.ok(op::DEL_ETH_ADDR, &eth_addrs(vsi, &[(mc, 2), (MAC, 1)]));
    // The default MAC stays (B.7).
    assert_eq!(t.dev.pf(|p| p.macs.clone()), vec![MacAddr(MAC)]);
    let mut vl = vsi.to_le_bytes().to_vec();
    vl.extend_from_slice(&1u16.to_le_bytes());
    vl.extend_from_slice(&100u16.to_le_bytes());
    vl.extend_from_slice(&0u16.to_le_bytes());
    t.ok(op::ADD_VLAN, &vl);
    assert_eq!(t.dev.pf(|p| p.vlans.clone()), vec![100]);
    t.ok(op::DEL_VLAN, &vl);
    assert!(t.dev.pf(|p| p.vlans.is_empty()));
    t.dev.violations().assert_clean();
}

/// 200 frames each way through 64-descriptor rings: both wrap several
/// times, RX buffers are re-posted one by one behind the tail (B.8 #5),
/// every frame arrives whole, nothing is lost or left owned.
#[test]
fn traffic_wraps_the_rings_without_loss() {
    let t = raw();
    let (tx, rx, bufs) = t.up(RING as usize - 1);
    let mut slots: Vec<Option<Mbuf>> = bufs.into_iter().map(Some).collect();
    slots.push(None);
    let mut tail = RING as usize - 1;
    let mut m = t.buf();
    for i in 0..200usize {
        let s = i % RING as usize;
        let f = frame(60 + i % 50, i as u8);
        assert!(t.dev.inject(0, &f));
        let qw1 = t.wait_rx_dd(&rx, s);
        assert_eq!(((qw1 >> q::RX_LEN_SHIFT) & 0x3FFF) as usize, f.len());
        let mut b = slots[s].take().expect("a posted buffer");
        b.set_len(f.len()).unwrap();
        assert_eq!(b.data(), &f[..], "frame {i}");
        // Re-post it at the tail, then move the tail past it.
        b.set_len(0).unwrap();
        t.post_rx(&rx, tail, &b);
        slots[tail] = Some(b);
        tail = (tail + 1) % RING as usize;
        // The descriptor before the doorbell: pairs with the device's read.
        fence(Ordering::Release);
        t.w(QRX_TAIL, tail as u32);

        let out = frame(64 + i % 30, 0x80 ^ i as u8);
        m.set_len(0).unwrap();
        m.append(out.len()).unwrap().copy_from_slice(&out);
        t.post_tx(&tx, s, &m, TX_CMD);
        // As above.
        fence(Ordering::Release);
        t.w(QTX_TAIL, ((s + 1) % RING as usize) as u32);
        t.wait_tx_done(&tx, s);
        assert_eq!(t.dev.take_wire(), vec![out], "frame {i}");
    }
    t.stop_and_free(slots.into_iter().flatten().collect());
    t.pool.free(m);
    assert_eq!(t.pool.available(), POOL as usize);
    t.dev.violations().assert_clean();
}
