//! Adding an address to a kernel interface over rtnetlink (RTM_NEWADDR),
//! as `ip addr add ADDR/PREFIX dev IFACE` does: what puts the pod's
//! addresses on the exception interfaces. The kernel then adds the
//! address's local and connected routes itself, and reports all of it to
//! the kernel mirror like any address an operator adds by hand.
//!
//! Idempotent: an address already there (EEXIST, from NLM_F_EXCL) is
//! [`Added::AlreadyThere`], not an error, so a restart that finds its
//! addresses in place goes on.

use crate::mirror::datagram::{split, Parsed};
use crate::mirror::socket::{Received, RouteSocket};
use crate::mirror::{IfIndex, MirrorError};
use config::pod_address::PrefixedAddress;
use netlink_packet_core::{NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long the kernel may take to answer: it acknowledges an address
/// change as soon as it is made (in the sending thread's system call), so
/// this only bounds a kernel that never answers.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What adding an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The kernel added it.
    Added,
    /// It was there already (EEXIST).
    AlreadyThere,
}

/// Why an address could not be added.
#[derive(Debug, thiserror::Error)]
pub enum IfaceAddressError {
    /// The netlink socket failed.
    #[error(transparent)]
    Socket(#[from] MirrorError),
    /// The kernel refused (EPERM: no CAP_NET_ADMIN; ENODEV: no such
    /// interface; EINVAL: ...).
    #[error(
        "the kernel refused to add {address} to {ifname}: {source}{}",
        hint(source)
    )]
    Refused {
        /// The address.
        address: PrefixedAddress,
        /// The interface.
        ifname: String,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
    /// No answer came.
    #[error("no answer from the kernel to adding {address} to {ifname} within {} s", ANSWER_WITHIN.as_secs())]
    NoAnswer {
        /// The address.
        address: PrefixedAddress,
        /// The interface.
        ifname: String,
    },
}

/// The fix for the errnos an operator can do something about.
fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => " (the container needs CAP_NET_ADMIN)",
        Some(libc::EACCES) => " (the container needs CAP_NET_ADMIN)",
        _ => "",
    }
}

/// The RTM_NEWADDR message for `address` on interface `ifindex`. IPv4
/// carries IFA_LOCAL and IFA_ADDRESS (the same on a broadcast link, as
/// iproute2 sends them), IPv6 IFA_ADDRESS alone (rtnetlink(7),
/// linux/if_addr.h).
pub fn new_address_message(ifindex: IfIndex, address: PrefixedAddress) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = ifindex.0;
    m.header.prefix_len = address.prefix();
    let ip = address.addr();
    m.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    if ip.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(ip));
    }
    m.attributes.push(AddressAttribute::Address(ip));
    m
}

/// Adds `address` to the interface `ifname` (index `ifindex`) through
/// `sock`, and waits for the kernel's answer.
pub fn add_address(
    sock: &mut RouteSocket,
    ifname: &str,
    ifindex: IfIndex,
    address: PrefixedAddress,
) -> Result<Added, IfaceAddressError> {
    let msg = RouteNetlinkMessage::NewAddress(new_address_message(ifindex, address));
    let seq = sock.request(msg, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "new address")?;
    let end = Instant::now() + ANSWER_WITHIN;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(IfaceAddressError::NoAnswer {
                address,
                ifname: ifname.to_string(),
            });
        }
        if sock.recv(Some(left))? != Received::Datagram {
            continue;
        }
        for p in split(sock.datagram()) {
            let Parsed::Message { msg, .. } = p else {
                continue;
            };
            if msg.header.sequence_number != seq {
                continue;
            }
            if let NetlinkPayload::Error(e) = msg.payload {
                return match e.raw_code().abs() {
                    0 => Ok(Added::Added),
                    libc::EEXIST => Ok(Added::AlreadyThere),
                    _ => Err(IfaceAddressError::Refused {
                        address,
                        ifname: ifname.to_string(),
                        source: e.to_io(),
                    }),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_family_prefix_and_interface() {
        let a: PrefixedAddress = "10.1.0.5/24".parse().unwrap();
        let m = new_address_message(IfIndex(7), a);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!((m.header.index, m.header.prefix_len), (7, 24));
        let ip: IpAddr = "10.1.0.5".parse().unwrap();
        assert_eq!(
            m.attributes,
            vec![AddressAttribute::Local(ip), AddressAttribute::Address(ip)]
        );
        let a: PrefixedAddress = "fd00::5/64".parse().unwrap();
        let m = new_address_message(IfIndex(3), a);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!(m.header.prefix_len, 64);
        assert_eq!(m.attributes, vec![AddressAttribute::Address(a.addr())]);
    }

    #[test]
    fn a_refusal_names_the_fix_when_there_is_one() {
        let e = IfaceAddressError::Refused {
            address: "10.1.0.5/24".parse().unwrap(),
            ifname: "fp0".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("the kernel refused to add 10.1.0.5/24 to fp0: ")
                && text.ends_with("(the container needs CAP_NET_ADMIN)"),
            "{text}"
        );
    }
}
