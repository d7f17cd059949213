//! Descriptor counts each VF driver takes per queue: what an operator's
//! NB_RXD / NB_TXD (`--rxd` / `--txd`) is checked against before any
//! device is opened.
//!
//! The ranges are the Linux drivers' (the sizes known to work with each
//! PF), the multiples the hardware's: a ring length register counts
//! 128-byte units of 16-byte descriptors (multiples of 8), and the i40e
//! PF refuses RX rings that are not multiples of 32.

use crate::pci::DriverKind;
use std::fmt;

/// Descriptor counts one driver takes for a queue's rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// The driver.
    pub driver: DriverKind,
    /// Fewest descriptors.
    pub min: usize,
    /// Most descriptors.
    pub max: usize,
    /// RX counts are multiples of this.
    pub rx_multiple: usize,
    /// TX counts are multiples of this.
    pub tx_multiple: usize,
}

/// Which ring a count is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingDir {
    /// RX descriptors.
    Rx,
    /// TX descriptors.
    Tx,
}

impl fmt::Display for RingDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingDir::Rx => "RX",
            RingDir::Tx => "TX",
        })
    }
}

/// ixgbevf: Linux allows 64..4096 descriptors, the count a multiple of 8
/// (RDLEN/TDLEN in 128-byte units) (docs/facts/nic-facts.md A.8 #5).
const IXGBEVF: RingLimits = RingLimits {
    driver: DriverKind::Ixgbevf,
    min: 64,
    max: 4096,
    rx_multiple: 8,
    tx_multiple: 8,
};

/// igbvf: Linux allows 80..4096 through ethtool, a multiple of 8
/// (docs/facts/nic-facts-igbvf.md C.8 "ring size").
const IGBVF: RingLimits = RingLimits {
    driver: DriverKind::Igbvf,
    min: 80,
    max: 4096,
    rx_multiple: 8,
    tx_multiple: 8,
};

/// iavf: RX a multiple of 32, TX of 8 (the i40e PF's checks), 64..4096
/// (Linux iavf; the i40e maximum) (docs/facts/nic-facts.md B.8 #2). We ask
/// multiples of 32 for TX too: the ice PF requires it for both.
const IAVF: RingLimits = RingLimits {
    driver: DriverKind::Iavf,
    min: 64,
    max: 4096,
    rx_multiple: 32,
    tx_multiple: 32,
};

/// Every driver's limits.
pub const RING_LIMITS: [RingLimits; 3] = [IXGBEVF, IGBVF, IAVF];

/// The limits of `driver`.
pub fn ring_limits(driver: DriverKind) -> RingLimits {
    match driver {
        DriverKind::Ixgbevf => IXGBEVF,
        DriverKind::Igbvf => IGBVF,
        DriverKind::Iavf => IAVF,
    }
}

/// Every driver's limits for `dir`, for messages: "ixgbevf: a multiple of
/// 8 from 64 to 4096; igbvf: ...; iavf: ...".
pub fn describe_ring_limits(dir: RingDir) -> String {
    RING_LIMITS
        .iter()
        .map(|l| {
            format!(
                "{}: a multiple of {} from {} to {}",
                l.driver,
                l.multiple(dir),
                l.min,
                l.max
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a descriptor count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{count} {dir} descriptors: {} takes a multiple of {} from {} to {}",
    .limits.driver, .limits.multiple(*.dir), .limits.min, .limits.max
)]
pub struct RingSizeError {
    /// The count asked.
    pub count: usize,
    /// Which ring.
    pub dir: RingDir,
    /// The driver's limits.
    pub limits: RingLimits,
}

impl RingLimits {
    /// The multiple counts of `dir` must be.
    pub fn multiple(&self, dir: RingDir) -> usize {
        match dir {
            RingDir::Rx => self.rx_multiple,
            RingDir::Tx => self.tx_multiple,
        }
    }

    /// Checks `count` descriptors for a ring of `dir`.
    pub fn check(&self, dir: RingDir, count: usize) -> Result<(), RingSizeError> {
        let m = self.multiple(dir).max(1);
        if (self.min..=self.max).contains(&count) && count.is_multiple_of(m) {
            Ok(())
        } else {
            Err(RingSizeError {
                count,
                dir,
                limits: *self,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pmd::{DEFAULT_VF_RX_RING, DEFAULT_VF_TX_RING};

    #[test]
    fn the_defaults_fit_every_driver() {
        for l in RING_LIMITS {
            assert_eq!(ring_limits(l.driver), l);
            l.check(RingDir::Rx, DEFAULT_VF_RX_RING).unwrap();
            l.check(RingDir::Tx, DEFAULT_VF_TX_RING).unwrap();
        }
    }

    #[test]
    fn refusals_name_the_driver_and_its_limits() {
        let e = ring_limits(DriverKind::Iavf)
            .check(RingDir::Rx, 1000)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "1000 RX descriptors: iavf takes a multiple of 32 from 64 to 4096"
        );
        let ix = ring_limits(DriverKind::Ixgbevf);
        assert!(ix.check(RingDir::Tx, 1000).is_ok());
        assert!(ix.check(RingDir::Tx, 8192).is_err());
        assert!(ix.check(RingDir::Tx, 56).is_err());
        assert!(ring_limits(DriverKind::Igbvf)
            .check(RingDir::Rx, 72)
            .is_err());
    }
}
