//! The AF_PACKET port's rings on a veth pair, inside a network namespace
//! this test makes: frames both ways with their payload checked, four RX
//! queues in one fanout group (every frame received exactly once across
//! them, the flows spread), a frame larger than the buffers counted, an
//! 802.1Q tag the kernel took off put back, a full TX ring (link down)
//! leaving the rest of a burst with the caller and emptying once the link
//! is back, the kernel's counters read, and every buffer back at the end.
//! And without CAP_NET_RAW, the error that names the fix.
//!
//! The test makes a namespace (`ip netns add`) holding both ends of a
//! veth pair, then runs itself inside it (`ip netns exec NS
//! /proc/self/exe --exact <test>` with `AF_PACKET_NETNS_INNER` set), so
//! no frame leaves the namespace. Needs root; without it the test says
//! "skipped". The namespace, and the pair with it, is deleted when the
//! test ends, failed or not.

use drivers::burst::Burst;
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::pool::{Pool, PoolCache, PoolConfig};
use drivers::port::af_packet::{AfPacketConfig, AfPacketPort, AfPacketRx, AfPacketTx};
use drivers::port::{Port, QueueCounters, RxQueue, TxQueue};
use drivers::test_netns::{ip, is_root, TestNetns};
use std::process::Command;
use std::time::{Duration, Instant};

const INNER: &str = "AF_PACKET_NETNS_INNER";
const TEST: &str = "rings_fanout_and_drops_on_a_veth_pair";
/// Frames each way, and across the fanout.
const EACH_WAY: u32 = 3000;
const FLOWS: u32 = 64;
const QUEUES: usize = 4;

#[test]
fn rings_fanout_and_drops_on_a_veth_pair() {
    if std::env::var_os(INNER).is_some() {
        inner();
        return;
    }
    if !is_root() {
        drivers::skip_test!("needs root (CAP_NET_ADMIN for ip netns, CAP_NET_RAW)");
        return;
    }
    // Deleted on drop, and the veth pair in it with it.
    let ns = TestNetns::new("fp-afring");
    let n = ns.name();
    ip(&[
        "-n", n, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    for v in ["veth0", "veth1"] {
        // No IPv6 (no router solicitations or MLD reports among our
        // frames), and room for a 4000-byte frame.
        ip(&[
            "netns",
            "exec",
            n,
            "sh",
            "-c",
            &format!("echo 1 > /proc/sys/net/ipv6/conf/{v}/disable_ipv6 || true"),
        ]);
        ip(&["-n", n, "link", "set", v, "mtu", "9000", "up"]);
    }
    let text =
        rerun(Command::new("ip").args(["netns", "exec", n]), TEST, INNER).expect("ip netns exec");
    println!("{text}");
}

/// Runs this test binary's test `test` again under `wrapper` (`ip netns
/// exec NS`, `setpriv ...`) with `env` set, and checks that it ran and
/// passed; returns its output. Err: the wrapper could not be started.
fn rerun(wrapper: &mut Command, test: &str, env: &str) -> std::io::Result<String> {
    let exe = std::env::current_exe().expect("test binary");
    let out = wrapper
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(env, "1")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} under {wrapper:?}:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner run ran nothing:\n{text}"
    );
    Ok(text)
}

/// Frame `seq` of flow `seq % FLOWS` in direction `dir` (0: a to b, 1:
/// b to a; the last byte of the source MAC), `len` bytes.
fn frame(dir: u8, seq: u32, len: usize) -> Vec<u8> {
    drivers::testing::udp_frame(
        [0x02, 0, 0, 0, 0xa0, dir ^ 1],
        [0x02, 0, 0, 0, 0xa0, dir],
        20_000 + (seq % FLOWS) as u16,
        b"AFRN",
        seq,
        len,
    )
}

/// (direction, sequence) of one of our frames, checked byte for byte.
fn ours(d: &[u8]) -> Option<(u8, u32)> {
    let seq = drivers::testing::udp_frame_seq(d, b"AFRN")?;
    let dir = d[11];
    assert_eq!(d, &frame(dir, seq, d.len())[..], "payload of {dir}/{seq}");
    Some((dir, seq))
}

/// Sends frames `0..n` of direction `dir`, `len(seq)` bytes each, in
/// bursts of 32, while `poll` drains the other side.
fn send_all(
    cache: &mut PoolCache,
    tx: &mut AfPacketTx,
    dir: u8,
    n: u32,
    len: impl Fn(u32) -> usize,
    mut poll: impl FnMut(&mut PoolCache),
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 0;
    let mut burst = Burst::new();
    while seq < n || !burst.is_empty() {
        while seq < n && burst.len() < 32 {
            let mut m = cache.alloc().expect("buffer");
            let f = frame(dir, seq, len(seq));
            m.append(f.len()).expect("room").copy_from_slice(&f);
            burst.push(m);
            seq += 1;
        }
        tx.tx_burst(cache, &mut burst);
        poll(cache);
        assert!(Instant::now() < deadline, "the ring never took the frames");
    }
}

/// Drains `rxs` into `seen` (counts by sequence, per queue) until `n`
/// frames of `dir` came or 5 s passed with nothing new.
fn drain(
    cache: &mut PoolCache,
    rxs: &mut [AfPacketRx],
    dir: u8,
    seen: &mut [u32],
    per_queue: &mut [u32],
) {
    let mut got = Burst::new();
    for (q, rx) in rxs.iter_mut().enumerate() {
        while rx.rx_burst(cache, &mut got, 32) > 0 {
            for m in got.drain(..) {
                if let Some((d, seq)) = ours(m.data()) {
                    assert_eq!(d, dir, "a frame came back the way it went");
                    seen[seq as usize] += 1;
                    per_queue[q] += 1;
                }
                cache.free(m);
            }
        }
    }
}

fn wait_all(
    cache: &mut PoolCache,
    rxs: &mut [AfPacketRx],
    dir: u8,
    seen: &mut [u32],
    per_queue: &mut [u32],
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.contains(&0) && Instant::now() < deadline {
        drain(cache, rxs, dir, seen, per_queue);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Anything late would be a duplicate: one more look.
    std::thread::sleep(Duration::from_millis(20));
    drain(cache, rxs, dir, seen, per_queue);
}

fn inner() {
    // 8 KiB buffers for the sender (a 4000-byte frame fits), the
    // default 2 KiB for the receivers.
    let big = Pool::new(&PoolConfig {
        data_room: 8192,
        ..PoolConfig::new("afring-big", 512).with_backing(MemoryBacking::NoHuge)
    })
    .expect("pool");
    let pool = Pool::new(&PoolConfig::new("afring", 2048).with_backing(MemoryBacking::NoHuge))
        .expect("pool");
    let mut cache = pool.cache();
    let mut big_cache = big.cache();
    {
        let mut a = AfPacketPort::open(PortId(0), "veth0", 8192).expect("port a");
        let mut b = AfPacketPort::open(PortId(1), "veth1", 2048).expect("port b");
        let (mut arx, mut atx) = a.queues(1, 1).expect("a queues");
        let (mut brx, mut btx) = b.queues(QUEUES, 1).expect("b queues");
        assert!(a.fanout_group().is_none());
        assert!(b.fanout_group().is_some(), "b's queues are one group");

        // a -> b: across b's four queues, each frame exactly once.
        let mut seen = vec![0u32; EACH_WAY as usize];
        let mut per_queue = [0u32; QUEUES];
        send_all(
            &mut big_cache,
            &mut atx[0],
            0,
            EACH_WAY,
            |s| 60 + (s as usize * 13) % 1400,
            |c| drain(c, &mut brx, 0, &mut seen, &mut per_queue),
        );
        wait_all(&mut cache, &mut brx, 0, &mut seen, &mut per_queue);
        let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] != 1).collect();
        assert!(
            missing.is_empty(),
            "not received exactly once: {missing:?} (kernel drops {})",
            b.kernel_drops()
        );
        assert!(
            per_queue.iter().filter(|&&c| c > 0).count() >= 2,
            "{FLOWS} flows over {QUEUES} queues: {per_queue:?}"
        );
        println!("a->b: {EACH_WAY} frames over the queues {per_queue:?}");

        // b -> a, through b's TX ring.
        let mut seen = vec![0u32; EACH_WAY as usize];
        let mut one = [0u32; 1];
        send_all(
            &mut cache,
            &mut btx[0],
            1,
            EACH_WAY,
            |s| 60 + (s as usize * 7) % 1900,
            |c| drain(c, &mut arx, 1, &mut seen, &mut one),
        );
        wait_all(&mut big_cache, &mut arx, 1, &mut seen, &mut one);
        assert!(seen.iter().all(|&s| s == 1), "b -> a exactly once");

        // A 4000-byte frame into 2048-byte buffers: dropped and counted,
        // and the frame after it still comes.
        let mut seen = vec![0u32; 2];
        let mut pq = [0u32; QUEUES];
        send_all(
            &mut big_cache,
            &mut atx[0],
            0,
            2,
            |s| if s == 0 { 4000 } else { 100 },
            |_| {},
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen[1] == 0 && Instant::now() < deadline {
            drain(&mut cache, &mut brx, 0, &mut seen, &mut pq);
        }
        assert_eq!(seen, [0, 1], "the long frame dropped, the next one in");

        // An 802.1Q-tagged frame: the receiving kernel takes the tag off
        // (skb_vlan_untag) before the socket sees the frame; the RX ring
        // puts it back, so the frame arrives as sent.
        let plain = frame(0, 7777, 100);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]); // PCP 1, VID 100
        tagged.extend_from_slice(&plain[12..]);
        let mut m = big_cache.alloc().expect("buffer");
        m.append(tagged.len())
            .expect("room")
            .copy_from_slice(&tagged);
        let mut one = Burst::new();
        one.push(m);
        assert_eq!(atx[0].tx_burst(&mut big_cache, &mut one), 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Burst::new();
        let mut back = None;
        while back.is_none() && Instant::now() < deadline {
            for rx in brx.iter_mut() {
                rx.rx_burst(&mut cache, &mut got, 32);
                for m in got.drain(..) {
                    if m.data().get(46..50) == Some(&b"AFRN"[..]) {
                        back = Some(m.data().to_vec());
                    }
                    cache.free(m);
                }
            }
        }
        assert_eq!(
            back.as_deref(),
            Some(&tagged[..]),
            "the tag is back in place"
        );
        let too_long: u64 = b
            .rx_counters()
            .iter()
            .map(|c| QueueCounters::get(&c.truncated))
            .sum();
        assert_eq!(too_long, 1);
        let x = b.xstats();
        assert!(x.contains(&("rx_frame_too_long", 1)), "{x:?}");
        assert!(x.contains(&("rx_bad_block_descriptors", 0)), "{x:?}");
        assert!(x.contains(&("tx_qdisc_bypass_refused", 0)), "{x:?}");
        assert_eq!(b.stats().ierrors, 1);
        assert_eq!(b.kernel_drops(), 0, "the rings kept up");

        assert_eq!(a.stats().opackets, u64::from(EACH_WAY) + 3);
        assert_eq!(b.stats().ipackets, u64::from(EACH_WAY) + 2);
        assert_eq!(b.stats().opackets, u64::from(EACH_WAY));

        // The TX queues follow the interface's MTU through the port's
        // housekeeping: at MTU 1500 a 3000-byte frame is refused and
        // counted before it reaches the ring; at 9000 it is sent.
        let bad_len = |p: &AfPacketPort| {
            p.xstats()
                .iter()
                .find(|(n, _)| *n == "tx_bad_length")
                .map_or(0, |x| x.1)
        };
        let send_one = |cache: &mut PoolCache, q: &mut AfPacketTx| {
            let mut m = cache.alloc().expect("buffer");
            m.append(3000)
                .expect("room")
                .copy_from_slice(&frame(0, 8888, 3000));
            let mut one = Burst::new();
            one.push(m);
            let n = q.tx_burst(cache, &mut one);
            cache.free_bulk(&mut one);
            n
        };
        ip(&["link", "set", "veth0", "mtu", "1500"]);
        a.service().expect("housekeeping");
        let before = bad_len(&a);
        send_one(&mut big_cache, &mut atx[0]);
        assert_eq!(bad_len(&a), before + 1, "over the MTU: counted");
        ip(&["link", "set", "veth0", "mtu", "9000"]);
        a.service().expect("housekeeping");
        assert_eq!(
            send_one(&mut big_cache, &mut atx[0]),
            1,
            "within the new MTU: sent"
        );
        assert_eq!(bad_len(&a), before + 1);
        println!("a: {:?}\nb: {:?}\nb xstats: {x:?}", a.stats(), b.stats());

        // A full TX ring: with veth0 down the kernel sends nothing (the
        // kick fails, ENETDOWN), the 16 frames of a 16-frame ring stay the
        // kernel's, and the rest of the burst stays with the caller. Once
        // the link is back the next (empty) burst kicks them out, and the
        // ring empties.
        let small = AfPacketConfig {
            tx_frames: 16,
            ..AfPacketConfig::default()
        };
        let mut c = AfPacketPort::open_with(PortId(2), "veth0", 2048, &small).expect("port c");
        let (_, mut ctx) = c.queues(0, 1).expect("c queue");
        ip(&["link", "set", "veth0", "down"]);
        let mut burst = Burst::new();
        for seq in 0..20 {
            let mut m = cache.alloc().expect("buffer");
            let f = frame(2, seq, 80);
            m.append(f.len()).expect("room").copy_from_slice(&f);
            burst.push(m);
        }
        assert_eq!(ctx[0].tx_burst(&mut cache, &mut burst), 16);
        assert_eq!(burst.len(), 4, "the rest stays with the caller");
        assert_eq!(ctx[0].tx_burst(&mut cache, &mut burst), 0, "still full");
        let x = c.xstats();
        assert!(x.contains(&("tx_ring_in_flight_packets", 16)), "{x:?}");
        assert!(
            !x.contains(&("tx_kick_errors", 0)),
            "ENETDOWN counted: {x:?}"
        );
        for m in burst.drain(..) {
            cache.free(m);
        }
        ip(&["link", "set", "veth0", "up"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = vec![0u32; 16];
        let mut pq = [0u32; QUEUES];
        let mut empty = Burst::new();
        let ring_empty = |c: &AfPacketPort| c.xstats().contains(&("tx_ring_in_flight_packets", 0));
        while (seen.contains(&0) || !ring_empty(&c)) && Instant::now() < deadline {
            ctx[0].tx_burst(&mut cache, &mut empty);
            drain(&mut cache, &mut brx, 2, &mut seen, &mut pq);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            seen,
            vec![1u32; 16],
            "the 16 frames went once the link was up"
        );
        assert!(c.xstats().contains(&("tx_ring_in_flight_packets", 0)));
        assert_eq!(c.stats().opackets, 16);
        drop(ctx);
        // Queues and ports go; no buffer stays with them.
        drop((arx, atx, brx, btx));
    }
    drop((cache, big_cache));
    assert_eq!(pool.available(), 2048, "every buffer back");
    assert_eq!(big.available(), 512, "every buffer back");
}

const NO_RAW: &str = "AF_PACKET_NO_CAP_NET_RAW";
const NO_RAW_TEST: &str = "without_cap_net_raw_the_error_names_the_fix";

/// Without CAP_NET_RAW (the test runs itself again with the capability
/// out of its bounding set, `setpriv --bounding-set=-net_raw`), opening a
/// port fails with the error that names the interface and the fix.
#[test]
fn without_cap_net_raw_the_error_names_the_fix() {
    if std::env::var_os(NO_RAW).is_some() {
        let e = AfPacketPort::open(PortId(0), "lo", 2048).unwrap_err();
        assert!(
            matches!(e, drivers::port::af_packet::AfPacketError::NotPermitted(_)),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.contains("\"lo\"") && text.contains("CAP_NET_RAW"),
            "{text}"
        );
        return;
    }
    if !is_root() {
        drivers::skip_test!("needs root to drop CAP_NET_RAW from a process that has it");
        return;
    }
    let mut setpriv = Command::new("setpriv");
    setpriv.args(["--bounding-set=-net_raw", "--"]);
    if let Err(e) = rerun(&mut setpriv, NO_RAW_TEST, NO_RAW) {
        drivers::skip_test!("setpriv (util-linux) cannot run: {e}");
    }
}
