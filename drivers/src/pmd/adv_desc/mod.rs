//! Intel advanced-descriptor RX/TX rings, shared by igbvf and ixgbevf.
//!
//! Both families use the same 16-byte descriptor layouts, the same DD/EOP
//! completion bits and the same per-queue register roles (nic-facts-igbvf.md
//! C.11). What differs is where the registers sit ([`QueueLayout`]) and a few
//! bit meanings ([`Flavor`]); a driver passes both in.
//!
//! Threading: a ring is owned by the worker that polls its queue. The
//! control thread programs the queue registers (base, length, enable) with
//! [`program_rx`] / [`program_tx`] and coordinates stops and restarts with
//! the worker through a [`QueueCtl`].

pub mod desc;
mod queue;
mod rx;
mod tx;

pub use desc::{DescRing, RawDesc, RingError, RxRead, RxWriteBack, TxContext, TxData};
pub use queue::{ring_stats, ring_xstats, AdvRxQueue, AdvTxQueue};
pub use rx::{RxCounters, RxRing};
pub use tx::{TxCounters, TxRing};

use crate::memory::Iova;
use crate::mmio::RegisterSpace;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// RXDCTL/TXDCTL queue enable, bit 25, both families (nic-facts-igbvf.md
/// C.3, C.11).
pub const QUEUE_ENABLE: u32 = 0x0200_0000;
/// SRRCTL.BSIZEPKT: 1 KiB units, bits 6:0 (nic-facts-igbvf.md C.3, C.11).
pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
/// SRRCTL.BSIZEPKT field mask.
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
/// SRRCTL.DESCTYPE = advanced one buffer (C.3, C.11).
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x0200_0000;
/// RXDCTL bits 31:20 that are kept on enable (C.7.2 step 5).
pub const RXDCTL_KEEP_MASK: u32 = 0xFFF0_0000;

/// Where one queue's registers are, relative to the queue's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    /// Offset of RX queue 0's block.
    pub rx_base: u32,
    /// Offset of TX queue 0's block.
    pub tx_base: u32,
    /// Distance between queue blocks (igbvf 0x100, ixgbevf 0x40).
    pub stride: u32,
    /// RDBAL within the RX block.
    pub rdbal: u32,
    /// RDBAH.
    pub rdbah: u32,
    /// RDLEN.
    pub rdlen: u32,
    /// SRRCTL (igbvf +0x0C, ixgbevf +0x14).
    pub srrctl: u32,
    /// RDH.
    pub rdh: u32,
    /// RDT.
    pub rdt: u32,
    /// RXDCTL.
    pub rxdctl: u32,
    /// TDBAL within the TX block.
    pub tdbal: u32,
    /// TDBAH.
    pub tdbah: u32,
    /// TDLEN.
    pub tdlen: u32,
    /// TDH.
    pub tdh: u32,
    /// TDT.
    pub tdt: u32,
    /// TXDCTL.
    pub txdctl: u32,
    /// DCA_TXCTRL (igbvf +0x14, ixgbevf +0x0C).
    pub dca_txctrl: u32,
    /// A register whose read flushes posted writes (STATUS).
    pub flush: u32,
}

/// Absolute offsets of one RX queue's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxRegs {
    /// RDBAL.
    pub bal: u32,
    /// RDBAH.
    pub bah: u32,
    /// RDLEN.
    pub len: u32,
    /// SRRCTL.
    pub srrctl: u32,
    /// RDH.
    pub head: u32,
    /// RDT.
    pub tail: u32,
    /// RXDCTL.
    pub ctl: u32,
    /// Flush register.
    pub flush: u32,
}

/// Absolute offsets of one TX queue's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRegs {
    /// TDBAL.
    pub bal: u32,
    /// TDBAH.
    pub bah: u32,
    /// TDLEN.
    pub len: u32,
    /// TDH.
    pub head: u32,
    /// TDT.
    pub tail: u32,
    /// TXDCTL.
    pub ctl: u32,
    /// DCA_TXCTRL.
    pub dca: u32,
    /// Flush register.
    pub flush: u32,
}

impl QueueLayout {
    /// Registers of RX queue `q`.
    pub fn rx(&self, q: usize) -> RxRegs {
        let b = self.rx_base + self.stride * q as u32;
        RxRegs {
            bal: b + self.rdbal,
            bah: b + self.rdbah,
            len: b + self.rdlen,
            srrctl: b + self.srrctl,
            head: b + self.rdh,
            tail: b + self.rdt,
            ctl: b + self.rxdctl,
            flush: self.flush,
        }
    }

    /// Registers of TX queue `q`.
    pub fn tx(&self, q: usize) -> TxRegs {
        let b = self.tx_base + self.stride * q as u32;
        TxRegs {
            bal: b + self.tdbal,
            bah: b + self.tdbah,
            len: b + self.tdlen,
            head: b + self.tdh,
            tail: b + self.tdt,
            ctl: b + self.txdctl,
            dca: b + self.dca_txctrl,
            flush: self.flush,
        }
    }
}

/// The bits that mean different things in the two families
/// (nic-facts-igbvf.md C.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    /// SRRCTL.DROP_EN (igb bit 31, ixgbe bit 28).
    pub srrctl_drop_en: u32,
    /// RX error bits that make a frame bad.
    pub rx_frame_err_mask: u32,
    /// RX error: IPv4 header checksum bad.
    pub rx_err_ipe: u32,
    /// RX error: L4 checksum bad.
    pub rx_err_l4e: u32,
    /// RX status bit that says "ignore the checksum bits" (igb IXSM), or 0.
    pub rx_stat_ignore_csum: u32,
    /// RX status bit that says "the VLAN field is big-endian" (I350 VF:
    /// LB, nic-facts-igbvf.md C.4.1, C.9 #14), or 0.
    pub rx_stat_vlan_bswap: u32,
    /// RXDCTL threshold bits written on enable.
    pub rxdctl_thresholds: u32,
    /// Bits OR-ed into every TX data descriptor's olinfo_status (ixgbevf:
    /// CC; igbvf: none).
    pub tx_olinfo_extra: u32,
    /// DCA_TXCTRL bits to clear before enabling a TX queue.
    pub tx_dca_clear: u32,
    /// Largest DTALEN per descriptor.
    pub tx_max_per_desc: usize,
    /// Whether a TX ring writes the plain context descriptor
    /// ([`TxContext::plain`]) before its first data descriptor after each
    /// enable (ixgbevf: a data descriptor with CC needs a context, and X550
    /// stops the queue without one, nic-facts.md A.4.4, A.7.1 step 8, A.8
    /// #3; igbvf: no).
    pub tx_context: bool,
}

/// How long the queue programming waits after a disable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramTiming {
    /// Pause after clearing ENABLE before reprogramming (Linux: 10 ms,
    /// nic-facts-igbvf.md C.7.1/C.7.2 step 1).
    pub disable_settle: Duration,
}

/// What the control thread needs to (re)program an RX queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxHw {
    /// Registers.
    pub regs: RxRegs,
    /// Ring base.
    pub iova: Iova,
    /// Ring length in bytes.
    pub len_bytes: u32,
    /// Buffer size the device may write per descriptor, in bytes (a
    /// multiple of 1 KiB).
    pub buf_size: u32,
}

/// What the control thread needs to (re)program a TX queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxHw {
    /// Registers.
    pub regs: TxRegs,
    /// Ring base.
    pub iova: Iova,
    /// Ring length in bytes.
    pub len_bytes: u32,
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// How long a queue may take to stop after its ENABLE bit is cleared.
///
/// The hardware finishes the descriptor and buffer accesses it has started
/// before ENABLE reads back 0: "hardware may take up to 100 µs" (nic-facts.md
/// A, ixgbevf RX queue disable: poll up to 10 × 10 µs; DPDK polls igb's
/// RXDCTL.ENABLE the same way when disabling, nic-facts-igbvf.md C.7.2).
/// After it reads 0 the driver still waits `settle` (Linux igbvf: 10 ms,
/// C.7.1/C.7.2 step 1) before any buffer or descriptor memory is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisableTiming {
    /// Reads of ENABLE before giving up.
    pub polls: u32,
    /// Pause between reads.
    pub poll_delay: Duration,
    /// Pause after the last queue stopped, before memory is reused.
    pub settle: Duration,
}

impl Default for DisableTiming {
    fn default() -> Self {
        DisableTiming {
            polls: 100,
            poll_delay: Duration::from_micros(10),
            settle: Duration::from_millis(10),
        }
    }
}

/// What disabling a queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disabled {
    /// ENABLE was already clear: the queue was not running.
    WasOff,
    /// ENABLE read back 0 within the bound: the device stopped.
    Stopped,
    /// ENABLE still read 1 after every poll: the device may still access
    /// the ring and its buffers, which must then never be reused.
    TimedOut,
}

fn disable_queue<R: RegisterSpace + ?Sized>(
    regs: &R,
    ctl: u32,
    flush: u32,
    t: &DisableTiming,
) -> Disabled {
    let c = regs.read32(ctl);
    if c & QUEUE_ENABLE == 0 {
        return Disabled::WasOff;
    }
    regs.write32(ctl, c & !QUEUE_ENABLE);
    regs.read32(flush);
    for _ in 0..t.polls {
        if regs.read32(ctl) & QUEUE_ENABLE == 0 {
            return Disabled::Stopped;
        }
        pause(t.poll_delay);
    }
    if regs.read32(ctl) & QUEUE_ENABLE == 0 {
        Disabled::Stopped
    } else {
        Disabled::TimedOut
    }
}

/// Clear RXDCTL.ENABLE and poll it back to 0 (bounded by `t`). The caller
/// settles (`t.settle`) before reusing buffers.
pub fn disable_rx<R: RegisterSpace + ?Sized>(regs: &R, r: &RxRegs, t: &DisableTiming) -> Disabled {
    disable_queue(regs, r.ctl, r.flush, t)
}

/// Clear TXDCTL.ENABLE and poll it back to 0, as [`disable_rx`].
pub fn disable_tx<R: RegisterSpace + ?Sized>(regs: &R, r: &TxRegs, t: &DisableTiming) -> Disabled {
    disable_queue(regs, r.ctl, r.flush, t)
}

/// Forget every buffer in `slots` without freeing it (the device may
/// still access it, so no one else may ever get it); adds the count to
/// `leaked` (single writer: the ring's owner) and returns it.
pub(crate) fn abandon_slots(
    slots: &mut [Option<crate::mbuf::Mbuf>],
    leaked: &std::sync::atomic::AtomicU64,
) -> usize {
    let mut n = 0;
    for s in slots.iter_mut() {
        if let Some(m) = s.take() {
            std::mem::forget(m);
            n += 1;
        }
    }
    crate::port::QueueCounters::add(leaked, n as u64);
    n
}

/// Poll a queue's ENABLE bit until it reads 1: the device has taken the
/// enable. On ixgbevf a tail write before that is lost (nic-facts.md A.7.2
/// "the queue must be enabled before RDT is written"; Linux and DPDK poll
/// 10 × 1 ms, A.7.1 step 7, A.7.2 step 8). True once it reads 1.
pub fn wait_enabled<R: RegisterSpace + ?Sized>(
    regs: &R,
    ctl: u32,
    polls: u32,
    delay: Duration,
) -> bool {
    for _ in 0..polls.max(1) {
        if regs.read32(ctl) & QUEUE_ENABLE != 0 {
            return true;
        }
        pause(delay);
    }
    regs.read32(ctl) & QUEUE_ENABLE != 0
}

/// Pause for `t.settle` if any queue was running.
pub fn settle_after(outcomes: impl IntoIterator<Item = Disabled>, t: &DisableTiming) {
    if outcomes.into_iter().any(|d| d != Disabled::WasOff) {
        pause(t.settle);
    }
}

/// Program and enable an RX queue, in the order of nic-facts-igbvf.md C.7.2
/// (Linux column): disable, settle, SRRCTL, base, length, head = tail = 0,
/// enable with thresholds. The tail is left at 0: the ring's owner posts
/// buffers and writes it afterwards (enable before tail).
pub fn program_rx<R: RegisterSpace + ?Sized>(
    regs: &R,
    hw: &RxHw,
    flavor: &Flavor,
    timing: &ProgramTiming,
) {
    let r = &hw.regs;
    let old = regs.read32(r.ctl);
    regs.write32(r.ctl, old & !QUEUE_ENABLE);
    regs.read32(r.flush);
    pause(timing.disable_settle);
    let bsize = (hw.buf_size >> SRRCTL_BSIZEPKT_SHIFT) & SRRCTL_BSIZEPKT_MASK;
    regs.write32(
        r.srrctl,
        flavor.srrctl_drop_en | SRRCTL_DESCTYPE_ADV_ONEBUF | bsize,
    );
    regs.write32(r.bal, hw.iova.get() as u32);
    regs.write32(r.bah, (hw.iova.get() >> 32) as u32);
    regs.write32(r.len, hw.len_bytes);
    regs.write32(r.head, 0);
    regs.write32(r.tail, 0);
    regs.write32(
        r.ctl,
        (old & RXDCTL_KEEP_MASK & !QUEUE_ENABLE) | QUEUE_ENABLE | flavor.rxdctl_thresholds,
    );
    regs.read32(r.flush);
}

/// Program and enable a TX queue, in the order of nic-facts-igbvf.md C.7.1
/// (Linux column): disable, settle, length, base, head = tail = 0, clear
/// the write-back relaxed-ordering bit, enable.
pub fn program_tx<R: RegisterSpace + ?Sized>(
    regs: &R,
    hw: &TxHw,
    flavor: &Flavor,
    timing: &ProgramTiming,
) {
    let r = &hw.regs;
    let old = regs.read32(r.ctl);
    regs.write32(r.ctl, old & !QUEUE_ENABLE);
    regs.read32(r.flush);
    pause(timing.disable_settle);
    regs.write32(r.len, hw.len_bytes);
    regs.write32(r.bal, hw.iova.get() as u32);
    regs.write32(r.bah, (hw.iova.get() >> 32) as u32);
    regs.write32(r.head, 0);
    regs.write32(r.tail, 0);
    let dca = regs.read32(r.dca);
    regs.write32(r.dca, dca & !flavor.tx_dca_clear);
    regs.write32(r.ctl, old | QUEUE_ENABLE);
    regs.read32(r.flush);
}

/// Queue run state shared by the control thread and the queue's worker.
///
/// The control thread asks, the worker answers at the start of its next
/// burst; neither ever waits for the other.
///
/// ```text
/// control: RESTART (registers programmed) ──worker──▶ RUN (buffers posted, tail written)
/// control: STOP (queue disabled, ENABLE read back 0, settled)
///                                          ──worker──▶ STOPPED (buffers freed, ring idle)
/// control: ABANDON (ENABLE never read 0)   ──worker──▶ STOPPED (buffers forgotten, counted)
/// ```
#[derive(Debug)]
pub struct QueueCtl(AtomicU8);

/// Values of a [`QueueCtl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum QueueState {
    /// Running.
    Run = 0,
    /// The control thread disabled the queue; the worker must release its
    /// buffers.
    Stop = 1,
    /// The worker released everything and no longer touches the ring.
    Stopped = 2,
    /// The control thread programmed and enabled the queue; the worker must
    /// post buffers and write the tail.
    Restart = 3,
    /// The control thread could not see the device stop: the worker must
    /// forget its buffers (count them as leaked, never free them) and
    /// answer Stopped.
    Abandon = 4,
}

impl QueueState {
    fn from_u8(v: u8) -> QueueState {
        match v {
            0 => QueueState::Run,
            1 => QueueState::Stop,
            2 => QueueState::Stopped,
            3 => QueueState::Restart,
            _ => QueueState::Abandon,
        }
    }
}

impl QueueCtl {
    /// A queue waiting for its first start (its registers are programmed).
    pub fn new(state: QueueState) -> QueueCtl {
        QueueCtl(AtomicU8::new(state as u8))
    }

    /// Current state, as the worker sees it at the top of a burst.
    #[inline(always)]
    pub fn load(&self) -> QueueState {
        // Acquire pairs with the Release in `request` (control: Stop /
        // Restart), so the worker sees the registers the control thread
        // programmed before it writes the tail.
        QueueState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Control thread: ask for Stop or Restart.
    pub fn request(&self, s: QueueState) {
        debug_assert!(matches!(
            s,
            QueueState::Stop | QueueState::Restart | QueueState::Abandon
        ));
        // Release pairs with the worker's Acquire in `load`: the register
        // writes (disable, or program + enable) happen before it acts.
        self.0.store(s as u8, Ordering::Release);
    }

    /// Worker: move from `from` to `to` unless the control thread asked for
    /// something else meanwhile.
    pub fn answer(&self, from: QueueState, to: QueueState) -> bool {
        // Release pairs with the control thread's Acquire in `is`: once it
        // sees Stopped, the worker's last ring and tail accesses are done.
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Control thread: is the queue in state `s`?
    pub fn is(&self, s: QueueState) -> bool {
        // Acquire pairs with the worker's Release in `answer`.
        self.0.load(Ordering::Acquire) == s as u8
    }
}
