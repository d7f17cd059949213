//! Why the kernel mirror could not run.

use std::io;

/// A failure of the mirror's sockets or of a dump.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The netlink socket could not be opened or set up.
    #[error("rtnetlink socket: {0}")]
    Socket(#[source] io::Error),
    /// Joining a multicast group failed.
    #[error("rtnetlink: cannot subscribe to group {group}: {source}")]
    Subscribe {
        /// The RTNLGRP_* number.
        group: u32,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Sending a request (a dump, or a change) failed.
    #[error("rtnetlink: cannot send the {what} request: {source}")]
    Send {
        /// links, addresses, routes or neighbours.
        what: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Reading from a socket failed (other than the overrun the mirror
    /// recovers from).
    #[error("rtnetlink: receive failed: {0}")]
    Recv(#[source] io::Error),
    /// The kernel answered a dump request with an error.
    #[error("rtnetlink: the {what} dump failed: {source}")]
    Dump {
        /// links, addresses, routes or neighbours.
        what: &'static str,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
    /// A dump did not finish in time.
    #[error("rtnetlink: the {what} dump did not finish within {secs} s")]
    DumpTimeout {
        /// links, addresses, routes or neighbours.
        what: &'static str,
        /// The time allowed.
        secs: u64,
    },
}
