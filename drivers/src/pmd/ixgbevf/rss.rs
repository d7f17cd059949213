//! Receive-side scaling for an ixgbevf port with more than one RX queue
//! (A.8 #11): on X550 and later the VF owns its key, RETA and hash
//! fields (VFRSSRK, VFRETA, VFMRQC, A.2/A.3), programmed here; on
//! 82599/X540 they are the PF's, and the VF can only read them with
//! GET_RETA / GET_RSS_KEY (API 1.2, when the admin allows, A.5.3).

use super::mailbox::{IxMbxError, PfMailbox, PfReta, RSS_KEY_BYTES};
use super::regs::*;
use crate::mmio::RegisterSpace;
use std::hash::{BuildHasher, Hasher};

/// Most RSS queues per VF on X550 and later: the VF's eight queues
/// (A.5.4), reachable from its 8-bit RETA entries (A.2).
pub const X550_MAX_RSS_QUEUES: usize = MAX_QUEUES as usize;
/// Most RSS queues per VF on 82599/X540: the PF's RETA entries are 2 bits
/// (A.5.3 GET_RETA), so a pool spreads over at most 4.
pub const SHARED_MAX_RSS_QUEUES: usize = 4;
/// Entries of the X550 VF RETA: 16 registers of four (A.2).
pub const VF_RETA_ENTRIES: usize = RETA_REGS as usize * 4;

/// The hash fields this driver turns on: every one VFMRQC has (A.3),
/// UDP included, so UDP flows spread by port too.
pub const HASH_FIELDS: u32 =
    MRQC_IPV4 | MRQC_IPV4_TCP | MRQC_IPV6 | MRQC_IPV6_TCP | MRQC_IPV4_UDP | MRQC_IPV6_UDP;

/// A key for a port that was given none: random per process, so hosts do
/// not share one and flows cannot be aimed at a queue from outside.
pub fn random_key() -> [u8; RSS_KEY_BYTES] {
    let mut key = [0u8; RSS_KEY_BYTES];
    for (i, chunk) in key.chunks_exact_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

/// The RSS this port runs with, as far as it knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RssState {
    /// One RX queue: no RSS programmed by this driver.
    Off,
    /// X550: the VF's own key, RETA and hash fields, as written.
    VfOwned {
        /// The key in VFRSSRK.
        key: [u8; RSS_KEY_BYTES],
        /// The 64 RETA entries.
        reta: [u8; VF_RETA_ENTRIES],
        /// VFMRQC.
        mrqc: u32,
    },
    /// 82599/X540: the PF's RSS, read over the mailbox where it could be.
    Pf {
        /// The PF's RETA (GET_RETA), or why not.
        reta: Result<PfReta, IxMbxError>,
        /// The PF's key (GET_RSS_KEY), or why not.
        key: Result<[u8; RSS_KEY_BYTES], IxMbxError>,
    },
}

impl RssState {
    /// The PF's RETA and key were both read.
    pub fn pf_known(&self) -> bool {
        matches!(
            self,
            RssState::Pf {
                reta: Ok(_),
                key: Ok(_)
            }
        )
    }
}

/// The X550 RETA for `queues` queues: entry i → queue i mod `queues`.
pub fn spread_reta(queues: usize) -> [u8; VF_RETA_ENTRIES] {
    let mut reta = [0u8; VF_RETA_ENTRIES];
    for (i, e) in reta.iter_mut().enumerate() {
        *e = (i % queues.max(1)) as u8;
    }
    reta
}

/// Program an X550 VF's own RSS: the key into VFRSSRK (byte 4i + j is
/// byte j of register i, little endian **(inferred)**: A.2 gives only the
/// 40 bytes), the RETA into VFRETA (entry 4i + j in byte j of register i
/// **(inferred)**), then VFMRQC with RSSEN and the fields, last, so the
/// device never hashes with a half-written table.
pub fn program_vf_rss<R: RegisterSpace + ?Sized>(
    regs: &R,
    key: &[u8; RSS_KEY_BYTES],
    queues: usize,
) -> RssState {
    let reta = spread_reta(queues);
    // Off while the table changes (after a PF reset it may still be on).
    regs.write32(VFMRQC, 0);
    for (i, c) in key.chunks_exact(4).enumerate() {
        regs.write32(
            vfrssrk(i as u32),
            u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        );
    }
    for (i, c) in reta.chunks_exact(4).enumerate() {
        regs.write32(
            vfreta(i as u32),
            u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        );
    }
    let mrqc = MRQC_RSSEN | HASH_FIELDS;
    regs.write32(VFMRQC, mrqc);
    RssState::VfOwned {
        key: *key,
        reta,
        mrqc,
    }
}

/// Read the PF's RSS on 82599/X540 (GET_RETA, GET_RSS_KEY; A.5.3). Only a
/// refusal (the admin did not allow the query, or the API is below 1.2, in
/// which case nothing is sent) is kept as the answer; a reset, timeout or lost CTS is returned, for
/// the port's recovery.
pub fn read_pf_rss<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut PfMailbox,
) -> Result<RssState, IxMbxError> {
    let reta = keep(mbx.get_reta(regs))?;
    let key = keep(mbx.get_rss_key(regs))?;
    Ok(RssState::Pf { reta, key })
}

/// A refusal is the answer to keep; anything else ends the exchange.
#[allow(clippy::type_complexity)]
fn keep<T>(r: Result<T, IxMbxError>) -> Result<Result<T, IxMbxError>, IxMbxError> {
    match r {
        Err(e @ (IxMbxError::Nack { .. } | IxMbxError::Unsupported { .. })) => Ok(Err(e)),
        Err(e) => Err(e),
        Ok(v) => Ok(Ok(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reta_spreads_over_the_queues_evenly() {
        for q in [1, 2, 4, 8] {
            let reta = spread_reta(q);
            for k in 0..q as u8 {
                assert_eq!(
                    reta.iter().filter(|e| **e == k).count(),
                    VF_RETA_ENTRIES / q
                );
            }
        }
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key(), random_key());
        assert_ne!(random_key(), [0; RSS_KEY_BYTES]);
    }
}
