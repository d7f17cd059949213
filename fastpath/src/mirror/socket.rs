//! A NETLINK_ROUTE socket: dump requests, multicast subscription, and
//! receiving whole datagrams, non-blocking or with a timeout.

use super::error::MirrorError;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The receive buffer: a dump datagram is at most 32 KiB on current
/// kernels (netlink_dump's allocation), so 64 KiB holds any of them; a
/// 4 KiB one, as in the crate's example, cuts real dumps.
pub const RECV_BUFFER: usize = 64 * 1024;

/// What a receive got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A datagram, in [`RouteSocket::datagram`].
    Datagram,
    /// A datagram longer than [`RECV_BUFFER`]; its tail is lost.
    Truncated,
    /// Nothing before the timeout (or at once, non-blocking).
    Nothing,
    /// The kernel dropped messages for us (ENOBUFS): events were lost.
    Overrun,
}

/// A route netlink socket.
pub struct RouteSocket {
    sock: Socket,
    /// A second handle on the same socket, only to set SO_RCVTIMEO through
    /// std's safe `set_read_timeout` (netlink-sys has no such call).
    timeout_handle: UnixDatagram,
    timeout: Option<Duration>,
    buf: Vec<u8>,
    seq: u32,
}

impl RouteSocket {
    /// Opens and binds a socket (the kernel picks its port id).
    pub fn open() -> Result<RouteSocket, MirrorError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(MirrorError::Socket)?;
        sock.bind_auto().map_err(MirrorError::Socket)?;
        let dup = sock
            .as_fd()
            .try_clone_to_owned()
            .map_err(MirrorError::Socket)?;
        Ok(RouteSocket {
            sock,
            timeout_handle: UnixDatagram::from(dup),
            timeout: None,
            buf: Vec::with_capacity(RECV_BUFFER),
            seq: 0,
        })
    }

    /// Joins the RTNLGRP_* multicast groups.
    pub fn subscribe(&mut self, groups: &[u32]) -> Result<(), MirrorError> {
        for &group in groups {
            self.sock
                .add_membership(group)
                .map_err(|source| MirrorError::Subscribe { group, source })?;
        }
        Ok(())
    }

    /// Asks for a kernel receive queue of `bytes` (capped by
    /// net.core.rmem_max); returns what the kernel granted.
    pub fn set_queue_size(&mut self, bytes: usize) -> Result<usize, MirrorError> {
        let want = i32::try_from(bytes).unwrap_or(i32::MAX);
        self.sock.set_rx_buf_sz(want).map_err(MirrorError::Socket)?;
        self.sock.get_rx_buf_sz().map_err(MirrorError::Socket)
    }

    /// Sends a dump request for `msg` (a Get* message); returns its
    /// sequence number, which the answers carry.
    pub fn request_dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &'static str,
    ) -> Result<u32, MirrorError> {
        self.request(msg, NLM_F_DUMP, what)
    }

    /// Sends `msg` with NLM_F_REQUEST and `flags` (NLM_F_DUMP, or
    /// NLM_F_ACK | NLM_F_CREATE ... for a change); returns its sequence
    /// number, which the answers carry.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &'static str,
    ) -> Result<u32, MirrorError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(|source| MirrorError::Send { what, source })?;
        Ok(self.seq)
    }

    /// Receives one datagram: at once if `timeout` is `None` (non-blocking),
    /// else waiting up to `timeout`.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Received, MirrorError> {
        let flags = match timeout {
            None => libc::MSG_DONTWAIT,
            Some(t) => {
                // SO_RCVTIMEO of zero means "forever": wait at least 1 ms.
                let t = t.max(Duration::from_millis(1));
                if self.timeout != Some(t) {
                    self.timeout_handle
                        .set_read_timeout(Some(t))
                        .map_err(MirrorError::Socket)?;
                    self.timeout = Some(t);
                }
                0
            }
        };
        self.buf.clear();
        // MSG_TRUNC: the return value is the datagram's real length, so a
        // cut one is seen (netlink(7)).
        match self.sock.recv(&mut self.buf, flags | libc::MSG_TRUNC) {
            Ok(n) if n > self.buf.len() => Ok(Received::Truncated),
            Ok(_) => Ok(Received::Datagram),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Received::Overrun),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Received::Nothing)
            }
            Err(e) => Err(MirrorError::Recv(e)),
        }
    }

    /// The last datagram received.
    pub fn datagram(&self) -> &[u8] {
        &self.buf
    }
}

impl AsFd for RouteSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
