//! Opening a VF, whatever its driver: the one entry point the control
//! side uses. Given a PCI address, the vfio container, the buffer pool and
//! a driver-neutral configuration, the driver that the supported-device
//! table names for the device returns a port that owns its device, BAR,
//! rings and mappings, and tears them down in a DMA-safe order when it
//! drops (queues stopped and read back, device reset, bus mastering off,
//! then the rings' memory unmapped).
//!
//! Adding a driver: a module under `pmd/` with an `open` function, its
//! device ids in `pci::SUPPORTED_DEVICES`, and a row in [`DRIVERS`].

use super::rx_filters::RxFilters;
use crate::mbuf::PortId;
use crate::memory::{DmaMapper, MemoryBacking};
use crate::net::MacAddr;
use crate::pci::{DriverKind, PciAddress, PciError, SupportedDevice, Sysfs};
use crate::pool::Pool;
use crate::port::DynPort;
use crate::vfio::{Bar, Container, Device, VfioError};
use std::sync::Arc;

/// What a driver's `open` gets.
pub struct OpenArgs<'a> {
    /// The device's table entry.
    pub device: &'static SupportedDevice,
    /// Its address.
    pub address: PciAddress,
    /// BAR 0, mapped.
    pub bar: Bar,
    /// The vfio device (bus mastering on), for the port to own.
    pub pci: Device,
    /// The address space of the device: the pool is mapped in it, and the
    /// driver maps its rings there.
    pub dma: Arc<dyn DmaMapper>,
    /// Data room of the pool's buffers.
    pub data_room: usize,
    /// The port's settings.
    pub cfg: &'a VfConfig,
}

/// A driver's entry point.
pub type OpenFn = fn(OpenArgs<'_>) -> Result<DynPort, OpenError>;

/// A driver: which devices it runs and how to open one.
pub struct DriverEntry {
    /// The driver.
    pub kind: DriverKind,
    /// Its `open`.
    pub open: OpenFn,
}

/// Every VF driver built in.
pub const DRIVERS: &[DriverEntry] = &[
    DriverEntry {
        kind: DriverKind::Igbvf,
        open: super::igbvf::open,
    },
    DriverEntry {
        kind: DriverKind::Ixgbevf,
        open: super::ixgbevf::open,
    },
    DriverEntry {
        kind: DriverKind::Iavf,
        open: super::iavf::open,
    },
];

/// RX descriptors per VF queue by default: each holds a posted buffer of
/// the pool while the port runs.
pub const DEFAULT_VF_RX_RING: usize = 512;
/// TX descriptors per VF queue by default: each may hold a sent buffer
/// until the device reports it done.
pub const DEFAULT_VF_TX_RING: usize = 512;

/// How to set up a VF port, whatever its driver.
#[derive(Clone, Debug)]
pub struct VfConfig {
    /// Port id in the port table.
    pub id: PortId,
    /// Name for logs and errors.
    pub name: String,
    /// RX descriptors per queue.
    pub rx_ring: usize,
    /// TX descriptors per queue.
    pub tx_ring: usize,
    /// MTU.
    pub mtu: u16,
    /// MAC to use when the PF assigns none.
    pub mac: Option<MacAddr>,
    /// Memory for the descriptor rings.
    pub backing: MemoryBacking,
    /// Receive filters asked of the PF: promiscuous, all-multicast,
    /// multicast groups, VLANs (see [`RxFilters`]).
    pub filters: RxFilters,
}

impl VfConfig {
    /// Defaults: 512-descriptor rings, MTU 1500, hugepages.
    pub fn new(id: PortId, name: impl Into<String>) -> VfConfig {
        VfConfig {
            id,
            name: name.into(),
            rx_ring: DEFAULT_VF_RX_RING,
            tx_ring: DEFAULT_VF_TX_RING,
            mtu: 1500,
            mac: None,
            backing: MemoryBacking::default(),
            filters: RxFilters::default(),
        }
    }
}

/// Why a VF could not be opened. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not found in sysfs, or not a device fastpath knows.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// vfio refused (not bound to vfio-pci, group busy, ...).
    #[error(transparent)]
    Vfio(#[from] VfioError),
    /// A known device whose driver is not built yet.
    #[error(
        "VF {address} is a {name} ({vendor_id:04x}:{device_id:04x}), which needs the {driver} \
         driver; this fastpath has drivers for {have} only"
    )]
    NoDriver {
        /// The device.
        address: PciAddress,
        /// Its name.
        name: &'static str,
        /// Vendor id.
        vendor_id: u16,
        /// Device id.
        device_id: u16,
        /// The driver it needs.
        driver: DriverKind,
        /// The drivers there are.
        have: String,
    },
    /// The pool is not mapped in the device's address space.
    #[error(
        "VF {address}: the buffer pool is not mapped for this device's DMA (create the pool \
         with PoolConfig::dma set to the vfio container)"
    )]
    PoolNotMapped {
        /// The device.
        address: PciAddress,
    },
    /// The driver could not bring the device up.
    #[error("VF {address}: {why}")]
    Driver {
        /// The device.
        address: PciAddress,
        /// What failed.
        why: String,
    },
}

/// The drivers built in, for messages: "igbvf, ...".
pub fn driver_names() -> String {
    DRIVERS
        .iter()
        .map(|d| d.kind.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DriverKind {
    /// Whether this fastpath has the driver (a row in [`DRIVERS`]).
    pub fn is_built(self) -> bool {
        DRIVERS.iter().any(|d| d.kind == self)
    }
}

/// What the device at `address` is, from sysfs alone: it exists, and a
/// driver built here runs it. Returns its table entry and driver.
pub fn identify(
    sysfs: &Sysfs,
    address: PciAddress,
) -> Result<(&'static SupportedDevice, &'static DriverEntry), OpenError> {
    let dev = sysfs.device(address)?;
    let sup = dev.supported()?;
    let Some(entry) = DRIVERS.iter().find(|d| d.kind == sup.driver) else {
        return Err(OpenError::NoDriver {
            address,
            name: sup.name,
            vendor_id: sup.vendor_id,
            device_id: sup.device_id,
            driver: sup.driver,
            have: driver_names(),
        });
    };
    Ok((sup, entry))
}

/// The checks that need only sysfs and /dev, before anything is opened:
/// the device exists, a driver here runs it ([`identify`]), it is bound to
/// vfio-pci and its group node exists. Returns its table entry and driver.
pub fn preflight(
    sysfs: &Sysfs,
    address: PciAddress,
) -> Result<(&'static SupportedDevice, &'static DriverEntry), OpenError> {
    let found = identify(sysfs, address)?;
    crate::vfio::preflight(sysfs, address)?;
    Ok(found)
}

/// Open the VF at `address` in `container`, with buffers from `pool`
/// (already mapped in the container: attach the VFs' groups with
/// [`Container::attach`], then build the pool with `PoolConfig::dma`).
pub fn open_vf(
    address: PciAddress,
    container: &Arc<Container>,
    pool: &Pool,
    cfg: &VfConfig,
) -> Result<DynPort, OpenError> {
    let (sup, entry) = preflight(container.sysfs(), address)?;
    let dma: Arc<dyn DmaMapper> = container.clone();
    if !pool.is_mapped_by(&dma) {
        return Err(OpenError::PoolNotMapped { address });
    }
    let device = container.open_device(address)?;
    // vfio-pci resets the function when the device is opened, and a reset
    // clears PCI_COMMAND: bus mastering must be turned on after it.
    device.enable_bus_master()?;
    let bar = device.bar(0)?;
    (entry.open)(OpenArgs {
        device: sup,
        address,
        bar,
        pci: device,
        dma,
        data_room: pool.data_room(),
        cfg,
    })
}
