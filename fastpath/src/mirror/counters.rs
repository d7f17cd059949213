//! What the mirror counts: messages it ignored, by reason, and the resyncs
//! it made after losing events.

use std::fmt;

/// Why a kernel message was not turned into an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// About an interface that is not one of ours (a link with another
    /// name; an address, route or neighbour through such a link).
    ForeignInterface,
    /// A route of another table than the one mirrored (the `local` table
    /// among them: our addresses come as addresses instead).
    OtherTable,
    /// A route type the fast path has no use for (broadcast, anycast,
    /// multicast, throw, NAT).
    UnsupportedKind,
    /// A route feature the fast path does not implement: source-specific
    /// (IPv6 `from`), TOS, a cached clone, a unicast route with no next hop.
    UnsupportedRoute,
    /// An address family other than IPv4 and IPv6 (bridge FDB, MPLS).
    UnsupportedFamily,
    /// A message the netlink crate could not parse, or one missing a
    /// required attribute (a link without a name, a route prefix with host
    /// bits set).
    ParseError,
    /// A message of a type the mirror does not follow.
    OtherMessage,
}

impl IgnoreReason {
    /// Every reason, in the order they are printed.
    pub const ALL: [IgnoreReason; 7] = [
        IgnoreReason::ForeignInterface,
        IgnoreReason::OtherTable,
        IgnoreReason::UnsupportedKind,
        IgnoreReason::UnsupportedRoute,
        IgnoreReason::UnsupportedFamily,
        IgnoreReason::ParseError,
        IgnoreReason::OtherMessage,
    ];

    /// A short name for printing and JSON.
    pub fn name(self) -> &'static str {
        match self {
            IgnoreReason::ForeignInterface => "foreign_interface",
            IgnoreReason::OtherTable => "other_table",
            IgnoreReason::UnsupportedKind => "unsupported_kind",
            IgnoreReason::UnsupportedRoute => "unsupported_route",
            IgnoreReason::UnsupportedFamily => "unsupported_family",
            IgnoreReason::ParseError => "parse_error",
            IgnoreReason::OtherMessage => "other_message",
        }
    }

    fn index(self) -> usize {
        // The position in ALL; a match, so adding a reason without a slot
        // fails to compile rather than indexing out of bounds.
        match self {
            IgnoreReason::ForeignInterface => 0,
            IgnoreReason::OtherTable => 1,
            IgnoreReason::UnsupportedKind => 2,
            IgnoreReason::UnsupportedRoute => 3,
            IgnoreReason::UnsupportedFamily => 4,
            IgnoreReason::ParseError => 5,
            IgnoreReason::OtherMessage => 6,
        }
    }
}

/// Why the mirror threw its view away and dumped the kernel's state again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResyncReason {
    /// The subscription socket overflowed (`ENOBUFS`): events were lost.
    Overrun,
    /// A dump was interrupted by a concurrent change (`NLM_F_DUMP_INTR`)
    /// and was taken again.
    DumpInterrupted,
    /// A datagram was longer than the receive buffer and was cut.
    Truncated,
    /// One of our links went down, away, or was renamed: the kernel drops
    /// IPv4 routes through a downed link without telling anyone.
    LinkChange,
}

impl ResyncReason {
    /// Every reason, in the order they are printed.
    pub const ALL: [ResyncReason; 4] = [
        ResyncReason::Overrun,
        ResyncReason::DumpInterrupted,
        ResyncReason::Truncated,
        ResyncReason::LinkChange,
    ];

    /// A short name for printing and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ResyncReason::Overrun => "overrun",
            ResyncReason::DumpInterrupted => "dump_interrupted",
            ResyncReason::Truncated => "truncated",
            ResyncReason::LinkChange => "link_change",
        }
    }

    fn index(self) -> usize {
        match self {
            ResyncReason::Overrun => 0,
            ResyncReason::DumpInterrupted => 1,
            ResyncReason::Truncated => 2,
            ResyncReason::LinkChange => 3,
        }
    }
}

/// The mirror's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorCounters {
    ignored: [u64; IgnoreReason::ALL.len()],
    resyncs: [u64; ResyncReason::ALL.len()],
    /// Netlink messages read (dumps and subscription).
    pub messages: u64,
    /// Events handed to the caller.
    pub events: u64,
    /// Full dumps taken (the first one included).
    pub dumps: u64,
}

impl MirrorCounters {
    /// Counts one ignored message.
    pub fn ignore(&mut self, why: IgnoreReason) {
        let n = &mut self.ignored[why.index()];
        *n = n.saturating_add(1);
    }

    /// Counts one resync.
    pub fn resync(&mut self, why: ResyncReason) {
        let n = &mut self.resyncs[why.index()];
        *n = n.saturating_add(1);
    }

    /// Messages ignored for `why`.
    pub fn ignored(&self, why: IgnoreReason) -> u64 {
        self.ignored[why.index()]
    }

    /// Resyncs made for `why`.
    pub fn resyncs(&self, why: ResyncReason) -> u64 {
        self.resyncs[why.index()]
    }
}

impl MirrorCounters {
    /// The counters as JSON, for `stats --json`: `messages`, `events`,
    /// `dumps`, and `ignored` and `resyncs` objects keyed by reason name.
    pub fn json(&self) -> serde_json::Value {
        let ignored: serde_json::Map<String, serde_json::Value> = IgnoreReason::ALL
            .into_iter()
            .map(|r| (r.name().to_owned(), self.ignored(r).into()))
            .collect();
        let resyncs: serde_json::Map<String, serde_json::Value> = ResyncReason::ALL
            .into_iter()
            .map(|r| (r.name().to_owned(), self.resyncs(r).into()))
            .collect();
        serde_json::json!({
            "messages": self.messages,
            "events": self.events,
            "dumps": self.dumps,
            "ignored": ignored,
            "resyncs": resyncs,
        })
    }
}

impl fmt::Display for MirrorCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "messages {} events {} dumps {}; ignored:",
            self.messages, self.events, self.dumps
        )?;
        for r in IgnoreReason::ALL {
            write!(f, " {} {}", r.name(), self.ignored(r))?;
        }
        write!(f, "; resyncs:")?;
        for r in ResyncReason::ALL {
            write!(f, " {} {}", r.name(), self.resyncs(r))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_slot() {
        let mut c = MirrorCounters::default();
        for (i, r) in IgnoreReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                c.ignore(r);
            }
        }
        for (i, r) in IgnoreReason::ALL.into_iter().enumerate() {
            assert_eq!(c.ignored(r), i as u64 + 1, "{}", r.name());
        }
        c.resync(ResyncReason::Overrun);
        assert_eq!(c.resyncs(ResyncReason::Overrun), 1);
        assert_eq!(c.resyncs(ResyncReason::LinkChange), 0);
        assert!(c.to_string().contains("foreign_interface 1"));
        let j = c.json();
        assert_eq!(j["ignored"]["parse_error"], 6);
        assert_eq!(j["resyncs"]["overrun"], 1);
        assert_eq!(j["messages"], 0);
    }
}
