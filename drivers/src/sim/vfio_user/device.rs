//! The hook a device model implements to be served over vfio-user.

use super::config_space::PciConfigSpace;
use super::dma::GuestMemory;
use super::irq::MsixVectors;

/// What a model reaches besides its own registers: guest memory for DMA
/// and the MSI-X eventfds. Owned by the server and lent to every call, so
/// a model holds no fd of its own and a reset or re-map is seen at once.
#[derive(Debug, Default)]
pub struct DeviceContext {
    /// Guest RAM as mapped by DMA_MAP (read and write by IOVA).
    pub memory: GuestMemory,
    /// MSI-X vectors as set by SET_IRQS (signal by vector number).
    pub msix: MsixVectors,
}

/// A PCI function served to a guest.
///
/// The server calls these from its one connection thread, in the order
/// QEMU sent the messages (QEMU posts BAR writes but keeps their order;
/// reads are synchronous). The context is lent only for the call: a model
/// acts inside register accesses (DMA and [`MsixVectors::signal`] from
/// there). A model that must act on its own (timers, RX from elsewhere,
/// link events) needs the context shared with its thread, which the
/// server does not offer yet (scripts/vfio-user-lab/README.md).
pub trait VfioUserDevice {
    /// The config space the guest sees (ids, BARs, capabilities).
    fn config_space(&mut self) -> &mut PciConfigSpace;

    /// A read of `data.len()` bytes at `offset` in BAR `bar`.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], ctx: &mut DeviceContext);

    /// A write of `data` at `offset` in BAR `bar`.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8], ctx: &mut DeviceContext);

    /// VFIO_USER_DEVICE_RESET (a function-level reset from the guest).
    fn reset(&mut self, ctx: &mut DeviceContext);
}
