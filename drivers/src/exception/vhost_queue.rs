//! The vhost-net backend: one TAP queue served by one vhost-net device,
//! its RX virtqueue (0: kernel to us) and TX virtqueue (1: us to the
//! kernel) in one anonymous mapping of our own that also holds the
//! buffers. That mapping is the device's whole memory table (one region,
//! addresses mapped 1:1), so frames are copied between it and the
//! caller's buffers: the pools' memory never has to be shown to the
//! kernel, and any pool's buffers can be sent.
//!
//! - RX: every descriptor is posted at start, one 2 KiB buffer each. With
//!   `VIRTIO_NET_F_MRG_RXBUF` (always acked: see [`super::vnet_features`])
//!   a frame spans `num_buffers` consecutive used entries; it is copied
//!   into one buffer from the [`PoolCache`], or dropped and counted
//!   ([`TapRxCounters::too_large`]) if larger than its data room, and the
//!   descriptors are posted again.
//! - TX: each frame is copied behind a zeroed 12-byte header into a free
//!   slot (one descriptor per slot, no chains); with no free slot the rest
//!   of the burst stays with the caller (the device has not caught up).
//!   Frames larger than a slot are dropped and counted in `dropped`.
//! - Notifications: the rings are polled (`VRING_AVAIL_F_NO_INTERRUPT`,
//!   call eventfds never read); the device is kicked after a publish when
//!   its used ring does not say NO_NOTIFY (REPORT, Q4: TX needs kicks,
//!   RX only when vhost ran out of buffers).

use super::ifreq;
use super::tap_queue::TapRxCounters;
use super::vhost_ioctl::{self as vh};
use super::virtq::{Virtq, DESC_F_WRITE, QUEUE_SIZE, RINGS_BYTES};
use super::vnet_features::{self as vf, FeatureError, NUM_BUFFERS_OFFSET};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

/// Bytes of one RX buffer (header included): small on purpose, frames
/// larger than this span several (MRG_RXBUF), as in the lab's test.
pub const RX_BUF: usize = 2048;
/// Largest frame sent through vhost-net (a 9 KB jumbo frame).
pub const MAX_TX_FRAME: usize = 9216;
/// Bytes of one TX slot: the 12-byte header and the largest frame,
/// rounded up to a cache line.
const TX_SLOT: usize = (vf::HDR_LEN_MRG + MAX_TX_FRAME).next_multiple_of(64);
const N: usize = QUEUE_SIZE as usize;
const RX_BUFS_OFFSET: usize = 2 * RINGS_BYTES;
const TX_SLOTS_OFFSET: usize = RX_BUFS_OFFSET + N * RX_BUF;
/// Bytes of one queue pair's mapping.
const MAP_BYTES: usize = TX_SLOTS_OFFSET + N * TX_SLOT;
const RX_VQ: u32 = 0;
const TX_VQ: u32 = 1;

/// A deliberately wrong setting, for the VM lab's tests that show each
/// silent loss the backend avoids really is one (a test that can fail).
#[cfg(fastpath_lab)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VhostTrap {
    /// Everything right.
    #[default]
    None,
    /// Leave the TAP's header size at its default (10) while the features
    /// make vhost-net use 12.
    NoVnetHdrSz,
    /// Ack bit 27 (VHOST_NET_F_VIRTIO_NET_HDR) as well.
    AckBit27,
    /// Ack VERSION_1 only, without MRG_RXBUF, with the same 2 KiB buffers.
    NoMrgRxbuf,
}

/// Why a vhost-net queue could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    /// A control call failed.
    #[error("{op}: {source}")]
    Call {
        /// The call.
        op: &'static str,
        /// errno.
        source: io::Error,
    },
    /// The device lacks a feature we need.
    #[error(transparent)]
    Features(#[from] FeatureError),
}

fn call(op: &'static str) -> impl FnOnce(io::Error) -> VhostError {
    move |source| VhostError::Call { op, source }
}

/// What both halves of a queue share. Dropped last by the second half.
#[derive(Debug)]
struct Shared {
    // Fields drop in this order: the vhost device first (closing it stops
    // its kernel worker), the memory it used last.
    vhost: OwnedFd,
    kicks: [OwnedFd; 2],
    _calls: [OwnedFd; 2],
    _tap: Arc<OwnedFd>,
    _mem: memmap2::MmapMut,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Detach both virtqueues from the TAP before the device closes.
        for q in [RX_VQ, TX_VQ] {
            let _ = vh::set_backend(self.vhost.as_fd(), q, -1);
        }
    }
}

/// Receive half of a vhost-net queue.
#[derive(Debug)]
pub struct VhostRx {
    sh: Arc<Shared>,
    vq: Virtq,
    bufs: *mut u8,
    hdr_len: usize,
    /// MRG_RXBUF acked: the header's `num_buffers` is meaningful (without
    /// it the field is not written by the kernel).
    mrg: bool,
    port: PortId,
    counters: Arc<TapRxCounters>,
}

/// Transmit half of a vhost-net queue.
#[derive(Debug)]
pub struct VhostTx {
    sh: Arc<Shared>,
    vq: Virtq,
    slots: *mut u8,
    hdr_len: usize,
    /// Descriptor ids not in flight.
    free: Vec<u16>,
    counters: Arc<QueueCounters>,
}

// SAFETY: `bufs`/`slots` point into the mapping that `sh` keeps alive;
// each half touches only its own virtqueue's buffers, through `&mut self`.
unsafe impl Send for VhostRx {}
// SAFETY: as for VhostRx.
unsafe impl Send for VhostTx {}

/// The features acked and header length used, for the caller to check.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    /// Features acked.
    pub acked: u64,
    /// Header length the TAP was given.
    pub hdr_len: usize,
}

/// The two halves of a queue, their counters, what was negotiated, and
/// the eventfds the device signals errors on (RX, TX).
type QueueParts = (
    VhostRx,
    VhostTx,
    Arc<TapRxCounters>,
    Arc<QueueCounters>,
    Negotiated,
    [Arc<OwnedFd>; 2],
);

/// Set up vhost-net device `vhost` on TAP queue `tap` (opened with
/// IFF_VNET_HDR) and hand out its two halves.
pub(super) fn queue(
    vhost: OwnedFd,
    tap: Arc<OwnedFd>,
    port: PortId,
    #[cfg(fastpath_lab)] trap: VhostTrap,
) -> Result<QueueParts, VhostError> {
    let fd = vhost.as_fd();
    vh::set_owner(fd).map_err(call("VHOST_SET_OWNER"))?;
    let offered = vh::features(fd).map_err(call("VHOST_GET_FEATURES"))?;
    #[allow(unused_mut)]
    let mut acked = vf::negotiate(offered)?;
    #[cfg(fastpath_lab)]
    match trap {
        VhostTrap::AckBit27 => acked |= offered & vf::VHOST_NET_F_VIRTIO_NET_HDR,
        VhostTrap::NoMrgRxbuf => acked &= !vf::VIRTIO_NET_F_MRG_RXBUF,
        _ => {}
    }
    vh::set_features(fd, acked).map_err(call("VHOST_SET_FEATURES"))?;
    let hdr_len = vf::vnet_hdr_len(acked);
    #[cfg(fastpath_lab)]
    let set_hdr = trap != VhostTrap::NoVnetHdrSz;
    #[cfg(not(fastpath_lab))]
    let set_hdr = true;
    if set_hdr {
        ifreq::tun_set_vnet_hdr_sz(tap.as_fd(), hdr_len).map_err(call("TUNSETVNETHDRSZ"))?;
    }

    let mut mem = memmap2::MmapMut::map_anon(MAP_BYTES).map_err(call("mmap"))?;
    let base = mem.as_mut_ptr();
    vh::set_mem_one(fd, base as u64, MAP_BYTES as u64).map_err(call("VHOST_SET_MEM_TABLE"))?;
    // SAFETY: the mapping is fresh (zeroed), page-aligned, MAP_BYTES long,
    // and moves into `Shared`, which both halves keep alive; the two ring
    // areas do not overlap each other or the buffers.
    let (mut rxq, txq) = unsafe { (Virtq::new(base), Virtq::new(base.add(RINGS_BYTES))) };
    // SAFETY: both offsets are inside the mapping (MAP_BYTES).
    let (bufs, slots) = unsafe { (base.add(RX_BUFS_OFFSET), base.add(TX_SLOTS_OFFSET)) };
    let kicks = [
        vh::eventfd().map_err(call("eventfd"))?,
        vh::eventfd().map_err(call("eventfd"))?,
    ];
    let calls = [
        vh::eventfd().map_err(call("eventfd"))?,
        vh::eventfd().map_err(call("eventfd"))?,
    ];
    let errs = [
        Arc::new(vh::eventfd().map_err(call("eventfd"))?),
        Arc::new(vh::eventfd().map_err(call("eventfd"))?),
    ];
    for (i, q) in [(RX_VQ, &rxq), (TX_VQ, &txq)] {
        let i_us = i as usize;
        vh::set_vring(
            fd,
            i,
            u32::from(QUEUE_SIZE),
            q.addrs(),
            vh::VringFds {
                kick: kicks[i_us].as_raw_fd(),
                call: calls[i_us].as_raw_fd(),
                err: errs[i_us].as_raw_fd(),
            },
        )
        .map_err(call("VHOST_SET_VRING_*"))?;
    }
    for id in 0..QUEUE_SIZE {
        let addr = bufs as u64 + u64::from(id) * RX_BUF as u64;
        rxq.set_desc(id, addr, RX_BUF as u32, DESC_F_WRITE);
        rxq.push_avail(id);
    }
    rxq.publish();
    for q in [RX_VQ, TX_VQ] {
        vh::set_backend(fd, q, tap.as_raw_fd()).map_err(call("VHOST_NET_SET_BACKEND"))?;
    }
    let sh = Arc::new(Shared {
        vhost,
        kicks,
        _calls: calls,
        _tap: tap,
        _mem: mem,
    });
    vh::signal(sh.kicks[RX_VQ as usize].as_fd());
    let rxc = Arc::new(TapRxCounters::default());
    let txc = Arc::new(QueueCounters::default());
    Ok((
        VhostRx {
            sh: Arc::clone(&sh),
            vq: rxq,
            bufs,
            hdr_len,
            mrg: acked & vf::VIRTIO_NET_F_MRG_RXBUF != 0,
            port,
            counters: Arc::clone(&rxc),
        },
        VhostTx {
            sh,
            vq: txq,
            slots,
            hdr_len,
            free: (0..QUEUE_SIZE).rev().collect(),
            counters: Arc::clone(&txc),
        },
        rxc,
        txc,
        Negotiated { acked, hdr_len },
        errs,
    ))
}

impl VhostRx {
    /// Counters of this queue.
    pub fn counters(&self) -> &Arc<TapRxCounters> {
        &self.counters
    }

    /// Buffer `id`'s first `len` bytes (`id < QUEUE_SIZE`, `len <=
    /// RX_BUF`, both checked by the caller) as a pointer.
    fn buf(&self, id: usize) -> *const u8 {
        // SAFETY: id < N, so the buffer is inside the RX buffer area.
        unsafe { self.bufs.add(id * RX_BUF) }
    }

    pub(super) fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let max = max.min(out.remaining_capacity());
        let c = &*self.counters;
        let (mut n, mut bytes, mut too_large, mut errors, mut reposted) = (0, 0u64, 0, 0, 0);
        let used = self.vq.used_idx();
        while n < max && self.vq.last_used != used {
            let ready = used.wrapping_sub(self.vq.last_used);
            let (id, len) = self.vq.used_elem(self.vq.last_used);
            let (id, len) = (id as usize, len as usize);
            if id >= N || len > RX_BUF || len < self.hdr_len {
                // Not something a working device writes: skip the entry
                // (its descriptor, if any, is not posted again).
                errors += 1;
                self.vq.last_used = self.vq.last_used.wrapping_add(1);
                continue;
            }
            // SAFETY: the header lies in buffer `id`, written by the device
            // before it published the used index (acquire in used_idx).
            let nb_le: u16 = unsafe {
                std::ptr::read_unaligned(self.buf(id).add(NUM_BUFFERS_OFFSET) as *const u16)
            };
            let nb = if self.mrg {
                usize::from(u16::from_le(nb_le)).max(1)
            } else {
                1
            };
            if nb > usize::from(ready) {
                // The device publishes a frame's buffers together; if not,
                // wait for the rest.
                break;
            }
            let Some(mut m) = cache.alloc() else {
                QueueCounters::add(&c.q.dropped, 1);
                break;
            };
            let room = m.len() + m.tailroom();
            // The frame's pieces: buffer id, bytes to skip (the header, in
            // the first), bytes of frame; read from the used ring, which
            // stays put until `last_used` moves past them.
            let piece = |k: usize| {
                let (pid, plen) = self.vq.used_elem(self.vq.last_used.wrapping_add(k as u16));
                let (pid, plen) = (pid as usize, plen as usize);
                let skip = if k == 0 { self.hdr_len } else { 0 };
                (pid < N && plen <= RX_BUF && plen >= skip).then_some((pid, skip, plen - skip))
            };
            let total = (0..nb).try_fold(0usize, |t, k| piece(k).map(|(_, _, l)| t + l));
            match total {
                None => {
                    errors += 1;
                    cache.free(m);
                }
                Some(total) if total > room => {
                    too_large += 1;
                    cache.free(m);
                }
                Some(total) => {
                    // Cannot fail: total <= room.
                    let _ = m.set_len(total);
                    let dst = m.data_mut().as_mut_ptr();
                    let mut at = 0;
                    for (pid, skip, plen) in (0..nb).filter_map(piece) {
                        // SAFETY: source: plen bytes from `skip` inside
                        // buffer pid (checked by `piece`), written by the
                        // device before the used index; destination: the
                        // mbuf's data, at + plen <= total <= room.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                self.buf(pid).add(skip),
                                dst.add(at),
                                plen,
                            )
                        };
                        at += plen;
                    }
                    m.set_port(self.port);
                    bytes += total as u64;
                    // Cannot fail: n < max <= remaining capacity.
                    let _ = out.try_push(m);
                    n += 1;
                }
            }
            for k in 0..nb {
                let (pid, _) = self.vq.used_elem(self.vq.last_used.wrapping_add(k as u16));
                if (pid as usize) < N {
                    self.vq.push_avail(pid as u16);
                    reposted += 1;
                }
            }
            self.vq.last_used = self.vq.last_used.wrapping_add(nb as u16);
        }
        if reposted > 0 && self.vq.publish() {
            vh::signal(self.sh.kicks[RX_VQ as usize].as_fd());
        }
        c.record(n as u64, bytes, too_large, errors);
        n
    }
}

impl VhostTx {
    /// Counters of this queue (`dropped`: frames too large for a slot).
    pub fn counters(&self) -> &Arc<QueueCounters> {
        &self.counters
    }

    /// Take back the slots the device is done with.
    fn reclaim(&mut self) {
        let used = self.vq.used_idx();
        while self.vq.last_used != used {
            let (id, _) = self.vq.used_elem(self.vq.last_used);
            if (id as usize) < N && self.free.len() < N {
                self.free.push(id as u16);
            }
            self.vq.last_used = self.vq.last_used.wrapping_add(1);
        }
    }

    pub(super) fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        self.reclaim();
        let (mut done, mut sent, mut bytes, mut too_large) = (0usize, 0u64, 0u64, 0u64);
        for m in pkts.iter() {
            let data = m.data();
            if self.hdr_len + data.len() > TX_SLOT {
                too_large += 1;
                done += 1;
                continue;
            }
            let Some(id) = self.free.pop() else {
                break;
            };
            // SAFETY: id < N, so the slot is inside the TX slot area, and
            // the device is not reading it (it was free); header and frame
            // fit (checked above).
            unsafe {
                let slot = self.slots.add(usize::from(id) * TX_SLOT);
                std::ptr::write_bytes(slot, 0, self.hdr_len);
                std::ptr::copy_nonoverlapping(data.as_ptr(), slot.add(self.hdr_len), data.len());
            }
            let addr = self.slots as u64 + u64::from(id) * TX_SLOT as u64;
            self.vq
                .set_desc(id, addr, (self.hdr_len + data.len()) as u32, 0);
            self.vq.push_avail(id);
            sent += 1;
            bytes += data.len() as u64;
            done += 1;
        }
        for m in pkts.drain(..done) {
            cache.free(m);
        }
        if sent > 0 && self.vq.publish() {
            vh::signal(self.sh.kicks[TX_VQ as usize].as_fd());
        }
        let c = &*self.counters;
        QueueCounters::add(&c.packets, sent);
        QueueCounters::add(&c.bytes, bytes);
        if too_large > 0 {
            QueueCounters::add(&c.dropped, too_large);
        }
        sent as usize
    }
}
