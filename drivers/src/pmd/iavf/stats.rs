//! The VF's counters from GET_STATS (docs/facts/nic-facts.md B.4.3
//! virtchnl_eth_stats). The PF counts from the VF's last reset, so after a
//! reset the figures start again from 0: what was counted before is kept
//! and added, and the port's totals never go back.

use super::virtchnl::EthStats;

/// Totals across resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwStats {
    before: [u64; 12],
    last: [u64; 12],
}

impl HwStats {
    /// A new reading. A counter below its last reading means the PF
    /// started again (a reset): the last readings are kept in the totals.
    pub fn update(&mut self, s: &EthStats) {
        let now = s.as_array();
        if now.iter().zip(&self.last).any(|(n, l)| n < l) {
            self.fold();
        }
        self.last = now;
    }

    /// The VF was reset: its counters start again from 0.
    pub fn fold(&mut self) {
        for (b, l) in self.before.iter_mut().zip(&mut self.last) {
            *b = b.wrapping_add(*l);
            *l = 0;
        }
    }

    /// Totals.
    pub fn total(&self) -> EthStats {
        EthStats::from_array(std::array::from_fn(|i| {
            self.before[i].wrapping_add(self.last[i])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_survive_a_reset() {
        let mut h = HwStats::default();
        let s = |v: u64| EthStats::from_array([v; 12]);
        h.update(&s(10));
        h.update(&s(15));
        assert_eq!(h.total().rx_bytes, 15);
        h.update(&s(3));
        assert_eq!(h.total().tx_errors, 18);
        h.fold();
        h.update(&s(4));
        assert_eq!(h.total().rx_unicast, 22);
    }
}
