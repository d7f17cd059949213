//! Device register access: the one interface poll-mode drivers use to read
//! and write a device's registers.
//!
//! On hardware it is a BAR mapped through vfio (`vfio` module); in tests it
//! is a device model. Drivers are written against this trait only, so the
//! same driver code runs on both.

/// A device's 32-bit register space.
///
/// Offsets are in bytes from the start of the space and 4-byte aligned.
/// Reads and writes are single, uncached, in-order accesses (volatile on a
/// mapped BAR): a driver orders its memory writes before a register write
/// (a doorbell) with a release fence of its own.
pub trait RegisterSpace: Send + Sync {
    /// Read the register at `offset`. An offset outside the space reads as
    /// all ones, as a PCI read that nobody answers does.
    fn read32(&self, offset: u32) -> u32;
    /// Write the register at `offset`. Writes outside the space are ignored.
    fn write32(&self, offset: u32, value: u32);
    /// Size of the space in bytes.
    fn len(&self) -> usize;
    /// True for an empty space.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
