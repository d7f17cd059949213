//! Real-device vfio tests for the VM lab (reference/vmlab/: QEMU igb PF
//! with igbvf VFs, vfio-pci, a virtual IOMMU).
//!
//! They exist only in the lab's build, and fail outside the lab
//! (FASTPATH_LAB unset). They need:
//! - FASTPATH_LAB_VF0: a VF bound to vfio-pci (e.g. 0000:01:10.0),
//! - FASTPATH_LAB_VF1_KERNEL: a VF bound to the kernel igbvf driver,
//! - a free 2 MiB hugepage.

// The lab tests exist only in the VM lab's build (scripts/vmlab/build-tests.sh
// passes --cfg fastpath_lab): on a host they would have nothing to test.
#![cfg(fastpath_lab)]

use drivers::memory::{DmaMapper, DmaRegion, HugepageSize, IovaLayout, MemoryBacking};
use drivers::mmio::RegisterSpace;
use drivers::pci::PciAddress;
use drivers::vfio::{config, Container, IommuMode, VfioError};

/// igbvf BAR0 registers: docs/facts/nic-facts-igbvf.md C.2.
const VF_CTRL: u32 = 0x0000;
const VF_STATUS: u32 = 0x0008;

fn lab_address(var: &str) -> PciAddress {
    drivers::testing::assert_in_vm_lab();
    let value =
        std::env::var(var).unwrap_or_else(|_| panic!("FASTPATH_LAB=1 but {var} is not set"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("{var}={value:?}: {e}"))
}

#[test]
fn lab_open_map_unmap_a_hugepage_region() {
    let vf0 = lab_address("FASTPATH_LAB_VF0");
    let container = Container::open().expect("open /dev/vfio/vfio");
    let device = container.open_device(vf0).expect("open VF0");
    if lab_iommu() == "noiommu" {
        no_iommu_mapping(container);
        drop(device);
        return;
    }
    assert!(matches!(
        container.iommu_mode(),
        Some(IommuMode::Type1v2 | IommuMode::Type1)
    ));
    let region = DmaRegion::allocate(2 << 20, &MemoryBacking::Hugepages(HugepageSize::Size2M))
        .expect("a free 2 MiB hugepage");
    let container = std::sync::Arc::new(container);
    let dma: std::sync::Arc<dyn DmaMapper> = container.clone();
    assert_eq!(region.iova(), None, "no IOVA before the mapping");
    region.map_dma(&dma).expect("VFIO_IOMMU_MAP_DMA");
    let base = region.iova().expect("mapped").get();
    assert_ne!(
        base,
        region.as_ptr().as_ptr() as u64,
        "IOVAs come from the container's allocator, not the virtual address"
    );
    assert_eq!(base % (2 << 20), 0, "a 2M page is 2M-aligned on the bus");
    let ranges = container
        .iova_ranges()
        .expect("VFIO_IOMMU_GET_INFO")
        .expect("the guest kernel reports usable IOVA ranges");
    assert!(
        ranges
            .iter()
            .any(|&(s, e)| s <= base && base + (2 << 20) - 1 <= e),
        "{base:#x} inside {ranges:x?}"
    );
    assert_eq!(region.iova_at(4096).map(|i| i.get()), Some(base + 4096));
    // A second region gets a disjoint range; dropping it unmaps it.
    let second = DmaRegion::allocate(2 << 20, &MemoryBacking::Hugepages(HugepageSize::Size2M))
        .expect("a second free 2 MiB hugepage");
    second.map_dma(&dma).expect("map a second region");
    let b2 = second.iova().expect("mapped").get();
    assert!(
        b2 >= base + (2 << 20) || b2 + (2 << 20) <= base,
        "{b2:#x} vs {base:#x}"
    );
    drop(second);
    // Mapping the same region twice is refused.
    assert!(region.map_dma(&dma).is_err());
    let pgsizes = container.iova_page_sizes().expect("VFIO_IOMMU_GET_INFO");
    assert_ne!(pgsizes & 0x1000, 0, "4K IOMMU pages: {pgsizes:#x}");
    drop(device);
    drop(region);
}

/// `type1` or `noiommu` (FASTPATH_LAB_IOMMU, set by the lab's /init).
fn lab_iommu() -> String {
    std::env::var("FASTPATH_LAB_IOMMU").expect("FASTPATH_LAB_IOMMU is set in the lab")
}

/// No-IOMMU mode: nothing is mapped; the device is given the physical
/// address of each hugepage: page-aligned, distinct, inside the guest's
/// RAM as /proc/iomem lists it (not the virtual address), contiguous within
/// a page only.
fn no_iommu_mapping(container: Container) {
    assert_eq!(container.iommu_mode(), Some(IommuMode::NoIommu));
    let container = std::sync::Arc::new(container);
    let dma: std::sync::Arc<dyn DmaMapper> = container.clone();
    let region = DmaRegion::allocate(4 << 20, &MemoryBacking::Hugepages(HugepageSize::Size2M))
        .expect("two free 2 MiB hugepages");
    assert_eq!(region.iova(), None, "no IOVA before the mapping");
    region.map_dma(&dma).expect("physical addresses");
    let Some(IovaLayout::Pages { page_size, pages }) = region.layout().cloned() else {
        panic!("no-IOMMU layout: {:?}", region.layout());
    };
    assert_eq!(page_size, 2 << 20);
    let pages: Vec<u64> = pages.iter().map(|p| p.get()).collect();
    assert_eq!(pages.len(), 2, "{pages:x?}");
    let ram = system_ram();
    let va = region.as_ptr().as_ptr() as u64;
    for &p in &pages {
        assert!(p % (2 << 20) == 0, "{pages:x?}");
        assert_ne!(p, va, "a virtual address handed out as a bus address");
        assert!(
            ram.iter().any(|&(s, e)| s <= p && p + (2 << 20) - 1 <= e),
            "{p:#x} is not in System RAM {ram:x?}"
        );
    }
    assert_ne!(pages[0], pages[1]);
    assert_eq!(region.iova().map(|i| i.get()), Some(pages[0]));
    assert_eq!(region.iova_at(4096).map(|i| i.get()), Some(pages[0] + 4096));
    assert_eq!(
        region.iova_at((2 << 20) + 8).map(|i| i.get()),
        Some(pages[1] + 8)
    );
    assert_eq!(region.iova_at(4 << 20), None);
    // Mapping the same region twice is refused here too.
    assert!(region.map_dma(&dma).is_err());
    drop(region);
}

/// The "System RAM" ranges of /proc/iomem (inclusive ends; root sees the
/// real addresses).
fn system_ram() -> Vec<(u64, u64)> {
    let iomem = std::fs::read_to_string("/proc/iomem").expect("/proc/iomem");
    let ram: Vec<(u64, u64)> = iomem
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(" : System RAM"))
        .filter_map(|l| {
            let (s, e) = l.split(" : ").next()?.split_once('-')?;
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        })
        .collect();
    assert!(
        ram.iter().any(|&(_, e)| e > 0),
        "no System RAM in /proc/iomem:\n{iomem}"
    );
    ram
}

#[test]
fn lab_bar0_registers_and_config_space() {
    let vf0 = lab_address("FASTPATH_LAB_VF0");
    let container = Container::open().expect("open /dev/vfio/vfio");
    let device = container.open_device(vf0).expect("open VF0");
    assert_eq!(
        device.config_read_u16(config::VENDOR_ID).expect("vendor"),
        0x8086
    );
    let device_id = device
        .config_read_u16(config::DEVICE_ID)
        .expect("device id");
    assert!(matches!(device_id, 0x10ca | 0x1520), "{device_id:#x}");
    device.enable_bus_master().expect("bus master");
    let command = device.config_read_u16(config::COMMAND).expect("command");
    assert_ne!(command & config::COMMAND_MASTER, 0, "{command:#x}");

    let region = device.region(0).expect("BAR0 info");
    assert!(region.size >= 0x4000, "{region:?}");
    let bar0 = device.bar(0).expect("BAR0");
    assert!(bar0.is_mapped(), "BAR0 of an igbvf VF is mmap-able");
    let status = bar0.read32(VF_STATUS);
    let ctrl = bar0.read32(VF_CTRL);
    eprintln!("BAR0 CTRL={ctrl:#010x} STATUS={status:#010x}");
    assert_ne!(
        status, 0xffff_ffff,
        "STATUS reads as all ones: device not answering"
    );
    assert_eq!(bar0.try_read32(RegisterSpace::len(&bar0) as u32), None);
    match device.reset() {
        Ok(()) | Err(VfioError::ResetUnsupported { .. }) => {}
        Err(err) => panic!("reset: {err}"),
    }
}

#[test]
fn lab_kernel_bound_vf_is_refused_with_the_rebind_commands() {
    let vf1 = lab_address("FASTPATH_LAB_VF1_KERNEL");
    let container = Container::open().expect("open /dev/vfio/vfio");
    let err = container.open_device(vf1).expect_err("bound to igbvf");
    let message = err.to_string();
    assert!(matches!(err, VfioError::NotBoundToVfio { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!(
            "{vf1} is bound to igbvf, not vfio-pci: run `echo {vf1} >"
        )),
        "{message}"
    );
}

#[test]
fn lab_group_opened_twice_is_busy() {
    let vf0 = lab_address("FASTPATH_LAB_VF0");
    let first = Container::open().expect("open /dev/vfio/vfio");
    let _device = first.open_device(vf0).expect("open VF0");
    let second = Container::open().expect("a second container");
    let err = second.open_device(vf0).expect_err("group already held");
    assert!(matches!(err, VfioError::GroupBusy { .. }), "{err:?}");
    assert!(
        err.to_string().contains("another process already holds"),
        "{err}"
    );
}
