//! The port's lifecycle: stop and start while the workers hold the
//! queues, and what happens when a queue never reads back disabled.

use super::model::Model;
use super::regs::*;
use super::*;
use crate::burst::Burst;
use crate::mbuf::PortId;
use crate::memory::{DmaMapper, MemoryBacking, TestMapper};
use crate::mmio::RegisterSpace;
use crate::net::MacAddr;
use crate::pmd::adv_desc::QUEUE_ENABLE;
use crate::pool::{Pool, PoolConfig};
use crate::port::{Port, PortError, RxQueue, ServiceEvent, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const PF_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x10]);

/// A device whose queues ignore a cleared ENABLE while `stuck` is set:
/// RXDCTL/TXDCTL keep reading back ENABLE, as a wedged DMA engine would.
#[derive(Debug)]
struct Wedged {
    model: Arc<Model>,
    stuck: AtomicBool,
}

impl RegisterSpace for Wedged {
    fn read32(&self, off: u32) -> u32 {
        let v = self.model.read32(off);
        // Relaxed: set by the test thread before the port is stopped.
        if self.stuck.load(Ordering::Relaxed) && (off == rxdctl(0) || off == txdctl(0)) {
            v | QUEUE_ENABLE
        } else {
            v
        }
    }
    fn write32(&self, off: u32, v: u32) {
        self.model.write32(off, v)
    }
    fn len(&self) -> usize {
        self.model.len()
    }
}

fn setup(name: &str, n: u32) -> (Pool, IgbvfConfig) {
    let dma: Arc<dyn DmaMapper> = Arc::new(TestMapper::identity());
    let mut pc = PoolConfig::new(name, n).with_backing(MemoryBacking::NoHuge);
    pc.cache_size = 32;
    pc.dma = Some(Arc::clone(&dma));
    let mut c = IgbvfConfig::new(PortId(1), "vf0", dma);
    c.rx_ring = 64;
    c.tx_ring = 64;
    c.backing = MemoryBacking::NoHuge;
    c.timing = Timing::immediate();
    (Pool::new(&pc).unwrap(), c)
}

#[test]
fn stop_then_start_while_workers_hold_the_queues() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let (pool, cfg) = setup("igbvf-stop", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0, "posts the ring");
    assert!(m.inject(&[7u8; 100]));
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 1);
    cache.free_bulk(&mut b);
    let posted = rx[0].posted();
    assert!(posted >= 62, "{posted}");

    Port::stop(&mut port).unwrap();
    // The device was stopped before any buffer could be freed: ENABLE is
    // clear, yet the worker still holds every posted buffer.
    assert_eq!(m.reg(rxdctl(0)) & QUEUE_ENABLE, 0);
    assert_eq!(m.reg(txdctl(0)) & QUEUE_ENABLE, 0);
    assert_eq!(rx[0].posted(), posted);
    assert_eq!(
        Port::service(&mut port).unwrap(),
        ServiceEvent::WaitingForQueues
    );
    assert!(!port.link().up);
    // The workers answer at their next burst.
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(rx[0].posted(), 0);
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Stopped);
    assert_eq!(pool.in_use(), cache.len(), "every buffer is back");
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Idle);
    // A frame while stopped is not received.
    assert!(
        !m.inject(&[8u8; 100]),
        "no descriptors posted while stopped"
    );
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);

    Port::start(&mut port).unwrap();
    assert!(port.link().up);
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(
        rx[0].posted(),
        63,
        "buffers posted again on the first burst"
    );
    assert!(m.inject(&[9u8; 100]));
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 1);
    assert_eq!(b.as_slice()[0].data(), &[9u8; 100]);
    cache.free_bulk(&mut b);
    let x = Port::xstats(&port);
    let get = |n: &str| x.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get("rx_buffers_leaked"), Some(0));
    assert_eq!(
        get("pf_reset_recoveries"),
        Some(0),
        "a stop is not a PF reset"
    );
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(pool.available(), 512);
}

#[test]
fn a_queue_that_never_stops_has_its_buffers_abandoned_and_counted() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let regs = Arc::new(Wedged {
        model: Arc::clone(&m),
        stuck: AtomicBool::new(false),
    });
    let (pool, cfg) = setup("igbvf-wedged", 512);
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&regs), cfg).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    m.st().tx_hold = true;
    for _ in 0..5 {
        let mut p = cache.alloc().unwrap();
        p.append(60).unwrap();
        b.push(p);
    }
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 5);
    assert_eq!(rx[0].posted(), 63);
    assert_eq!(tx[0].in_flight(), 5);

    regs.stuck.store(true, Ordering::Relaxed);
    Port::stop(&mut port).unwrap();
    assert_eq!(rx[0].rx_burst(&mut cache, &mut b, 32), 0);
    assert_eq!(tx[0].tx_burst(&mut cache, &mut b), 0);
    assert_eq!(Port::service(&mut port).unwrap(), ServiceEvent::Stopped);
    let x = Port::xstats(&port);
    let get = |n: &str| x.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get("rx_buffers_leaked"), Some(63));
    assert_eq!(get("tx_buffers_leaked"), Some(5));
    // Nobody can be handed a buffer the device may still write into.
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(pool.available(), 512 - 68, "the abandoned buffers stay out");
}

/// A PCI function whose bus-master bit the test can read and clear.
#[derive(Debug, Default)]
struct Function {
    master: AtomicBool,
}
impl crate::pci::PciFunction for Function {
    fn set_bus_master(&self, on: bool) -> Result<(), crate::pci::FunctionError> {
        // Relaxed: read by the test thread after the port dropped.
        self.master.store(on, Ordering::Relaxed);
        Ok(())
    }
    fn function_reset(&self) -> Result<(), crate::pci::FunctionError> {
        self.master.store(false, Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn dropping_a_running_port_resets_the_vf_and_turns_bus_mastering_off() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let f = Arc::new(Function {
        master: AtomicBool::new(true),
    });
    let (pool, mut cfg) = setup("igbvf-drop-port", 256);
    cfg.pci = Some(f.clone());
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg).unwrap();
    let (mut rx, tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    let resets_before = m.st().requests.len();
    drop(port);
    assert!(!f.master.load(Ordering::Relaxed), "bus mastering off");
    assert_eq!(m.reg(rxdctl(0)) & QUEUE_ENABLE, 0);
    assert!(m.st().requests.len() >= resets_before);
    // The queues outlive the port and still give their buffers back.
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.available(), 256);
}

#[test]
fn software_ports_say_they_cannot_stop() {
    let mut p = crate::port::null::NullPort::new(PortId(0), "null0", 64);
    let e = Port::stop(&mut p).unwrap_err();
    assert!(matches!(e, PortError::Unsupported { .. }));
    assert_eq!(e.to_string(), "port null0: null ports cannot stop");
}

#[test]
fn recovery_turns_bus_mastering_back_on_after_a_function_reset() {
    let m = Arc::new(Model::new(Some(PF_MAC)));
    let f = Arc::new(Function {
        master: AtomicBool::new(true),
    });
    let (pool, mut cfg) = setup("igbvf-flr", 256);
    cfg.pci = Some(f.clone());
    let mut cache = pool.cache();
    let mut port = IgbvfPort::new(Arc::clone(&m), cfg).unwrap();
    let (mut rx, mut tx) = port.queues(1, 1).unwrap();
    let mut b = Burst::new();
    rx[0].rx_burst(&mut cache, &mut b, 32);
    // The PF resets the VF, and the function is reset meanwhile.
    m.pf_reset_begin();
    assert_eq!(port.service().unwrap(), ServiceEvent::ResetDetected);
    rx[0].rx_burst(&mut cache, &mut b, 32);
    tx[0].tx_burst(&mut cache, &mut b);
    crate::pci::PciFunction::function_reset(&*f).unwrap();
    assert!(!f.master.load(Ordering::Relaxed));
    m.pf_reset_end();
    let mut ev = port.service().unwrap();
    for _ in 0..4 {
        if ev == ServiceEvent::Recovered {
            break;
        }
        ev = port.service().unwrap();
    }
    assert_eq!(ev, ServiceEvent::Recovered);
    assert!(
        f.master.load(Ordering::Relaxed),
        "bus mastering is on again after the recovery"
    );
    drop((rx, tx));
    drop(cache);
    drop(port);
    assert_eq!(pool.available(), 256);
}
