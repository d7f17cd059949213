//! The plain TAP backend: one queue of a multi-queue TAP, read and written
//! with `readv`/`write` on its non-blocking file descriptor, one frame per
//! system call (what the kernel's tun driver offers without vhost-net).
//!
//! - RX (kernel to us) reads each frame straight into the data room of a
//!   buffer from the [`PoolCache`], with one spare byte behind it in a
//!   second iovec: a frame that fills the spare byte did not fit and is
//!   dropped and counted ([`TapRxCounters::too_large`]); jumbo frames are
//!   not chained over several buffers.
//! - TX (us to the kernel) writes each buffer as one frame and frees it.
//!   `EAGAIN`/`ENOBUFS` leaves the rest of the burst with the caller (the
//!   TAP is full); a frame the kernel refuses for good is freed and counted
//!   in `dropped`.
//!
//! Frames the kernel could not queue for us because we read too slowly are
//! dropped by the kernel itself and counted in the TAP's `tx_dropped`
//! (drivers/net/tun.c, `tun_net_xmit`; shared/reference/vmlab/vhost
//! REPORT, Q2): [`ExceptionIface::kernel_dropped`](super::ExceptionIface::kernel_dropped)
//! reads it.

use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::pool::PoolCache;
use crate::port::QueueCounters;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Counters of one TAP RX queue (single writer: the queue's owner).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct TapRxCounters {
    /// Frames and bytes delivered; `dropped` = bursts cut short because
    /// the pool had no buffer (the frames stay queued in the kernel).
    pub q: QueueCounters,
    /// Frames larger than a buffer's data room, dropped.
    pub too_large: AtomicU64,
    /// `read` errors other than "nothing to read".
    pub errors: AtomicU64,
}

impl TapRxCounters {
    /// Add one burst's tally (only the owning queue calls this).
    pub(super) fn record(&self, packets: u64, bytes: u64, too_large: u64, errors: u64) {
        for (counter, v) in [
            (&self.q.packets, packets),
            (&self.q.bytes, bytes),
            (&self.too_large, too_large),
            (&self.errors, errors),
        ] {
            if v > 0 {
                QueueCounters::add(counter, v);
            }
        }
    }
}

/// Receive half of one TAP queue.
#[derive(Debug)]
pub struct TapRx {
    fd: Arc<OwnedFd>,
    port: PortId,
    counters: Arc<TapRxCounters>,
}

/// Transmit half of one TAP queue.
#[derive(Debug)]
pub struct TapTx {
    fd: Arc<OwnedFd>,
    counters: Arc<QueueCounters>,
}

/// The two halves of one queue, and their counters for the interface.
pub(super) fn queue(
    fd: Arc<OwnedFd>,
    port: PortId,
) -> (TapRx, TapTx, Arc<TapRxCounters>, Arc<QueueCounters>) {
    let rxc = Arc::new(TapRxCounters::default());
    let txc = Arc::new(QueueCounters::default());
    (
        TapRx {
            fd: Arc::clone(&fd),
            port,
            counters: Arc::clone(&rxc),
        },
        TapTx {
            fd,
            counters: Arc::clone(&txc),
        },
        rxc,
        txc,
    )
}

/// What one read gave.
enum Read {
    /// A frame of this many bytes; more than the buffer if it did not fit.
    Frame(usize),
    /// Nothing queued.
    Empty,
    /// Another error.
    Error,
}

impl TapRx {
    fn read_into(&self, buf: &mut [u8]) -> Read {
        let mut spare = 0u8;
        let iov = [
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
            libc::iovec {
                iov_base: (&mut spare as *mut u8).cast(),
                iov_len: 1,
            },
        ];
        // SAFETY: both iovecs describe writable memory that lives across
        // the call (buf, and spare on this stack frame) with their exact
        // lengths; the kernel writes at most that much.
        let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Read::Empty,
                _ => Read::Error,
            };
        }
        Read::Frame(n as usize)
    }

    /// Counters of this queue.
    pub fn counters(&self) -> &Arc<TapRxCounters> {
        &self.counters
    }

    pub(super) fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let max = max.min(out.remaining_capacity());
        let c = &*self.counters;
        let (mut n, mut bytes, mut too_large, mut errors) = (0usize, 0u64, 0u64, 0u64);
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
            match self.read_into(m.data_mut()) {
                Read::Empty => {
                    spare = Some(m);
                    break;
                }
                Read::Error => {
                    errors += 1;
                    spare = Some(m);
                    break;
                }
                Read::Frame(len) if len > room => {
                    too_large += 1;
                    spare = Some(m);
                }
                Read::Frame(len) => {
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
        c.record(n as u64, bytes, too_large, errors);
        n
    }
}

impl TapTx {
    /// Counters of this queue (`dropped`: frames the kernel refused).
    pub fn counters(&self) -> &Arc<QueueCounters> {
        &self.counters
    }

    pub(super) fn tx_burst(&mut self, cache: &mut PoolCache, pkts: &mut Burst) -> usize {
        let (mut done, mut sent, mut bytes, mut refused) = (0usize, 0u64, 0u64, 0u64);
        for m in pkts.iter() {
            let data = m.data();
            // SAFETY: data is a readable slice of data.len() bytes that
            // lives across the call; the kernel only reads it.
            let rc = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if rc >= 0 {
                sent += 1;
                bytes += data.len() as u64;
            } else {
                match io::Error::last_os_error().raw_os_error() {
                    // The TAP is full: the rest stays with the caller.
                    Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR) => break,
                    // Refused for good (malformed, interface gone): dropped.
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
