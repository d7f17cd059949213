//! The AF_PACKET port: a kernel network interface (a veth, a VF on its
//! kernel driver, `lo`) through packet sockets with memory-mapped rings
//! (PACKET_MMAP), as DPDK's net_af_packet drives one.
//!
//! - One socket per queue pair. With several RX queues the sockets join
//!   one PACKET_FANOUT group (PACKET_FANOUT_HASH, an id the kernel makes
//!   unique: PACKET_FANOUT_FLAG_UNIQUEID), so each flow reaches one queue
//!   and each worker polls its own.
//! - RX: a TPACKET_V3 ring of blocks ([`AfPacketConfig`]: block size and
//!   count, retire timeout). The kernel fills a block with frames back to
//!   back and hands it over when full or timed out; the RX queue walks its
//!   packets ([`block`], every kernel offset checked against the block,
//!   a bad one counted as `rx_bad_block_descriptors`), copies each into a
//!   buffer from the [`PoolCache`] (as net_af_packet does), and gives the
//!   block back once walked. An 802.1Q tag the kernel took off the frame
//!   is put back. Frames this host sent (PACKET_OUTGOING) are skipped and
//!   counted, frames larger than a buffer (or cut by the kernel,
//!   tp_snaplen < tp_len) are dropped and counted (`rx_frame_too_long`),
//!   and the kernel's own drops for a full ring (PACKET_STATISTICS
//!   tp_drops, tp_freeze_q_cnt) are port counters.
//! - TX: a TPACKET_V3 TX ring on the same socket (the packet version is
//!   per socket, and a V3 TX ring is V2's fixed-size frames with the V3
//!   header, so RX V3 costs TX nothing). Each buffer is copied into a
//!   free frame and freed; one `send(fd, NULL, 0, MSG_DONTWAIT)` per burst
//!   asks the kernel to send them. Frames still the kernel's are counted
//!   (`tx_ring_in_flight_packets`, a gauge). PACKET_QDISC_BYPASS is asked
//!   for; a refusal is logged and counted (`tx_qdisc_bypass_refused`).
//!   With the bypass a device queue that is full drops the frame the
//!   kernel was handing it (the device counts it, not us: the kick only
//!   says ENOBUFS, and the frames after it go at the next kick), as with
//!   net_af_packet's `qdisc_bypass`.
//!   A frame the interface cannot take (shorter than an Ethernet header,
//!   longer than the MTU or a frame slot) is freed and counted
//!   (`tx_bad_length`).
//!
//! No buffer stays with the port: RX fills buffers only as it hands them
//! out, TX frees each once copied, so a stop loses none.

mod block;
mod config;
pub mod partial_csum;
mod ring;
mod socket;

pub use block::{BadBlock, BlockCursor, BlockPacket};
pub use config::{
    AfPacketConfig, RingConfigError, RingSizes, DEFAULT_RX_BLOCKS, DEFAULT_RX_BLOCK_SIZE,
    DEFAULT_RX_RETIRE_MS, DEFAULT_TX_FRAMES, MAX_BLOCK_SIZE, MAX_QUEUES, MAX_SLOTS,
};

use super::{
    check_queue_counts, Capabilities, LinkState, MulticastOutcome, Port, PortError, PortInfo,
    PortStats, QueueCounters, QueueSet, RxQueue, ServiceEvent, TxQueue, XStat,
};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, PortId};
use crate::net::MacAddr;
use crate::pool::PoolCache;
use ring::{FillError, RxRing, TxRing};
pub use socket::page_size;
use socket::{raw_socket, QueuePlan, QueueSocket};
use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest frame the kernel hands an AF_PACKET socket (64 KiB).
const MAX_FRAME: usize = 65535;
/// An Ethernet header: the shortest frame the kernel sends
/// (dev_validate_header against hard_header_len).
const ETH_HLEN: usize = 14;
/// What the kernel allows above the MTU on an Ethernet device: the header
/// and one VLAN tag (tpacket_snd: `dev->mtu + reserve + VLAN_HLEN`).
const MTU_OVERHEAD: usize = ETH_HLEN + 4;

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
    /// The kernel has no TPACKET_V3 (before Linux 3.2).
    #[error("af_packet: {ifname:?}: the kernel refused TPACKET_V3 ({source}); memory-mapped rings need Linux 3.2 or later (4.11 for the TX ring)")]
    NoTpacketV3 {
        /// Interface.
        ifname: String,
        /// errno.
        source: io::Error,
    },
    /// The ring sizes are not ones the kernel takes.
    #[error("af_packet: {ifname:?}: {source}")]
    Ring {
        /// Interface.
        ifname: String,
        /// What is wrong.
        source: RingConfigError,
    },
    /// The kernel could not allocate (or map) a ring.
    #[error(
        "af_packet: {ifname:?}: {which}: the kernel could not allocate {bytes} bytes of ring \
         memory; ask for fewer or smaller RX blocks or fewer TX frames (or fewer queues), or \
         free memory"
    )]
    RingTooLarge {
        /// Interface.
        ifname: String,
        /// The ring ("PACKET_RX_RING", "PACKET_TX_RING", "mmap of the rings").
        which: &'static str,
        /// Its size.
        bytes: usize,
    },
    /// The fanout group could not be made or joined.
    #[error("af_packet: {ifname:?}: PACKET_FANOUT: {source}; several queues need a kernel with fanout groups (3.1, unique ids 4.3); run with one queue (one worker) otherwise")]
    Fanout {
        /// Interface.
        ifname: String,
        /// errno.
        source: io::Error,
    },
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

/// Counters of one RX queue (single writer: the queue's owner).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct AfPacketRxCounters {
    /// Frames and bytes delivered; `dropped` = bursts that found the pool
    /// empty (the frame stays in the ring for the next burst).
    pub q: QueueCounters,
    /// Frames larger than a buffer, or cut by the kernel, dropped.
    pub truncated: AtomicU64,
    /// Frames this host sent (PACKET_OUTGOING), skipped.
    pub outgoing: AtomicU64,
    /// Frames whose UDP or TCP checksum the sender left unfinished
    /// (TP_STATUS_CSUMNOTREADY), finished here ([`partial_csum`]).
    pub checksums_completed: AtomicU64,
    /// Blocks (or their rests) abandoned because an offset in them pointed
    /// outside the block.
    pub bad_blocks: AtomicU64,
    /// Blocks walked and given back to the kernel.
    pub blocks: AtomicU64,
}

/// Counters of one TX queue (single writer: the queue's owner).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct AfPacketTxCounters {
    /// Frames and bytes handed to the kernel's ring; `dropped` = frames
    /// of a length the interface cannot take, freed.
    pub q: QueueCounters,
    /// Frames handed to the kernel and not yet given back, as of the
    /// queue's last burst (a gauge).
    pub in_flight: AtomicU64,
    /// Frames the kernel found malformed (TP_STATUS_WRONG_FORMAT).
    pub refused: AtomicU64,
    /// `send` kicks that failed other than for a full device queue.
    pub kick_errors: AtomicU64,
}

/// An AF_PACKET port on one interface.
#[derive(Debug)]
pub struct AfPacketPort {
    info: PortInfo,
    ifname: String,
    ifindex: libc::c_int,
    config: AfPacketConfig,
    sizes: RingSizes,
    /// Largest frame TX sends: the MTU plus header and tag, capped by a
    /// slot's room in each queue. Shared with the TX queues (one relaxed
    /// load per burst: it carries no other data) and refreshed from the
    /// interface's MTU by [`Port::service`], so an MTU change (`ip link
    /// set .. mtu 9000`) reaches the queues within one housekeeping round.
    tx_max: Arc<AtomicUsize>,
    /// The first queue's socket, made at open so that the errors an
    /// operator can fix (permission, kernel) show there.
    first: Option<OwnedFd>,
    sockets: Vec<Arc<QueueSocket>>,
    rx: Vec<Arc<AfPacketRxCounters>>,
    tx: Vec<Arc<AfPacketTxCounters>>,
    fanout: Option<u16>,
    given: bool,
    /// The socket holding the multicast memberships
    /// ([`Port::set_multicast`]); replaced whole at each change.
    multicast: Option<OwnedFd>,
}

/// The largest frame the kernel sends on `ifname`: its MTU plus the
/// Ethernet header and one tag; without a readable MTU, any size (the
/// queue's slot still caps it).
fn tx_max_for(ifname: &str) -> usize {
    sysfs_read(ifname, "mtu")
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(MAX_FRAME, |mtu| mtu.saturating_add(MTU_OVERHEAD))
}

fn sysfs_read(ifname: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/{attr}"))
        .ok()
        .map(|s| s.trim().to_string())
}

impl AfPacketPort {
    /// Opens interface `ifname` with the default rings
    /// ([`AfPacketConfig::default`]). `max_rx_frame` is the data room of
    /// the pool the RX queues will be given.
    pub fn open(
        id: PortId,
        ifname: &str,
        max_rx_frame: usize,
    ) -> Result<AfPacketPort, AfPacketError> {
        Self::open_with(id, ifname, max_rx_frame, &AfPacketConfig::default())
    }

    /// Opens interface `ifname` with rings sized by `config`. The sockets
    /// of the queues are made by [`Port::queues`], one per queue pair.
    pub fn open_with(
        id: PortId,
        ifname: &str,
        max_rx_frame: usize,
        config: &AfPacketConfig,
    ) -> Result<AfPacketPort, AfPacketError> {
        if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
            return Err(AfPacketError::BadName(ifname.to_string()));
        }
        let cname = CString::new(ifname).map_err(|_| AfPacketError::BadName(ifname.to_string()))?;
        let max_rx_frame = max_rx_frame.min(MAX_FRAME);
        let sizes =
            config
                .sizes(page_size(), max_rx_frame)
                .map_err(|source| AfPacketError::Ring {
                    ifname: ifname.into(),
                    source,
                })?;
        // SAFETY: cname is a valid NUL-terminated string that outlives the
        // call; if_nametoindex only reads it.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(AfPacketError::NoSuchInterface(ifname.to_string()));
        }
        let first = raw_socket(ifname)?;
        let mac = sysfs_read(ifname, "address")
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let tx_max = Arc::new(AtomicUsize::new(tx_max_for(ifname)));
        Ok(AfPacketPort {
            info: PortInfo {
                id,
                name: ifname.to_string(),
                kind: "af_packet",
                mac,
                capabilities: Capabilities {
                    max_rx_queues: MAX_QUEUES,
                    max_tx_queues: MAX_QUEUES,
                    max_rx_frame: max_rx_frame.min(sizes.rx_max_frame()),
                },
            },
            ifname: ifname.to_string(),
            ifindex: ifindex as libc::c_int,
            config: *config,
            sizes,
            tx_max,
            first: Some(first),
            sockets: Vec::new(),
            rx: Vec::new(),
            tx: Vec::new(),
            fanout: None,
            given: false,
            multicast: None,
        })
    }

    /// The interface's kernel index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The ring sizes asked of the kernel.
    pub fn sizes(&self) -> &RingSizes {
        &self.sizes
    }

    /// The fanout group the RX sockets joined (with two RX queues or
    /// more).
    pub fn fanout_group(&self) -> Option<u16> {
        self.fanout
    }

    /// Counters of each RX queue handed out, in queue order.
    pub fn rx_counters(&self) -> &[Arc<AfPacketRxCounters>] {
        &self.rx
    }

    /// Counters of each TX queue handed out, in queue order.
    pub fn tx_counters(&self) -> &[Arc<AfPacketTxCounters>] {
        &self.tx
    }

    /// Frames the kernel dropped because an RX ring was full, summed over
    /// the queues (reads the kernel's counters first).
    pub fn kernel_drops(&self) -> u64 {
        self.read_kernel_stats();
        self.sockets
            .iter()
            .map(|s| s.kernel_drops.load(Ordering::Relaxed))
            .sum()
    }

    fn read_kernel_stats(&self) {
        for s in &self.sockets {
            s.update_kernel_stats();
        }
    }

    /// [`Port::queues`] with the typed error: `rx` receive and `tx`
    /// transmit queues, one socket per pair (`max(rx, tx)` sockets).
    pub fn open_queues(
        &mut self,
        rx: usize,
        tx: usize,
    ) -> Result<QueueSet<AfPacketRx, AfPacketTx>, AfPacketError> {
        let mut rxq = Vec::with_capacity(rx);
        let mut txq = Vec::with_capacity(tx);
        for q in 0..rx.max(tx) {
            let fd = match self.first.take() {
                Some(fd) => fd,
                None => raw_socket(&self.ifname)?,
            };
            let plan = QueuePlan {
                ifindex: self.ifindex,
                rx: q < rx,
                tx: q < tx,
                sizes: self.sizes,
                retire_ms: self.config.rx_retire_ms,
                qdisc_bypass: self.config.qdisc_bypass,
            };
            let open = QueueSocket::open(fd, &self.ifname, &plan)?;
            if plan.rx && rx > 1 {
                self.fanout = Some(open.socket.join_fanout(&self.ifname, self.fanout)?);
            }
            if let Some(ring) = open.rx {
                let c = Arc::new(AfPacketRxCounters::default());
                self.rx.push(Arc::clone(&c));
                rxq.push(AfPacketRx {
                    ring,
                    _socket: Arc::clone(&open.socket),
                    port: self.info.id,
                    counters: c,
                    block: 0,
                    cursor: None,
                });
            }
            if let Some(ring) = open.tx {
                let c = Arc::new(AfPacketTxCounters::default());
                self.tx.push(Arc::clone(&c));
                txq.push(AfPacketTx {
                    max_len: Arc::clone(&self.tx_max),
                    room: ring.room(),
                    ring,
                    socket: Arc::clone(&open.socket),
                    counters: c,
                    head: 0,
                    tail: 0,
                    in_flight: 0,
                    kick_pending: false,
                });
            }
            self.sockets.push(open.socket);
        }
        Ok((rxq, txq))
    }
}

impl Port for AfPacketPort {
    type Rx = AfPacketRx;
    type Tx = AfPacketTx;

    /// The groups become memberships of a socket of the port's own, so
    /// the interface's device lets them through (a VF on its kernel
    /// driver filters multicast; a veth does not). The new socket is
    /// made before the old one closes, so groups in both lists never
    /// leave the device's list.
    fn set_multicast(&mut self, macs: &[MacAddr]) -> Result<MulticastOutcome, PortError> {
        crate::port::check_multicast(&self.info, macs)?;
        let fd = socket::multicast_socket(&self.ifname, self.ifindex, macs).map_err(|e| {
            PortError::Device {
                port: self.info.name.clone(),
                why: e.to_string(),
            }
        })?;
        self.multicast = Some(fd);
        Ok(MulticastOutcome::Exact)
    }

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
        for rx in &self.rx {
            s.ipackets += g(&rx.q.packets);
            s.ibytes += g(&rx.q.bytes);
            s.rx_nombuf += g(&rx.q.dropped);
            // Frames received but not delivered: too long, or in a block
            // whose offsets were bad.
            s.ierrors += g(&rx.truncated) + g(&rx.bad_blocks);
        }
        for tx in &self.tx {
            s.opackets += g(&tx.q.packets);
            s.obytes += g(&tx.q.bytes);
            s.oerrors += g(&tx.q.dropped) + g(&tx.refused);
        }
        s
    }

    /// The drops by reason (RX: their sum with `rx_nombuf` is what
    /// [`stats`](Port::stats) shows; the kernel's own are on top), the
    /// frames this host sent that the sockets also saw, skipped (not a
    /// drop), and the TX ring's state.
    fn xstats(&self) -> Vec<XStat> {
        if self.rx.is_empty() && self.tx.is_empty() {
            return Vec::new();
        }
        self.read_kernel_stats();
        let g = QueueCounters::get;
        let rx = |f: fn(&AfPacketRxCounters) -> &AtomicU64| -> u64 {
            self.rx.iter().map(|c| g(f(c))).sum()
        };
        let tx = |f: fn(&AfPacketTxCounters) -> &AtomicU64| -> u64 {
            self.tx.iter().map(|c| g(f(c))).sum()
        };
        let sock = |f: fn(&QueueSocket) -> &AtomicU64| -> u64 {
            self.sockets.iter().map(|s| g(f(s))).sum()
        };
        let bypass_refused = if self.config.qdisc_bypass {
            self.tx.len() as u64
                - self
                    .sockets
                    .iter()
                    .filter(|s| s.qdisc_bypass)
                    .count()
                    .min(self.tx.len()) as u64
        } else {
            0
        };
        vec![
            ("rx_frame_too_long", rx(|c| &c.truncated)),
            ("rx_bad_block_descriptors", rx(|c| &c.bad_blocks)),
            ("rx_own_outgoing_packets", rx(|c| &c.outgoing)),
            (
                "rx_checksum_completed_packets",
                rx(|c| &c.checksums_completed),
            ),
            ("rx_kernel_ring_full_drops", sock(|s| &s.kernel_drops)),
            ("rx_kernel_queue_freezes", sock(|s| &s.kernel_freezes)),
            ("tx_bad_length", tx(|c| &c.q.dropped)),
            ("tx_kernel_refused", tx(|c| &c.refused)),
            ("tx_kick_errors", tx(|c| &c.kick_errors)),
            ("tx_ring_in_flight_packets", tx(|c| &c.in_flight)),
            ("tx_qdisc_bypass_refused", bypass_refused),
        ]
    }

    /// Follows the interface's MTU: the TX queues send frames up to it.
    fn service(&mut self) -> Result<ServiceEvent, PortError> {
        // Relaxed: see `tx_max`.
        self.tx_max
            .store(tx_max_for(&self.ifname), Ordering::Relaxed);
        Ok(ServiceEvent::Idle)
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
        self.open_queues(rx, tx).map_err(|e| PortError::Device {
            port: self.info.name.clone(),
            why: e.to_string(),
        })
    }
}

/// Receive queue of an [`AfPacketPort`]: one socket's RX ring.
#[derive(Debug)]
pub struct AfPacketRx {
    ring: RxRing,
    _socket: Arc<QueueSocket>,
    port: PortId,
    counters: Arc<AfPacketRxCounters>,
    /// The block to read next.
    block: usize,
    /// Where the walk of `block` stands, when it was begun.
    cursor: Option<BlockCursor>,
}

impl AfPacketRx {
    /// Counters of this queue.
    pub fn counters(&self) -> &Arc<AfPacketRxCounters> {
        &self.counters
    }
}

/// What a burst counted, added to the queue's counters once.
#[derive(Default)]
struct RxTally {
    bytes: u64,
    truncated: u64,
    outgoing: u64,
    completed: u64,
    bad: u64,
    blocks: u64,
    nombuf: u64,
}

impl RxQueue for AfPacketRx {
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let max = max.min(out.remaining_capacity());
        let mut n = 0usize;
        let mut t = RxTally::default();
        let mut spare: Option<Mbuf> = None;
        while n < max {
            let i = self.block;
            // Borrows the ring only: the cursor and counters are other
            // fields.
            let Some(block) = self.ring.block(i) else {
                break;
            };
            let mut cursor = match self.cursor.take() {
                Some(c) => c,
                None => match BlockCursor::new(block) {
                    Ok(c) => c,
                    Err(_) => {
                        t.bad += 1;
                        BlockCursor::default()
                    }
                },
            };
            let mut block_done = false;
            let mut no_buffer = false;
            while n < max {
                let Some(mut m) = spare.take().or_else(|| cache.alloc()) else {
                    no_buffer = true;
                    break;
                };
                match cursor.next(block) {
                    None => {
                        spare = Some(m);
                        block_done = true;
                        break;
                    }
                    Some(Err(_)) => {
                        t.bad += 1;
                        spare = Some(m);
                        block_done = true;
                        break;
                    }
                    Some(Ok(p)) if p.pkttype == libc::PACKET_OUTGOING => {
                        t.outgoing += 1;
                        spare = Some(m);
                    }
                    Some(Ok(p)) => {
                        let len = p.len_with_tag();
                        // A fresh buffer: set_len fails past its data room.
                        if p.cut() || m.set_len(len).is_err() {
                            t.truncated += 1;
                            spare = Some(m);
                            continue;
                        }
                        if !p.copy_into(m.data_mut()) {
                            // A tagged frame shorter than two addresses.
                            t.bad += 1;
                            let _ = m.set_len(0);
                            spare = Some(m);
                            continue;
                        }
                        if p.csum_not_ready && partial_csum::complete(m.data_mut()) {
                            t.completed += 1;
                        }
                        m.set_port(self.port);
                        t.bytes += len as u64;
                        // Cannot fail: n < max <= remaining capacity.
                        let _ = out.try_push(m);
                        n += 1;
                    }
                }
            }
            // A block walked to its end is done even if the burst is full.
            if !block_done && cursor.left() == 0 {
                block_done = true;
            }
            if block_done {
                self.ring.release(i);
                self.block = (i + 1) % self.ring.count();
                t.blocks += 1;
            } else {
                self.cursor = Some(cursor);
            }
            if no_buffer {
                t.nombuf += 1;
                break;
            }
        }
        if let Some(m) = spare {
            cache.free(m);
        }
        let c = &*self.counters;
        if n > 0 {
            QueueCounters::add(&c.q.packets, n as u64);
            QueueCounters::add(&c.q.bytes, t.bytes);
        }
        for (counter, v) in [
            (&c.truncated, t.truncated),
            (&c.outgoing, t.outgoing),
            (&c.checksums_completed, t.completed),
            (&c.bad_blocks, t.bad),
            (&c.blocks, t.blocks),
            (&c.q.dropped, t.nombuf),
        ] {
            if v > 0 {
                QueueCounters::add(counter, v);
            }
        }
        n
    }
}

/// Transmit queue of an [`AfPacketPort`]: one socket's TX ring.
#[derive(Debug)]
pub struct AfPacketTx {
    ring: TxRing,
    socket: Arc<QueueSocket>,
    counters: Arc<AfPacketTxCounters>,
    /// Largest frame the interface takes (its MTU and header), kept up to
    /// date by the port's housekeeping.
    max_len: Arc<AtomicUsize>,
    /// Largest frame a slot of the ring holds.
    room: usize,
    /// Next frame to fill.
    head: usize,
    /// Oldest frame handed to the kernel and not seen back.
    tail: usize,
    /// Frames from `tail` to `head`.
    in_flight: usize,
    /// The last kick failed: frames wait in the ring for the next one.
    kick_pending: bool,
}

impl AfPacketTx {
    /// Counters of this queue.
    pub fn counters(&self) -> &Arc<AfPacketTxCounters> {
        &self.counters
    }

    /// Walks from the oldest frame in flight over those the kernel gave
    /// back. Returns how many it found malformed.
    fn reclaim(&mut self) -> u64 {
        let mut refused = 0;
        while self.in_flight > 0 {
            let st = self.ring.status_of(self.tail);
            if st & libc::TP_STATUS_WRONG_FORMAT != 0 {
                refused += 1;
                self.ring.reset(self.tail);
            } else if st != libc::TP_STATUS_AVAILABLE {
                break;
            }
            self.tail = (self.tail + 1) % self.ring.count();
            self.in_flight -= 1;
        }
        refused
    }
}

impl TxQueue for AfPacketTx {
    fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let refused = self.reclaim();
        let (mut done, mut sent, mut bytes, mut bad_len) = (0usize, 0u64, 0u64, 0u64);
        // Relaxed: the value carries no other data (see AfPacketPort::tx_max).
        let max_len = self.max_len.load(Ordering::Relaxed).min(self.room);
        for m in pkts.iter() {
            let data = m.data();
            if data.len() < ETH_HLEN || data.len() > max_len {
                bad_len += 1;
                done += 1;
                continue;
            }
            match self.ring.fill(self.head, data) {
                Ok(()) => {
                    self.head = (self.head + 1) % self.ring.count();
                    self.in_flight += 1;
                    sent += 1;
                    bytes += data.len() as u64;
                }
                // The ring is full: the rest stays with the caller.
                Err(FillError::Busy) => break,
                Err(FillError::TooLong) => bad_len += 1,
            }
            done += 1;
        }
        for m in pkts.drain(..done) {
            cache.free(m);
        }
        let c = &*self.counters;
        if sent > 0 || self.kick_pending {
            match self.socket.kick() {
                Ok(()) => self.kick_pending = false,
                Err(e) => {
                    // The frames stay requested: the next kick sends them.
                    self.kick_pending = true;
                    if !matches!(e, libc::EAGAIN | libc::ENOBUFS | libc::EINTR) {
                        QueueCounters::add(&c.kick_errors, 1);
                    }
                }
            }
        }
        if sent > 0 {
            QueueCounters::add(&c.q.packets, sent);
            QueueCounters::add(&c.q.bytes, bytes);
        }
        if bad_len > 0 {
            QueueCounters::add(&c.q.dropped, bad_len);
        }
        if refused > 0 {
            QueueCounters::add(&c.refused, refused);
        }
        // A gauge: stored, not added.
        c.in_flight.store(self.in_flight as u64, Ordering::Relaxed);
        sent as usize
    }
}

#[cfg(test)]
mod tests;
