//! Splits a netlink datagram into its messages (one datagram carries
//! several, each padded to 4 bytes: NLMSG_ALIGN, linux/netlink.h) and
//! parses each with the netlink crate.

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NLM_F_DUMP_INTR};
use netlink_packet_route::RouteNetlinkMessage;

/// Netlink messages are aligned to 4 bytes (NLMSG_ALIGNTO, linux/netlink.h).
const ALIGN: usize = 4;

/// One message of a datagram.
#[derive(Debug)]
pub enum Parsed {
    /// The crate parsed it.
    Message {
        /// The message.
        msg: NetlinkMessage<RouteNetlinkMessage>,
        /// NLM_F_DUMP_INTR was set: the dump it belongs to saw a change
        /// while it ran and may be inconsistent.
        interrupted: bool,
    },
    /// The header was sound but the body did not parse.
    Unparsed,
    /// The rest of the datagram does not hold a netlink header; nothing
    /// after this point can be read.
    Garbage,
}

/// The messages of `datagram`, in order; a bad length ends the walk with
/// [`Parsed::Garbage`].
pub fn split(datagram: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let len = match NetlinkBuffer::new_checked(rest) {
            Ok(b) => b.length() as usize,
            Err(_) => {
                out.push(Parsed::Garbage);
                break;
            }
        };
        // new_checked made sure 16 <= len <= rest.len().
        let Some(one) = rest.get(..len) else {
            out.push(Parsed::Garbage);
            break;
        };
        out.push(
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) {
                Ok(msg) => {
                    let interrupted = msg.header.flags & NLM_F_DUMP_INTR != 0;
                    Parsed::Message { msg, interrupted }
                }
                Err(_) => Parsed::Unparsed,
            },
        );
        let padded = len.div_ceil(ALIGN).saturating_mul(ALIGN);
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    out
}
