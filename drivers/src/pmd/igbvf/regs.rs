//! igbvf (82576 / I350 VF) registers and bits.
//!
//! Every value is from docs/facts/nic-facts-igbvf.md; the
//! section is named next to each group.

use crate::pci::Quirks;
use crate::pmd::adv_desc::desc::RXD_STAT_LB;
use crate::pmd::adv_desc::{Flavor, QueueLayout};

// ---- C.2 register map (BAR0 offsets) ----------------------------------

/// Device control; bit 26 is the VF soft reset (C.2, C.3).
pub const CTRL: u32 = 0x0000;
/// Device status: link (C.2, C.3). Its read is also the write flush.
pub const STATUS: u32 = 0x0008;
/// Mailbox buffer, 16 dwords (C.2, C.5.1).
pub const VMBMEM: u32 = 0x0800;
/// VF mailbox control (C.2, C.5.1).
pub const V2PMAILBOX: u32 = 0x0C40;
/// Good packets received (C.2; 32-bit, never cleared).
pub const VFGPRC: u32 = 0x0F10;
/// Good packets transmitted (C.2).
pub const VFGPTC: u32 = 0x0F14;
/// Good octets received, 32-bit (C.2).
pub const VFGORC: u32 = 0x0F18;
/// Good octets transmitted (C.2).
pub const VFGOTC: u32 = 0x0F34;
/// Multicast packets received (C.2).
pub const VFMPRC: u32 = 0x0F3C;
/// Interrupt mask clear (C.2).
pub const EIMC: u32 = 0x1528;
/// Interrupt auto-clear (C.2).
pub const EIAC: u32 = 0x152C;

/// RX queue 0 block (C.2: RDBAL(n) = 0x2800 + 0x100n).
pub const RX_BASE: u32 = 0x2800;
/// TX queue 0 block (C.2: TDBAL(n) = 0x3800 + 0x100n).
pub const TX_BASE: u32 = 0x3800;
/// Queue stride: 0x100, not ixgbevf's 0x40 (C.2, C.9 #1).
pub const QUEUE_STRIDE: u32 = 0x100;

/// RDBAL(n) (C.2).
pub const fn rdbal(n: u32) -> u32 {
    RX_BASE + QUEUE_STRIDE * n
}
/// RDBAH(n) (C.2).
pub const fn rdbah(n: u32) -> u32 {
    RX_BASE + 0x04 + QUEUE_STRIDE * n
}
/// RDLEN(n), bytes (C.2).
pub const fn rdlen(n: u32) -> u32 {
    RX_BASE + 0x08 + QUEUE_STRIDE * n
}
/// SRRCTL(n), at +0x0C here (C.2, C.11).
pub const fn srrctl(n: u32) -> u32 {
    RX_BASE + 0x0C + QUEUE_STRIDE * n
}
/// RDH(n) (C.2).
pub const fn rdh(n: u32) -> u32 {
    RX_BASE + 0x10 + QUEUE_STRIDE * n
}
/// RDT(n) (C.2).
pub const fn rdt(n: u32) -> u32 {
    RX_BASE + 0x18 + QUEUE_STRIDE * n
}
/// RXDCTL(n) (C.2).
pub const fn rxdctl(n: u32) -> u32 {
    RX_BASE + 0x28 + QUEUE_STRIDE * n
}
/// TDBAL(n) (C.2).
pub const fn tdbal(n: u32) -> u32 {
    TX_BASE + QUEUE_STRIDE * n
}
/// TDBAH(n) (C.2).
pub const fn tdbah(n: u32) -> u32 {
    TX_BASE + 0x04 + QUEUE_STRIDE * n
}
/// TDLEN(n) (C.2).
pub const fn tdlen(n: u32) -> u32 {
    TX_BASE + 0x08 + QUEUE_STRIDE * n
}
/// TDH(n) (C.2).
pub const fn tdh(n: u32) -> u32 {
    TX_BASE + 0x10 + QUEUE_STRIDE * n
}
/// DCA_TXCTRL(n) (C.2).
pub const fn dca_txctrl(n: u32) -> u32 {
    TX_BASE + 0x14 + QUEUE_STRIDE * n
}
/// TDT(n) (C.2).
pub const fn tdt(n: u32) -> u32 {
    TX_BASE + 0x18 + QUEUE_STRIDE * n
}
/// TXDCTL(n) (C.2).
pub const fn txdctl(n: u32) -> u32 {
    TX_BASE + 0x28 + QUEUE_STRIDE * n
}

// ---- C.3 bits ------------------------------------------------------------

/// CTRL.RST: VF function-level soft reset (C.3).
pub const CTRL_RST: u32 = 0x0400_0000;
/// STATUS.FD: full duplex (C.3).
pub const STATUS_FD: u32 = 0x0000_0001;
/// STATUS.LU: link up (the PF's link) (C.3).
pub const STATUS_LU: u32 = 0x0000_0002;
/// STATUS.SPEED field (C.3).
pub const STATUS_SPEED_MASK: u32 = 0x0000_00C0;
/// STATUS.SPEED = 100 Mb/s (C.3).
pub const STATUS_SPEED_100: u32 = 0x0000_0040;
/// STATUS.SPEED = 1000 Mb/s (C.3).
pub const STATUS_SPEED_1000: u32 = 0x0000_0080;
/// SRRCTL.DROP_EN is bit 31 on igb (C.3, C.9 #2).
pub const SRRCTL_DROP_EN: u32 = 0x8000_0000;
/// RXDCTL thresholds Linux igbvf writes: PTHRESH 16, HTHRESH 8, WTHRESH 1
/// (C.3; WTHRESH 1 also covers the 82576 erratum, C.9 #15).
pub const RXDCTL_THRESHOLDS: u32 = 16 | 8 << 8 | 1 << 16;
/// DCA_TXCTRL.TX_WB_RO_EN: Linux clears it, write-backs must stay in order
/// (C.3).
pub const DCA_TXCTRL_TX_WB_RO_EN: u32 = 0x0000_0800;

/// RX status 0x04 IXSM: ignore the checksum bits (C.4.1, C.9 #3).
pub const RXD_STAT_IXSM: u32 = 0x04;
/// RX error CE (C.4.1).
pub const RXD_ERR_CE: u32 = 0x0100_0000;
/// RX error SE (C.4.1).
pub const RXD_ERR_SE: u32 = 0x0200_0000;
/// RX error SEQ (C.4.1).
pub const RXD_ERR_SEQ: u32 = 0x0400_0000;
/// RX error CXE (C.4.1).
pub const RXD_ERR_CXE: u32 = 0x1000_0000;
/// RX error TCPE: L4 checksum bad, bit 29 on igb (C.4.1, C.9 #3).
pub const RXD_ERR_TCPE: u32 = 0x2000_0000;
/// RX error IPE: IPv4 checksum bad, bit 30 (C.4.1).
pub const RXD_ERR_IPE: u32 = 0x4000_0000;
/// RX error RXE, bit 31 (C.4.1).
pub const RXD_ERR_RXE: u32 = 0x8000_0000;
/// Frame-error mask CE | SE | SEQ | CXE | RXE (C.4.1).
pub const RXD_ERR_FRAME_MASK: u32 =
    RXD_ERR_CE | RXD_ERR_SE | RXD_ERR_SEQ | RXD_ERR_CXE | RXD_ERR_RXE;
/// Largest TX buffer per descriptor: < 65536 bytes (C.4.2).
pub const TX_MAX_PER_DESC: usize = 0xFFFF;

// ---- C.5 mailbox -----------------------------------------------------------

// The mailbox control bits and word-0 flags are the same on ixgbevf and
// live with the shared transport (C.5.1, C.5.3).
pub use crate::pmd::vf_mailbox::{
    MBX_ACK, MBX_PFACK, MBX_PFSTS, MBX_PFU, MBX_R2C_BITS, MBX_REQ, MBX_RSTD, MBX_RSTI, MBX_SIZE,
    MBX_VFU, MSGINFO_MASK, MSGINFO_SHIFT, MSG_ACK, MSG_CTS, MSG_ID_MASK, MSG_NACK, MSG_PF_CONTROL,
    MSG_VF_RESET,
};

/// SET_MAC_ADDR (C.5.3).
pub const MSG_SET_MAC_ADDR: u32 = 0x02;
/// SET_MULTICAST (C.5.3).
pub const MSG_SET_MULTICAST: u32 = 0x03;
/// SET_VLAN (C.5.3).
pub const MSG_SET_VLAN: u32 = 0x04;
/// SET_LPE (C.5.3): [1] = max frame.
pub const MSG_SET_LPE: u32 = 0x05;
/// SET_PROMISC (C.5.3), flags in MSGINFO.
pub const MSG_SET_PROMISC: u32 = 0x06;
/// SET_PROMISC flag: multicast (C.5.3). UNICAST (0x00010000) is NACKed by
/// the Linux PF (C.9 #10), so it is not offered.
pub const PROMISC_MULTICAST: u32 = 0x0002_0000;

/// The igbvf queue register table for the shared ring code (C.2, C.11).
pub const LAYOUT: QueueLayout = QueueLayout {
    rx_base: RX_BASE,
    tx_base: TX_BASE,
    stride: QUEUE_STRIDE,
    rdbal: 0x00,
    rdbah: 0x04,
    rdlen: 0x08,
    srrctl: 0x0C,
    rdh: 0x10,
    rdt: 0x18,
    rxdctl: 0x28,
    tdbal: 0x00,
    tdbah: 0x04,
    tdlen: 0x08,
    tdh: 0x10,
    tdt: 0x18,
    txdctl: 0x28,
    dca_txctrl: 0x14,
    flush: STATUS,
};

/// The igb meanings of the bits that differ from ixgbe (C.11).
pub const FLAVOR: Flavor = Flavor {
    srrctl_drop_en: SRRCTL_DROP_EN,
    rx_frame_err_mask: RXD_ERR_FRAME_MASK,
    rx_err_ipe: RXD_ERR_IPE,
    rx_err_l4e: RXD_ERR_TCPE,
    rx_stat_ignore_csum: RXD_STAT_IXSM,
    rx_stat_vlan_bswap: 0,
    rxdctl_thresholds: RXDCTL_THRESHOLDS,
    tx_olinfo_extra: 0,
    tx_dca_clear: DCA_TXCTRL_TX_WB_RO_EN,
    tx_max_per_desc: TX_MAX_PER_DESC,
    tx_context: false,
};

/// The I350 VF: [`FLAVOR`] plus the byte swap of the VLAN field on
/// looped-back frames (status LB) (C.4.1 "VLAN field", C.9 #14).
pub const FLAVOR_I350: Flavor = Flavor {
    rx_stat_vlan_bswap: RXD_STAT_LB,
    ..FLAVOR
};

/// The flavor for a device with these quirks (from the supported-device
/// table).
pub const fn flavor_for(quirks: Quirks) -> Flavor {
    if quirks.contains(Quirks::RX_LB_VLAN_BSWAP) {
        FLAVOR_I350
    } else {
        FLAVOR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_register_functions() {
        for n in 0..2 {
            let r = LAYOUT.rx(n as usize);
            assert_eq!(
                (r.bal, r.bah, r.len, r.srrctl, r.head, r.tail, r.ctl),
                (
                    rdbal(n),
                    rdbah(n),
                    rdlen(n),
                    srrctl(n),
                    rdh(n),
                    rdt(n),
                    rxdctl(n)
                )
            );
            let t = LAYOUT.tx(n as usize);
            assert_eq!(
                (t.bal, t.bah, t.len, t.head, t.tail, t.ctl, t.dca),
                (
                    tdbal(n),
                    tdbah(n),
                    tdlen(n),
                    tdh(n),
                    tdt(n),
                    txdctl(n),
                    dca_txctrl(n)
                )
            );
        }
        // Spot checks against the C.2 table.
        assert_eq!(srrctl(1), 0x290C);
        assert_eq!(txdctl(1), 0x3928);
        assert_eq!(rdt(0), 0x2818);
    }
}
