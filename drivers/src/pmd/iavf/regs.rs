//! The iavf VF's BAR 0 registers and their bit fields
//! (docs/facts/nic-facts.md B.2, B.2.1).
//!
//! The VF owns only the queue tails, its interrupt controls, the admin
//! queue registers and its reset status: queue contexts are programmed by
//! the PF when the VF asks over virtchnl (B.2, B.8 #1).

/// TX tail of queue `q` (B.2 QTX_TAIL1: 0x00000 + 4·q).
pub const fn qtx_tail(q: u32) -> u32 {
    4 * q
}
/// RX tail of queue `q` (B.2 QRX_TAIL1).
pub const fn qrx_tail(q: u32) -> u32 {
    0x0_2000 + 4 * q
}
/// Tail values are 13 bits (B.2).
pub const TAIL_MASK: u32 = 0x1FFF;
/// Dynamic control of MSI-X vector `v` + 1 (B.2 VFINT_DYN_CTLN1; index 0
/// is vector 1).
pub const fn vfint_dyn_ctln1(v: u32) -> u32 {
    0x0_3800 + 4 * v
}
/// Dynamic control of vector 0, the admin-queue vector (B.2).
pub const VFINT_DYN_CTL01: u32 = 0x0_5C00;
/// Interrupt cause enable for vector 0 (B.2).
pub const VFINT_ICR0_ENA1: u32 = 0x0_5000;

/// ARQ base, high (B.2 VF_ARQBAH1).
pub const VF_ARQBAH1: u32 = 0x0_6000;
/// ATQ head (B.2).
pub const VF_ATQH1: u32 = 0x0_6400;
/// ATQ length and enable (B.2).
pub const VF_ATQLEN1: u32 = 0x0_6800;
/// ARQ base, low (B.2).
pub const VF_ARQBAL1: u32 = 0x0_6C00;
/// ARQ tail (B.2).
pub const VF_ARQT1: u32 = 0x0_7000;
/// ARQ head (B.2).
pub const VF_ARQH1: u32 = 0x0_7400;
/// ATQ base, high (B.2).
pub const VF_ATQBAH1: u32 = 0x0_7800;
/// ATQ base, low (B.2).
pub const VF_ATQBAL1: u32 = 0x0_7C00;
/// ARQ length and enable (B.2).
pub const VF_ARQLEN1: u32 = 0x0_8000;
/// ATQ tail (B.2).
pub const VF_ATQT1: u32 = 0x0_8400;
/// VF reset state (B.2 VFGEN_RSTAT).
pub const VFGEN_RSTAT: u32 = 0x0_8800;

/// ATQLEN/ARQLEN: ring length, bits 9:0 (B.2.1).
pub const AQ_LEN_MASK: u32 = 0x3FF;
/// ATQLEN/ARQLEN: VF error (B.2.1).
pub const AQ_LEN_VFE: u32 = 1 << 28;
/// ATQLEN/ARQLEN: overflow (B.2.1).
pub const AQ_LEN_OVFL: u32 = 1 << 29;
/// ATQLEN/ARQLEN: critical error (B.2.1).
pub const AQ_LEN_CRIT: u32 = 1 << 30;
/// ATQLEN/ARQLEN: queue enabled; ARQLEN reading 0 here is the start of a
/// VF reset (B.2.1, B.3.2 "liveness").
pub const AQ_LEN_ENABLE: u32 = 1 << 31;
/// The error bits of ATQLEN/ARQLEN (B.2.1).
pub const AQ_LEN_ERRORS: u32 = AQ_LEN_VFE | AQ_LEN_OVFL | AQ_LEN_CRIT;
/// Head and tail registers are 10 bits (B.2.1, B.8 #12).
pub const AQ_PTR_MASK: u32 = 0x3FF;

/// VFGEN_RSTAT.VFR_STATE, bits 1:0 (B.2.1).
pub const RSTAT_MASK: u32 = 0x3;
/// Reset in progress (B.2.1).
pub const VFR_INPROGRESS: u32 = 0;
/// Reset done, the VF may initialise (B.2.1).
pub const VFR_COMPLETED: u32 = 1;
/// The PF considers the VF active (B.2.1).
pub const VFR_VFACTIVE: u32 = 2;
/// What a read during a reset (0xDEADBEEF) masks to (B.2.1).
pub const VFR_DEAD: u32 = 3;

/// DYN_CTL: interrupt enable, bit 0 (B.2.1).
pub const DYN_CTL_INTENA: u32 = 1 << 0;
/// DYN_CTL: clear pending bit array, bit 1 (B.2.1).
pub const DYN_CTL_CLEARPBA: u32 = 1 << 1;
/// DYN_CTL: ITR index, bits 4:3; 3 = no ITR update (B.2.1).
pub const DYN_CTL_ITR_INDX_SHIFT: u32 = 3;
/// DYN_CTL: interval, bits 16:5, in 2 µs units (B.2.1).
pub const DYN_CTL_INTERVAL_SHIFT: u32 = 5;
/// DYN_CTLN1: write back on ITR expiry without an interrupt, bit 30
/// (B.2.1, B.8 #3).
pub const DYN_CTLN_WB_ON_ITR: u32 = 1 << 30;

/// The DYN_CTLN1 value for a polled queue vector: with WB_ON_ITR, write
/// back every 2 × 2 µs without interrupting (DPDK's choice, B.6 step 11);
/// without it, the interrupt enabled with ITR0 and DPDK's default 32 µs
/// (register value 16, B.2.1) so the ITR timer flushes write-backs (B.8
/// #3); the interrupt itself is never serviced, only masked at the MSI-X
/// table that nobody programmed.
pub fn polled_vector_ctl(wb_on_itr: bool) -> u32 {
    if wb_on_itr {
        DYN_CTLN_WB_ON_ITR | 2 << DYN_CTL_INTERVAL_SHIFT
    } else {
        DYN_CTL_INTENA | 16 << DYN_CTL_INTERVAL_SHIFT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_those_of_b2() {
        assert_eq!(qtx_tail(3), 0x000C);
        assert_eq!(qrx_tail(15), 0x203C);
        assert_eq!(vfint_dyn_ctln1(1), 0x3804);
        assert_eq!(
            [VF_ARQBAH1, VF_ATQH1, VF_ATQLEN1, VF_ARQBAL1, VF_ARQT1],
            [0x6000, 0x6400, 0x6800, 0x6C00, 0x7000]
        );
        assert_eq!(
            [
                VF_ARQH1,
                VF_ATQBAH1,
                VF_ATQBAL1,
                VF_ARQLEN1,
                VF_ATQT1,
                VFGEN_RSTAT
            ],
            [0x7400, 0x7800, 0x7C00, 0x8000, 0x8400, 0x8800]
        );
        assert_eq!(0xDEAD_BEEF & RSTAT_MASK, VFR_DEAD);
        assert_eq!(AQ_LEN_ENABLE, 0x8000_0000);
        assert_eq!(polled_vector_ctl(true), 0x4000_0040);
        assert_eq!(polled_vector_ctl(false), 0x0000_0201);
    }
}
