use super::*;
use crate::memory::MemoryBacking;
use crate::pool::{Pool, PoolConfig};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[test]
fn unknown_interface_and_bad_rings_are_named() {
    let err = AfPacketPort::open(PortId(0), "nosuchif0", 2048).unwrap_err();
    assert!(matches!(err, AfPacketError::NoSuchInterface(_)), "{err}");
    assert!(err.to_string().contains("ip link show"), "{err}");
    let err = AfPacketPort::open(PortId(0), "a-name-far-too-long", 2048).unwrap_err();
    assert!(matches!(err, AfPacketError::BadName(_)), "{err}");
    let cfg = AfPacketConfig {
        rx_blocks: 0,
        ..AfPacketConfig::default()
    };
    let err = AfPacketPort::open_with(PortId(0), "lo", 2048, &cfg).unwrap_err();
    assert_eq!(
        err.to_string(),
        "af_packet: \"lo\": RX blocks 0 is out of range: 1 to 65536"
    );
}

pub(super) fn frame(dst: [u8; 6], len: usize, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0xaf, 0x01]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f[14..18].copy_from_slice(b"AFPT");
    f[18..22].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(22) {
        *b = (i as u32 ^ seq) as u8;
    }
    f
}

/// A plain packet socket (no ring) that sends on one interface, as
/// another program on the host would.
struct PlainSender {
    fd: OwnedFd,
    sll: libc::sockaddr_ll,
}

impl PlainSender {
    fn new(ifname: &str) -> PlainSender {
        let fd = socket::raw_socket(ifname).unwrap();
        let c = CString::new(ifname).unwrap();
        // SAFETY: c is NUL-terminated and outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) as libc::c_int };
        // SAFETY: sockaddr_ll is plain old data; all zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex;
        sll.sll_halen = 6;
        PlainSender { fd, sll }
    }

    fn send(&self, f: &[u8]) {
        // SAFETY: f is readable for f.len() bytes, sll valid for its size.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&self.sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, f.len() as isize, "{}", io::Error::last_os_error());
    }
}

/// Two ports on `lo`: one sends through its TX ring, the other receives
/// each frame once from its RX ring, payload intact; the sender does not
/// see its own sends; without qdisc bypass the receiver sees (and skips)
/// the sender's outgoing copies; a frame larger than the buffer is
/// dropped and counted; every buffer comes back. Needs CAP_NET_RAW.
#[test]
fn loopback_send_receive_truncate() {
    // No qdisc bypass on the sender: the kernel then shows its outgoing
    // frames to the other sockets on lo, which must skip them.
    let no_bypass = AfPacketConfig {
        qdisc_bypass: false,
        ..AfPacketConfig::default()
    };
    let mut a = match AfPacketPort::open_with(PortId(0), "lo", 2048, &no_bypass) {
        Ok(p) => p,
        Err(AfPacketError::NotPermitted(_)) => {
            crate::skip_test!("an AF_PACKET socket needs CAP_NET_RAW (run as root)");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut b = AfPacketPort::open(PortId(1), "lo", 2048).unwrap();
    let pool =
        Pool::new(&PoolConfig::new("afp-test", 512).with_backing(MemoryBacking::NoHuge)).unwrap();
    let mut cache = pool.cache();
    let (mut arx, mut atx) = a.queues(1, 1).unwrap();
    let (mut brx, _btx) = b.queues(1, 0).unwrap();
    assert!(b.queues(1, 1).is_err());
    assert_eq!(b.fanout_group(), None, "one queue, no fanout group");
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
                assert_eq!(m.port(), PortId(1));
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
        for m in got.drain(..) {
            // Only ours: the other tests use lo too.
            let d = m.data();
            own += usize::from(d.len() >= 22 && d[..6] == dst && &d[14..18] == b"AFPT");
            cache.free(m);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(own <= n as usize, "own sends seen twice: {own}");
    assert!(QueueCounters::get(&brx[0].counters().outgoing) >= n as u64);
    assert_eq!(a.stats().opackets, n as u64);
    // The kernel gave the frames back: the next burst's reclaim sees them.
    let mut empty = Burst::new();
    atx[0].tx_burst(&mut cache, &mut empty);
    assert_eq!(
        QueueCounters::get(&atx[0].counters().in_flight),
        0,
        "lo sends at once"
    );

    // Too long: a 4000-byte frame (lo's MTU is 65536) into 2048-byte
    // buffers, then one of exactly 2048 that fits.
    PlainSender::new("lo").send(&frame(dst, 4000, 1000));
    let mut m = cache.alloc().unwrap();
    let f = frame(dst, 2048, 999);
    m.append(f.len()).unwrap().copy_from_slice(&f);
    let mut one = Burst::new();
    one.push(m);
    assert_eq!(atx[0].tx_burst(&mut cache, &mut one), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got_2048 = false;
    while !got_2048 && Instant::now() < deadline {
        brx[0].rx_burst(&mut cache, &mut got, 32);
        for m in got.drain(..) {
            got_2048 |= m.data() == &f[..];
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
    assert_eq!(b.stats().ierrors, too_long);
    assert!(xstats.contains(&("rx_bad_block_descriptors", 0)));
    // A runt (under an Ethernet header) is refused and counted.
    let mut m = cache.alloc().unwrap();
    m.append(10).unwrap();
    one.push(m);
    assert_eq!(atx[0].tx_burst(&mut cache, &mut one), 0);
    assert!(one.is_empty());
    assert!(a.xstats().contains(&("tx_bad_length", 1)));
    assert_eq!(a.stats().oerrors, 1);
    drop((arx, atx, brx, _btx));
    drop(cache);
    assert_eq!(pool.available(), 512, "every buffer back");
}

/// Four RX queues on lo: one fanout group, its id unique to the port (a
/// second port makes its own), and the frames of many flows spread over
/// the queues, each received once.
#[test]
fn fanout_spreads_flows_over_the_queues_once_each() {
    let mut p = match AfPacketPort::open(PortId(0), "lo", 2048) {
        Ok(p) => p,
        Err(AfPacketError::NotPermitted(_)) => {
            crate::skip_test!("an AF_PACKET socket needs CAP_NET_RAW (run as root)");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut other = AfPacketPort::open(PortId(1), "lo", 2048).unwrap();
    let (mut rxq, _) = p.queues(4, 0).unwrap();
    let (_orx, _) = other.queues(2, 0).unwrap();
    let (g1, g2) = (p.fanout_group().unwrap(), other.fanout_group().unwrap());
    assert_ne!(g1, g2, "each port has its own group");
    let pool = Pool::new(&PoolConfig::new("afp-fanout", 1024).with_backing(MemoryBacking::NoHuge))
        .unwrap();
    let mut cache = pool.cache();
    let n = 400u32;
    // Sent while the queues are read: at a low rate each block is handed
    // over after the retire timeout with a few frames in it, so a ring
    // nobody reads fills in (blocks x timeout).
    let tx = PlainSender::new("lo");
    let mut next = 0u32;
    let mut per_queue = [0usize; 4];
    let mut seen = vec![0u8; n as usize];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Burst::new();
    while seen.contains(&0) && Instant::now() < deadline {
        for _ in 0..16 {
            if next < n {
                tx.send(&udp_frame(next));
                next += 1;
            }
        }
        for (q, rx) in rxq.iter_mut().enumerate() {
            rx.rx_burst(&mut cache, &mut got, 32);
            for m in got.drain(..) {
                if let Some(seq) = udp_seq(m.data()) {
                    assert_eq!(m.data(), &udp_frame(seq)[..]);
                    seen[seq as usize] += 1;
                    per_queue[q] += 1;
                }
                cache.free(m);
            }
        }
    }
    assert!(
        seen.iter().all(|&s| s == 1),
        "each frame once: {seen:?} {per_queue:?} {:?} kernel drops {}",
        p.xstats(),
        p.kernel_drops()
    );
    assert!(
        per_queue.iter().filter(|&&c| c > 0).count() >= 2,
        "flows spread: {per_queue:?}"
    );
    drop((rxq, cache));
    assert_eq!(pool.available(), 1024);
}

/// An IPv4 UDP frame of flow `seq % 64` (source port), carrying `seq`.
pub(super) fn udp_frame(seq: u32) -> Vec<u8> {
    crate::testing::udp_frame(
        [0x02, 0, 0, 0, 0xaf, 0x03],
        [0x02, 0, 0, 0, 0xaf, 0x04],
        10_000 + (seq % 64) as u16,
        b"AFPF",
        seq,
        64,
    )
}

pub(super) fn udp_seq(d: &[u8]) -> Option<u32> {
    crate::testing::udp_frame_seq(d, b"AFPF")
}

/// The groups of [`Port::set_multicast`] become the interface's
/// (the kernel's list in /proc/net/dev_mcast, which a NIC filters by), a
/// new list replaces the old, and closing the port takes them away. Runs
/// inside a namespace of its own, on a veth made there.
#[test]
fn multicast_groups_become_the_interfaces() {
    const INSIDE: &str = "FASTPATH_AFP_MCAST_INSIDE";
    if std::env::var_os(INSIDE).is_none() {
        if !crate::test_netns::is_root() {
            crate::skip_test!("needs root (a network namespace, a veth pair)");
            return;
        }
        let ns = crate::test_netns::TestNetns::new("afp-mc");
        ns.run_test_inside(
            "port::af_packet::tests::multicast_groups_become_the_interfaces",
            INSIDE,
        );
        return;
    }
    crate::test_netns::ip(&["link", "add", "mca", "type", "veth", "peer", "name", "mcb"]);
    crate::test_netns::ip(&["link", "set", "mca", "up"]);
    let has = |hex: &str| {
        std::fs::read_to_string("/proc/net/dev_mcast")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("mca") && l.ends_with(hex))
    };
    let ospf = MacAddr([0x01, 0, 0x5e, 0, 0, 5]);
    let vrrp = MacAddr([0x01, 0, 0x5e, 0, 0, 0x12]);
    let mut p = AfPacketPort::open(PortId(0), "mca", 2048).unwrap();
    assert!(!has("01005e000005"));
    assert_eq!(p.set_multicast(&[ospf]).unwrap(), MulticastOutcome::Exact);
    assert!(has("01005e000005"));
    p.set_multicast(&[vrrp]).unwrap();
    assert!(has("01005e000012") && !has("01005e000005"));
    assert!(p.set_multicast(&[MacAddr([2, 0, 0, 0, 0, 1])]).is_err());
    assert!(has("01005e000012"), "a refused list leaves the old one");
    drop(p);
    assert!(!has("01005e000012"));
}
