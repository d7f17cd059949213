//! The host's VF: a second VF of the modelled PF, driven in this process
//! by our PMD for that VF kind, trading payload-checked frames with the
//! guest's VF (Linux's ixgbevf.ko or iavf.ko) through the PF's switch,
//! round after round, with a fault injected by the model in the middle of
//! the later rounds.
//!
//! The rounds do not depend on the VF kind: a [`HostVfKind`] opens "a
//! port on a new VF of this switch" (the model and our PMD on it), and
//! [`HostVf`] runs the rounds on whatever port that gives. ixgbevf has
//! one ([`IxgbevfHost`]); iavf gets one when its PMD lands.
//!
//! Round 1 runs clean; round 2 takes a link flap, round 3 a PF reset,
//! then they alternate. A fault fires once half of the round's frames
//! have reached the host's VF, so both drivers meet it with traffic in
//! flight; the exchange resends what the fault lost (lab_frames).

use drivers::lab_frames::{peer, Endpoint};
use drivers::mbuf::PortId;
use drivers::memory::MemoryBacking;
use drivers::net::MacAddr;
use drivers::pci::{lookup, INTEL};
use drivers::pmd::iavf::{IavfConfig as IavfPortConfig, IavfPort};
use drivers::pmd::ixgbevf::{IxgbevfConfig as PortConfig, IxgbevfPort};
use drivers::pool::{Pool, PoolConfig};
use drivers::port::Port;
use drivers::sim::iavf::{Flavor as IavfFlavor, Iavf, IavfBar, IavfConfig};
use drivers::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfBar, IxgbevfConfig};
use drivers::sim::veb::Veb;
use drivers::sim::Iommu;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The admin MAC of the host's VF.
pub const HOST_VF_MAC: MacAddr = MacAddr([0x02, 0x09, 0x00, 0x00, 0x00, 0x02]);
/// Buffers of the host port's pool: its RX ring, TX ring and the
/// exchange's windows, with room to spare.
const POOL_BUFFERS: u32 = 4096;
/// How long a fault keeps the link down or the PF in reset.
const FAULT_TIME: Duration = Duration::from_millis(300);

/// What the host's end does.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds (the guest runs as many).
    pub rounds: u32,
    /// Frames each way per round.
    pub count: u32,
    /// Time for one round, the wait for the guest's hello included.
    pub round_timeout: Duration,
}

/// A fault the model injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    LinkFlap,
    PfReset,
}

impl Fault {
    /// Round 1 runs clean, then link flap and PF reset alternate.
    fn for_round(round: u32) -> Option<Fault> {
        match round {
            0 | 1 => None,
            r if r % 2 == 0 => Some(Fault::LinkFlap),
            _ => Some(Fault::PfReset),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fault::LinkFlap => "link-flap",
            Fault::PfReset => "pf-reset",
        }
    }

    fn inject(self, veb: &Veb) {
        match self {
            Fault::LinkFlap => {
                veb.set_link(false);
                std::thread::sleep(FAULT_TIME);
                veb.set_link(true);
            }
            Fault::PfReset => {
                veb.pf_reset_begin();
                std::thread::sleep(FAULT_TIME);
                veb.pf_reset_end();
            }
        }
    }
}

/// What the host's end left for the server's last lines.
#[derive(Default)]
pub struct Outcome {
    /// One line per round (`PEER-FRAMES ...`) and per fault (`FAULT ...`).
    pub lines: Vec<String>,
    /// Rounds complete both ways.
    pub complete: u32,
    /// Why the host's end stopped early, if it did.
    pub error: Option<String>,
}

/// A VF the host opened on the switch: the model, its port number, and
/// our PMD's port on it.
pub struct OpenedVf<P> {
    /// The model of the host's VF (its device thread runs while this
    /// lives).
    pub model: Box<dyn Any + Send>,
    /// Its switch port.
    pub port_no: usize,
    /// Our PMD on it.
    pub port: P,
}

/// A kind of VF the host's side can run: how to open a port on a new VF
/// of the switch's PF, admin MAC [`HOST_VF_MAC`], in the DMA space
/// `iommu` (where the host's pool is mapped).
pub trait HostVfKind {
    /// Our PMD's port type for this VF.
    type Port: Port;
    /// Attach the model to `veb` (`<Model>::start_on`) and open our PMD
    /// on it.
    fn open(&self, veb: &Arc<Veb>, iommu: &Arc<Iommu>) -> Result<OpenedVf<Self::Port>, String>;
}

/// An ixgbevf VF of this flavor with our ixgbevf PMD.
pub struct IxgbevfHost(pub Flavor);

impl HostVfKind for IxgbevfHost {
    type Port = IxgbevfPort<IxgbevfBar>;

    fn open(&self, veb: &Arc<Veb>, iommu: &Arc<Iommu>) -> Result<OpenedVf<Self::Port>, String> {
        let flavor = self.0;
        let cfg = IxgbevfConfig::new(flavor, Some(HOST_VF_MAC));
        let dev = Ixgbevf::start_on(veb, cfg, iommu).map_err(|e| format!("switch: {e}"))?;
        let port_no = dev.veb_port().ok_or("the host VF is not on the switch")?;
        let row = *lookup(INTEL, flavor.device_id()).ok_or("no ixgbevf row for the flavor")?;
        let mut cfg = PortConfig::for_device(PortId(1), "host-vf", row, iommu.mapper());
        cfg.backing = MemoryBacking::NoHuge;
        let port = IxgbevfPort::new(dev.bar(), cfg).map_err(|e| format!("open: {e}"))?;
        Ok(OpenedVf {
            model: Box::new(dev),
            port_no,
            port,
        })
    }
}

/// An iavf VF of this flavor (an i40e PF's 154c, an ice PF's 1889) with
/// our iavf PMD.
pub struct IavfHost(pub IavfFlavor);

impl HostVfKind for IavfHost {
    type Port = IavfPort<IavfBar>;

    fn open(&self, veb: &Arc<Veb>, iommu: &Arc<Iommu>) -> Result<OpenedVf<Self::Port>, String> {
        let flavor = self.0;
        let cfg = IavfConfig::new(flavor, Some(HOST_VF_MAC));
        let dev = Iavf::start_on(veb, cfg, iommu).map_err(|e| format!("switch: {e}"))?;
        let port_no = dev.veb_port().ok_or("the host VF is not on the switch")?;
        let row = *lookup(INTEL, flavor.device_id()).ok_or("no iavf row for the flavor")?;
        let mut cfg = IavfPortConfig::for_device(PortId(1), "host-vf", row, iommu.mapper());
        cfg.backing = MemoryBacking::NoHuge;
        let port = IavfPort::new(dev.bar(), cfg).map_err(|e| format!("open: {e}"))?;
        Ok(OpenedVf {
            model: Box::new(dev),
            port_no,
            port,
        })
    }
}

/// The host's VF and its port, on `veb`.
pub struct HostVf<P: Port> {
    veb: Arc<Veb>,
    iommu: Arc<Iommu>,
    /// The model of the host's VF (its device thread runs while this lives).
    _dev: Box<dyn Any + Send>,
    port_no: usize,
    pool: Pool,
    ep: Endpoint<P>,
}

impl<P: Port> HostVf<P> {
    /// Attach a VF of `kind` to `veb` in its own DMA space and open our
    /// PMD on it.
    pub fn open<K: HostVfKind<Port = P>>(veb: &Arc<Veb>, kind: &K) -> Result<HostVf<P>, String> {
        let iommu = Iommu::new();
        let mut pc = PoolConfig::new("host-vf", POOL_BUFFERS).with_backing(MemoryBacking::NoHuge);
        pc.dma = Some(iommu.mapper());
        let pool = Pool::new(&pc).map_err(|e| format!("pool: {e}"))?;
        let vf = kind.open(veb, &iommu)?;
        let ep = Endpoint::new(vf.port).map_err(|e| format!("queues: {e}"))?;
        Ok(HostVf {
            veb: Arc::clone(veb),
            iommu,
            _dev: vf.model,
            port_no: vf.port_no,
            pool,
            ep,
        })
    }

    /// The DMA space (its violations are the PMD's broken rules).
    pub fn iommu(&self) -> Arc<Iommu> {
        Arc::clone(&self.iommu)
    }

    /// Frames the switch delivered to the host's VF so far.
    fn rx_frames(&self) -> u64 {
        self.veb
            .port_counters(self.port_no)
            .map_or(0, |c| c.rx_frames)
    }

    /// Run the rounds of `plan`, appending to `out` as they end.
    pub fn run(&mut self, plan: Plan, out: &Mutex<Outcome>) {
        let push = |line: String| {
            eprintln!("vfio_user_server: {line}");
            lock(out).lines.push(line);
        };
        let mut cache = self.pool.cache();
        for round in 1..=plan.rounds {
            let fault = Fault::for_round(round);
            let done = AtomicBool::new(false);
            let base = self.rx_frames();
            let veb = Arc::clone(&self.veb);
            let port_no = self.port_no;
            let r = std::thread::scope(|s| {
                if let Some(f) = fault {
                    let (done, push) = (&done, &push);
                    s.spawn(move || {
                        // Half the round's frames in: then the fault.
                        let at = base + u64::from(plan.count / 2);
                        let end = Instant::now() + plan.round_timeout;
                        while !done.load(Ordering::Acquire) && Instant::now() < end {
                            let rx = veb.port_counters(port_no).map_or(0, |c| c.rx_frames);
                            if rx >= at {
                                push(format!(
                                    "FAULT round={round} {} after {} frames into the host VF",
                                    f.name(),
                                    rx - base
                                ));
                                f.inject(&veb);
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    });
                }
                let r = peer::run_round(
                    &mut self.ep,
                    &mut cache,
                    round,
                    plan.count,
                    plan.round_timeout,
                );
                // Release: pairs with the injector's Acquire load; it
                // stops watching once the round is over.
                done.store(true, Ordering::Release);
                r
            });
            match r {
                Ok(report) => {
                    push(report.line(peer::TAG));
                    let ok = report.complete();
                    if ok {
                        lock(out).complete += 1;
                    }
                    if !ok {
                        lock(out).error = Some(format!("round {round} incomplete"));
                        return;
                    }
                }
                Err(e) => {
                    lock(out).error = Some(format!("round {round}: {e}"));
                    return;
                }
            }
        }
        let xs = self.ep.port().xstats();
        let pick = |n: &str| xs.iter().find(|x| x.0 == n).map_or(0, |x| x.1);
        push(format!(
            "HOST-VF pf_reset_recoveries={} link={} stats rx={} tx={}",
            pick("pf_reset_recoveries"),
            if self.ep.port().link().up {
                "up"
            } else {
                "down"
            },
            self.ep.port().stats().ipackets,
            self.ep.port().stats().opackets,
        ));
    }
}

fn lock(m: &Mutex<Outcome>) -> std::sync::MutexGuard<'_, Outcome> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
