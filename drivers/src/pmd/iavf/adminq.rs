//! The admin queue, the transport under virtchnl (docs/facts/nic-facts.md
//! B.3): a send ring (ATQ, VF → PF) and a receive ring (ARQ, PF → VF) of
//! 32-byte descriptors in DMA memory, each slot with a 4 KiB buffer.
//! Every message goes indirect, in the slot's buffer (B.3.1: the firmware
//! copies only the cookies).

use super::dma_bytes::DmaBytes;
use super::regs::*;
use crate::memory::{ArenaError, DmaArena, DmaMapper, MemoryBacking};
use crate::mmio::RegisterSpace;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Entries per ring (B.3.2 IAVF_AQ_LEN).
pub const AQ_ENTRIES: usize = 32;
/// Bytes per buffer (B.3.2 IAVF_AQ_BUF_SZ).
pub const AQ_BUF_SIZE: usize = 4096;
/// Descriptor bytes (B.3.1).
pub const AQ_DESC_SIZE: usize = 32;
/// Ring and buffer alignment (B.3.2).
pub const AQ_ALIGN: usize = 4096;

/// Descriptor flag: done (B.3.1).
pub const AQ_FLAG_DD: u16 = 0x1;
/// Descriptor flag: complete (B.3.1).
pub const AQ_FLAG_CMP: u16 = 0x2;
/// Descriptor flag: error (B.3.1).
pub const AQ_FLAG_ERR: u16 = 0x4;
/// Descriptor flag: large buffer, > 512 bytes (B.3.1).
pub const AQ_FLAG_LB: u16 = 0x200;
/// Descriptor flag: the buffer is read by the firmware (B.3.1).
pub const AQ_FLAG_RD: u16 = 0x400;
/// Descriptor flag: a buffer is attached (B.3.1).
pub const AQ_FLAG_BUF: u16 = 0x1000;
/// Descriptor flag SI, set on every send (B.3.1 "SI always").
pub const AQ_FLAG_SI: u16 = 0x2000;
/// Payloads above this need LB (B.3.1).
pub const AQ_LB_THRESHOLD: usize = 512;

/// AQ opcode of a VF → PF message (B.3.1).
pub const AQ_OP_SEND_TO_PF: u16 = 0x0801;
/// AQ opcode of a PF → VF message (B.3.1).
pub const AQ_OP_SEND_TO_VF: u16 = 0x0802;

/// One AQ descriptor (B.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AqDesc {
    /// Flags.
    pub flags: u16,
    /// AQ opcode.
    pub opcode: u16,
    /// Payload length.
    pub datalen: u16,
    /// AQ return code (low 8 bits matter).
    pub retval: u16,
    /// virtchnl opcode.
    pub cookie_high: u32,
    /// virtchnl status.
    pub cookie_low: u32,
    /// Unused by virtchnl.
    pub param0: u32,
    /// Unused by virtchnl.
    pub param1: u32,
    /// Buffer address.
    pub addr: u64,
}

impl AqDesc {
    /// The 32 bytes.
    pub fn encode(&self) -> [u8; AQ_DESC_SIZE] {
        let mut b = [0u8; AQ_DESC_SIZE];
        b[0..2].copy_from_slice(&self.flags.to_le_bytes());
        b[2..4].copy_from_slice(&self.opcode.to_le_bytes());
        b[4..6].copy_from_slice(&self.datalen.to_le_bytes());
        b[6..8].copy_from_slice(&self.retval.to_le_bytes());
        b[8..12].copy_from_slice(&self.cookie_high.to_le_bytes());
        b[12..16].copy_from_slice(&self.cookie_low.to_le_bytes());
        b[16..20].copy_from_slice(&self.param0.to_le_bytes());
        b[20..24].copy_from_slice(&self.param1.to_le_bytes());
        b[24..28].copy_from_slice(&((self.addr >> 32) as u32).to_le_bytes());
        b[28..32].copy_from_slice(&(self.addr as u32).to_le_bytes());
        b
    }

    /// Parse 32 bytes.
    pub fn decode(b: &[u8; AQ_DESC_SIZE]) -> AqDesc {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        AqDesc {
            flags: u16_at(0),
            opcode: u16_at(2),
            datalen: u16_at(4),
            retval: u16_at(6),
            cookie_high: u32_at(8),
            cookie_low: u32_at(12),
            param0: u32_at(16),
            param1: u32_at(20),
            addr: (u32_at(24) as u64) << 32 | u32_at(28) as u64,
        }
    }

    /// A posted ARQ slot: BUF (and LB), the buffer's size and address
    /// (B.3.2 "ARQ init").
    fn arq_post(addr: u64) -> AqDesc {
        let lb = if AQ_BUF_SIZE > AQ_LB_THRESHOLD {
            AQ_FLAG_LB
        } else {
            0
        };
        AqDesc {
            flags: AQ_FLAG_BUF | lb,
            datalen: AQ_BUF_SIZE as u16,
            addr,
            ..AqDesc::default()
        }
    }
}

/// Waits of the admin queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AqTiming {
    /// Reads of ATQH before a send times out.
    pub send_polls: u32,
    /// Pause between them (B.3.2: 250 ms in all).
    pub send_delay: Duration,
}

impl Default for AqTiming {
    fn default() -> Self {
        AqTiming {
            send_polls: 250,
            send_delay: Duration::from_millis(1),
        }
    }
}

/// Why the admin queue failed.
#[derive(Debug, thiserror::Error)]
pub enum AqError {
    /// Ring or buffer memory.
    #[error("admin queue memory: {0}")]
    Memory(#[from] ArenaError),
    /// The base address did not read back: the VF is in reset or the
    /// BAR is not the iavf register file (B.3.2).
    #[error("admin queue {ring} base read back {got:#x}, {want:#x} written (VF in reset?)")]
    BaseReadback {
        /// "ATQ" or "ARQ".
        ring: &'static str,
        /// Read back.
        got: u32,
        /// Written.
        want: u32,
    },
    /// ATQLEN.ENABLE is clear or an error bit set: the PF reset the VF
    /// (B.3.2 "liveness", B.7).
    #[error("admin queue not alive (ATQLEN {0:#x}): the VF is being reset")]
    NotAlive(u32),
    /// The PF did not consume the message in time (B.3.2: 250 ms).
    #[error("admin queue send of virtchnl op {op} not consumed within {waited:?}")]
    Timeout {
        /// virtchnl opcode.
        op: u32,
        /// How long.
        waited: Duration,
    },
    /// The descriptor came back with ERR or a non-zero return code.
    #[error("admin queue send of virtchnl op {op} failed: AQ return code {retval}")]
    Retval {
        /// virtchnl opcode.
        op: u32,
        /// AQ return code (B.3.1).
        retval: u8,
    },
    /// A message longer than one buffer (B.4.4 "upper bound").
    #[error("virtchnl message of {0} bytes does not fit the 4096-byte AQ buffer")]
    TooLong(usize),
}

/// A message taken off the ARQ (B.3.2 "receive").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArqMessage {
    /// virtchnl opcode (cookie_high).
    pub op: u32,
    /// virtchnl status (cookie_low, signed).
    pub status: i32,
    /// The message.
    pub data: Vec<u8>,
}

/// The two rings and their buffers, mapped in the device's DMA space.
#[derive(Debug)]
pub struct AdminQueue {
    atq: DmaBytes,
    arq: DmaBytes,
    atq_bufs: Vec<DmaBytes>,
    arq_bufs: Vec<DmaBytes>,
    /// ATQ: next slot to fill (= ATQT).
    ntu: usize,
    /// ARQ: next slot to read.
    ntc: usize,
    timing: AqTiming,
}

impl AdminQueue {
    /// Ring and buffer memory: 2 rings and 64 buffers, 4 KiB aligned.
    pub fn new(
        backing: &MemoryBacking,
        dma: &Arc<dyn DmaMapper>,
        timing: AqTiming,
    ) -> Result<AdminQueue, AqError> {
        let ring = (AQ_ENTRIES * AQ_DESC_SIZE).next_multiple_of(AQ_ALIGN);
        let bytes = 2 * ring + 2 * AQ_ENTRIES * AQ_BUF_SIZE;
        let arena = DmaArena::new(bytes, backing, dma)?;
        let carve = |n| DmaBytes::carve(&arena, n, AQ_ALIGN);
        let atq = carve(AQ_ENTRIES * AQ_DESC_SIZE)?;
        let arq = carve(AQ_ENTRIES * AQ_DESC_SIZE)?;
        let atq_bufs = (0..AQ_ENTRIES)
            .map(|_| carve(AQ_BUF_SIZE))
            .collect::<Result<_, _>>()?;
        let arq_bufs = (0..AQ_ENTRIES)
            .map(|_| carve(AQ_BUF_SIZE))
            .collect::<Result<_, _>>()?;
        Ok(AdminQueue {
            atq,
            arq,
            atq_bufs,
            arq_bufs,
            ntu: 0,
            ntc: 0,
            timing,
        })
    }

    fn desc(ring: &DmaBytes, i: usize) -> AqDesc {
        let mut b = [0u8; AQ_DESC_SIZE];
        ring.read(i * AQ_DESC_SIZE, &mut b);
        AqDesc::decode(&b)
    }

    fn set_desc(ring: &DmaBytes, i: usize, d: &AqDesc) {
        ring.write(i * AQ_DESC_SIZE, &d.encode());
    }

    /// Program both rings (B.3.2 "ATQ init", "ARQ init"), each base read
    /// back; the ARQ tail last, which posts its buffers.
    pub fn init<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Result<(), AqError> {
        self.shutdown(regs);
        self.ntu = 0;
        self.ntc = 0;
        let zero = AqDesc::default();
        for i in 0..AQ_ENTRIES {
            Self::set_desc(&self.atq, i, &zero);
            Self::set_desc(
                &self.arq,
                i,
                &AqDesc::arq_post(self.arq_bufs[i].iova().get()),
            );
        }
        // Release: descriptors in memory before the registers hand the
        // rings to the device (pairs with its first descriptor fetch).
        fence(Ordering::Release);
        let n = AQ_ENTRIES as u32;
        let atq = self.atq.iova().get();
        regs.write32(VF_ATQH1, 0);
        regs.write32(VF_ATQT1, 0);
        regs.write32(VF_ATQLEN1, n | AQ_LEN_ENABLE);
        regs.write32(VF_ATQBAL1, atq as u32);
        regs.write32(VF_ATQBAH1, (atq >> 32) as u32);
        let got = regs.read32(VF_ATQBAL1);
        if got != atq as u32 {
            return Err(AqError::BaseReadback {
                ring: "ATQ",
                got,
                want: atq as u32,
            });
        }
        let arq = self.arq.iova().get();
        regs.write32(VF_ARQH1, 0);
        regs.write32(VF_ARQT1, 0);
        regs.write32(VF_ARQLEN1, n | AQ_LEN_ENABLE);
        regs.write32(VF_ARQBAL1, arq as u32);
        regs.write32(VF_ARQBAH1, (arq >> 32) as u32);
        let got = regs.read32(VF_ARQBAL1);
        if got != arq as u32 {
            return Err(AqError::BaseReadback {
                ring: "ARQ",
                got,
                want: arq as u32,
            });
        }
        regs.write32(VF_ARQT1, n - 1);
        Ok(())
    }

    /// Stop both rings (B.3.2 "shutdown"): the device no longer reads or
    /// writes their memory.
    pub fn shutdown<R: RegisterSpace + ?Sized>(&self, regs: &R) {
        for r in [
            VF_ATQH1, VF_ATQT1, VF_ATQLEN1, VF_ATQBAL1, VF_ATQBAH1, VF_ARQH1, VF_ARQT1, VF_ARQLEN1,
            VF_ARQBAL1, VF_ARQBAH1,
        ] {
            regs.write32(r, 0);
        }
    }

    /// ARQLEN.ENABLE set and no error bit: the PF has not started a reset
    /// (B.3.2 "liveness": Linux sees a reset start as ARQLEN.ENABLE 0).
    pub fn alive<R: RegisterSpace + ?Sized>(&self, regs: &R) -> Result<(), AqError> {
        for r in [VF_ARQLEN1, VF_ATQLEN1] {
            let v = regs.read32(r);
            if v & AQ_LEN_ENABLE == 0 || v & AQ_LEN_ERRORS != 0 {
                return Err(AqError::NotAlive(v));
            }
        }
        Ok(())
    }

    /// Send one virtchnl message and wait until the PF consumed it: ATQH
    /// reaches the new tail (B.3.2 "send": head, not DD). The reply, if
    /// any, comes on the ARQ.
    pub fn send<R: RegisterSpace + ?Sized>(
        &mut self,
        regs: &R,
        op: u32,
        payload: &[u8],
    ) -> Result<(), AqError> {
        if payload.len() > AQ_BUF_SIZE {
            return Err(AqError::TooLong(payload.len()));
        }
        let len = regs.read32(VF_ATQLEN1);
        if len & AQ_LEN_ENABLE == 0 || len & AQ_LEN_ERRORS != 0 {
            return Err(AqError::NotAlive(len));
        }
        let i = self.ntu;
        let mut d = AqDesc {
            flags: AQ_FLAG_SI,
            opcode: AQ_OP_SEND_TO_PF,
            cookie_high: op,
            ..AqDesc::default()
        };
        if !payload.is_empty() {
            d.flags |= AQ_FLAG_BUF | AQ_FLAG_RD;
            if payload.len() > AQ_LB_THRESHOLD {
                d.flags |= AQ_FLAG_LB;
            }
            d.datalen = payload.len() as u16;
            d.addr = self.atq_bufs[i].iova().get();
            self.atq_bufs[i].write(0, payload);
        }
        Self::set_desc(&self.atq, i, &d);
        self.ntu = (i + 1) % AQ_ENTRIES;
        // Release: descriptor and buffer stores before the doorbell; pairs
        // with the device's fetch of the slots up to the new ATQT.
        fence(Ordering::Release);
        regs.write32(VF_ATQT1, self.ntu as u32);
        let t = self.timing;
        for _ in 0..t.send_polls.max(1) {
            if regs.read32(VF_ATQH1) & AQ_PTR_MASK == self.ntu as u32 {
                // Acquire: the write-back of the descriptor is read after
                // the head moved past it (pairs with the device's
                // write-back before its head update).
                fence(Ordering::Acquire);
                let back = Self::desc(&self.atq, i);
                let retval = back.retval as u8;
                if back.flags & AQ_FLAG_ERR != 0 || retval != 0 {
                    return Err(AqError::Retval { op, retval });
                }
                return Ok(());
            }
            // A reset disables the queue under the send (B.3.2
            // "liveness"): the PF will not take this message.
            let len = regs.read32(VF_ATQLEN1);
            if len & AQ_LEN_ENABLE == 0 {
                return Err(AqError::NotAlive(len));
            }
            if !t.send_delay.is_zero() {
                std::thread::sleep(t.send_delay);
            }
        }
        Err(AqError::Timeout {
            op,
            waited: t.send_delay * t.send_polls,
        })
    }

    /// Take the next PF message off the ARQ, if there is one, and post its
    /// slot again (B.3.2 "receive": re-arm, ARQT = that slot, ntc++).
    pub fn receive<R: RegisterSpace + ?Sized>(&mut self, regs: &R) -> Option<ArqMessage> {
        let head = (regs.read32(VF_ARQH1) & AQ_PTR_MASK) as usize;
        if head == self.ntc || head >= AQ_ENTRIES {
            return None;
        }
        // Acquire: the head moved past the slot, so its descriptor and
        // buffer were written before; pairs with the device's head update.
        fence(Ordering::Acquire);
        let i = self.ntc;
        let d = Self::desc(&self.arq, i);
        let n = (d.datalen as usize).min(AQ_BUF_SIZE);
        let mut data = vec![0u8; n];
        self.arq_bufs[i].read(0, &mut data);
        Self::set_desc(
            &self.arq,
            i,
            &AqDesc::arq_post(self.arq_bufs[i].iova().get()),
        );
        // Release: the re-armed descriptor before the tail gives it back.
        fence(Ordering::Release);
        regs.write32(VF_ARQT1, i as u32);
        self.ntc = (i + 1) % AQ_ENTRIES;
        Some(ArqMessage {
            op: d.cookie_high,
            status: d.cookie_low as i32,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_bytes_follow_b31() {
        let d = AqDesc {
            flags: AQ_FLAG_SI | AQ_FLAG_BUF | AQ_FLAG_RD,
            opcode: AQ_OP_SEND_TO_PF,
            datalen: 8,
            retval: 0,
            cookie_high: 1,
            cookie_low: 0,
            param0: 0,
            param1: 0,
            addr: 0x0000_0012_3456_7000,
        };
        let b = d.encode();
        assert_eq!(
            b,
            [
                0x00, 0x34, 0x01, 0x08, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0x12, 0, 0, 0, 0x00, 0x70, 0x56, 0x34
            ]
        );
        assert_eq!(AqDesc::decode(&b), d);
        let post = AqDesc::arq_post(0x1000);
        assert_eq!(post.flags, 0x1200, "BUF | LB for 4096-byte buffers");
        assert_eq!(post.datalen, 4096);
    }
}
