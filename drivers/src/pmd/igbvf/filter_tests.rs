//! igbvf receive filters against the igbvf model's PF: all-multicast, the
//! multicast list and VLANs are honoured (and sent again after a PF
//! reset); unicast promiscuous is refused with a typed error, fatal only
//! when the filters are required.

use super::device::{IgbvfError, IgbvfPort};
use super::regs::{MSG_ID_MASK, MSG_SET_MULTICAST, MSG_SET_PROMISC, MSG_SET_VLAN};
use super::tests::{cfg, vf, xstat};
use crate::net::MacAddr;
use crate::pmd::rx_filters::{FilterError, RxFilters};
use crate::port::{Port, ServiceEvent};

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
