//! The receive filters of an igbvf port (nic-facts-igbvf.md C.5.3, C.6
//! step 9): SET_PROMISC with the MULTICAST flag for all-multicast,
//! SET_MULTICAST with up to 30 hashes, SET_VLAN per id. Unicast
//! promiscuous is refused here: the Linux igb PF NACKs it (C.9 #10).

use super::regs::{
    MSGINFO_SHIFT, MSG_SET_MULTICAST, MSG_SET_PROMISC, MSG_SET_VLAN, PROMISC_MULTICAST,
};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::igbvf::mailbox::{Mailbox, MbxError};
use crate::pmd::rx_filters::{FilterError, FilterOutcome, RxFilters};
use std::time::Duration;

/// Most hashes one SET_MULTICAST carries (C.5.3).
pub const MAX_MC_HASHES: usize = 30;
/// SET_MULTICAST length in words: Linux writes all 16 (C.5.3).
const SET_MULTICAST_WORDS: usize = 16;
/// SET_VLAN's add flag in MSGINFO (C.5.3: E1000_VF_SET_VLAN_ADD).
const VLAN_ADD: u32 = 0x0001_0000;

/// The 12-bit MTA hash of a multicast address (C.5.3:
/// `(addr[4] >> 4 | addr[5] << 4) & 0xFFF`).
pub fn mc_hash(mac: MacAddr) -> u16 {
    ((u16::from(mac.0[4]) >> 4) | (u16::from(mac.0[5]) << 4)) & 0xFFF
}

/// SET_MULTICAST: MSGINFO = count, hashes as 16-bit halves from word 1
/// (the first in the low half), 16 words (C.5.3).
pub fn set_multicast_words(groups: &[MacAddr]) -> [u32; SET_MULTICAST_WORDS] {
    let n = groups.len().min(MAX_MC_HASHES);
    let mut w = [0u32; SET_MULTICAST_WORDS];
    w[0] = MSG_SET_MULTICAST | (n as u32) << MSGINFO_SHIFT;
    for (i, g) in groups[..n].iter().enumerate() {
        w[1 + i / 2] |= u32::from(mc_hash(*g)) << (16 * (i % 2));
    }
    w
}

fn refused(r: Result<u32, MbxError>) -> Result<bool, MbxError> {
    match r {
        Ok(_) => Ok(false),
        Err(MbxError::Nack { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Why the filters could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A setting refused while the filters are required.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The mailbox failed.
    #[error(transparent)]
    Mailbox(#[from] MbxError),
}

/// All-multicast is asked when set, or when the list is longer than one
/// SET_MULTICAST carries (the Linux PF turns MPME on for a count > 30,
/// C.5.3; asking for it says so to any PF).
fn wants_all_multicast(f: &RxFilters) -> bool {
    f.promiscuous || f.all_multicast || f.multicast.len() > MAX_MC_HASHES
}

/// The multicast part of `f`, with `old` in force (`None` right after a
/// VF reset, when the PF holds nothing, C.5.4): SET_MULTICAST with the
/// list (an empty one only to clear a list `old` had), then SET_PROMISC
/// MULTICAST when all-multicast is wanted, or SET_PROMISC without flags
/// when `old` had it and `f` does not (the PF then writes the stored
/// hashes back, C.5.3). Refusals go to `out`.
fn send_multicast<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut Mailbox,
    f: &RxFilters,
    old: Option<&RxFilters>,
    out: &mut FilterOutcome,
) -> Result<(), MbxError> {
    let mut one = [0u32; 1];
    let mut send = |msg: &[u32]| refused(mbx.request(regs, msg, &mut one, Duration::ZERO));
    let had_groups = old.is_some_and(|o| !o.multicast.is_empty());
    let was_all = old.is_some_and(wants_all_multicast);
    if (!f.multicast.is_empty() || had_groups) && send(&set_multicast_words(&f.multicast))? {
        out.refuse(FilterError::Refused {
            what: format!("{} multicast group(s)", f.multicast.len()),
        });
    }
    let all = wants_all_multicast(f);
    if all && send(&[MSG_SET_PROMISC | PROMISC_MULTICAST])? {
        out.refuse(FilterError::Refused {
            what: "all-multicast mode".into(),
        });
    } else if !all && was_all && send(&[MSG_SET_PROMISC])? {
        out.refuse(FilterError::Refused {
            what: "leaving all-multicast mode".into(),
        });
    }
    Ok(())
}

/// Replace the multicast list in force (`old`) with `f`'s, at run time.
pub fn apply_multicast<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut Mailbox,
    name: &str,
    f: &RxFilters,
    old: &RxFilters,
) -> Result<FilterOutcome, ApplyError> {
    f.validate()?;
    let mut out = FilterOutcome::default();
    send_multicast(regs, mbx, f, Some(old), &mut out)?;
    Ok(out.finish(name, f)?)
}

/// Send `f` right after a VF reset (the PF cleared its copy, C.5.4).
pub fn apply<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut Mailbox,
    name: &str,
    f: &RxFilters,
) -> Result<FilterOutcome, ApplyError> {
    f.validate()?;
    let mut out = FilterOutcome::default();
    if f.promiscuous {
        out.refuse(FilterError::NotSupported {
            driver: "igbvf",
            what: "unicast promiscuous mode",
            why: "the Linux igb PF NACKs SET_PROMISC UNICAST (nic-facts-igbvf C.9 #10); \
                  all-multicast is applied instead",
        });
    }
    send_multicast(regs, mbx, f, None, &mut out)?;
    let mut one = [0u32; 1];
    let mut send = |msg: &[u32]| refused(mbx.request(regs, msg, &mut one, Duration::ZERO));
    for &vid in &f.vlans {
        if send(&[MSG_SET_VLAN | VLAN_ADD, u32::from(vid)])? {
            out.refuse(FilterError::Refused {
                what: format!("VLAN {vid} (a port VLAN set on the PF?)"),
            });
        }
    }
    Ok(out.finish(name, f)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_hashes_pack_low_half_first() {
        let a = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x12, 0x34]);
        let b = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x56, 0x78]);
        assert_eq!(mc_hash(a), 0x341);
        let w = set_multicast_words(&[a, b]);
        assert_eq!(w[0], 0x0002_0003);
        assert_eq!(w[1], 0x0785_0341);
        assert!(w[2..].iter().all(|x| *x == 0));
    }
}
