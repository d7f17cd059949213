//! Both ends of the exchange over an in-memory port pair, with a receive
//! path that can corrupt, duplicate, reorder or lose frames.

use super::exchange::{self, Endpoint, Report, Role, RoundConfig, DEFAULT_WINDOW};
use super::frame::{self, Direction};
use super::{peer, LabFramesError};
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::memory::MemoryBacking;
use crate::pool::{Pool, PoolCache, PoolConfig};
use crate::port::ring_pair::{RingPort, RingRx, RingTx};
use crate::port::{LinkState, Port, PortError, PortInfo, PortStats, QueueSet, RxQueue};
use std::time::Duration;

/// Changes a received burst: gets the cache, the burst and where this
/// call's frames start in it.
type Tamper = Box<dyn FnMut(&mut PoolCache, &mut Burst, usize) + Send>;

/// A ring port whose receive path goes through a [`Tamper`].
struct Tampered {
    inner: RingPort,
    tamper: Option<Tamper>,
}

impl std::fmt::Debug for Tampered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

struct TamperedRx {
    inner: RingRx,
    tamper: Tamper,
}

impl RxQueue for TamperedRx {
    fn rx_burst(&mut self, cache: &mut PoolCache, out: &mut Burst, max: usize) -> usize {
        let start = out.len();
        self.inner.rx_burst(cache, out, max);
        (self.tamper)(cache, out, start);
        out.len() - start
    }
}

impl Port for Tampered {
    type Rx = TamperedRx;
    type Tx = RingTx;
    fn info(&self) -> &PortInfo {
        self.inner.info()
    }
    fn link(&self) -> LinkState {
        self.inner.link()
    }
    fn stats(&self) -> PortStats {
        self.inner.stats()
    }
    fn queues(&mut self, rx: usize, tx: usize) -> Result<QueueSet<TamperedRx, RingTx>, PortError> {
        let (r, t) = self.inner.queues(rx, tx)?;
        let tamper = self.tamper.take().expect("queues asked once");
        let r = r
            .into_iter()
            .next()
            .map(|inner| TamperedRx { inner, tamper });
        Ok((r.into_iter().collect(), t))
    }
}

fn pool() -> Pool {
    Pool::new(&PoolConfig::new("lab-frames-test", 4096).with_backing(MemoryBacking::NoHuge))
        .unwrap()
}

/// Runs one round with the guest on port 0 and the host on port 1 (whose
/// receive path `tamper` changes); returns (guest, host) reports.
fn round(
    pool: &Pool,
    count: u32,
    timeout: Duration,
    tamper: Tamper,
) -> (
    Result<Report, LabFramesError>,
    Result<Report, LabFramesError>,
) {
    let (g, h) = RingPort::pair((PortId(0), "guest"), (PortId(1), "host"), 1, 1024).unwrap();
    let host_mac = h.info().mac;
    let guest_mac = g.info().mac;
    let mut host = Endpoint::new(Tampered {
        inner: h,
        tamper: Some(tamper),
    })
    .unwrap();
    let mut guest = Endpoint::new(g).unwrap();
    std::thread::scope(|s| {
        let host = s.spawn(|| {
            let mut cache = pool.cache();
            peer::run_round(&mut host, &mut cache, 7, count, timeout)
        });
        let mut cache = pool.cache();
        let cfg = RoundConfig {
            role: Role::Guest,
            me: guest_mac,
            peer: Some(host_mac),
            round: 7,
            count,
            window: DEFAULT_WINDOW,
            timeout,
        };
        let mut ready = None;
        let g = exchange::run(&mut guest, &mut cache, &cfg, &mut |r| ready = r.peer);
        if g.is_ok() {
            assert_eq!(ready, Some(host_mac), "the handshake was reported");
        }
        (g, host.join().unwrap())
    })
}

fn untouched() -> Tamper {
    Box::new(|_, _, _| {})
}

#[test]
fn ten_thousand_each_way_in_memory() {
    let pool = pool();
    let (g, h) = round(&pool, 10_000, Duration::from_secs(60), untouched());
    let (g, h) = (g.unwrap(), h.unwrap());
    for r in [&g, &h] {
        assert!(r.complete(), "{r}");
        assert_eq!(
            (r.sent, r.rx_ok, r.missing(), r.rx_bad()),
            (10_000, 10_000, 0, 0)
        );
        assert_eq!((r.rx_dup, r.rx_foreign, r.rx_wrong_round), (0, 0, 0), "{r}");
        assert!(!r.timed_out);
    }
    assert_eq!(
        h.peer,
        Some(crate::net::MacAddr::local(0)),
        "learnt from the hello"
    );
    assert_eq!(pool.available(), 4096, "every buffer back");
}

/// Extra frames on the host's receive path, each of one bad kind, and two
/// frames swapped: each is counted under its kind, and the round still
/// completes (nothing of the guest's was lost).
#[test]
fn each_bad_frame_is_counted_by_kind() {
    let pool = pool();
    let mut n = 0u32;
    let tamper: Tamper = Box::new(move |cache, burst, start| {
        let mut i = start;
        while i < burst.len() {
            let is_data = burst[i].len() != frame::MIN_FRAME || burst[i].data()[19] == 3;
            if !is_data {
                i += 1;
                continue;
            }
            n += 1;
            let copy = |cache: &mut PoolCache, data: &[u8]| {
                let mut m = cache.alloc().unwrap();
                m.append(data.len()).unwrap().copy_from_slice(data);
                m
            };
            let orig = burst[i].data().to_vec();
            let extra = match n {
                100 => {
                    let mut c = orig.clone();
                    let mid = c.len() / 2;
                    c[mid] ^= 0x10;
                    Some(copy(cache, &c))
                }
                200 => Some(copy(cache, &orig[..orig.len() - 3])),
                300 => Some(copy(cache, &orig)),
                400 => {
                    let mut c = orig.clone();
                    c[14] = b'Z';
                    Some(copy(cache, &c))
                }
                500 => {
                    let mut buf = vec![0u8; frame::MAX_FRAME];
                    let dst = crate::net::MacAddr(orig[..6].try_into().unwrap());
                    let src = crate::net::MacAddr(orig[6..12].try_into().unwrap());
                    let len = frame::write_data(&mut buf, dst, src, Direction::GuestToHost, 6, 0);
                    Some(copy(cache, &buf[..len]))
                }
                _ => None,
            };
            if let Some(m) = extra {
                burst.insert(i + 1, m);
                i += 1;
            }
            if n == 600 && i + 1 < burst.len() {
                burst.swap(i, i + 1);
                i += 1;
            }
            i += 1;
        }
    });
    let (g, h) = round(&pool, 2_000, Duration::from_secs(30), tamper);
    let (g, h) = (g.unwrap(), h.unwrap());
    assert!(g.complete(), "{g}");
    assert!(h.complete(), "{h}");
    assert_eq!(
        (
            h.rx_corrupt,
            h.rx_truncated,
            h.rx_dup,
            h.rx_foreign,
            h.rx_wrong_round
        ),
        (1, 1, 1, 1, 1),
        "{h}"
    );
    assert!(h.rx_misordered <= 1, "{h}");
    assert_eq!((g.rx_bad(), g.rx_dup, g.rx_foreign), (0, 0, 0), "{g}");
    assert_eq!(pool.available(), 4096, "every buffer back");
}

/// Drops the `n`-th data frame (counting every data frame the link
/// carries, from 1) when `lost(n)`.
fn drop_data_frames(lost: impl Fn(u32) -> bool + Send + 'static) -> Tamper {
    let mut n = 0u32;
    Box::new(move |cache, burst, start| {
        let mut i = start;
        while i < burst.len() {
            if burst[i].len() != frame::MIN_FRAME || burst[i].data()[19] == 3 {
                n += 1;
                if lost(n) {
                    cache.free(burst.remove(i));
                    continue;
                }
            }
            i += 1;
        }
    })
}

/// More frames lost than a window (a link that went away for a while):
/// the sender's window stays full, it goes back to the first frame the
/// other side lacks after the stall and sends again, and the round
/// completes with the loss paid in resent frames and duplicates.
#[test]
fn lost_frames_are_sent_again() {
    let pool = pool();
    let tamper = drop_data_frames(|n| (50..350).contains(&n));
    let (g, h) = round(&pool, 1_000, Duration::from_secs(20), tamper);
    let (g, h) = (g.unwrap(), h.unwrap());
    assert!(g.complete() && h.complete(), "{g}\n{h}");
    assert_eq!((h.rx_ok, h.missing()), (1_000, 0), "{h}");
    assert!(g.stalls >= 1, "{g}");
    assert!(g.resent >= 300, "every lost frame sent again: {g}");
    assert_eq!((g.rx_bad(), h.rx_bad()), (0, 0));
    assert!(g.line("VFU-FRAMES").ends_with("result=ok"));
    assert_eq!(pool.available(), 4096, "every buffer back");
}

/// Runts from the driver (an empty frame, one shorter than an Ethernet
/// header): judged as not ours, never indexed, and the round completes.
#[test]
fn runts_are_not_ours_and_do_not_stop_the_round() {
    let pool = pool();
    let mut n = 0u32;
    let tamper: Tamper = Box::new(move |_, burst, start| {
        for m in burst[start..].iter_mut() {
            n += 1;
            match n {
                5 => m.set_len(0).unwrap(),
                9 => m.set_len(7).unwrap(),
                _ => {}
            }
        }
    });
    let (g, h) = round(&pool, 500, Duration::from_secs(20), tamper);
    let (g, h) = (g.unwrap(), h.unwrap());
    assert!(g.complete() && h.complete(), "{g}\n{h}");
    assert_eq!(h.rx_other, 2, "{h}");
    assert_eq!(pool.available(), 4096, "every buffer back");
}

/// A link that never comes back: the sender keeps going back and sending
/// again, nothing hangs, and both ends stop at the timeout with the loss
/// shown as missing.
#[test]
fn a_dead_link_ends_at_the_timeout_with_frames_missing() {
    let pool = pool();
    let tamper = drop_data_frames(|n| n >= 300);
    let (g, h) = round(&pool, 1_000, Duration::from_secs(4), tamper);
    let (g, h) = (g.unwrap(), h.unwrap());
    assert!(h.timed_out && g.timed_out);
    assert!(!g.complete() && !h.complete());
    assert!(h.missing() > 0 && h.rx_ok < 1_000, "{h}");
    assert!(g.stalls >= 1, "{g}");
    assert!(g.line("VFU-FRAMES").ends_with("result=timeout"));
    assert_eq!(pool.available(), 4096, "every buffer back");
}

/// A guest that announces another count is refused by the host with an
/// error that names both.
#[test]
fn counts_must_agree() {
    let pool = pool();
    let (g, h) = RingPort::pair((PortId(0), "guest"), (PortId(1), "host"), 1, 1024).unwrap();
    let host_mac = h.info().mac;
    let (mut host, mut guest) = (Endpoint::new(h).unwrap(), Endpoint::new(g).unwrap());
    let res = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut cache = pool.cache();
            let cfg = RoundConfig {
                role: Role::Guest,
                me: crate::net::MacAddr::local(0),
                peer: Some(host_mac),
                round: 1,
                count: 5,
                window: 4,
                timeout: Duration::from_secs(1),
            };
            exchange::run(&mut guest, &mut cache, &cfg, &mut |_| {})
        });
        let mut cache = pool.cache();
        let h = peer::run_round(&mut host, &mut cache, 1, 6, Duration::from_secs(5));
        (t.join().unwrap(), h)
    });
    let e = res.1.unwrap_err();
    assert!(
        e.to_string().contains("5 frames each way, this end 6"),
        "{e}"
    );
    let g = res.0.unwrap();
    assert!(g.timed_out && g.handshake_secs.is_none(), "{g}");
}
