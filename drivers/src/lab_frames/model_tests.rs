//! The host's end on our ixgbevf PMD against the ixgbevf model, the way
//! the lab's server runs it, with the guest's end on an in-memory port
//! bridged to the model's wire: rounds before and after a PF reset and a
//! link flap injected by the model between rounds. The PMD must find the
//! reset through `service()` (which `run_round` calls) and recover, and
//! the guest's hellos must wait for it.

use super::exchange::{self, Endpoint, Report, Role, RoundConfig, DEFAULT_WINDOW};
use super::peer;
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::memory::MemoryBacking;
use crate::net::MacAddr;
use crate::pmd::ixgbevf::{IxgbevfConfig, IxgbevfPort};
use crate::pool::{Pool, PoolConfig};
use crate::port::ring_pair::RingPort;
use crate::port::{DynPort, Port, RxQueue, TxQueue};
use crate::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfConfig as ModelConfig};
use crate::sim::Iommu;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x1a, 0xb0]);
const COUNT: u32 = 3_000;
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn rounds_across_a_pf_reset_and_a_link_flap() {
    let dev = Ixgbevf::start(
        ModelConfig::new(Flavor::X82599, Some(HOST_MAC)),
        &Iommu::new(),
    );
    let id = dev.with(|m, _| m.config().flavor.device_id());
    let row = *crate::pci::lookup(crate::pci::INTEL, id).expect("an ixgbevf id");
    let mut cfg = IxgbevfConfig::for_device(PortId(1), "host-vf", row, dev.iommu().mapper());
    cfg.backing = MemoryBacking::NoHuge;
    // Look at the link every 100 ms, not every 2 s: the reset is found
    // sooner, the test is shorter.
    cfg.timing.link_check_interval = Duration::from_millis(100);
    let mut pc = PoolConfig::new("lab-frames-model", 4096).with_backing(MemoryBacking::NoHuge);
    pc.dma = Some(dev.iommu().mapper());
    let pool = Pool::new(&pc).unwrap();
    let port = IxgbevfPort::new(dev.bar(), cfg).unwrap();
    assert_eq!(port.info().mac, HOST_MAC);
    let mut host = Endpoint::new(DynPort::new(port)).unwrap();

    // The guest's port, and the far end of its pair, which the bridge
    // joins to the model's wire.
    let (g, mut w) = RingPort::pair((PortId(0), "guest"), (PortId(2), "wire"), 1, 1024).unwrap();
    let guest_mac = g.info().mac;
    let mut guest = Endpoint::new(g).unwrap();
    let (mut wire_rx, mut wire_tx) = w.queues(1, 1).unwrap();
    let (mut wire_rx, mut wire_tx) = (wire_rx.remove(0), wire_tx.remove(0));
    let stop = AtomicBool::new(false);
    let lost = AtomicU64::new(0);

    let reports: Vec<(Report, Report)> = std::thread::scope(|s| {
        // The bridge: what the guest sends enters the model's RX queue 0;
        // what the PMD sends leaves the model's wire to the guest.
        let (pool, dev, stop, lost) = (&pool, &dev, &stop, &lost);
        s.spawn(move || {
            let mut cache = pool.cache();
            let mut b = Burst::new();
            // Relaxed: a plain stop request, it orders nothing.
            while !stop.load(Ordering::Relaxed) {
                let n = wire_rx.rx_burst(&mut cache, &mut b, 32);
                for m in b.drain(..) {
                    if !dev.inject(0, m.data()) {
                        // Relaxed: a counter read after the join.
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    cache.free(m);
                }
                let out = dev.take_wire();
                for f in &out {
                    let mut m = cache.alloc().expect("a buffer for the bridge");
                    m.append(f.len()).unwrap().copy_from_slice(f);
                    b.push(m);
                    if b.len() == 32 {
                        while !b.is_empty() {
                            wire_tx.tx_burst(&mut cache, &mut b);
                        }
                    }
                }
                while !b.is_empty() {
                    wire_tx.tx_burst(&mut cache, &mut b);
                }
                if n == 0 && out.is_empty() {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        });
        let mut reports = Vec::new();
        for round in 1..=3u32 {
            match round {
                2 => {
                    // Nobody services the port between rounds: the next
                    // round finds the reset.
                    dev.pf_reset_begin();
                    std::thread::sleep(Duration::from_millis(50));
                    dev.pf_reset_end();
                }
                3 => {
                    dev.set_link(false);
                    std::thread::sleep(Duration::from_millis(300));
                    dev.set_link(true);
                }
                _ => {}
            }
            let (g, h) = std::thread::scope(|r| {
                let guest = &mut guest;
                let g = r.spawn(move || {
                    let mut cache = pool.cache();
                    let cfg = RoundConfig {
                        role: Role::Guest,
                        me: guest_mac,
                        peer: Some(HOST_MAC),
                        round,
                        count: COUNT,
                        window: DEFAULT_WINDOW,
                        timeout: TIMEOUT,
                    };
                    exchange::run(guest, &mut cache, &cfg, &mut |_| {}).unwrap()
                });
                let mut cache = pool.cache();
                let h = peer::run_round(&mut host, &mut cache, round, COUNT, TIMEOUT).unwrap();
                (g.join().unwrap(), h)
            });
            eprintln!("{}\n{}", g.line("GUEST"), h.line(peer::TAG));
            reports.push((g, h));
        }
        // Relaxed: see above.
        stop.store(true, Ordering::Relaxed);
        reports
    });

    for (g, h) in &reports {
        assert!(g.complete() && h.complete(), "{g}\n{h}");
        assert_eq!((h.rx_bad(), h.rx_dup, h.rx_foreign), (0, 0, 0), "{h}");
        assert_eq!((g.rx_bad(), g.rx_dup, g.rx_foreign), (0, 0, 0), "{g}");
        assert_eq!(h.peer, Some(guest_mac));
    }
    let (_, clean) = &reports[0];
    assert_eq!((clean.resets, clean.recoveries), (0, 0), "{clean}");
    let (g2, reset) = &reports[1];
    assert_eq!((reset.resets, reset.recoveries), (1, 1), "{reset}");
    assert!(g2.hellos >= 1, "{g2}");
    let (_, flap) = &reports[2];
    assert_eq!(
        (flap.resets, flap.recoveries),
        (0, 0),
        "a link flap is not a reset: {flap}"
    );
    // Only the hellos of round 2 that went unanswered were lost at the
    // model (link down or queue off while the PF reset and the PMD
    // recovered).
    let lost = lost.load(Ordering::Relaxed);
    assert!(lost < g2.hellos, "{lost} frames dropped at the model: {g2}");
    drop(host);
    drop((guest, w));
    assert_eq!(pool.available(), 4096, "every buffer back");
    dev.violations().assert_clean();
}
