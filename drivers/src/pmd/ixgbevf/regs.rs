//! ixgbevf (82599 / X540 / X550 VF) registers and bits.
//!
//! Every value is from docs/facts/nic-facts.md part A; the section is
//! named next to each group or constant. The mailbox control bits and the
//! message word-0 flags are shared with igbvf and live in
//! [`crate::pmd::vf_mailbox`].

use crate::pmd::adv_desc::{Flavor, QueueLayout};

// ---- A.2 register map (BAR0 offsets): global ----------------------------

/// VFCTRL; bit 26 is the VF soft reset (A.2, A.3).
pub const CTRL: u32 = 0x0000;
/// VFSTATUS: drivers only read it, to flush posted writes (A.2).
pub const STATUS: u32 = 0x0008;
/// VFLINKS: link up and speed (A.2, A.3).
pub const VFLINKS: u32 = 0x0010;
/// VFFRTIMER: free-running timer (A.2).
pub const VFFRTIMER: u32 = 0x0048;
/// VTEICR: interrupt cause, read-to-clear (A.2).
pub const VTEICR: u32 = 0x0100;
/// VTEICS: interrupt cause set (A.2).
pub const VTEICS: u32 = 0x0104;
/// VTEIMS: interrupt mask set (A.2).
pub const VTEIMS: u32 = 0x0108;
/// VTEIMC: interrupt mask clear (A.2).
pub const VTEIMC: u32 = 0x010C;
/// VTEIAC: interrupt auto-clear (A.2).
pub const VTEIAC: u32 = 0x0110;
/// VTEIAM: interrupt auto-mask (A.2).
pub const VTEIAM: u32 = 0x0114;
/// VTIVAR_MISC: vector of the mailbox / other cause, bits 7:0 (A.2, A.3).
pub const VTIVAR_MISC: u32 = 0x0140;
/// VFMBMEM: mailbox buffer, 16 dwords at 0x200..0x23C (A.2, A.5.1).
pub const VFMBMEM: u32 = 0x0200;
/// VFMAILBOX: mailbox control (A.2, A.5.1).
pub const VFMAILBOX: u32 = 0x02FC;
/// VFPSRTYPE: packet-split types and RQPL (A.2, A.3).
pub const PSRTYPE: u32 = 0x0300;

/// VTIVAR(i): queue-pair → vector map, one register per pair (A.2).
pub const fn vtivar(i: u32) -> u32 {
    0x0120 + 4 * i
}
/// VTEITR(i): interrupt throttle of vector i (A.2).
pub const fn vteitr(i: u32) -> u32 {
    0x0820 + 4 * i
}

// ---- A.2 statistics (whole VF, never cleared) ---------------------------

/// Good packets received, 32-bit (A.2).
pub const VFGPRC: u32 = 0x101C;
/// Good octets received, bits 31:0 of 36 (A.2).
pub const VFGORC_LSB: u32 = 0x1020;
/// Good octets received, bits 35:32 (A.2).
pub const VFGORC_MSB: u32 = 0x1024;
/// Multicast packets received, 32-bit (A.2).
pub const VFMPRC: u32 = 0x1034;
/// Good packets transmitted, 32-bit (A.2).
pub const VFGPTC: u32 = 0x201C;
/// Good octets transmitted, bits 31:0 of 36 (A.2).
pub const VFGOTC_LSB: u32 = 0x2020;
/// Good octets transmitted, bits 35:32 (A.2).
pub const VFGOTC_MSB: u32 = 0x2024;
/// Width of the packet counters: they wrap modulo 2^32 (A.2).
pub const STAT_PACKETS_BITS: u32 = 32;
/// Width of the octet counters: they wrap modulo 2^36 (A.2).
pub const STAT_OCTETS_BITS: u32 = 36;

// ---- A.2 RSS, X550 and later only ---------------------------------------

/// VFMRQC: VF RSS control (A.2, A.3).
pub const VFMRQC: u32 = 0x3000;
/// VFRSSRK(i), i = 0..9: the 40-byte key (A.2).
pub const fn vfrssrk(i: u32) -> u32 {
    0x3100 + 4 * i
}
/// Dwords of the RSS key (A.2: i = 0..9).
pub const RSSRK_WORDS: u32 = 10;
/// VFRETA(i), i = 0..15: four 8-bit entries each (A.2).
pub const fn vfreta(i: u32) -> u32 {
    0x3200 + 4 * i
}
/// Registers of the VF RETA (A.2: i = 0..15, 64 entries).
pub const RETA_REGS: u32 = 16;

// ---- A.2 per-queue registers: BASE + 0x40·n, n = 0..7 -------------------

/// RX queue 0 block (A.2: VFRDBAL(n) = 0x1000 + 0x40n).
pub const RX_BASE: u32 = 0x1000;
/// TX queue 0 block (A.2: VFTDBAL(n) = 0x2000 + 0x40n).
pub const TX_BASE: u32 = 0x2000;
/// Queue stride: 0x40, not igbvf's 0x100 (A.2).
pub const QUEUE_STRIDE: u32 = 0x40;
/// Queues the VF hardware has, whatever the PF grants (A.2, A.5.4).
pub const MAX_QUEUES: u32 = 8;

/// VFRDBAL(n) (A.2).
pub const fn rdbal(n: u32) -> u32 {
    RX_BASE + QUEUE_STRIDE * n
}
/// VFRDBAH(n) (A.2).
pub const fn rdbah(n: u32) -> u32 {
    RX_BASE + 0x04 + QUEUE_STRIDE * n
}
/// VFRDLEN(n), bytes (A.2).
pub const fn rdlen(n: u32) -> u32 {
    RX_BASE + 0x08 + QUEUE_STRIDE * n
}
/// VFDCA_RXCTRL(n) (A.2).
pub const fn dca_rxctrl(n: u32) -> u32 {
    RX_BASE + 0x0C + QUEUE_STRIDE * n
}
/// VFRDH(n) (A.2).
pub const fn rdh(n: u32) -> u32 {
    RX_BASE + 0x10 + QUEUE_STRIDE * n
}
/// VFSRRCTL(n), at +0x14 here (A.2).
pub const fn srrctl(n: u32) -> u32 {
    RX_BASE + 0x14 + QUEUE_STRIDE * n
}
/// VFRDT(n) (A.2).
pub const fn rdt(n: u32) -> u32 {
    RX_BASE + 0x18 + QUEUE_STRIDE * n
}
/// VFRXDCTL(n) (A.2).
pub const fn rxdctl(n: u32) -> u32 {
    RX_BASE + 0x28 + QUEUE_STRIDE * n
}
/// VFTDBAL(n) (A.2).
pub const fn tdbal(n: u32) -> u32 {
    TX_BASE + QUEUE_STRIDE * n
}
/// VFTDBAH(n) (A.2).
pub const fn tdbah(n: u32) -> u32 {
    TX_BASE + 0x04 + QUEUE_STRIDE * n
}
/// VFTDLEN(n), bytes (A.2).
pub const fn tdlen(n: u32) -> u32 {
    TX_BASE + 0x08 + QUEUE_STRIDE * n
}
/// VFDCA_TXCTRL(n) (A.2).
pub const fn dca_txctrl(n: u32) -> u32 {
    TX_BASE + 0x0C + QUEUE_STRIDE * n
}
/// VFTDH(n) (A.2).
pub const fn tdh(n: u32) -> u32 {
    TX_BASE + 0x10 + QUEUE_STRIDE * n
}
/// VFTDT(n) (A.2).
pub const fn tdt(n: u32) -> u32 {
    TX_BASE + 0x18 + QUEUE_STRIDE * n
}
/// VFTXDCTL(n) (A.2).
pub const fn txdctl(n: u32) -> u32 {
    TX_BASE + 0x28 + QUEUE_STRIDE * n
}
/// VFTDWBAL(n): head write-back address low, bit 0 enable (A.2, A.3).
pub const fn tdwbal(n: u32) -> u32 {
    TX_BASE + 0x38 + QUEUE_STRIDE * n
}
/// VFTDWBAH(n) (A.2).
pub const fn tdwbah(n: u32) -> u32 {
    TX_BASE + 0x3C + QUEUE_STRIDE * n
}

// ---- A.3 bits -------------------------------------------------------------

/// VFCTRL.RST: VF soft reset (A.3).
pub const CTRL_RST: u32 = 0x0400_0000;
/// VFLINKS.UP (A.3).
pub const LINKS_UP: u32 = 0x4000_0000;
/// VFLINKS.SPEED field, bits 29:28 (A.3).
pub const LINKS_SPEED_MASK: u32 = 0x3000_0000;
/// VFLINKS.SPEED = 10G (A.3).
pub const LINKS_SPEED_10G: u32 = 0x3000_0000;
/// VFLINKS.SPEED = 1G (A.3).
pub const LINKS_SPEED_1G: u32 = 0x2000_0000;
/// VFLINKS.SPEED = 100M (A.3).
pub const LINKS_SPEED_100M: u32 = 0x1000_0000;
/// VFLINKS.SPEED_NON_STD, X550 class: with 10G = 2.5G, with 100M = 5G (A.3).
pub const LINKS_SPEED_NON_STD: u32 = 0x0800_0000;

/// RXDCTL.ENABLE; the device reflects the state in the same bit (A.3).
pub const RXDCTL_ENABLE: u32 = 0x0200_0000;
/// RXDCTL.SWFLSH (A.3).
pub const RXDCTL_SWFLSH: u32 = 0x0400_0000;
/// RXDCTL.VME: VLAN strip (A.3).
pub const RXDCTL_VME: u32 = 0x4000_0000;
/// RXDCTL.RLPML mask; not on 82599 (A.3, A.8 #8).
pub const RXDCTL_RLPML_MASK: u32 = 0x3FFF;
/// RXDCTL.RLPML_EN (A.3).
pub const RXDCTL_RLPML_EN: u32 = 0x8000;

/// TXDCTL.PTHRESH, bits 6:0 (A.3).
pub const TXDCTL_PTHRESH_MASK: u32 = 0x7F;
/// TXDCTL.HTHRESH shift, bits 14:8 (A.3).
pub const TXDCTL_HTHRESH_SHIFT: u32 = 8;
/// TXDCTL.WTHRESH shift, bits 22:16; the driver keeps it 0 so RS is
/// honoured (A.3, A.8 #4).
pub const TXDCTL_WTHRESH_SHIFT: u32 = 16;
/// TXDCTL.ENABLE (A.3).
pub const TXDCTL_ENABLE: u32 = 0x0200_0000;
/// TXDCTL.SWFLSH; written alone to disable a queue (A.3, A.7.3).
pub const TXDCTL_SWFLSH: u32 = 0x0400_0000;

/// SRRCTL.BSIZEPKT, 1 KB units (A.3, A.8 #6).
pub const SRRCTL_BSIZEPKT_MASK: u32 = 0x7F;
/// SRRCTL.BSIZEPKT unit shift: field = bytes >> 10 (A.3).
pub const SRRCTL_BSIZEPKT_SHIFT: u32 = 10;
/// SRRCTL.BSIZEHEADER, 64-byte units at bits 13:8 (A.3).
pub const SRRCTL_BSIZEHDR_MASK: u32 = 0x3F00;
/// SRRCTL.DESCTYPE = advanced one buffer (A.3).
pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 0x0200_0000;
/// SRRCTL.DROP_EN: ixgbe bit 28 (igb: bit 31) (A.3).
pub const SRRCTL_DROP_EN: u32 = 0x1000_0000;
/// SRRCTL after a reset: header 256 bytes, packet 2 KB (A.3 defaults).
pub const SRRCTL_RESET_DEFAULT: u32 = 0x0000_0402;

/// PSRTYPE header bits: TCP (A.3).
pub const PSRTYPE_TCPHDR: u32 = 0x10;
/// PSRTYPE: UDP (A.3).
pub const PSRTYPE_UDPHDR: u32 = 0x20;
/// PSRTYPE: IPv4 (A.3).
pub const PSRTYPE_IPV4HDR: u32 = 0x100;
/// PSRTYPE: IPv6 (A.3).
pub const PSRTYPE_IPV6HDR: u32 = 0x200;
/// PSRTYPE: L2 (A.3).
pub const PSRTYPE_L2HDR: u32 = 0x1000;
/// PSRTYPE.RQPL shift, bits 31:29 (A.3).
pub const PSRTYPE_RQPL_SHIFT: u32 = 29;
/// PSRTYPE.RQPL mask after the shift (A.3).
pub const PSRTYPE_RQPL_MASK: u32 = 7;

/// VFMRQC.RSSEN (A.3).
pub const MRQC_RSSEN: u32 = 0x1;
/// VFMRQC hash field: IPv4/TCP (A.3).
pub const MRQC_IPV4_TCP: u32 = 0x1_0000;
/// VFMRQC: IPv4 (A.3).
pub const MRQC_IPV4: u32 = 0x2_0000;
/// VFMRQC: IPv6 (A.3).
pub const MRQC_IPV6: u32 = 0x10_0000;
/// VFMRQC: IPv6/TCP (A.3).
pub const MRQC_IPV6_TCP: u32 = 0x20_0000;
/// VFMRQC: IPv4/UDP (A.3).
pub const MRQC_IPV4_UDP: u32 = 0x40_0000;
/// VFMRQC: IPv6/UDP (A.3).
pub const MRQC_IPV6_UDP: u32 = 0x80_0000;

/// DCA_RXCTRL.DESC_RRO_EN (A.3).
pub const DCA_RXCTRL_DESC_RRO_EN: u32 = 1 << 9;
/// DCA_RXCTRL.DATA_WRO_EN (A.3).
pub const DCA_RXCTRL_DATA_WRO_EN: u32 = 1 << 13;
/// DCA_RXCTRL.HEAD_WRO_EN (A.3).
pub const DCA_RXCTRL_HEAD_WRO_EN: u32 = 1 << 15;
/// DCA_TXCTRL.DESC_RRO_EN (A.3).
pub const DCA_TXCTRL_DESC_RRO_EN: u32 = 1 << 9;
/// DCA_TXCTRL.DESC_WRO_EN: cleared before enabling TX, head write-back
/// relaxed ordering breaks bookkeeping (A.3).
pub const DCA_TXCTRL_DESC_WRO_EN: u32 = 1 << 11;
/// DCA_TXCTRL.DATA_RRO_EN (A.3).
pub const DCA_TXCTRL_DATA_RRO_EN: u32 = 1 << 13;

/// VTEIMC / VTEICR: the three cause bits, vectors 0..2 (A.1, A.3).
pub const IRQ_CLEAR_MASK: u32 = 7;
/// VTIVAR / VTIVAR_MISC entry valid bit (A.3 IVAR_ALLOC_VAL).
pub const IVAR_ALLOC_VAL: u32 = 0x80;
/// VTEITR.CNT_WDIS (A.3).
pub const EITR_CNT_WDIS: u32 = 0x8000_0000;

// ---- A.4 descriptor bits that differ from igb ---------------------------

/// RX error: RXE on 82599, the whole frame-error mask (A.4.2).
pub const RXD_ERR_FRAME_MASK: u32 = 0x2000_0000;
/// RX error: TCP/UDP checksum (A.4.2).
pub const RXD_ERR_TCPE: u32 = 0x4000_0000;
/// RX error: IPv4 header checksum (A.4.2).
pub const RXD_ERR_IPE: u32 = 0x8000_0000;
/// TX olinfo_status CC: check context; required on every VF data
/// descriptor (A.4.3, A.8 #3).
pub const TXD_OLINFO_CC: u32 = 0x80;
/// Largest DTALEN per descriptor: 16384 (A.4.3).
pub const TX_MAX_PER_DESC: usize = 1 << 14;

/// The ixgbevf queue register table for the shared ring code (A.2).
pub const LAYOUT: QueueLayout = QueueLayout {
    rx_base: RX_BASE,
    tx_base: TX_BASE,
    stride: QUEUE_STRIDE,
    rdbal: 0x00,
    rdbah: 0x04,
    rdlen: 0x08,
    srrctl: 0x14,
    rdh: 0x10,
    rdt: 0x18,
    rxdctl: 0x28,
    tdbal: 0x00,
    tdbah: 0x04,
    tdlen: 0x08,
    tdh: 0x10,
    tdt: 0x18,
    txdctl: 0x28,
    dca_txctrl: 0x0C,
    flush: STATUS,
};

/// The ixgbe meanings of the bits that differ between igb and ixgbe:
/// CC on every TX data descriptor, DESC_WRO_EN cleared, no RX threshold
/// bits (A.3, A.4, A.7, A.8 #3).
pub const FLAVOR: Flavor = Flavor {
    srrctl_drop_en: SRRCTL_DROP_EN,
    rx_frame_err_mask: RXD_ERR_FRAME_MASK,
    rx_err_ipe: RXD_ERR_IPE,
    rx_err_l4e: RXD_ERR_TCPE,
    rx_stat_ignore_csum: 0,
    rx_stat_vlan_bswap: 0,
    rxdctl_thresholds: 0,
    tx_olinfo_extra: TXD_OLINFO_CC,
    tx_dca_clear: DCA_TXCTRL_DESC_WRO_EN,
    tx_max_per_desc: TX_MAX_PER_DESC,
    tx_context: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_register_functions() {
        for n in 0..MAX_QUEUES {
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
    }

    #[test]
    fn offsets_match_the_a2_table() {
        // Spot checks written out from the A.2 table, not derived.
        assert_eq!(rdt(1), 0x1058);
        assert_eq!(srrctl(7), 0x11D4);
        assert_eq!(txdctl(1), 0x2068);
        assert_eq!(tdwbah(0), 0x203C);
        assert_eq!(vtivar(3), 0x012C);
        assert_eq!(vteitr(2), 0x0828);
        // The highest register used sets the smallest BAR0 (A.1).
        assert_eq!(vfreta(RETA_REGS - 1), 0x323C);
        assert_eq!(vfrssrk(RSSRK_WORDS - 1), 0x3124);
        // The VF-wide counters sit inside queue 0's window (A.2 note).
        assert!((rdbal(0)..rdbal(1)).contains(&VFGPRC));
        assert!((tdbal(0)..tdbal(1)).contains(&VFGOTC_MSB));
    }
}
