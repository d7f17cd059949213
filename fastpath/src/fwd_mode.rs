//! Forwarding modes, as in DPDK testpmd (app/test-pmd/iofwd.c, macfwd.c):
//! the operator's choice ([`FwdMode`], from the config crate) and what it
//! does to packets.

use drivers::burst::Burst;
use drivers::net::MacAddr;

pub use config::fwd_mode::FwdMode;

/// Ethernet header bytes the mac mode writes.
const ETH_ADDRS_LEN: usize = 12;

/// Ethernet header bytes of a `--tx-first` seed frame: the addresses and
/// the EtherType.
pub const SEED_HEADER_LEN: usize = 14;

/// EtherType of seed frames: IEEE 802's "local experimental" 0x88B5,
/// meant for exactly this (frames no protocol on the path will take).
const SEED_ETHERTYPE: u16 = 0x88B5;

/// Addresses written by the mac mode for one output port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacRewrite {
    /// New destination: the peer of the output port.
    pub dst: MacAddr,
    /// New source: the output port's address.
    pub src: MacAddr,
}

impl MacRewrite {
    /// The header of a seed frame sent on this port: to its peer, from
    /// its address.
    pub fn seed_header(&self) -> [u8; SEED_HEADER_LEN] {
        let mut h = [0u8; SEED_HEADER_LEN];
        h[..6].copy_from_slice(&self.dst.0);
        h[6..12].copy_from_slice(&self.src.0);
        h[12..].copy_from_slice(&SEED_ETHERTYPE.to_be_bytes());
        h
    }

    /// Rewrite every packet of `burst`. Packets too short to hold two
    /// addresses are moved to `runts` (to be dropped and counted).
    #[inline]
    pub fn apply(&self, burst: &mut Burst, runts: &mut Burst) {
        let mut addrs = [0u8; ETH_ADDRS_LEN];
        addrs[..6].copy_from_slice(&self.dst.0);
        addrs[6..].copy_from_slice(&self.src.0);
        // The 12 bytes as two integers held in registers: copied from an
        // array, they were read back from the stack for every packet (the
        // compiler cannot tell the packet stores from the array).
        let (first, rest) = addrs.split_at(8);
        let first = u64::from_ne_bytes(first.try_into().expect("8 bytes"));
        let rest = u32::from_ne_bytes(rest.try_into().expect("4 bytes"));
        let mut i = 0;
        while i < burst.len() {
            if let Some(head) = burst[i].data_mut().get_mut(..ETH_ADDRS_LEN) {
                head[..8].copy_from_slice(&first.to_ne_bytes());
                head[8..].copy_from_slice(&rest.to_ne_bytes());
                i += 1;
            } else {
                // Rare: keep the common path branch-light, pay the shift here.
                runts.push(burst.remove(i));
            }
        }
    }
}
