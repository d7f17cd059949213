//! The few VFIO definitions fastpath uses, written out from linux
//! include/uapi/linux/vfio.h (values checked against it and against the
//! numbers in reference/crates.md section 1). Structures are `repr(C)` with
//! the header's field order; their sizes are checked in the tests.

#![allow(missing_docs)] // fields are named and documented as in the kernel header

/// `VFIO_API_VERSION`.
pub const VFIO_API_VERSION: i32 = 0;

/// Extension / IOMMU type `VFIO_TYPE1_IOMMU`.
pub const VFIO_TYPE1_IOMMU: u32 = 1;
/// Extension / IOMMU type `VFIO_TYPE1v2_IOMMU`.
pub const VFIO_TYPE1V2_IOMMU: u32 = 3;
/// Extension / IOMMU type `VFIO_NOIOMMU_IOMMU`: no translation, no isolation.
pub const VFIO_NOIOMMU_IOMMU: u32 = 8;

/// `VFIO_TYPE` (`';'`) and `VFIO_BASE`: every VFIO ioctl is
/// `_IO(VFIO_TYPE, VFIO_BASE + n)`, i.e. `(0x3b << 8) | (100 + n)`, with no
/// size or direction bits (the structures carry `argsz` instead).
const VFIO_TYPE: u32 = b';' as u32;
const VFIO_BASE: u32 = 100;

const fn vfio_io(n: u32) -> u32 {
    (VFIO_TYPE << 8) | (VFIO_BASE + n)
}

/// `VFIO_GET_API_VERSION`, on the container.
pub const VFIO_GET_API_VERSION: u32 = vfio_io(0);
/// `VFIO_CHECK_EXTENSION`, on the container.
pub const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
/// `VFIO_SET_IOMMU`, on the container.
pub const VFIO_SET_IOMMU: u32 = vfio_io(2);
/// `VFIO_GROUP_GET_STATUS`, on a group.
pub const VFIO_GROUP_GET_STATUS: u32 = vfio_io(3);
/// `VFIO_GROUP_SET_CONTAINER`, on a group.
pub const VFIO_GROUP_SET_CONTAINER: u32 = vfio_io(4);
/// `VFIO_GROUP_UNSET_CONTAINER`, on a group.
pub const VFIO_GROUP_UNSET_CONTAINER: u32 = vfio_io(5);
/// `VFIO_GROUP_GET_DEVICE_FD`, on a group.
pub const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio_io(6);
/// `VFIO_DEVICE_GET_INFO`, on a device.
pub const VFIO_DEVICE_GET_INFO: u32 = vfio_io(7);
/// `VFIO_DEVICE_GET_REGION_INFO`, on a device.
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_io(8);
/// `VFIO_DEVICE_GET_IRQ_INFO`, on a device.
pub const VFIO_DEVICE_GET_IRQ_INFO: u32 = vfio_io(9);
/// `VFIO_DEVICE_SET_IRQS`, on a device.
pub const VFIO_DEVICE_SET_IRQS: u32 = vfio_io(10);
/// `VFIO_DEVICE_RESET`, on a device.
pub const VFIO_DEVICE_RESET: u32 = vfio_io(11);
/// `VFIO_IOMMU_GET_INFO`, on the container (shares its number with
/// `VFIO_DEVICE_GET_PCI_HOT_RESET_INFO`, which goes to a device).
pub const VFIO_IOMMU_GET_INFO: u32 = vfio_io(12);
/// `VFIO_IOMMU_MAP_DMA`, on the container.
pub const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
/// `VFIO_IOMMU_UNMAP_DMA`, on the container.
pub const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);

/// `VFIO_GROUP_FLAGS_VIABLE`: every device in the group is bound to a
/// vfio driver, pci-stub, or nothing.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1 << 0;
/// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
pub const VFIO_GROUP_FLAGS_CONTAINER_SET: u32 = 1 << 1;

/// `VFIO_DEVICE_FLAGS_RESET`: the device supports `VFIO_DEVICE_RESET`.
pub const VFIO_DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// `VFIO_DEVICE_FLAGS_PCI`.
pub const VFIO_DEVICE_FLAGS_PCI: u32 = 1 << 1;

/// `VFIO_REGION_INFO_FLAG_READ`.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1 << 0;
/// `VFIO_REGION_INFO_FLAG_WRITE`.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 1 << 1;
/// `VFIO_REGION_INFO_FLAG_MMAP`: the region may be mmapped at its offset.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;
/// `VFIO_REGION_INFO_FLAG_CAPS`.
pub const VFIO_REGION_INFO_FLAG_CAPS: u32 = 1 << 3;

/// `VFIO_PCI_BAR0_REGION_INDEX` (BAR n is index n up to BAR5 = 5).
pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
/// `VFIO_PCI_BAR5_REGION_INDEX`.
pub const VFIO_PCI_BAR5_REGION_INDEX: u32 = 5;
/// `VFIO_PCI_ROM_REGION_INDEX`.
pub const VFIO_PCI_ROM_REGION_INDEX: u32 = 6;
/// `VFIO_PCI_CONFIG_REGION_INDEX`: PCI config space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;

/// `VFIO_DMA_MAP_FLAG_READ`: the device may read the memory.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1 << 0;
/// `VFIO_DMA_MAP_FLAG_WRITE`: the device may write the memory.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 1 << 1;

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioGroupStatus {
    pub argsz: u32,
    pub flags: u32,
}

/// `struct vfio_device_info` up to `num_irqs` (the kernel accepts any
/// `argsz` from there on; `cap_offset` came later and is not used).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioDeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

/// `struct vfio_region_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioRegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

/// `struct vfio_iommu_type1_info`, with `cap_offset` (Linux >= 4.x caps).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioIommuType1Info {
    pub argsz: u32,
    pub flags: u32,
    pub iova_pgsizes: u64,
    pub cap_offset: u32,
    pub pad: u32,
}

/// `VFIO_IOMMU_INFO_CAPS`: the info has a capability chain.
pub const VFIO_IOMMU_INFO_CAPS: u32 = 1 << 1;
/// Capability id of the usable IOVA ranges.
pub const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: u16 = 1;

/// `struct vfio_iommu_type1_dma_map`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioIommuType1DmaMap {
    pub argsz: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub iova: u64,
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` (without the trailing bitmap data).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VfioIommuType1DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub iova: u64,
    pub size: u64,
}

/// `argsz` for a structure: its size.
pub fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        // reference/crates.md section 1: GET_API_VERSION=0x3b64 ... MAP_DMA=0x3b71, RESET=0x3b6f.
        assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
        assert_eq!(VFIO_CHECK_EXTENSION, 0x3b65);
        assert_eq!(VFIO_SET_IOMMU, 0x3b66);
        assert_eq!(VFIO_GROUP_GET_STATUS, 0x3b67);
        assert_eq!(VFIO_GROUP_SET_CONTAINER, 0x3b68);
        assert_eq!(VFIO_GROUP_UNSET_CONTAINER, 0x3b69);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(VFIO_DEVICE_GET_INFO, 0x3b6b);
        assert_eq!(VFIO_DEVICE_GET_REGION_INFO, 0x3b6c);
        assert_eq!(VFIO_DEVICE_GET_IRQ_INFO, 0x3b6d);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3b6e);
        assert_eq!(VFIO_DEVICE_RESET, 0x3b6f);
        assert_eq!(VFIO_IOMMU_GET_INFO, 0x3b70);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA, 0x3b72);
    }

    #[test]
    fn structures_have_the_kernel_sizes() {
        assert_eq!(size_of::<VfioGroupStatus>(), 8);
        assert_eq!(size_of::<VfioDeviceInfo>(), 16);
        assert_eq!(size_of::<VfioRegionInfo>(), 32);
        assert_eq!(size_of::<VfioIommuType1Info>(), 24);
        assert_eq!(std::mem::offset_of!(VfioIommuType1Info, cap_offset), 16);
        assert_eq!(size_of::<VfioIommuType1DmaMap>(), 32);
        assert_eq!(size_of::<VfioIommuType1DmaUnmap>(), 24);
        assert_eq!(std::mem::offset_of!(VfioRegionInfo, size), 16);
        assert_eq!(std::mem::offset_of!(VfioIommuType1DmaMap, vaddr), 8);
    }
}
