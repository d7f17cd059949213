//! Device models: VFs without the hardware, strict and asynchronous.
//!
//! A model is the device's register file ([`DeviceModel`]) run by a
//! [`SimDevice`]: the driver gets an `Arc<Vf<M>>` as its BAR (a
//! [`RegisterSpace`]) and PCI function ([`PciFunction`]), exactly as it
//! gets a vfio BAR on hardware, and the device's own thread fetches
//! descriptors, moves data and answers the mailbox on its own schedule.
//!
//! - [`Iommu`]: the DMA space. Pools and rings are mapped in it like in a
//!   vfio container; it is the only way a model reaches memory, and it
//!   hands out IOVAs that are never virtual addresses.
//! - [`ownership`]: who owns each buffer and ring; pools report every
//!   hand-off (`crate::pool::watch`).
//! - [`Violations`]: every broken rule, by name and reference section.
//!   A test fails on any it did not expect (`SimDevice` checks when
//!   dropped).
//! - [`adv`]: the advanced-descriptor queue engine (igbvf, ixgbevf).
//! - [`mailbox`]: the VF↔PF mailbox hardware and a PF-side responder.
//! - [`igbvf`]: the 82576 / I350 VF.
//! - [`ixgbevf`]: the 82599 / X540 / X550 VF, with the Linux ixgbe PF in
//!   [`ixgbevf_pf`].
//! - [`iavf`]: the X710/XL710 VF and the adaptive VF, with its admin
//!   queue in [`iavf_aq`], the Linux i40e/ice PF's virtchnl responder in
//!   [`iavf_pf`] and its data path in [`iavf_queue`].
//! - [`veb`]: a modelled PF's embedded switch between its VFs (ixgbevf or
//!   iavf models; each publishes the receive filter its PF holds).
//! - [`wire`]: hosts on a modelled PF's wire sending UDP to its VFs, and a
//!   sink checking what they send out (`fastpath demo`).
//! - [`vf_port`]: a model with our driver on it as a port of a run
//!   (`fastpath run --ports sim:ixgbevf,sim:iavf`).
//! - `vfio_user`: serving a model to a guest kernel over vfio-user (cargo
//!   feature `vfio-user`, a test tool).
//!
//! Models never use a driver's constants or encoders: they are written
//! from the references (nic-facts-igbvf.md, nic-facts.md), section cited.

pub mod adv;
pub mod iavf;
pub mod iavf_aq;
pub mod iavf_pf;
pub mod iavf_queue;
pub mod igbvf;
mod iommu;
pub mod ixgbevf;
pub mod ixgbevf_pf;
pub mod ixgbevf_rss;
pub mod mailbox;
pub mod ownership;
pub mod toeplitz;
pub mod veb;
pub mod vf_port;
#[cfg(any(test, feature = "vfio-user"))]
pub mod vfio_user;
mod violation;
pub mod wire;

pub use iommu::{Iommu, Miss};
pub use violation::{Rule, Violation, Violations};

use crate::mmio::RegisterSpace;
use crate::pci::{FunctionError, PciFunction};
use adv::Delays;
use ownership::{DmaRules, QueueTag};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Delivers a model's MSI-X messages outside it (to a guest's eventfds
/// when served over vfio-user); none by default, where tests read the
/// model's own counts.
#[derive(Clone, Default)]
pub struct IrqSink(Option<std::sync::Arc<dyn Fn(u16) + Send + Sync>>);

impl IrqSink {
    /// A sink calling `f` with the vector number.
    pub fn new(f: impl Fn(u16) + Send + Sync + 'static) -> IrqSink {
        IrqSink(Some(std::sync::Arc::new(f)))
    }

    /// Send vector `v` (nothing without a sink).
    pub fn signal(&self, v: u16) {
        if let Some(f) = &self.0 {
            f(v);
        }
    }
}

impl std::fmt::Debug for IrqSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "IrqSink(set)"
        } else {
            "IrqSink(none)"
        })
    }
}

/// What a model may use while it handles a register access or runs.
pub struct Cx<'a> {
    /// The DMA space.
    pub iommu: &'a Iommu,
    /// The model's time: the real time, or far ahead when the test flushes
    /// the device ([`SimDevice::flush`]).
    pub now: Instant,
    /// PCI bus mastering is on.
    pub bus_master: bool,
    /// The device's delays.
    pub delays: &'a Delays,
    /// The real time, from which new events are scheduled.
    pub real: Instant,
    /// True on the device thread (DMA is allowed only there).
    pub device_thread: bool,
    policy: BusMasterOff,
    blocked_reported: &'a mut bool,
}

impl Cx<'_> {
    /// When something `d` from now is due.
    pub fn after(&self, d: Duration) -> Instant {
        self.real + d
    }

    /// The device wanted to DMA with bus mastering off: a violation (once
    /// until bus mastering is turned on again), or counted only.
    pub fn bus_master_blocked(&mut self, rules: &DmaRules, queue: QueueTag) {
        if self.policy == BusMasterOff::Violation && !*self.blocked_reported {
            *self.blocked_reported = true;
            self.iommu.violations().record(
                rules.bus_master_off,
                format!("{queue} has DMA to do while PCI bus mastering is off (the queue was not stopped first)"),
            );
        }
    }
}

/// What the model does when it has DMA to do and bus mastering is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusMasterOff {
    /// A violation: the driver turned bus mastering off under a running
    /// queue.
    Violation,
    /// Hold the DMA and count it (as hardware would), no violation.
    Hold,
}

/// A device's register file and behaviour.
pub trait DeviceModel: Send + 'static {
    /// BAR0 size in bytes.
    fn bar_len(&self) -> usize;
    /// The device's delays.
    fn delays(&self) -> &Delays;
    /// A driver read (32-bit, 4-byte aligned, inside the BAR).
    fn read32(&mut self, cx: &mut Cx<'_>, offset: u32) -> u32;
    /// A driver write.
    fn write32(&mut self, cx: &mut Cx<'_>, offset: u32, value: u32);
    /// Device-thread work due at `cx.now`.
    fn run(&mut self, cx: &mut Cx<'_>);
    /// The earliest time work is due, `None` if nothing is pending.
    fn next_due(&self) -> Option<Instant>;
    /// Function-level reset (bus mastering is off afterwards).
    fn function_reset(&mut self, cx: &mut Cx<'_>);
    /// Record a violation for an access at a bad offset.
    fn bad_access(&mut self, cx: &mut Cx<'_>, offset: u32, write: bool);
    /// Where the model's MSI-X messages go (a model without interrupts
    /// ignores it).
    fn set_irq_sink(&mut self, _sink: IrqSink) {}
}

/// What wakes a device thread: rung by anything that gives it work (a
/// register access, a test trigger, a frame another device put in its
/// inbox). A leaf lock: nothing else is taken while it is held, so any
/// thread may ring it whatever it holds (another device's core
/// included), and a ring between the device's last look at its work and
/// its sleep is never lost (the sleep returns at once).
#[derive(Debug, Default)]
struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_one();
    }

    /// Sleep up to `d`, or not at all if rung since the last sleep.
    fn sleep(&self, d: Duration) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        if !*rung {
            rung = self
                .cv
                .wait_timeout(rung, d)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *rung = false;
    }
}

/// A handle that wakes one device thread, for another device (a switch
/// delivering a frame) or a server running a model its own way. Cheap to
/// clone; waking a device that is gone does nothing.
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    /// A waker that calls `f` (for a host that runs a model on its own
    /// thread, such as the vfio-user server). `f` must not block on
    /// anything the caller may hold: it is called under other devices'
    /// locks.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker(Arc::new(f))
    }

    /// Wake the device thread.
    pub fn wake(&self) {
        (self.0)()
    }

    fn of_bell(bell: &Arc<Bell>) -> Waker {
        let weak: Weak<Bell> = Arc::downgrade(bell);
        Waker::new(move || {
            if let Some(b) = weak.upgrade() {
                b.ring();
            }
        })
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

struct Core<M> {
    model: M,
    bus_master: bool,
    blocked_reported: bool,
    paused: bool,
    stop: bool,
    flush_asked: u64,
    flush_done: u64,
    passes: u64,
}

/// A device as its driver sees it: BAR and PCI function. Share it as
/// `Arc<Vf<M>>`.
pub struct Vf<M> {
    core: Mutex<Core<M>>,
    /// Flush completions, for [`SimDevice::flush`].
    wake: Condvar,
    /// The device thread's sleep.
    bell: Arc<Bell>,
    iommu: Arc<Iommu>,
    dev: u32,
    policy: BusMasterOff,
}

impl<M> std::fmt::Debug for Vf<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sim::Vf(dev{})", self.dev)
    }
}

impl<M: DeviceModel> Vf<M> {
    fn lock(&self) -> MutexGuard<'_, Core<M>> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn access<T>(&self, f: impl FnOnce(&mut M, &mut Cx<'_>) -> T) -> T {
        let mut core = self.lock();
        let c = &mut *core;
        let delays = *c.model.delays();
        let mut cx = Cx {
            iommu: &self.iommu,
            now: Instant::now(),
            real: Instant::now(),
            bus_master: c.bus_master,
            delays: &delays,
            device_thread: false,
            policy: self.policy,
            blocked_reported: &mut c.blocked_reported,
        };
        let r = f(&mut c.model, &mut cx);
        drop(core);
        self.kick();
        r
    }

    /// Wake the device thread (and anyone waiting on a flush).
    fn kick(&self) {
        self.bell.ring();
        self.wake.notify_all();
    }

    /// A handle that wakes this device's thread.
    pub fn waker(&self) -> Waker {
        Waker::of_bell(&self.bell)
    }

    /// The DMA space the device is in.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.iommu
    }

    /// The device number in its DMA space.
    pub fn dev(&self) -> u32 {
        self.dev
    }
}

impl<M: DeviceModel> RegisterSpace for Vf<M> {
    fn read32(&self, offset: u32) -> u32 {
        self.access(|m, cx| {
            if offset as usize >= m.bar_len() || !offset.is_multiple_of(4) {
                m.bad_access(cx, offset, false);
                return !0;
            }
            m.read32(cx, offset)
        })
    }

    fn write32(&self, offset: u32, value: u32) {
        self.access(|m, cx| {
            if offset as usize >= m.bar_len() || !offset.is_multiple_of(4) {
                m.bad_access(cx, offset, true);
                return;
            }
            m.write32(cx, offset, value)
        })
    }

    fn len(&self) -> usize {
        self.lock().model.bar_len()
    }
}

impl<M: DeviceModel> PciFunction for Vf<M> {
    fn set_bus_master(&self, on: bool) -> Result<(), FunctionError> {
        let mut core = self.lock();
        core.bus_master = on;
        if on {
            core.blocked_reported = false;
        }
        self.iommu.owners().set_bus_master(self.dev, on);
        drop(core);
        self.kick();
        Ok(())
    }

    fn function_reset(&self) -> Result<(), FunctionError> {
        self.access(|m, cx| m.function_reset(cx));
        let mut core = self.lock();
        core.bus_master = false;
        self.iommu.owners().set_bus_master(self.dev, false);
        Ok(())
    }
}

/// A running device model: owns the device thread. Dropping it stops the
/// thread and fails the test on any violation nobody expected.
pub struct SimDevice<M: DeviceModel> {
    vf: Arc<Vf<M>>,
    thread: Option<JoinHandle<()>>,
    /// Dropping panics on a pending violation (tests); off when the owner
    /// audits the space itself ([`SimDevice::audited_by_owner`]).
    assert_on_drop: bool,
}

impl<M: DeviceModel> std::fmt::Debug for SimDevice<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimDevice({:?})", self.vf)
    }
}

/// The longest the device thread sleeps when it has nothing due.
const IDLE_WAIT: Duration = Duration::from_millis(5);
/// How far ahead "now" is when the test flushes the device.
const FLUSH_AHEAD: Duration = Duration::from_secs(3600);

impl<M: DeviceModel> SimDevice<M> {
    /// Start `model` in `iommu`, bus mastering on (as vfio leaves a device
    /// the driver enabled), DMA with bus mastering off a violation.
    /// `model` is made from the device's number in the space.
    pub fn start(iommu: &Arc<Iommu>, model: impl FnOnce(u32) -> M) -> SimDevice<M> {
        Self::start_with(iommu, BusMasterOff::Violation, model)
    }

    /// Same, choosing what DMA with bus mastering off does.
    pub fn start_with(
        iommu: &Arc<Iommu>,
        policy: BusMasterOff,
        model: impl FnOnce(u32) -> M,
    ) -> SimDevice<M> {
        let dev = iommu.attach();
        let model = model(dev);
        iommu.owners().set_bus_master(dev, true);
        let vf = Arc::new(Vf {
            core: Mutex::new(Core {
                model,
                bus_master: true,
                blocked_reported: false,
                paused: false,
                stop: false,
                flush_asked: 0,
                flush_done: 0,
                passes: 0,
            }),
            wake: Condvar::new(),
            bell: Arc::default(),
            iommu: Arc::clone(iommu),
            dev,
            policy,
        });
        let t = Arc::clone(&vf);
        let thread = std::thread::Builder::new()
            .name(format!("sim-dev{dev}"))
            .spawn(move || device_thread(&t))
            .expect("spawn the device thread");
        SimDevice {
            vf,
            thread: Some(thread),
            assert_on_drop: true,
        }
    }

    /// Dropping this device no longer panics on pending violations: its
    /// owner takes them from [`violations`](Self::violations) and reports
    /// them (a product run with simulated ports fails its audit instead of
    /// panicking).
    pub fn audited_by_owner(&mut self) {
        self.assert_on_drop = false;
    }

    /// The device as the driver takes it.
    pub fn bar(&self) -> Arc<Vf<M>> {
        Arc::clone(&self.vf)
    }

    /// The DMA space.
    pub fn iommu(&self) -> &Arc<Iommu> {
        &self.vf.iommu
    }

    /// A handle that wakes the device thread (see [`Waker`]).
    pub fn waker(&self) -> Waker {
        self.vf.waker()
    }

    /// The violations of the device's DMA space.
    pub fn violations(&self) -> &Violations {
        self.vf.iommu.violations()
    }

    /// Act on the model (test triggers), as the device: the device thread
    /// is not running meanwhile.
    pub fn with<T>(&self, f: impl FnOnce(&mut M, &mut Cx<'_>) -> T) -> T {
        self.vf.access(f)
    }

    /// Stop the device's own progress: nothing moves until
    /// [`flush`](Self::flush) or [`resume`](Self::resume).
    pub fn pause(&self) {
        self.vf.lock().paused = true;
    }

    /// Let the device run on its own again.
    pub fn resume(&self) {
        self.vf.lock().paused = false;
        self.vf.kick();
    }

    /// Have the device thread do, now, everything it has pending, as if
    /// every delay had passed (also while paused); returns after that pass.
    pub fn flush(&self) {
        let mut core = self.vf.lock();
        core.flush_asked += 1;
        let want = core.flush_asked;
        self.vf.kick();
        while core.flush_done < want {
            core = self.vf.wake.wait(core).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Flush until the device has nothing pending (at most `passes`).
    pub fn settle(&self) {
        for _ in 0..64 {
            self.flush();
            if self.vf.lock().model.next_due().is_none() {
                return;
            }
        }
    }

    /// Wait (flushing) until `cond` holds on the model, up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut(&mut M) -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if cond(&mut self.vf.lock().model) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            self.flush();
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Device passes so far.
    pub fn passes(&self) -> u64 {
        self.vf.lock().passes
    }
}

impl<M: DeviceModel> Drop for SimDevice<M> {
    fn drop(&mut self) {
        self.vf.lock().stop = true;
        self.vf.kick();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.assert_on_drop && !std::thread::panicking() {
            self.vf.iommu.violations().assert_clean();
        }
    }
}

fn device_thread<M: DeviceModel>(vf: &Vf<M>) {
    let mut core = vf.lock();
    loop {
        if core.stop {
            return;
        }
        let flush = core.flush_asked > core.flush_done;
        let now = Instant::now();
        if !core.paused || flush {
            let c = &mut *core;
            let delays = *c.model.delays();
            let mut cx = Cx {
                iommu: &vf.iommu,
                now: if flush { now + FLUSH_AHEAD } else { now },
                real: now,
                bus_master: c.bus_master,
                delays: &delays,
                device_thread: true,
                policy: vf.policy,
                blocked_reported: &mut c.blocked_reported,
            };
            c.model.run(&mut cx);
            // A second pass lets work the first one made due (a fetch
            // that enables a receive) happen in the same flush.
            if flush {
                c.model.run(&mut cx);
                c.flush_done = c.flush_asked;
                vf.wake.notify_all();
            }
            c.passes += 1;
        }
        let wait = match core.model.next_due() {
            _ if core.paused || !core.bus_master => IDLE_WAIT,
            Some(d) => d.saturating_duration_since(Instant::now()).min(IDLE_WAIT),
            None => IDLE_WAIT,
        };
        if wait.is_zero() {
            // Due already: yield the lock briefly and go round.
            drop(core);
            std::thread::yield_now();
            core = vf.lock();
            continue;
        }
        // Sleep on the bell, not on the core: whoever gives the device
        // work rings it, even while holding another device's lock.
        drop(core);
        vf.bell.sleep(wait);
        core = vf.lock();
    }
}

#[cfg(test)]
mod iavf_rules;
#[cfg(test)]
mod iavf_veb_tests;
#[cfg(test)]
mod igbvf_rules;
#[cfg(test)]
mod ixgbevf_irq_tests;
#[cfg(test)]
mod ixgbevf_rules;
#[cfg(test)]
mod ixgbevf_veb_tests;
