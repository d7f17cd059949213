//! What a driver may do to its PCI function besides reading and writing
//! its BAR: turn bus mastering on and off, and reset it.

use std::fmt;

/// A PCI function's control: `vfio::Device` on hardware, a device model's
/// config space in tests. A driver turns bus mastering off before the
/// memory the device may DMA into is released, and on again after every
/// function-level reset (an FLR clears PCI_COMMAND).
pub trait PciFunction: Send + Sync + fmt::Debug {
    /// Set or clear PCI_COMMAND bus master (memory space stays on).
    fn set_bus_master(&self, on: bool) -> Result<(), FunctionError>;
    /// Function-level reset. Bus mastering is off afterwards.
    fn function_reset(&self) -> Result<(), FunctionError>;
}

/// Why a PCI function operation failed (the message names the device and
/// the cause).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FunctionError(pub String);
