//! The receive filters of an ixgbevf port, sent to the PF in the order of
//! A.6 step 17: UPDATE_XCAST_MODE (API 1.2, PROMISC 1.3), SET_MULTICAST
//! (at most 30 hashes, A.5.3), SET_VLAN for each id (A.5.3).

use super::mailbox::{ApiVersion, IxMbxError, PfMailbox, XcastMode, MAX_MC_HASHES};
use crate::mmio::RegisterSpace;
use crate::pmd::rx_filters::{FilterError, FilterOutcome, RxFilters};

/// The xcast mode `f` asks for: PROMISC, ALLMULTI (asked, or more groups
/// than one SET_MULTICAST carries), otherwise MULTI, which lets the
/// multicast list through (what Linux's VF asks for a normal interface).
pub fn wanted_mode(f: &RxFilters) -> XcastMode {
    if f.promiscuous {
        XcastMode::Promisc
    } else if f.all_multicast || f.multicast.len() > MAX_MC_HASHES {
        XcastMode::AllMulti
    } else {
        XcastMode::Multi
    }
}

fn mode_name(m: XcastMode) -> &'static str {
    match m {
        XcastMode::None => "NONE",
        XcastMode::Multi => "MULTI",
        XcastMode::AllMulti => "ALLMULTI",
        XcastMode::Promisc => "PROMISC",
    }
}

/// A refusal is a FAILURE from the PF; anything else (reset, timeout,
/// lost CTS) ends the exchange.
fn refused<T>(r: Result<T, IxMbxError>) -> Result<Option<T>, IxMbxError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(IxMbxError::Nack { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why the filters could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A setting the PF refused while the filters are required.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The mailbox failed (reset, timeout, lost CTS).
    #[error(transparent)]
    Mailbox(#[from] IxMbxError),
}

/// Send `f` to the PF; `old` is what is in force now (`None` right after
/// a VF reset, when the PF has cleared everything, A.5.4), so VLANs it has
/// and `f` lacks are removed and an emptied multicast list is cleared.
/// Returns the xcast mode the PF applied (`None` under API < 1.2) and
/// the refusals.
pub fn apply<R: RegisterSpace + ?Sized>(
    regs: &R,
    mbx: &mut PfMailbox,
    name: &str,
    f: &RxFilters,
    old: Option<&RxFilters>,
) -> Result<(Option<XcastMode>, FilterOutcome), ApplyError> {
    f.validate()?;
    let mut out = FilterOutcome::default();
    let api = mbx.api();
    let want = wanted_mode(f);
    let mut applied = None;
    if api >= ApiVersion::V1_2 {
        // PROMISC needs 1.3: ask for the most the API carries.
        let mode = if want.needs() > api {
            out.refuse(FilterError::NeedsApi {
                what: "promiscuous mode",
                needs: want.needs().to_string(),
                have: api.to_string(),
            });
            XcastMode::AllMulti
        } else {
            want
        };
        match refused(mbx.update_xcast_mode(regs, mode))? {
            Some(got) => {
                if got < mode {
                    out.refuse(FilterError::ModeLimited {
                        asked: mode_name(mode),
                        applied: mode_name(got),
                    });
                }
                applied = Some(got);
            }
            None => out.refuse(FilterError::Refused {
                what: format!("receive mode {}", mode_name(mode)),
            }),
        }
    } else if want != XcastMode::Multi {
        out.refuse(FilterError::NeedsApi {
            what: if f.promiscuous {
                "promiscuous mode"
            } else {
                "all-multicast mode"
            },
            needs: XcastMode::AllMulti.needs().to_string(),
            have: api.to_string(),
        });
    }
    let had_groups = old.is_some_and(|o| !o.multicast.is_empty());
    if !f.multicast.is_empty() || had_groups {
        // More than 30 groups went to ALLMULTI above; the first 30 still
        // pass if the PF limits the mode to MULTI.
        let n = f.multicast.len().min(MAX_MC_HASHES);
        if refused(mbx.set_multicast(regs, &f.multicast[..n]))?.is_none() {
            out.refuse(FilterError::Refused {
                what: format!("{n} multicast group(s)"),
            });
        }
    }
    if let Some(o) = old {
        for vid in o.vlans_dropped(f) {
            if refused(mbx.set_vlan(regs, vid, false))?.is_none() {
                out.refuse(FilterError::Refused {
                    what: format!("removing VLAN {vid}"),
                });
            }
        }
    }
    for &vid in &f.vlans {
        if old.is_some_and(|o| o.vlans.contains(&vid)) {
            continue;
        }
        if refused(mbx.set_vlan(regs, vid, true))?.is_none() {
            out.refuse(FilterError::Refused {
                what: format!("VLAN {vid} (a port VLAN or DCB set on the PF?)"),
            });
        }
    }
    Ok((applied, out.finish(name, f)?))
}
