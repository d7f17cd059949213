//! igbvf receive filters against the igbvf model's PF: all-multicast, the
//! multicast list and VLANs are honoured (and sent again after a PF
//! reset); unicast promiscuous is refused with a typed error, fatal only
//! when the filters are required.

use super::device::{IgbvfError, IgbvfPort};
use super::regs::{MSG_ID_MASK, MSG_SET_MULTICAST, MSG_SET_PROMISC, MSG_SET_VLAN};
use super::tests::{cfg, vf, xstat};
use crate::net::MacAddr;
use crate::pmd::rx_filters::{FilterError, RxFilters};
use crate::port::{Port, RxQueue, ServiceEvent, TxQueue};

const PF_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x31]);

fn groups(n: u8) -> Vec<MacAddr> {
    (0..n)
        .map(|i| MacAddr([0x01, 0, 0x5e, 0, i, 0x40 + i]))
        .collect()
}

fn count(dev: &crate::sim::igbvf::IgbvfSim, id: u32) -> usize {
    dev.requests()
        .iter()
        .filter(|w| *w & MSG_ID_MASK == id)
        .count()
}

#[test]
fn multicast_allmulti_and_vlans_are_honoured_and_resent_after_a_reset() {
    let dev = vf(Some(PF_MAC));
    let mut c = cfg(&dev, 64);
    c.filters = RxFilters {
        all_multicast: true,
        multicast: groups(3),
        vlans: vec![10, 20],
        ..RxFilters::default()
    };
    let mut port = IgbvfPort::new(dev.bar(), c).unwrap();
    assert!(port.filter_refusals().is_empty());
    assert_eq!(dev.pf(|p| p.mc_count), 3);
    assert!(dev.pf(|p| p.allmulti));
    let vlans = dev.pf(|p| p.vlans.clone());
    assert!(vlans.contains(&10) && vlans.contains(&20), "{vlans:?}");
    for id in [MSG_SET_MULTICAST, MSG_SET_PROMISC] {
        assert_eq!(count(&dev, id), 1);
    }
    assert_eq!(count(&dev, MSG_SET_VLAN), 2);
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    dev.pf_reset_end();
    assert_eq!(port.service().unwrap(), ServiceEvent::Recovered);
    assert_eq!(count(&dev, MSG_SET_MULTICAST), 2);
    assert_eq!(count(&dev, MSG_SET_VLAN), 4);
    assert!(dev.pf(|p| p.allmulti && p.mc_count == 3));
    assert!(port.info().mac == PF_MAC);
    drop(port);
    dev.violations().assert_clean();
}

#[test]
fn unicast_promiscuous_is_refused_clearly() {
    let dev = vf(Some(PF_MAC));
    let mut c = cfg(&dev, 64);
    c.filters.promiscuous = true;
    let port = IgbvfPort::new(dev.bar(), c.clone()).unwrap();
    assert!(matches!(
        port.filter_refusals(),
        [FilterError::NotSupported {
            driver: "igbvf",
            ..
        }]
    ));
    // The multicast part still applies.
    assert!(dev.pf(|p| p.allmulti));
    assert_eq!(xstat(&port, "rx_filter_refusals"), 1);
    drop(port);
    c.filters.required = true;
    match IgbvfPort::new(dev.bar(), c) {
        Err(IgbvfError::Filter(FilterError::NotSupported { .. })) => {}
        other => panic!("required promiscuous on igbvf: {:?}", other.map(|_| ())),
    }
    dev.violations().assert_clean();
}

#[test]
fn a_bad_filter_is_named_before_anything_is_sent() {
    let dev = vf(Some(PF_MAC));
    let mut c = cfg(&dev, 64);
    c.filters.multicast = vec![PF_MAC];
    match IgbvfPort::new(dev.bar(), c) {
        Err(IgbvfError::Filter(FilterError::NotMulticast(m))) => assert_eq!(m, PF_MAC),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(count(&dev, MSG_SET_MULTICAST), 0);
}

/// A 60-byte frame to `dst`.
fn to(dst: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f
}

/// The runtime list (`Port::set_multicast`) reaches the PF, the model
/// drops multicast frames to groups not in it and delivers the joined
/// ones, a list longer than 30 turns multicast promiscuous on and a
/// shorter one off again, and a PF reset sends the current list again.
#[test]
fn runtime_multicast_list_filters_and_survives_a_pf_reset() {
    use super::tests::{pool, rx_until};
    use crate::port::MulticastOutcome;
    let dev = vf(Some(PF_MAC));
    let pool = pool(&dev, "igbvf-mc", 256);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(dev.bar(), cfg(&dev, 64)).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = crate::burst::Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // The solicited-node group of an address added after start.
    let joined = MacAddr([0x33, 0x33, 0xff, 0x00, 0x12, 0x05]);
    let other = MacAddr([0x33, 0x33, 0xff, 0x00, 0x12, 0x06]);
    assert!(!dev.inject(&to(joined)), "no list yet: the pool refuses it");
    assert_eq!(dev.pf(|p| p.mc_filtered), 1);
    assert_eq!(
        port.set_multicast(&[joined]).unwrap(),
        MulticastOutcome::Exact
    );
    assert_eq!(
        dev.pf(|p| p.mc_hashes.clone()),
        vec![super::filters::mc_hash(joined)]
    );
    let receive = |rx: &mut super::IgbvfRx<crate::sim::igbvf::IgbvfBar>,
                   cache: &mut crate::pool::PoolCache,
                   dst: MacAddr| {
        assert!(dev.inject(&to(dst)), "{dst} refused");
        rx_until(rx, cache, 32, |p, c| {
            assert_eq!(&p.data()[..6], &dst.0);
            c.free(p);
            true
        });
    };
    receive(&mut rx[0], &mut cache, joined);
    assert!(!dev.inject(&to(other)), "a group not in the list");
    // A PF reset: the PF forgets the hashes, the recovery sends them.
    dev.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    dev.pf_reset_end();
    let end = std::time::Instant::now() + super::tests::PATIENCE;
    while port.service().unwrap() != ServiceEvent::Recovered {
        // The workers' bursts release the queues.
        rx[0].rx_burst(&mut cache, &mut b, 32);
        tx[0].tx_burst(&mut cache, &mut b);
        assert!(std::time::Instant::now() < end, "no recovery");
    }
    rx[0].rx_burst(&mut cache, &mut b, 32);
    assert_eq!(
        dev.pf(|p| p.mc_hashes.clone()),
        vec![super::filters::mc_hash(joined)]
    );
    receive(&mut rx[0], &mut cache, joined);
    // 31 groups: more than one SET_MULTICAST carries.
    let many: Vec<MacAddr> = (0..31u8)
        .map(|i| MacAddr([0x01, 0, 0x5e, 0, 0, i]))
        .collect();
    assert!(matches!(
        port.set_multicast(&many).unwrap(),
        MulticastOutcome::AllMulticast { .. }
    ));
    assert!(dev.pf(|p| p.allmulti));
    receive(&mut rx[0], &mut cache, other);
    assert_eq!(
        port.set_multicast(&[joined]).unwrap(),
        MulticastOutcome::Exact
    );
    assert!(!dev.pf(|p| p.allmulti));
    assert!(!dev.inject(&to(other)));
    // A unicast address in the list is the caller's mistake.
    assert!(port.set_multicast(&[PF_MAC]).is_err());
    drop((rx, tx));
    drop(port);
    dev.violations().assert_clean();
}
