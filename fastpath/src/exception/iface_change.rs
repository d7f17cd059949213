//! [`IfaceChange`]: what the router tells the exception thread when a
//! port's exception interface disappears under it (an operator's
//! `ip link del`) and when a new one replaces it.

use drivers::mbuf::PortId;

/// A change of one port's exception interface, sent to the running
/// [`ExceptionLoop`](super::ExceptionLoop) (see
/// [`ExceptionLoop::iface_changes`](super::ExceptionLoop::iface_changes)).
#[derive(Debug)]
pub enum IfaceChange<R, T> {
    /// The interface is gone: the loop drops its queues (they hold no pool
    /// buffer) and counts what is punted for the port as `iface_gone`.
    Gone(PortId),
    /// A new interface took its place: these are its queues.
    Back(PortId, Vec<(R, T)>),
}
