//! A synchronous igbvf device model with its PF mailbox responder and a
//! wire, for tests (no hardware, no threads).
//!
//! It implements [`RegisterSpace`] over a register array and reacts to the
//! writes a VF driver makes: the mailbox (VFU lock, REQ → PFACK + reply +
//! PFSTS, read-to-clear PFSTS/PFACK/RSTD), CTRL.RST, and the tail
//! registers (TX descriptors are consumed at once, frames recorded on the
//! wire). Tests inject frames into RX queue 0. DMA goes through the
//! addresses the driver programmed; in tests an IOVA is the virtual address
//! (`DmaRegion::iova`). Broken hardware rules are recorded as violations.
//! Behaviour follows nic-facts-igbvf.md C.5 (Linux PF) and C.10 (QEMU).

use super::regs::*;
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::adv_desc::desc::{
    RawDesc, RxRead, RxWriteBack, TxData, RXD_STAT_DD, RXD_STAT_EOP, TXD_CMD_DEXT, TXD_CMD_EOP,
    TXD_CMD_RS, TXD_DTYP_DATA, TXD_STAT_DD,
};
use crate::pmd::adv_desc::{QUEUE_ENABLE, SRRCTL_DESCTYPE_ADV_ONEBUF};
use std::sync::Mutex;

const SPACE: usize = 0x4000;
const DTYP_MASK: u32 = 0x00F0_0000;
const DESCTYPE_MASK: u32 = 0x0E00_0000;

#[derive(Debug, Default)]
pub struct State {
    regs: Vec<u32>,
    /// PF-side mailbox bits (PFSTS, PFACK, RSTI, RSTD) and VFU.
    mbx: u32,
    /// The PF considers the VF clear to send.
    pub cts: bool,
    /// Admin MAC the PF hands out in the VF_RESET reply.
    pub pf_mac: Option<MacAddr>,
    /// MAC the VF set with SET_MAC_ADDR.
    pub vf_mac: Option<MacAddr>,
    /// Max frame from SET_LPE.
    pub lpe: Option<u32>,
    /// The PF ignores requests (no PFACK): for timeout tests.
    pub pf_silent: bool,
    /// The wire is blocked: TX descriptors stay pending.
    pub tx_hold: bool,
    /// Message word 0 of every request, in order.
    pub requests: Vec<u32>,
    /// Frames the VF transmitted.
    pub wire: Vec<Vec<u8>>,
    /// Frames dropped on RX for want of descriptors.
    pub rx_dropped: u64,
    /// Broken rules.
    pub violations: Vec<String>,
    tx_partial: Vec<u8>,
    // ---- added for issue 10's igbvf fixes (igbfix) ----
    /// NACKs the PF sent for a VF ACK while the VF had no CTS (C.5.3).
    pub nacks_for_ack: u32,
    /// VLAN field written on the next injected frame's EOP descriptor.
    next_vlan: u16,
}

#[derive(Debug)]
pub struct Model(pub Mutex<State>);

/// Read one descriptor at a device address.
///
/// # Safety
/// `addr` is the virtual address of a live, 16-byte aligned descriptor.
unsafe fn dma_read_desc(addr: u64) -> RawDesc {
    // SAFETY: the caller's contract.
    unsafe { (addr as *const RawDesc).read_volatile() }
}

/// Write dword `w` of the descriptor at `addr`.
///
/// # Safety
/// As for [`dma_read_desc`], and `w < 4`.
unsafe fn dma_write_dword(addr: u64, w: usize, v: u32) {
    // SAFETY: the caller's contract.
    unsafe { (addr as *mut u32).add(w).write_volatile(v.to_le()) }
}

impl Model {
    pub fn new(pf_mac: Option<MacAddr>) -> Model {
        let mut st = State {
            regs: vec![0; SPACE / 4],
            pf_mac,
            ..State::default()
        };
        st.regs[STATUS as usize / 4] = STATUS_LU | STATUS_FD | STATUS_SPEED_1000;
        Model(Mutex::new(st))
    }

    pub fn st(&self) -> std::sync::MutexGuard<'_, State> {
        // (igbfix) A test assertion that fails while holding the guard
        // poisons the lock; the driver's drop handlers then still reach
        // the registers, so the failure is reported instead of aborting
        // the test binary (a panic inside a panic).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_link(&self, up: bool) {
        let mut st = self.st();
        let s = &mut st.regs[STATUS as usize / 4];
        *s = if up { *s | STATUS_LU } else { *s & !STATUS_LU };
    }

    /// Set a statistics register (to test wrapping).
    pub fn set_reg(&self, off: u32, v: u32) {
        self.st().regs[off as usize / 4] = v;
    }

    pub fn reg(&self, off: u32) -> u32 {
        self.st().regs[off as usize / 4]
    }

    /// The PF resets (C.5.3 igb_reset, C.10.1): CTS cleared, a
    /// PF_CONTROL_MSG without CTS, RSTI set, ring registers and counters
    /// zeroed.
    pub fn pf_reset_begin(&self) {
        let mut st = self.st();
        st.cts = false;
        st.regs[VMBMEM as usize / 4] = MSG_PF_CONTROL;
        st.mbx |= MBX_PFSTS | MBX_RSTI;
        for q in 0..2 {
            for off in [
                rdbal(q),
                rdbah(q),
                rdlen(q),
                srrctl(q),
                rdh(q),
                rdt(q),
                rxdctl(q),
                tdbal(q),
                tdbah(q),
                tdlen(q),
                tdh(q),
                tdt(q),
                txdctl(q),
            ] {
                st.regs[off as usize / 4] = 0;
            }
        }
        for off in [VFGPRC, VFGPTC, VFGORC, VFGOTC, VFMPRC] {
            st.regs[off as usize / 4] = 0;
        }
    }

    // ---- added for issue 10's igbvf fixes (igbfix) ----

    /// The PF takes (true) or releases (false) the buffer: PFU. While it
    /// holds it, VFU is not granted (C.10.1).
    pub fn set_pfu(&self, on: bool) {
        let mut st = self.st();
        st.mbx = if on {
            st.mbx | MBX_PFU
        } else {
            st.mbx & !MBX_PFU
        };
    }

    /// The PF sends PF_CONTROL_MSG, with CTS if `cts` (igb_ping_all_vfs,
    /// C.5.3); without CTS the VF is no longer clear to send. No RSTI.
    pub fn pf_ping(&self, cts: bool) {
        let mut st = self.st();
        st.cts &= cts;
        let w = MSG_PF_CONTROL | if cts { MSG_CTS } else { 0 };
        st.w(VMBMEM, w);
        st.mbx |= MBX_PFSTS;
    }

    /// The PF stops considering the VF clear to send without telling it
    /// (a ping the VF missed, C.5.3 "CTS flag is clear").
    pub fn drop_cts(&self) {
        self.st().cts = false;
    }

    /// A frame to RX queue 0 whose EOP descriptor has extra status bits and
    /// this raw VLAN field (bytes 14..15 as the device writes them).
    pub fn inject_vlan(&self, frame: &[u8], status: u32, vlan_field: u16) -> bool {
        let mut st = self.st();
        st.next_vlan = vlan_field;
        let ok = st.inject(frame, status, 0);
        st.next_vlan = 0;
        ok
    }

    // ---- end of additions ----

    /// The PF is back: RSTI → RSTD (C.10.1).
    pub fn pf_reset_end(&self) {
        let mut st = self.st();
        st.mbx = (st.mbx & !MBX_RSTI) | MBX_RSTD;
    }

    /// A frame from the wire to RX queue 0. False if dropped (queue off
    /// or too few free descriptors; the model never queues, C.10.2).
    pub fn inject(&self, frame: &[u8]) -> bool {
        self.st().inject(frame, 0, 0)
    }

    /// Same, with extra status bits and pkt_info/rss on the EOP descriptor.
    pub fn inject_with(&self, frame: &[u8], status: u32, pkt_info_rss: (u16, u32)) -> bool {
        self.st().inject(
            frame,
            status,
            pkt_info_rss.0 as u64 | (pkt_info_rss.1 as u64) << 16,
        )
    }
}

impl State {
    fn r(&self, off: u32) -> u32 {
        self.regs[off as usize / 4]
    }
    fn w(&mut self, off: u32, v: u32) {
        self.regs[off as usize / 4] = v;
    }
    fn bump(&mut self, off: u32, n: u32) {
        let v = self.r(off).wrapping_add(n);
        self.w(off, v);
    }

    fn ring_ok(&mut self, what: &str, bal: u32, bah: u32, len: u32) -> bool {
        let base = bal as u64 | (bah as u64) << 32;
        let ok = base != 0 && base.is_multiple_of(128) && len != 0 && len.is_multiple_of(128);
        if !ok {
            self.violations
                .push(format!("{what}: bad ring base {base:#x} or length {len}"));
        }
        ok
    }

    fn inject(&mut self, frame: &[u8], status: u32, extra: u64) -> bool {
        let q = 0;
        if self.r(rxdctl(q)) & QUEUE_ENABLE == 0 {
            self.rx_dropped += 1;
            return false;
        }
        let len = self.r(rdlen(q));
        if !self.ring_ok("rx", self.r(rdbal(q)), self.r(rdbah(q)), len) {
            return false;
        }
        let srr = self.r(srrctl(q));
        let bsize = ((srr & 0x7F) as usize) << 10;
        if srr & DESCTYPE_MASK != SRRCTL_DESCTYPE_ADV_ONEBUF || bsize == 0 {
            self.violations.push(format!("rx: SRRCTL {srr:#x}"));
            return false;
        }
        let count = len as usize / 16;
        let base = self.r(rdbal(q)) as u64 | (self.r(rdbah(q)) as u64) << 32;
        let (head, tail) = (self.r(rdh(q)) as usize, self.r(rdt(q)) as usize);
        let free = (tail + count - head) % count;
        let need = frame.len().div_ceil(bsize).max(1);
        if free < need {
            self.rx_dropped += 1;
            return false;
        }
        let mut h = head;
        for (k, chunk) in frame.chunks(bsize).enumerate() {
            let daddr = base + 16 * h as u64;
            // SAFETY: daddr is inside the ring the driver programmed (base
            // and length checked), which it keeps alive while enabled; in
            // tests the IOVA is the virtual address.
            let rd = unsafe { dma_read_desc(daddr) }.dwords();
            let read = RxRead {
                pkt_addr: rd[0] as u64 | (rd[1] as u64) << 32,
                hdr_addr: rd[2] as u64 | (rd[3] as u64) << 32,
            };
            // SAFETY: the driver posted a buffer of at least bsize bytes at
            // pkt_addr (its data room), alive while posted.
            unsafe {
                std::ptr::copy_nonoverlapping(chunk.as_ptr(), read.pkt_addr as *mut u8, chunk.len())
            };
            let last = k == need - 1;
            let wb = RxWriteBack {
                pkt_info: if last { extra as u16 } else { 0 },
                hdr_info: 0,
                rss: if last { (extra >> 16) as u32 } else { 0 },
                status_error: RXD_STAT_DD | if last { RXD_STAT_EOP | status } else { 0 },
                length: chunk.len() as u16,
                vlan: if last { self.next_vlan } else { 0 },
            }
            .encode()
            .dwords();
            // Status (with DD) written last, as QEMU does (C.10.1).
            for w in [0usize, 1, 3, 2] {
                // SAFETY: as above, w < 4.
                unsafe { dma_write_dword(daddr, w, wb[w]) };
            }
            h = (h + 1) % count;
        }
        self.w(rdh(q), h as u32);
        self.bump(VFGPRC, 1);
        self.bump(VFGORC, frame.len() as u32 + 4);
        true
    }

    pub fn tx_kick(&mut self, q: u32) {
        if self.tx_hold {
            return;
        }
        if self.r(txdctl(q)) & QUEUE_ENABLE == 0 {
            self.violations
                .push(format!("TDT({q}) written while the queue is disabled"));
            return;
        }
        let len = self.r(tdlen(q));
        if !self.ring_ok("tx", self.r(tdbal(q)), self.r(tdbah(q)), len) {
            return;
        }
        let count = len as usize / 16;
        let base = self.r(tdbal(q)) as u64 | (self.r(tdbah(q)) as u64) << 32;
        let tail = self.r(tdt(q)) as usize;
        let mut h = self.r(tdh(q)) as usize;
        while h != tail {
            let daddr = base + 16 * h as u64;
            // SAFETY: inside the programmed ring, as in `inject`.
            let d = TxData::decode(unsafe { dma_read_desc(daddr) });
            let c = d.cmd_type_len;
            if c & TXD_CMD_DEXT == 0 || c & DTYP_MASK != TXD_DTYP_DATA {
                self.violations.push(format!(
                    "tx desc {h}: not an advanced data descriptor {c:#x}"
                ));
            }
            let n = (c & 0xFFFF) as usize;
            let mut buf = vec![0u8; n];
            // SAFETY: the driver handed a buffer of n bytes at buffer_addr
            // and keeps it until DD is written back.
            unsafe {
                std::ptr::copy_nonoverlapping(d.buffer_addr as *const u8, buf.as_mut_ptr(), n)
            };
            self.tx_partial.extend_from_slice(&buf);
            if c & TXD_CMD_EOP != 0 {
                let f = std::mem::take(&mut self.tx_partial);
                let paylen = d.olinfo_status >> 14;
                if paylen as usize != f.len() {
                    self.violations
                        .push(format!("tx: PAYLEN {paylen} for a {}-byte frame", f.len()));
                }
                self.bump(VFGPTC, 1);
                self.bump(VFGOTC, f.len() as u32 + 4);
                self.wire.push(f);
            }
            if c & TXD_CMD_RS != 0 {
                // DD only for RS descriptors (C.10.1).
                // SAFETY: as above.
                unsafe { dma_write_dword(daddr, 3, d.olinfo_status | TXD_STAT_DD) };
            }
            h = (h + 1) % count;
        }
        self.w(tdh(q), h as u32);
    }

    /// The Linux PF's answer to a request (C.5.3).
    fn pf_answer(&mut self) {
        let msg: Vec<u32> = (0..MBX_SIZE as u32)
            .map(|i| self.r(VMBMEM + 4 * i))
            .collect();
        let w0 = msg[0];
        self.requests.push(w0);
        if self.pf_silent {
            return;
        }
        self.mbx |= MBX_PFACK;
        let id = w0 & MSG_ID_MASK;
        let mut reply = vec![w0];
        if id == MSG_VF_RESET {
            self.cts = true;
            match self.pf_mac {
                Some(m) => {
                    let b = m.0;
                    reply[0] |= MSG_ACK;
                    reply.push(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    reply.push(u32::from_le_bytes([b[4], b[5], 0, 0]));
                }
                None => reply[0] |= MSG_NACK,
            }
        } else if !self.cts {
            reply[0] |= MSG_NACK;
        } else {
            let ok = match id {
                MSG_SET_MAC_ADDR => {
                    let (a, b) = (msg[1].to_le_bytes(), msg[2].to_le_bytes());
                    let m = MacAddr([a[0], a[1], a[2], a[3], b[0], b[1]]);
                    let ok = m.is_unicast() && self.pf_mac.is_none_or(|p| p == m);
                    if ok {
                        self.vf_mac = Some(m);
                    }
                    ok
                }
                MSG_SET_LPE => {
                    self.lpe = Some(msg[1]);
                    true
                }
                MSG_SET_PROMISC => w0 & MSGINFO_MASK & !PROMISC_MULTICAST == 0,
                MSG_SET_MULTICAST => true,
                _ => false,
            };
            reply[0] |= MSG_CTS | if ok { MSG_ACK } else { MSG_NACK };
        }
        for (i, w) in reply.iter().enumerate() {
            self.w(VMBMEM + 4 * i as u32, *w);
        }
        self.mbx |= MBX_PFSTS;
    }
}

impl RegisterSpace for Model {
    fn read32(&self, offset: u32) -> u32 {
        let mut st = self.st();
        if offset as usize >= SPACE {
            return !0;
        }
        if offset == V2PMAILBOX {
            let v = st.mbx;
            // PFSTS, PFACK and RSTD clear on read (C.5.1, C.10.1).
            st.mbx &= !MBX_R2C_BITS;
            return v;
        }
        if offset == CTRL {
            return st.r(CTRL) & !CTRL_RST;
        }
        st.r(offset)
    }

    fn write32(&self, offset: u32, value: u32) {
        let mut st = self.st();
        if offset as usize >= SPACE {
            return;
        }
        match offset {
            V2PMAILBOX => {
                // VFU granted while the PF does not hold the buffer.
                if value & MBX_VFU != 0 && st.mbx & MBX_PFU == 0 {
                    st.mbx |= MBX_VFU;
                } else {
                    st.mbx &= !MBX_VFU;
                }
                if value & MBX_REQ != 0 {
                    st.pf_answer();
                }
                // (igbfix) A VF that is not clear to send ACKs a PF
                // message: the Linux PF answers with a NACK without CTS
                // (C.5.3 igb_rcv_ack_from_vf; its 2 s rate limit is not
                // modelled).
                if value & MBX_ACK != 0 && !st.cts {
                    st.w(VMBMEM, MSG_NACK);
                    st.mbx |= MBX_PFSTS;
                    st.nacks_for_ack += 1;
                }
            }
            CTRL => {
                if value & CTRL_RST != 0 {
                    // VF reset (C.10.1): queue enables cleared, CTS lost;
                    // ring registers kept, RSTI/RSTD not set (C.10.2).
                    for q in 0..2 {
                        let (r, t) = (st.r(rxdctl(q)), st.r(txdctl(q)));
                        st.w(rxdctl(q), r & !QUEUE_ENABLE);
                        st.w(txdctl(q), t & !QUEUE_ENABLE);
                    }
                    st.cts = false;
                }
                st.w(CTRL, value & !CTRL_RST);
            }
            STATUS | VFGPRC | VFGPTC | VFGORC | VFGOTC | VFMPRC => {}
            o if o == rdt(0) || o == rdt(1) => {
                let q = (o - rdt(0)) / QUEUE_STRIDE;
                if st.r(rxdctl(q)) & QUEUE_ENABLE == 0 && value != 0 {
                    st.violations.push(format!(
                        "RDT({q}) = {value} written before the queue was enabled"
                    ));
                }
                st.w(o, value);
            }
            o if o == tdt(0) || o == tdt(1) => {
                st.w(o, value);
                let q = (o - tdt(0)) / QUEUE_STRIDE;
                if value != st.r(tdh(q)) {
                    st.tx_kick(q);
                }
            }
            o => st.w(o, value),
        }
    }

    fn len(&self) -> usize {
        SPACE
    }
}
