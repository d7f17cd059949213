//! Counters of the exception path, per fast-path port. One writer (the
//! exception thread), read by anyone, relaxed as the queues' counters are.

use drivers::port::QueueCounters;
use std::sync::atomic::AtomicU64;

/// What happened to one port's exception traffic.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct ExceptionPortCounters {
    /// Packets the workers punted for this port.
    pub punted: AtomicU64,
    /// Of those, dropped over the port's rate limit.
    pub rate_limited: AtomicU64,
    /// Written to the port's exception interface (the kernel has them).
    pub to_kernel: AtomicU64,
    /// Dropped because the interface took no more (the TAP was full), or
    /// refused them (counted by the interface's own statistics too).
    pub tap_full: AtomicU64,
    /// Read from the interface: what the kernel sends out of this port.
    pub from_kernel: AtomicU64,
    /// Of those, handed on to go out of the port.
    pub injected: AtomicU64,
    /// Of those, dropped because the way out was full.
    pub inject_full: AtomicU64,
    /// Punted while the port's exception interface was gone (deleted
    /// under us, not yet made again), dropped.
    pub iface_gone: AtomicU64,
}

/// A snapshot of [`ExceptionPortCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExceptionPortStats {
    /// See [`ExceptionPortCounters::punted`].
    pub punted: u64,
    /// See [`ExceptionPortCounters::rate_limited`].
    pub rate_limited: u64,
    /// See [`ExceptionPortCounters::to_kernel`].
    pub to_kernel: u64,
    /// See [`ExceptionPortCounters::tap_full`].
    pub tap_full: u64,
    /// See [`ExceptionPortCounters::from_kernel`].
    pub from_kernel: u64,
    /// See [`ExceptionPortCounters::injected`].
    pub injected: u64,
    /// See [`ExceptionPortCounters::inject_full`].
    pub inject_full: u64,
    /// See [`ExceptionPortCounters::iface_gone`].
    pub iface_gone: u64,
}

impl ExceptionPortCounters {
    /// The counters now.
    pub fn snapshot(&self) -> ExceptionPortStats {
        let g = QueueCounters::get;
        ExceptionPortStats {
            punted: g(&self.punted),
            rate_limited: g(&self.rate_limited),
            to_kernel: g(&self.to_kernel),
            tap_full: g(&self.tap_full),
            from_kernel: g(&self.from_kernel),
            injected: g(&self.injected),
            inject_full: g(&self.inject_full),
            iface_gone: g(&self.iface_gone),
        }
    }
}

impl ExceptionPortStats {
    /// By name, for the statistics (stable: scripts read them).
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("exception_punted", self.punted),
            ("exception_rate_limited", self.rate_limited),
            ("exception_to_kernel", self.to_kernel),
            ("exception_tap_full", self.tap_full),
            ("exception_from_kernel", self.from_kernel),
            ("exception_injected", self.injected),
            ("exception_inject_full", self.inject_full),
            ("exception_iface_gone", self.iface_gone),
        ]
    }
}
