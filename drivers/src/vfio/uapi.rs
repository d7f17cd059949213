//! The VFIO definitions fastpath uses. Structures and constants come from
//! the vfio-bindings crate (rust-vmm: a bindgen run over linux
//! include/uapi/linux/vfio.h, with compile-time layout checks). The ioctl
//! request numbers are written out here, because the header builds them
//! with the `_IO()` macro, which bindgen does not translate, so
//! vfio-bindings has none of them.

pub use vfio_bindings::bindings::vfio::{
    vfio_device_info, vfio_group_status, vfio_info_cap_header, vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap, vfio_iommu_type1_info, vfio_iommu_type1_info_cap_iova_range,
    vfio_iova_range, vfio_region_info, VFIO_TYPE1v2_IOMMU, VFIO_API_VERSION, VFIO_DEVICE_FLAGS_PCI,
    VFIO_DEVICE_FLAGS_RESET, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_IOMMU_INFO_CAPS,
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, VFIO_NOIOMMU_IOMMU, VFIO_PCI_BAR5_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_REGION_INFO_FLAG_MMAP, VFIO_TYPE1_IOMMU,
};
use vfio_bindings::bindings::vfio::{VFIO_BASE, VFIO_TYPE};

/// Every VFIO ioctl is `_IO(VFIO_TYPE, VFIO_BASE + n)`, i.e.
/// `(';' << 8) | (100 + n)`, with no size or direction bits (the
/// structures carry `argsz` instead).
const fn vfio_io(n: u32) -> u32 {
    ((VFIO_TYPE as u32) << 8) | (VFIO_BASE + n)
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

/// `argsz` for a structure: its size.
pub fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        // _IO(';', 100 + n) worked out by hand: 0x3b64 for n = 0 on.
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
    fn structures_have_the_kernel_abi_layout() {
        use std::mem::{offset_of, size_of};
        // Sizes and offsets of linux/vfio.h on every Linux ABI (the fields
        // are naturally aligned, so there is no padding to differ).
        assert_eq!(size_of::<vfio_group_status>(), 8);
        assert_eq!(size_of::<vfio_region_info>(), 32);
        assert_eq!(offset_of!(vfio_region_info, size), 16);
        assert_eq!(size_of::<vfio_iommu_type1_info>(), 24);
        assert_eq!(offset_of!(vfio_iommu_type1_info, cap_offset), 16);
        assert_eq!(size_of::<vfio_iommu_type1_dma_map>(), 32);
        assert_eq!(offset_of!(vfio_iommu_type1_dma_map, vaddr), 8);
        // The trailing bitmap is a flexible array: no bytes of its own.
        assert_eq!(size_of::<vfio_iommu_type1_dma_unmap>(), 24);
        assert_eq!(size_of::<vfio_info_cap_header>(), 8);
        assert_eq!(
            offset_of!(vfio_iommu_type1_info_cap_iova_range, iova_ranges),
            16
        );
        assert_eq!(size_of::<vfio_iova_range>(), 16);
    }
}
