//! The hook a device model implements to be served over vfio-user.

use super::config_space::PciConfigSpace;
use super::dma::GuestMemory;
use super::irq::MsixVectors;
use std::sync::Arc;

/// What a model reaches besides its own registers: guest memory for DMA
/// and the MSI-X eventfds. Owned by the server and lent to every call, so
/// a model holds no fd of its own and a reset or re-map is seen at once.
#[derive(Debug, Default)]
pub struct DeviceContext {
    /// Guest RAM as mapped by DMA_MAP (read and write by IOVA).
    pub memory: GuestMemory,
    /// MSI-X vectors as set by SET_IRQS (signal by vector number);
    /// shared, so a model's own thread can signal them too.
    pub msix: Arc<MsixVectors>,
}

/// A PCI function served to a guest.
///
/// The server calls these from its one connection thread, in the order
/// QEMU sent the messages (QEMU posts BAR writes but keeps their order;
/// reads are synchronous). The context is lent for the call; a model that
/// acts on its own (a device thread: timers, RX from elsewhere, link
/// events) takes what it needs from the hooks: the guest RAM sections as
/// they are mapped ([`dma_mapped`](Self::dma_mapped)) and a clone of the
/// shared MSI-X vectors.
pub trait VfioUserDevice {
    /// The config space the guest sees (ids, BARs, capabilities).
    fn config_space(&mut self) -> &mut PciConfigSpace;

    /// A read of `data.len()` bytes at `offset` in BAR `bar`.
    fn bar_read(&mut self, bar: u8, offset: u64, data: &mut [u8], ctx: &mut DeviceContext);

    /// A write of `data` at `offset` in BAR `bar`.
    fn bar_write(&mut self, bar: u8, offset: u64, data: &[u8], ctx: &mut DeviceContext);

    /// VFIO_USER_DEVICE_RESET (a function-level reset from the guest).
    fn reset(&mut self, ctx: &mut DeviceContext);

    /// The connection is up: `ctx` is what every later call gets (a model
    /// with its own thread clones the MSI-X vectors here).
    fn connected(&mut self, _ctx: &mut DeviceContext) {}

    /// A config-space write was applied (the command register's bus
    /// master bit, the PCIe FLR bit may have changed).
    fn config_written(&mut self, _offset: u64, _ctx: &mut DeviceContext) {}

    /// DMA_MAP made guest RAM `iova..iova+size` reachable in
    /// `ctx.memory`.
    fn dma_mapped(&mut self, _iova: u64, _size: u64, _ctx: &mut DeviceContext) {}

    /// DMA_UNMAP of `iova..iova+size`, before `ctx.memory` drops it.
    fn dma_unmapping(&mut self, _iova: u64, _size: u64, _ctx: &mut DeviceContext) {}
}
