//! Why a FIB update was refused.

/// A route the table could not take. The table is unchanged when an update
/// returns one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// Every group is in use: the prefix longer than /24 needs one more (the
    /// IPv4 table's second level; the IPv6 table's groups below its first
    /// level). Raise the table's `max_groups`, or drop long prefixes.
    #[error("second-level group pool exhausted ({max_groups} groups in use)")]
    GroupsExhausted {
        /// The configured pool size.
        max_groups: u32,
    },
    /// The next-hop id does not fit the 24 bits an entry keeps for it.
    #[error("next-hop id {id} is larger than the table's maximum {max}")]
    NextHopOutOfRange {
        /// The id refused.
        id: u32,
        /// The largest id the table stores.
        max: u32,
    },
    /// A group pool larger than an entry can index was asked for.
    #[error("{asked} second-level groups asked for, at most {max} can be indexed")]
    TooManyGroups {
        /// The size asked for.
        asked: u32,
        /// The largest pool an entry can index.
        max: u32,
    },
}
