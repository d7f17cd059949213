//! Setting up one queue's packet socket: TPACKET_V3, its rings, qdisc
//! bypass, the bind to the interface, the fanout group, and the kernel's
//! counters. Every system call of the port's control path is here, each
//! failure mapped to an [`AfPacketError`] that names the interface and the
//! fix.

use super::config::RingSizes;
use super::ring::{Geometry, Mapping, RxRing, TxRing};
use super::AfPacketError;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// ETH_P_ALL in network byte order, as socket() and bind() take it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// The machine's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

fn io_error(op: &'static str, ifname: &str, source: io::Error) -> AfPacketError {
    AfPacketError::Io {
        op,
        ifname: ifname.to_string(),
        source,
    }
}

/// setsockopt(SOL_PACKET, opt, &val).
fn set_opt<T>(fd: &OwnedFd, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: val is a valid T for the call's duration and its size is
    // passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A packet socket of protocol 0: it receives nothing until bound.
fn packet_socket(ifname: &str) -> Result<OwnedFd, AfPacketError> {
    // SAFETY: plain system call with constant arguments; checked below.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => AfPacketError::NotPermitted(ifname.into()),
            _ => io_error("socket", ifname, e),
        });
    }
    // SAFETY: raw is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A raw packet socket that receives nothing yet: protocol 0 until the
/// bind, so no frame of another interface lands in the ring meanwhile.
pub fn raw_socket(ifname: &str) -> Result<OwnedFd, AfPacketError> {
    let fd = packet_socket(ifname)?;
    let v3 = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    set_opt(&fd, libc::PACKET_VERSION, &v3).map_err(|e| AfPacketError::NoTpacketV3 {
        ifname: ifname.into(),
        source: e,
    })?;
    Ok(fd)
}

/// A packet socket that receives nothing (protocol 0, never bound) and
/// holds `groups` as memberships of interface `ifindex`
/// (PACKET_ADD_MEMBERSHIP, PACKET_MR_MULTICAST: packet(7)): the kernel adds
/// each to the device's multicast list, so a NIC filtering by it lets the
/// groups through, and removes them when the socket is closed, which is
/// how a list is replaced (packet(7): "memberships are dropped when the
/// socket is closed").
pub fn multicast_socket(
    ifname: &str,
    ifindex: libc::c_int,
    groups: &[crate::net::MacAddr],
) -> Result<OwnedFd, AfPacketError> {
    let fd = packet_socket(ifname)?;
    for g in groups {
        let mut mr = libc::packet_mreq {
            mr_ifindex: ifindex,
            mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
            mr_alen: 6,
            mr_address: [0; 8],
        };
        mr.mr_address[..6].copy_from_slice(&g.0);
        set_opt(&fd, libc::PACKET_ADD_MEMBERSHIP, &mr)
            .map_err(|e| io_error("setsockopt(PACKET_ADD_MEMBERSHIP)", ifname, e))?;
    }
    Ok(fd)
}

/// What one queue socket is asked to be.
#[derive(Debug, Clone, Copy)]
pub struct QueuePlan {
    /// Interface index.
    pub ifindex: libc::c_int,
    /// With an RX ring (and bound to receive every protocol).
    pub rx: bool,
    /// With a TX ring.
    pub tx: bool,
    /// Ring sizes.
    pub sizes: RingSizes,
    /// Block retire timeout, ms.
    pub retire_ms: u32,
    /// Ask for PACKET_QDISC_BYPASS.
    pub qdisc_bypass: bool,
}

/// One queue's socket: the descriptor, and the kernel's RX drop counts
/// read so far (PACKET_STATISTICS resets them at each read, so they are
/// summed here).
#[derive(Debug)]
pub struct QueueSocket {
    fd: OwnedFd,
    /// Frames the kernel dropped for want of room in the ring
    /// (tpacket_stats_v3.tp_drops, summed).
    pub kernel_drops: AtomicU64,
    /// Times the ring was found full and the queue frozen
    /// (tp_freeze_q_cnt, summed).
    pub kernel_freezes: AtomicU64,
    /// Whether the kernel took PACKET_QDISC_BYPASS.
    pub qdisc_bypass: bool,
}

/// A set-up socket and its rings.
pub struct OpenQueue {
    /// The socket.
    pub socket: Arc<QueueSocket>,
    /// Its RX ring, if asked.
    pub rx: Option<RxRing>,
    /// Its TX ring, if asked.
    pub tx: Option<TxRing>,
}

impl QueueSocket {
    /// Sets up `fd` (from [`raw_socket`]) as `plan` says.
    pub fn open(fd: OwnedFd, ifname: &str, plan: &QueuePlan) -> Result<OpenQueue, AfPacketError> {
        let s = plan.sizes;
        let mut bypass = false;
        if plan.tx && plan.qdisc_bypass {
            let on: libc::c_int = 1;
            match set_opt(&fd, libc::PACKET_QDISC_BYPASS, &on) {
                Ok(()) => bypass = true,
                Err(e) => log::warn!(
                    "af_packet {ifname}: PACKET_QDISC_BYPASS refused ({e}); frames go through \
                     the qdisc (counted as tx_qdisc_bypass_refused)"
                ),
            }
        }
        if plan.tx {
            // A frame the kernel finds malformed is dropped and its slot
            // freed, rather than stopping the ring (TP_STATUS_WRONG_FORMAT
            // would block every later frame); we check lengths before.
            let on: libc::c_int = 1;
            set_opt(&fd, libc::PACKET_LOSS, &on)
                .map_err(|e| io_error("setsockopt(PACKET_LOSS)", ifname, e))?;
        }
        let ring_error = |which: &'static str, bytes: usize, e: io::Error| match e.raw_os_error() {
            Some(libc::ENOMEM) => AfPacketError::RingTooLarge {
                ifname: ifname.into(),
                which,
                bytes,
            },
            _ => io_error(which, ifname, e),
        };
        if plan.rx {
            let req = libc::tpacket_req3 {
                tp_block_size: s.rx_block_size as u32,
                tp_block_nr: s.rx_blocks as u32,
                tp_frame_size: s.rx_frame_size as u32,
                tp_frame_nr: (s.rx_block_size / s.rx_frame_size * s.rx_blocks) as u32,
                tp_retire_blk_tov: plan.retire_ms,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            set_opt(&fd, libc::PACKET_RX_RING, &req)
                .map_err(|e| ring_error("PACKET_RX_RING", s.rx_bytes(), e))?;
        }
        if plan.tx {
            // A V3 TX ring is fixed-size frames like V2's; the block
            // fields must be zero.
            let req = libc::tpacket_req3 {
                tp_block_size: s.tx_block_size as u32,
                tp_block_nr: (s.tx_bytes() / s.tx_block_size) as u32,
                tp_frame_size: s.tx_frame_size as u32,
                tp_frame_nr: s.tx_frames as u32,
                tp_retire_blk_tov: 0,
                tp_sizeof_priv: 0,
                tp_feature_req_word: 0,
            };
            set_opt(&fd, libc::PACKET_TX_RING, &req)
                .map_err(|e| ring_error("PACKET_TX_RING", s.tx_bytes(), e))?;
        }
        let rx_bytes = if plan.rx { s.rx_bytes() } else { 0 };
        let tx_bytes = if plan.tx { s.tx_bytes() } else { 0 };
        let (rx, tx) = if rx_bytes + tx_bytes > 0 {
            let map = Arc::new(
                Mapping::new(fd.as_fd(), rx_bytes + tx_bytes)
                    .map_err(|e| ring_error("mmap of the rings", rx_bytes + tx_bytes, e))?,
            );
            // SAFETY: the kernel maps the RX ring (if any) at offset 0
            // and the TX ring right after it, with the geometries asked
            // above; each ring gets one owner here.
            let rx = plan.rx.then(|| unsafe {
                RxRing::new(
                    Arc::clone(&map),
                    Geometry {
                        size: s.rx_block_size,
                        count: s.rx_blocks,
                    },
                )
            });
            // SAFETY: as above.
            let tx = plan.tx.then(|| unsafe {
                TxRing::new(
                    Arc::clone(&map),
                    rx_bytes,
                    Geometry {
                        size: s.tx_frame_size,
                        count: s.tx_frames,
                    },
                )
            });
            (rx, tx)
        } else {
            (None, None)
        };
        // Bound to the interface last, now that the rings exist. A socket
        // without an RX ring binds protocol 0: it receives nothing (the
        // kernel still sends through it, taking each frame's protocol from
        // its header), so no frame piles up unread in its buffer.
        // SAFETY: sockaddr_ll is plain old data; all zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = if plan.rx { ETH_P_ALL_BE } else { 0 };
        sll.sll_ifindex = plan.ifindex;
        // SAFETY: sll is a valid sockaddr_ll and its size is passed; the
        // kernel only reads it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ENODEV) {
                AfPacketError::NoSuchInterface(ifname.into())
            } else {
                io_error("bind", ifname, e)
            });
        }
        Ok(OpenQueue {
            socket: Arc::new(QueueSocket {
                fd,
                kernel_drops: AtomicU64::new(0),
                kernel_freezes: AtomicU64::new(0),
                qdisc_bypass: bypass,
            }),
            rx,
            tx,
        })
    }

    /// Joins the fanout group `id` (PACKET_FANOUT_HASH: the kernel sends
    /// each flow to one socket of the group, by its flow hash), or, with
    /// `id` `None`, makes a new group with an id unique in the network
    /// namespace (PACKET_FANOUT_FLAG_UNIQUEID) and returns it.
    pub fn join_fanout(&self, ifname: &str, id: Option<u16>) -> Result<u16, AfPacketError> {
        let flags = match id {
            Some(_) => libc::PACKET_FANOUT_HASH,
            None => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_UNIQUEID,
        };
        // The option's value: the group id in the low 16 bits, type and
        // flags in the high 16 (packet(7), PACKET_FANOUT).
        let arg: u32 = u32::from(id.unwrap_or(0)) | (flags << 16);
        set_opt(&self.fd, libc::PACKET_FANOUT, &arg).map_err(|e| AfPacketError::Fanout {
            ifname: ifname.into(),
            source: e,
        })?;
        if let Some(id) = id {
            return Ok(id);
        }
        // The id the kernel chose, read back.
        let mut got: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: got and len are valid for writes of their sizes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut got as *mut u32).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(AfPacketError::Fanout {
                ifname: ifname.into(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(got as u16)
    }

    /// Reads the kernel's RX counters (which resets them) into the sums.
    /// Control path only.
    pub fn update_kernel_stats(&self) {
        // SAFETY: tpacket_stats_v3 is plain old data; zero is valid.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st and len are valid for writes of their sizes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            // fetch_add: several control threads may read at once, and
            // each read returned its own share.
            self.kernel_drops
                .fetch_add(u64::from(st.tp_drops), Ordering::Relaxed);
            self.kernel_freezes
                .fetch_add(u64::from(st.tp_freeze_q_cnt), Ordering::Relaxed);
        }
    }

    /// Asks the kernel to send the frames waiting in the TX ring, without
    /// waiting: `send(fd, NULL, 0, MSG_DONTWAIT)`. Err: the errno.
    pub fn kick(&self) -> Result<(), i32> {
        // SAFETY: a zero-length send with no buffer: the kernel reads the
        // TX ring, which is mapped and sized, not the (null) buffer.
        let rc =
            unsafe { libc::send(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if rc >= 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        }
    }
}
