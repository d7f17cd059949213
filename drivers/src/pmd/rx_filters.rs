//! Receive filters a VF asks its PF for, whatever the driver: what a
//! testpmd user sets with `set promisc`, `set allmulti`, `mcast_addr add`
//! and `rx_vlan add`. Each driver sends them over its mailbox at bring-up
//! and again after a PF reset; a PF may refuse some (an untrusted VF, a
//! port VLAN, a PF without unicast promiscuous), which is reported and,
//! unless [`RxFilters::required`], not fatal.

use crate::net::MacAddr;
use crate::port::MulticastOutcome;

/// The largest VLAN id (12 bits).
pub const MAX_VLAN_ID: u16 = 4095;

/// What the VF asks to receive beyond its own unicast MAC and broadcast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxFilters {
    /// Every frame the PF sees (`set promisc on`).
    pub promiscuous: bool,
    /// Every multicast frame (`set allmulti on`).
    pub all_multicast: bool,
    /// Multicast groups (`mcast_addr add`).
    pub multicast: Vec<MacAddr>,
    /// VLAN ids to receive (`rx_vlan add`); VLAN 0 (untagged) the PF keeps
    /// on its own.
    pub vlans: Vec<u16>,
    /// A setting the PF refuses fails the bring-up instead of being
    /// logged and reported.
    pub required: bool,
}

/// Why a receive filter is not in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A multicast list entry is not a multicast address.
    #[error("{0} is not a multicast address")]
    NotMulticast(MacAddr),
    /// A VLAN id beyond 12 bits.
    #[error("VLAN {0} is out of range (0..={MAX_VLAN_ID})")]
    BadVlan(u16),
    /// The PF applied less than asked (an untrusted VF is limited to its
    /// multicast list on the Linux ixgbe PF).
    #[error(
        "PF applied receive mode {applied} instead of {asked} (an untrusted VF? `ip link set \
         <pf> vf <n> trust on` on the host)"
    )]
    ModeLimited {
        /// The mode asked.
        asked: &'static str,
        /// The mode the PF applied.
        applied: &'static str,
    },
    /// The driver's PF protocol has no such setting.
    #[error("{driver} cannot ask for {what}: {why}")]
    NotSupported {
        /// The driver.
        driver: &'static str,
        /// The setting.
        what: &'static str,
        /// Why, with the source.
        why: &'static str,
    },
    /// The PF answered FAILURE.
    #[error("PF refused {what}")]
    Refused {
        /// The setting.
        what: String,
    },
    /// The negotiated mailbox API cannot carry the setting.
    #[error("{what} needs mailbox API {needs}, the PF negotiated {have}")]
    NeedsApi {
        /// The setting.
        what: &'static str,
        /// The API it needs.
        needs: String,
        /// The API in use.
        have: String,
    },
}

impl RxFilters {
    /// Check the addresses and ids before anything is sent.
    pub fn validate(&self) -> Result<(), FilterError> {
        if let Some(m) = self.multicast.iter().find(|m| m.0[0] & 1 == 0) {
            return Err(FilterError::NotMulticast(*m));
        }
        if let Some(v) = self.vlans.iter().find(|v| **v > MAX_VLAN_ID) {
            return Err(FilterError::BadVlan(*v));
        }
        Ok(())
    }

    /// The same filters with `groups` as the multicast list (a runtime
    /// change: [`crate::port::Port::set_multicast`]).
    pub fn with_multicast(&self, groups: &[MacAddr]) -> RxFilters {
        RxFilters {
            multicast: groups.to_vec(),
            ..self.clone()
        }
    }

    /// Every multicast frame is asked for already (promiscuous or
    /// all-multicast set by the operator), whatever the list.
    pub fn takes_all_multicast(&self) -> bool {
        self.promiscuous || self.all_multicast
    }

    /// What a driver whose filter holds `max` groups (`limit`: that
    /// figure and its source) did with this list, given the refusals it
    /// met sending it.
    pub fn multicast_outcome(
        &self,
        max: usize,
        limit: &str,
        refused: &[FilterError],
    ) -> MulticastOutcome {
        if self.takes_all_multicast() {
            MulticastOutcome::AcceptsAll
        } else if !refused.is_empty() {
            let why: Vec<String> = refused.iter().map(ToString::to_string).collect();
            MulticastOutcome::Partial {
                why: why.join("; "),
            }
        } else if self.multicast.len() > max {
            MulticastOutcome::AllMulticast {
                why: format!("{} groups, {limit}", self.multicast.len()),
            }
        } else {
            MulticastOutcome::Exact
        }
    }

    /// VLANs in `self` and not in `new`: to remove when moving to `new`.
    pub fn vlans_dropped<'a>(&'a self, new: &'a RxFilters) -> impl Iterator<Item = u16> + 'a {
        self.vlans
            .iter()
            .copied()
            .filter(|v| !new.vlans.contains(v))
    }
}

/// What a driver did with a set of filters: the refusals it met (empty
/// when all are in force). With [`RxFilters::required`] the first refusal
/// is returned as an error instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterOutcome {
    /// Settings not in force, and why.
    pub refused: Vec<FilterError>,
}

impl FilterOutcome {
    /// Note a refusal (logged by the caller's `finish`).
    pub fn refuse(&mut self, e: FilterError) {
        self.refused.push(e);
    }

    /// Log the refusals for port `name`, or fail on the first one when the
    /// filters are `required`.
    pub fn finish(self, name: &str, f: &RxFilters) -> Result<FilterOutcome, FilterError> {
        if f.required {
            if let Some(e) = self.refused.first() {
                return Err(e.clone());
            }
        }
        for e in &self.refused {
            log::warn!("{name}: receive filter not in force: {e}");
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_and_ids_are_named() {
        let mut f = RxFilters {
            multicast: vec![MacAddr([0x02, 0, 0, 0, 0, 1])],
            ..RxFilters::default()
        };
        assert!(matches!(f.validate(), Err(FilterError::NotMulticast(_))));
        f.multicast = vec![MacAddr([0x01, 0, 0x5e, 0, 0, 1])];
        f.vlans = vec![4096];
        assert_eq!(f.validate(), Err(FilterError::BadVlan(4096)));
        f.vlans = vec![100];
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn multicast_outcome_names_the_limit_and_the_refusals() {
        let g =
            |n: u8| -> Vec<MacAddr> { (0..n).map(|i| MacAddr([1, 0, 0x5e, 0, 0, i])).collect() };
        let f = RxFilters::default().with_multicast(&g(3));
        assert_eq!(
            f.multicast_outcome(3, "at most 3", &[]),
            MulticastOutcome::Exact
        );
        let f = f.with_multicast(&g(4));
        assert_eq!(
            f.multicast_outcome(3, "at most 3", &[]),
            MulticastOutcome::AllMulticast {
                why: "4 groups, at most 3".into()
            }
        );
        let no = [FilterError::Refused { what: "x".into() }];
        assert!(matches!(
            f.multicast_outcome(3, "", &no),
            MulticastOutcome::Partial { .. }
        ));
        let all = RxFilters {
            all_multicast: true,
            ..f
        };
        assert_eq!(
            all.multicast_outcome(3, "", &no),
            MulticastOutcome::AcceptsAll
        );
    }

    #[test]
    fn required_filters_fail_on_the_first_refusal() {
        let mut o = FilterOutcome::default();
        o.refuse(FilterError::Refused {
            what: "VLAN 5".into(),
        });
        let mut f = RxFilters::default();
        assert_eq!(o.clone().finish("p", &f).unwrap().refused.len(), 1);
        f.required = true;
        assert!(o.finish("p", &f).is_err());
    }
}
