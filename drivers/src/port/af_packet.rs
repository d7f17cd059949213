//! The AF_PACKET port: a kernel network interface seen through a raw packet
//! socket (`socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))` bound to one
//! interface).
//!
//! It is a software port for tests and slow paths: every packet is one
//! `recvfrom`/`send` system call (no PACKET_MMAP ring yet), non-blocking
//! (`MSG_DONTWAIT`). One RX and one TX queue share the socket.
//!
//! - RX receives straight into the data room of a buffer from the
//!   [`PoolCache`]. Frames larger than the data room are truncated by the
//!   kernel; `MSG_TRUNC` makes `recvfrom` return the real length, so such a
//!   frame is dropped and counted ([`AfPacketRxCounters::truncated`]).
//! - Frames the socket sees because this host sent them (`sll_pkttype ==
//!   PACKET_OUTGOING`, including this port's own sends) are skipped and
//!   counted ([`AfPacketRxCounters::outgoing`]).
//! - TX sends each buffer as one frame and frees it. A full socket buffer
//!   (`EAGAIN`/`ENOBUFS`) leaves the rest of the burst with the caller; a
//!   frame the kernel refuses (`EMSGSIZE` above the MTU, `ENETDOWN`, ...) is
//!   freed and counted in `dropped` (reported as `oerrors`).

use super::{
    check_queue_counts, Capabilities, LinkState, Port, PortError, PortInfo, PortStats,
    QueueCounters, QueueSet, RxQueue, TxQueue, XStat,
};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::pool::PoolCache;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// ETH_P_ALL in network byte order, as socket() and bind() take it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// Receive buffer asked for (SO_RCVBUFFORCE as root, else SO_RCVBUF capped
/// by net.core.rmem_max): room for a few thousand frames between polls.
const RCVBUF_BYTES: libc::c_int = 8 << 20;
/// Largest frame the kernel hands an AF_PACKET socket (64 KiB).
const MAX_FRAME: usize = 65535;

/// Why an AF_PACKET port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The interface name is not valid (empty, too long or with a NUL).
    #[error("af_packet: {0:?} is not a valid interface name (1 to 15 bytes, no NUL)")]
    BadName(String),
    /// No interface with that name.
    #[error(
        "af_packet: no such interface {0:?}: check `ip link show` (and the network namespace)"
    )]
    NoSuchInterface(String),
    /// Raw sockets need privileges.
    #[error("af_packet: socket(AF_PACKET, SOCK_RAW) for {0:?} not permitted: run as root or give the binary CAP_NET_RAW (`setcap cap_net_raw+ep <binary>`)")]
    NotPermitted(String),
    /// Another system call failed.
    #[error("af_packet: {op} on {ifname:?}: {source}")]
    Io {
        /// The call.
        op: &'static str,
        /// Interface.
        ifname: String,
        /// errno.
        source: io::Error,
    },
}

/// Counters of the RX queue (single writer: the queue's owner).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct AfPacketRxCounters {
    /// Frames and bytes delivered; `dropped` = frames not read for want of
    /// a buffer (counted once per burst that found the pool empty).
    pub q: QueueCounters,
    /// Frames larger than the buffer's data room, dropped.
    pub truncated: AtomicU64,
    /// Frames this host sent (PACKET_OUTGOING), skipped.
    pub outgoing: AtomicU64,
    /// recvfrom errors other than "nothing to read".
    pub errors: AtomicU64,
}

#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    ifindex: libc::c_int,
}

/// An AF_PACKET port on one interface.
#[derive(Debug)]
pub struct AfPacketPort {
    info: PortInfo,
    ifname: String,
    sock: Arc<Socket>,
    rx: Option<Arc<AfPacketRxCounters>>,
    tx: Option<Arc<QueueCounters>>,
    given: bool,
}

fn last_error(op: &'static str, ifname: &str) -> AfPacketError {
    AfPacketError::Io {
        op,
        ifname: ifname.to_string(),
        source: io::Error::last_os_error(),
    }
}

fn sysfs_read(ifname: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{attr}"))
        .ok()
        .map(|s| s.trim().to_string())
}

impl AfPacketPort {
    /// Open a raw socket bound to interface `ifname`. `max_rx_frame` is
    /// what [`PortInfo::capabilities`] reports (the data room of the pool
    /// the RX queue will be given).
    pub fn open(
        id: PortId,
        ifname: &str,
        max_rx_frame: usize,
    ) -> Result<AfPacketPort, AfPacketError> {
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(AfPacketError::BadName(ifname.to_string()));
        }
        let cname = CString::new(ifname).map_err(|_| AfPacketError::BadName(ifname.to_string()))?;
        // SAFETY: cname is a valid NUL-terminated string that outlives the
        // call; if_nametoindex only reads it.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfPacketError::NoSuchInterface(ifname.to_string()));
        }
        // SAFETY: plain system call with constant arguments; the result is
        // checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                ETH_P_ALL_BE as libc::c_int,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => AfPacketError::NotPermitted(ifname.into()),
                _ => AfPacketError::Io {
                    op: "socket",
                    ifname: ifname.into(),
                    source: e,
                },
            });
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ifindex = ifindex as libc::c_int;
        // SAFETY: sockaddr_ll is plain old data; all zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL_BE;
        sll.sll_ifindex = ifindex;
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
                AfPacketError::Io {
                    op: "bind",
                    ifname: ifname.into(),
                    source: e,
                }
            });
        }
        let size = RCVBUF_BYTES;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: size is a c_int that outlives the call, its length is
            // passed; the kernel only reads it.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
            if opt == libc::SO_RCVBUF {
                return Err(last_error("setsockopt(SO_RCVBUF)", ifname));
            }
        }
        let mac = sysfs_read(ifname, "address")
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        Ok(AfPacketPort {
            info: PortInfo {
                id,
                name: ifname.to_string(),
                kind: "af_packet",
                mac,
                capabilities: Capabilities {
                    max_rx_queues: 1,
                    max_tx_queues: 1,
                    max_rx_frame: max_rx_frame.min(MAX_FRAME),
                },
            },
            ifname: ifname.to_string(),
            sock: Arc::new(Socket { fd, ifindex }),
            rx: None,
            tx: None,
            given: false,
        })
    }

    /// The interface's kernel index.
    pub fn ifindex(&self) -> i32 {
        self.sock.ifindex
    }

    /// Counters of the RX queue, once handed out.
    pub fn rx_counters(&self) -> Option<&Arc<AfPacketRxCounters>> {
        self.rx.as_ref()
    }
}

impl Port for AfPacketPort {
    type Rx = AfPacketRx;
    type Tx = AfPacketTx;

    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn link(&self) -> LinkState {
        let up = sysfs_read(&self.ifname, "carrier").as_deref() == Some("1");
        let speed_mbps = sysfs_read(&self.ifname, "speed")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|&s| s > 0)
            .map_or(0, |s| s.min(u32::MAX as i64) as u32);
        LinkState {
            up,
            speed_mbps,
            full_duplex: sysfs_read(&self.ifname, "duplex").as_deref() == Some("full"),
        }
    }

    fn stats(&self) -> PortStats {
        let g = QueueCounters::get;
        let mut s = PortStats::default();
        if let Some(rx) = &self.rx {
            s.ipackets = g(&rx.q.packets);
            s.ibytes = g(&rx.q.bytes);
            s.rx_nombuf = g(&rx.q.dropped);
            // Frames received but not delivered: too long, or a failed read.
            s.ierrors = g(&rx.truncated) + g(&rx.errors);
        }
        if let Some(tx) = &self.tx {
            s.opackets = g(&tx.packets);
            s.obytes = g(&tx.bytes);
            s.oerrors = g(&tx.dropped);
        }
        s
    }

    /// The RX drops by reason (their sum is `ierrors`), and the frames
    /// this host sent that the socket also saw, skipped (not a drop: the
    /// kernel shows a socket the interface's outgoing frames too).
    fn xstats(&self) -> Vec<XStat> {
        let Some(rx) = &self.rx else {
            return Vec::new();
        };
        let g = QueueCounters::get;
        vec![
            ("rx_frame_too_long", g(&rx.truncated)),
            ("rx_read_errors", g(&rx.errors)),
            ("rx_own_outgoing_packets", g(&rx.outgoing)),
        ]
    }

    fn queues(
        &mut self,
        rx: usize,
        tx: usize,
    ) -> Result<QueueSet<AfPacketRx, AfPacketTx>, PortError> {
        if self.given {
            return Err(PortError::AlreadyStarted(self.info.name.clone()));
        }
        check_queue_counts(&self.info, rx, tx)?;
        self.given = true;
        let mut rxq = Vec::new();
        if rx == 1 {
            let c = Arc::new(AfPacketRxCounters::default());
            self.rx = Some(Arc::clone(&c));
            rxq.push(AfPacketRx {
                sock: Arc::clone(&self.sock),
                port: self.info.id,
                counters: c,
            });
        }
        let mut txq = Vec::new();
        if tx == 1 {
            let c = Arc::new(QueueCounters::default());
            self.tx = Some(Arc::clone(&c));
            txq.push(AfPacketTx {
                sock: Arc::clone(&self.sock),
                counters: c,
            });
        }
        Ok((rxq, txq))
    }
}

/// Receive queue of an [`AfPacketPort`].
#[derive(Debug)]
pub struct AfPacketRx {
    sock: Arc<Socket>,
    port: PortId,
    counters: Arc<AfPacketRxCounters>,
}

/// What one recvfrom gave.
enum Recv {
    /// A frame of this many bytes (possibly more than the buffer).
    Frame(usize, u8),
    /// Nothing queued.
    Empty,
    /// Another error.
    Error,
}

impl AfPacketRx {
    fn recv_into(&self, buf: &mut [u8]) -> Recv {
        // SAFETY: sockaddr_ll is plain old data; all zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf is a writable slice of buf.len() bytes; from and
        // from_len are valid for writes of their sizes. MSG_TRUNC only
        // changes the return value, never how much is written.
        let n = unsafe {
            libc::recvfrom(
                self.sock.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Recv::Empty,
                _ => Recv::Error,
            };
        }
        Recv::Frame(n as usize, from.sll_pkttype)
    }

    /// Counters of this queue.
    pub fn counters(&self) -> &Arc<AfPacketRxCounters> {
        &self.counters
    }
}

impl RxQueue for AfPacketRx {
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let max = max.min(out.remaining_capacity());
        let c = &*self.counters;
        let (mut n, mut bytes) = (0usize, 0u64);
        let (mut trunc, mut outgoing, mut errors) = (0u64, 0u64, 0u64);
        let mut spare = None;
        while n < max {
            let Some(mut m) = spare.take().or_else(|| cache.alloc()) else {
                QueueCounters::add(&c.q.dropped, 1);
                break;
            };
            let room = m.len() + m.tailroom();
            if m.set_len(room).is_err() {
                // Cannot happen: room is what the buffer holds from its start.
                cache.free(m);
                break;
            }
            match self.recv_into(m.data_mut()) {
                Recv::Empty => {
                    spare = Some(m);
                    break;
                }
                Recv::Error => {
                    errors += 1;
                    spare = Some(m);
                    break;
                }
                Recv::Frame(_, libc::PACKET_OUTGOING) => {
                    outgoing += 1;
                    spare = Some(m);
                }
                Recv::Frame(len, _) if len > room => {
                    trunc += 1;
                    spare = Some(m);
                }
                Recv::Frame(len, _) => {
                    // Cannot fail: len <= room.
                    let _ = m.set_len(len);
                    m.set_port(self.port);
                    bytes += len as u64;
                    // Cannot fail: n < max <= remaining capacity.
                    let _ = out.try_push(m);
                    n += 1;
                }
            }
        }
        if let Some(m) = spare {
            cache.free(m);
        }
        if n > 0 {
            QueueCounters::add(&c.q.packets, n as u64);
            QueueCounters::add(&c.q.bytes, bytes);
        }
        for (counter, v) in [
            (&c.truncated, trunc),
            (&c.outgoing, outgoing),
            (&c.errors, errors),
        ] {
            if v > 0 {
                QueueCounters::add(counter, v);
            }
        }
        n
    }
}

/// Transmit queue of an [`AfPacketPort`].
#[derive(Debug)]
pub struct AfPacketTx {
    sock: Arc<Socket>,
    counters: Arc<QueueCounters>,
}

impl TxQueue for AfPacketTx {
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let (mut done, mut sent, mut bytes, mut refused) = (0usize, 0u64, 0u64, 0u64);
        for m in pkts.iter() {
            let data = m.data();
            // SAFETY: data is a readable slice of data.len() bytes; the
            // socket is bound, so send needs no address.
            let rc = unsafe {
                libc::send(
                    self.sock.fd.as_raw_fd(),
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if rc >= 0 {
                sent += 1;
                bytes += data.len() as u64;
            } else {
                match io::Error::last_os_error().raw_os_error() {
                    // No room in the socket or the device queue: the rest
                    // stays with the caller.
                    Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => break,
                    // Refused for good (too long, link down, ...): dropped.
                    _ => refused += 1,
                }
            }
            done += 1;
        }
        for m in pkts.drain(..done) {
            cache.free(m);
        }
        let c = &*self.counters;
        QueueCounters::add(&c.packets, sent);
        QueueCounters::add(&c.bytes, bytes);
        if refused > 0 {
            QueueCounters::add(&c.dropped, refused);
        }
        sent as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBacking;
    use crate::pool::{Pool, PoolConfig};
    use std::time::{Duration, Instant};

    #[test]
    fn unknown_interface_is_named() {
        let err = AfPacketPort::open(PortId(0), "nosuchif0", 2048).unwrap_err();
        assert!(matches!(err, AfPacketError::NoSuchInterface(_)), "{err}");
        assert!(err.to_string().contains("ip link show"), "{err}");
        let err = AfPacketPort::open(PortId(0), "a-name-far-too-long", 2048).unwrap_err();
        assert!(matches!(err, AfPacketError::BadName(_)), "{err}");
    }

    fn frame(dst: [u8; 6], len: usize, seq: u32) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xaf, 0x01]);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f[14..18].copy_from_slice(b"AFPT");
        f[18..22].copy_from_slice(&seq.to_be_bytes());
        f
    }

    /// Two ports on `lo`: one sends, the other receives each frame once;
    /// the sender does not see its own sends (PACKET_OUTGOING); a frame
    /// larger than the buffer is dropped and counted. Needs CAP_NET_RAW.
    #[test]
    fn loopback_send_receive_truncate() {
        let mut a = match AfPacketPort::open(PortId(0), "lo", 2048) {
            Ok(p) => p,
            Err(AfPacketError::NotPermitted(_)) => {
                crate::skip_test!("an AF_PACKET socket needs CAP_NET_RAW (run as root)");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let mut b = AfPacketPort::open(PortId(1), "lo", 2048).unwrap();
        let pool = Pool::new(&PoolConfig::new("afp-test", 512).with_backing(MemoryBacking::NoHuge))
            .unwrap();
        let mut cache = pool.cache();
        let (mut arx, mut atx) = a.queues(1, 1).unwrap();
        let (mut brx, _btx) = b.queues(1, 0).unwrap();
        assert!(b.queues(1, 1).is_err());
        let dst = [0x02, 0, 0, 0, 0xaf, 0x02];
        let n = 64u32;
        let mut burst = Burst::new();
        for seq in 0..n {
            let mut m = cache.alloc().unwrap();
            let f = frame(dst, 60 + seq as usize * 7, seq);
            m.append(f.len()).unwrap().copy_from_slice(&f);
            burst.push(m);
        }
        assert_eq!(atx[0].tx_burst(&mut cache, &mut burst), n as usize);
        assert!(burst.is_empty());
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Burst::new();
        while seen.len() < n as usize && Instant::now() < deadline {
            brx[0].rx_burst(&mut cache, &mut got, 32);
            for m in got.drain(..) {
                let d = m.data();
                if d.len() >= 22 && d[..6] == dst && &d[14..18] == b"AFPT" {
                    let seq = u32::from_be_bytes(d[18..22].try_into().unwrap());
                    assert_eq!(d, &frame(dst, d.len(), seq)[..]);
                    seen.push(seq);
                }
                cache.free(m);
            }
        }
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        // The kernel shows a socket's outgoing copies to the other sockets
        // (b skipped them: each frame was seen once, not twice), never to
        // the sender; lo's looped-back incoming copies reach both.
        let mut own = 0;
        for _ in 0..8 {
            arx[0].rx_burst(&mut cache, &mut got, 64);
            own += got.len();
            for m in got.drain(..) {
                cache.free(m);
            }
        }
        assert!(own <= n as usize, "own sends seen twice: {own}");
        assert!(QueueCounters::get(&brx[0].counters().outgoing) >= n as u64);
        assert_eq!(a.stats().opackets, n as u64);

        // Truncation: a 4000-byte frame (lo's MTU is 65536) into 2048-byte
        // buffers, then one of exactly 2048 that fits.
        let mut m = cache.alloc().unwrap();
        let f = frame(dst, 2048, 999);
        m.append(f.len()).unwrap().copy_from_slice(&f);
        let big = frame(dst, 4000, 1000);
        // SAFETY: big is a readable buffer of big.len() bytes; the socket
        // is bound, so send needs no address.
        let rc = unsafe {
            libc::send(
                a.sock.fd.as_raw_fd(),
                big.as_ptr().cast(),
                big.len(),
                libc::MSG_DONTWAIT,
            )
        };
        assert_eq!(rc, big.len() as isize);
        let mut one = Burst::new();
        one.push(m);
        assert_eq!(atx[0].tx_burst(&mut cache, &mut one), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got_2048 = false;
        while !got_2048 && Instant::now() < deadline {
            brx[0].rx_burst(&mut cache, &mut got, 32);
            for m in got.drain(..) {
                got_2048 |= m.len() == 2048 && m.data()[14..18] == *b"AFPT";
                cache.free(m);
            }
        }
        assert!(got_2048);
        assert!(QueueCounters::get(&brx[0].counters().truncated) >= 1);
        // The drop shows in the port's statistics, by reason and in total.
        let too_long = QueueCounters::get(&brx[0].counters().truncated);
        let xstats = b.xstats();
        assert!(
            xstats.contains(&("rx_frame_too_long", too_long)),
            "{xstats:?}"
        );
        assert_eq!(
            b.stats().ierrors,
            too_long + QueueCounters::get(&brx[0].counters().errors)
        );
        drop((arx, atx, brx, _btx));
        drop(cache);
        assert_eq!(pool.available(), 512, "every buffer back");
    }
}
