//! A PCI function's config space, as the server answers it.
//!
//! Layout facts from the PCI Local Bus 3.0 (type 0 header, capability
//! list) and PCI Express Base (capability ID 0x10, version 2 is 0x3c
//! bytes) specifications; the capability offsets match what the probe in
//! shared/reference/vmlab/vfio-user/REPORT.md showed Linux's ixgbevf
//! accepting (MSI-X at 0x70, PCIe endpoint at 0xa0).

/// Config space size of a PCIe function.
pub const CONFIG_SPACE_SIZE: usize = 4096;

const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const REVISION: usize = 0x08;
const CLASS: usize = 0x09;
const HEADER_TYPE: usize = 0x0e;
const BAR0: usize = 0x10;
const SUBSYSTEM_VENDOR: usize = 0x2c;
const SUBSYSTEM_ID: usize = 0x2e;
const CAP_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
/// Status: the function has a capability list.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Command bits a driver sets: memory space, bus master, INTx disable.
const COMMAND_WRITABLE: u16 = (1 << 1) | (1 << 2) | (1 << 10);
/// BAR low bits: 64-bit memory (type 0b10 at bits 2:1), prefetchable (bit 3).
const BAR_MEM64_PREFETCH: u32 = 0b1100;

const CAP_ID_MSIX: u8 = 0x11;
const CAP_ID_PCIE: u8 = 0x10;
const MSIX_CAP: usize = 0x70;
const PCIE_CAP: usize = 0xa0;
/// MSI-X Message Control: enable (15) and function mask (14) are written
/// by the guest; table size - 1 is in bits 10:0.
const MSIX_CONTROL_WRITABLE: u16 = 0xc000;
/// PCIe capabilities register: version 2, device/port type 0 (endpoint).
const PCIE_CAP_V2_ENDPOINT: u16 = 0x0002;
/// Offsets in the PCIe capability (PCIe Base, 7.5.3).
const PCIE_DEVICE_CONTROL: usize = 0x08;
const PCIE_LINK_CAP: usize = 0x0c;
const PCIE_LINK_STATUS: usize = 0x12;
const PCIE_DEVICE_CONTROL2: usize = 0x28;

/// Who the function says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciIdentity {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code (base, sub, programming interface), e.g. 0x020000 for
    /// an Ethernet controller.
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem: u16,
}

/// A 64-bit prefetchable memory BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR number, 0..=4 (a 64-bit BAR also takes the next slot).
    pub index: u8,
    /// Size in bytes, a power of two >= 16.
    pub size: u64,
}

/// Where MSI-X lives: vector count and the BAR holding its table (at 0)
/// and pending-bit array (at `pba_offset`). QEMU emulates both itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    /// Table size (1..=2048).
    pub vectors: u16,
    /// The BAR holding table and PBA.
    pub bar: u8,
    /// PBA offset in that BAR (8-byte aligned).
    pub pba_offset: u32,
}

/// Config space bytes with a write mask: a guest write changes only the
/// bits the mask allows, so BAR sizing (write all ones, read back) and
/// read-only ids behave as on hardware.
#[derive(Clone)]
pub struct PciConfigSpace {
    bytes: Box<[u8; CONFIG_SPACE_SIZE]>,
    wmask: Box<[u8; CONFIG_SPACE_SIZE]>,
    bars: Vec<Bar>,
}

impl std::fmt::Debug for PciConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciConfigSpace")
            .field("vendor", &format_args!("{:#06x}", self.read16(0)))
            .field("device", &format_args!("{:#06x}", self.read16(2)))
            .field("bars", &self.bars)
            .finish()
    }
}

impl PciConfigSpace {
    /// An endpoint with `bars`, MSI-X and a PCIe v2 capability, no INTx.
    ///
    /// # Panics
    /// If a BAR is not a power-of-two size >= 16, has an index past 4, or MSI-X names no such BAR: these are the model's own
    /// constants, not guest input.
    pub fn endpoint(id: PciIdentity, bars: &[Bar], msix: Msix) -> Self {
        let mut s = PciConfigSpace {
            bytes: Box::new([0; CONFIG_SPACE_SIZE]),
            wmask: Box::new([0; CONFIG_SPACE_SIZE]),
            bars: bars.to_vec(),
        };
        s.set16(0x00, id.vendor);
        s.set16(0x02, id.device);
        s.set16(COMMAND, 0);
        s.mask16(COMMAND, COMMAND_WRITABLE);
        s.set16(STATUS, STATUS_CAP_LIST);
        s.bytes[REVISION] = id.revision;
        s.bytes[CLASS..CLASS + 3].copy_from_slice(&id.class.to_le_bytes()[..3]);
        s.bytes[HEADER_TYPE] = 0;
        s.set16(SUBSYSTEM_VENDOR, id.subsystem_vendor);
        s.set16(SUBSYSTEM_ID, id.subsystem);
        // Interrupt line is scratch for the OS; pin 0 = no INTx.
        s.wmask[INTERRUPT_LINE] = 0xff;
        for bar in bars {
            assert!(bar.index < 5, "64-bit BAR index {}", bar.index);
            assert!(
                bar.size.is_power_of_two() && bar.size >= 16,
                "BAR size {:#x}",
                bar.size
            );
            let at = BAR0 + 4 * bar.index as usize;
            let addr_mask = !(bar.size - 1);
            s.set32(at, BAR_MEM64_PREFETCH);
            s.mask32(at, (addr_mask as u32) & !0xf);
            s.mask32(at + 4, (addr_mask >> 32) as u32);
        }
        assert!(
            bars.iter().any(|b| b.index == msix.bar),
            "MSI-X BAR {} not declared",
            msix.bar
        );
        assert!(
            (1..=2048).contains(&msix.vectors),
            "MSI-X vectors {}",
            msix.vectors
        );
        s.bytes[CAP_POINTER] = MSIX_CAP as u8;
        s.bytes[MSIX_CAP] = CAP_ID_MSIX;
        s.bytes[MSIX_CAP + 1] = PCIE_CAP as u8;
        s.set16(MSIX_CAP + 2, msix.vectors - 1);
        s.mask16(MSIX_CAP + 2, MSIX_CONTROL_WRITABLE);
        s.set32(MSIX_CAP + 4, u32::from(msix.bar));
        s.set32(MSIX_CAP + 8, msix.pba_offset | u32::from(msix.bar));
        s.bytes[PCIE_CAP] = CAP_ID_PCIE;
        s.bytes[PCIE_CAP + 1] = 0;
        s.set16(PCIE_CAP + 2, PCIE_CAP_V2_ENDPOINT);
        s.mask16(PCIE_CAP + PCIE_DEVICE_CONTROL, 0xffff);
        s.mask16(PCIE_CAP + PCIE_DEVICE_CONTROL2, 0xffff);
        // Link: 5 GT/s (speed code 2), x4, as an 82599 port; trained at that.
        s.set32(PCIE_CAP + PCIE_LINK_CAP, 0x2 | (4 << 4));
        s.set16(PCIE_CAP + PCIE_LINK_STATUS, 0x2 | (4 << 4));
        s
    }

    /// The BARs the function declares.
    pub fn bars(&self) -> &[Bar] {
        &self.bars
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read 0xff
    /// (as an absent register on the bus).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.bytes.get(o))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// Writes `data` at `offset` through the write mask; bytes past the
    /// end are dropped.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let Some(o) = usize::try_from(offset).ok().and_then(|o| o.checked_add(i)) else {
                return;
            };
            if o >= CONFIG_SPACE_SIZE {
                return;
            }
            let m = self.wmask[o];
            self.bytes[o] = (self.bytes[o] & !m) | (b & m);
        }
    }

    /// The 16-bit register at `offset` (must be in range).
    pub fn read16(&self, offset: usize) -> u16 {
        u16::from_le_bytes([self.bytes[offset], self.bytes[offset + 1]])
    }

    /// Whether the guest enabled MSI-X.
    pub fn msix_enabled(&self) -> bool {
        self.read16(MSIX_CAP + 2) & 0x8000 != 0
    }

    fn set16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn mask16(&mut self, at: usize, m: u16) {
        self.wmask[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn mask32(&mut self, at: usize, m: u32) {
        self.wmask[at..at + 4].copy_from_slice(&m.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vf() -> PciConfigSpace {
        let id = PciIdentity {
            vendor: 0x8086,
            device: 0x10ed,
            class: 0x020000,
            revision: 1,
            subsystem_vendor: 0x8086,
            subsystem: 0x10ed,
        };
        let bars = [
            Bar {
                index: 0,
                size: 0x4000,
            },
            Bar {
                index: 3,
                size: 0x4000,
            },
        ];
        PciConfigSpace::endpoint(
            id,
            &bars,
            Msix {
                vectors: 3,
                bar: 3,
                pba_offset: 0x2000,
            },
        )
    }

    fn r32(s: &PciConfigSpace, at: u64) -> u32 {
        let mut b = [0; 4];
        s.read(at, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn ids_class_and_capability_chain() {
        let s = vf();
        assert_eq!(r32(&s, 0), 0x10ed_8086);
        assert_eq!(r32(&s, 0x08) >> 8, 0x020000);
        assert_eq!(s.read16(STATUS) & STATUS_CAP_LIST, STATUS_CAP_LIST);
        let msix = r32(&s, 0x34) as u64 & 0xff;
        assert_eq!(r32(&s, msix) & 0xff, 0x11);
        assert_eq!((r32(&s, msix) >> 16) & 0x7ff, 2, "table size is N-1");
        let pcie = (r32(&s, msix) >> 8) & 0xff;
        assert_eq!(r32(&s, pcie as u64) & 0xff, 0x10);
        assert_eq!((r32(&s, pcie as u64) >> 8) & 0xff, 0, "last capability");
    }

    #[test]
    fn bar_sizing_and_read_only_ids() {
        let mut s = vf();
        s.write(0x10, &u32::MAX.to_le_bytes());
        s.write(0x14, &u32::MAX.to_le_bytes());
        assert_eq!(r32(&s, 0x10), 0xffff_c00c, "16 KiB, 64-bit prefetchable");
        assert_eq!(r32(&s, 0x14), 0xffff_ffff);
        s.write(0, &[0; 4]);
        assert_eq!(r32(&s, 0), 0x10ed_8086);
        assert!(!s.msix_enabled());
        s.write(0x72, &0xffffu16.to_le_bytes());
        assert!(s.msix_enabled());
        assert_eq!(s.read16(0x72) & 0x7ff, 2, "table size stays read-only");
        let mut past = [0; 4];
        s.read(4094, &mut past);
        assert_eq!(past, [0, 0, 0xff, 0xff]);
    }
}
