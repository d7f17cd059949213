//! The kernel's multicast groups on each exception interface, carried to
//! its port's receive filter.
//!
//! The kernel joins link-layer groups on a TAP at run time (an address
//! added gives a solicited-node group, a routing daemon joins
//! 224.0.0.5); a VF receives only the multicast its PF lets through. On
//! each housekeeping round (the control path, where ports are serviced)
//! the lists are read from [`dev_mcast`](super::dev_mcast), and a port
//! whose interface's list changed gets it with
//! [`Port::set_multicast`](drivers::port::Port::set_multicast). Changes
//! are counted and logged when they happen, not per read.

use super::dev_mcast::{self, McastLists};
use drivers::net::MacAddr;
use drivers::port::{MulticastOutcome, PortError};
use std::path::PathBuf;

/// One port's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMulticastStats {
    /// The exception interface whose list the port follows.
    pub ifname: String,
    /// Groups in force (the list the port last took), sorted.
    pub groups: Vec<MacAddr>,
    /// Lists given to the port.
    pub changes: u64,
    /// Lists the port failed to take (tried again at the next round).
    pub errors: u64,
    /// The port takes every multicast frame instead of the list (too
    /// many groups for its filter), or only part of it.
    pub not_exact: bool,
}

/// What the housekeeping keeps between rounds.
#[derive(Debug)]
pub struct MulticastSync {
    path: PathBuf,
    ports: Vec<PortState>,
    /// Reads of the lists that failed.
    pub read_errors: u64,
    /// A read failed and was logged: the next failures are only counted.
    read_error_said: bool,
}

#[derive(Debug)]
struct PortState {
    stats: PortMulticastStats,
    /// The list in force (sorted), `None` before the first.
    applied: Option<Vec<MacAddr>>,
    /// A list the port refused, logged once.
    failed: Option<Vec<MacAddr>>,
}

impl MulticastSync {
    /// Follow `ifnames` (one per port, in port order) through the lists
    /// at `path` ([`dev_mcast::DEV_MCAST`] outside tests).
    pub fn new(path: impl Into<PathBuf>, ifnames: &[String]) -> MulticastSync {
        MulticastSync {
            path: path.into(),
            ports: ifnames
                .iter()
                .map(|n| PortState {
                    stats: PortMulticastStats {
                        ifname: n.clone(),
                        ..PortMulticastStats::default()
                    },
                    applied: None,
                    failed: None,
                })
                .collect(),
            read_errors: 0,
            read_error_said: false,
        }
    }

    /// Read the lists and give each port whose interface's list changed
    /// its new list through `set` (port index, groups).
    pub fn sync(
        &mut self,
        set: impl FnMut(usize, &[MacAddr]) -> Result<MulticastOutcome, PortError>,
    ) {
        match dev_mcast::read(&self.path) {
            Ok(lists) => {
                self.read_error_said = false;
                self.apply(&lists, set);
            }
            Err(e) => {
                self.read_errors += 1;
                if !self.read_error_said {
                    log::warn!("multicast groups not followed: {e}");
                    self.read_error_said = true;
                }
            }
        }
    }

    /// [`sync`](Self::sync) on lists already read.
    pub fn apply(
        &mut self,
        lists: &McastLists,
        mut set: impl FnMut(usize, &[MacAddr]) -> Result<MulticastOutcome, PortError>,
    ) {
        for (p, st) in self.ports.iter_mut().enumerate() {
            let mut want = lists.get(&st.stats.ifname).cloned().unwrap_or_default();
            want.sort_unstable();
            if st.applied.as_ref() == Some(&want) {
                continue;
            }
            let name = &st.stats.ifname;
            match set(p, &want) {
                Ok(outcome) => {
                    st.stats.changes += 1;
                    st.failed = None;
                    let diff = diff(&st.stats.groups, &want);
                    let not_exact = matches!(
                        outcome,
                        MulticastOutcome::AllMulticast { .. } | MulticastOutcome::Partial { .. }
                    );
                    match &outcome {
                        MulticastOutcome::AllMulticast { why } if !st.stats.not_exact => {
                            log::warn!(
                                "port {p}: {} multicast groups of {name}: the port takes every \
                                 multicast frame instead ({why})",
                                want.len()
                            )
                        }
                        MulticastOutcome::Partial { why } if !st.stats.not_exact => {
                            log::warn!(
                                "port {p}: {} multicast groups of {name}: some may not be \
                                 received ({why})",
                                want.len()
                            )
                        }
                        _ => log::info!(
                            "port {p}: multicast groups of {name}{diff}: {} given to the port ({})",
                            want.len(),
                            outcome_word(&outcome)
                        ),
                    }
                    st.stats.not_exact = not_exact;
                    st.stats.groups.clone_from(&want);
                    st.applied = Some(want);
                }
                Err(e) => {
                    st.stats.errors += 1;
                    if st.failed.as_ref() != Some(&want) {
                        log::warn!("port {p}: multicast groups of {name} not taken: {e}");
                        st.failed = Some(want);
                    }
                }
            }
        }
    }

    /// Every port's figures, in port order.
    pub fn stats(&self) -> Vec<PortMulticastStats> {
        self.ports.iter().map(|s| s.stats.clone()).collect()
    }
}

/// " +a +b -c": what `new` has that `old` has not, and the reverse.
fn diff(old: &[MacAddr], new: &[MacAddr]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for m in new.iter().filter(|m| !old.contains(m)) {
        let _ = write!(out, " +{m}");
    }
    for m in old.iter().filter(|m| !new.contains(m)) {
        let _ = write!(out, " -{m}");
    }
    out
}

fn outcome_word(o: &MulticastOutcome) -> &'static str {
    match o {
        MulticastOutcome::Exact => "filtered exactly",
        MulticastOutcome::AcceptsAll => "the port takes every multicast frame anyway",
        MulticastOutcome::Pending => "sent when the device's reset is over",
        MulticastOutcome::AllMulticast { .. } => "all-multicast",
        MulticastOutcome::Partial { .. } => "partly",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(last: u8) -> MacAddr {
        MacAddr([0x33, 0x33, 0xff, 0, 0, last])
    }

    #[test]
    fn a_changed_list_reaches_its_port_once() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("dev_mcast");
        let names = ["fp0".to_string(), "fp1".to_string()];
        let mut s = MulticastSync::new(&path, &names);
        // No file: counted, the ports untouched.
        s.sync(|_, _| panic!("no list was read"));
        assert_eq!(s.read_errors, 1);
        let write = |lines: &[&str]| std::fs::write(&path, lines.join("\n")).unwrap();
        write(&["9 fp0 1 0 3333ff000001", "7 eth0 1 0 3333ff000009"]);
        let mut given: Vec<(usize, Vec<MacAddr>)> = Vec::new();
        let mut set = |p: usize, l: &[MacAddr]| {
            given.push((p, l.to_vec()));
            Ok(MulticastOutcome::Exact)
        };
        s.sync(&mut set);
        s.sync(&mut set);
        // fp1 has no group: an empty list, given once too.
        assert_eq!(given, vec![(0, vec![m(1)]), (1, vec![])]);
        // An address added on fp0: its solicited-node group.
        write(&["9 fp0 1 0 3333ff000002", "9 fp0 1 0 3333ff000001"]);
        given.clear();
        let mut set = |p: usize, l: &[MacAddr]| {
            given.push((p, l.to_vec()));
            Ok(MulticastOutcome::Exact)
        };
        s.sync(&mut set);
        assert_eq!(given, vec![(0, vec![m(1), m(2)])]);
        let st = s.stats();
        assert_eq!(
            (st[0].changes, st[0].groups.len(), st[1].changes),
            (2, 2, 1)
        );
        assert_eq!(
            diff(&[m(1)], &[m(2)]),
            " +33:33:ff:00:00:02 -33:33:ff:00:00:01"
        );
    }

    #[test]
    fn refusals_are_retried_and_fallbacks_shown() {
        let mut lists = McastLists::new();
        lists.insert("fp0".into(), vec![m(1)]);
        let mut s = MulticastSync::new("/nonexistent", &["fp0".to_string()]);
        let fail = |_: usize, _: &[MacAddr]| {
            Err(PortError::Device {
                port: "p".into(),
                why: "mailbox".into(),
            })
        };
        s.apply(&lists, fail);
        s.apply(&lists, fail);
        assert_eq!(s.stats()[0].errors, 2);
        assert_eq!(s.stats()[0].changes, 0);
        s.apply(&lists, |_, _| {
            Ok(MulticastOutcome::AllMulticast {
                why: "31 groups".into(),
            })
        });
        assert!(s.stats()[0].not_exact);
        assert_eq!(s.stats()[0].changes, 1);
    }
}
