//! VM lab smoke test: checks that the guest `scripts/vmlab/run.sh` boots is
//! set up the way the lab tests expect (VF0 on vfio-pci with its group node,
//! VF1 on the kernel igbvf driver with a netdev, the PF netdev up, free 2 MB
//! hugepages), in the IOMMU mode it says it booted in (FASTPATH_LAB_IOMMU:
//! `type1` behind the virtual IOMMU, or `noiommu` with vfio's no-IOMMU mode).
//!
//! It exists only in the lab's build, and fails outside the lab
//! (FASTPATH_LAB unset). The lab's setup is described by FASTPATH_LAB_VF0, FASTPATH_LAB_VF1_KERNEL,
//! FASTPATH_LAB_VF1_NETDEV and FASTPATH_LAB_PF_NETDEV (see
//! scripts/vmlab/README.md).

// The lab tests exist only in the VM lab's build (scripts/vmlab/build-tests.sh
// passes --cfg fastpath_lab): on a host they would have nothing to test.
#![cfg(fastpath_lab)]

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use drivers::memory::{hugepage_status, DmaRegion, HugepageSize, MemoryBacking, PageSize};

/// A variable the lab must set; a missing one is a broken lab, not a skip.
fn lab_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => {
            panic!("FASTPATH_LAB=1 but {name} is not set: run the lab through scripts/vmlab/run.sh")
        }
    }
}

fn pci_device(bdf: &str) -> PathBuf {
    Path::new("/sys/bus/pci/devices").join(bdf)
}

/// The last component of a sysfs symlink (driver name, group number, ...).
fn link_name(link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// `IFF_UP` from include/uapi/linux/if.h.
const IFF_UP: u32 = 0x1;

#[test]
fn vf0_group_node_exists() {
    drivers::testing::assert_in_vm_lab();
    let vf0 = lab_var("FASTPATH_LAB_VF0");
    let group = link_name(&pci_device(&vf0).join("iommu_group"))
        .unwrap_or_else(|| panic!("VF0 {vf0} has no iommu_group: is the vIOMMU on?"));
    // No-IOMMU groups have their own node name (vfio's container.c).
    let group = match lab_var("FASTPATH_LAB_IOMMU").as_str() {
        "noiommu" => format!("noiommu-{group}"),
        _ => group,
    };
    let container = Path::new("/dev/vfio/vfio");
    assert!(
        fs::metadata(container).is_ok_and(|m| m.file_type().is_char_device()),
        "{} is missing or not a character device",
        container.display()
    );
    let node = Path::new("/dev/vfio").join(&group);
    assert!(
        fs::metadata(&node).is_ok_and(|m| m.file_type().is_char_device()),
        "{} (iommu group of VF0 {vf0}) is missing or not a character device",
        node.display()
    );
}

/// The guest really is in the mode the lab names: an IOMMU registered
/// (intel-iommu's dmar) for `type1`; none, and vfio's unsafe no-IOMMU mode
/// on, for `noiommu`.
#[test]
fn iommu_mode_is_the_one_the_lab_booted() {
    drivers::testing::assert_in_vm_lab();
    let mode = lab_var("FASTPATH_LAB_IOMMU");
    let iommus: Vec<String> = fs::read_dir("/sys/class/iommu")
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let param = "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode";
    let noiommu = fs::read_to_string(param).map(|v| v.trim().to_string());
    match mode.as_str() {
        "type1" => {
            assert!(
                !iommus.is_empty(),
                "type1 lab without an IOMMU in /sys/class/iommu"
            );
            assert!(
                !matches!(noiommu.as_deref(), Ok("Y")),
                "type1 lab with {param} = Y"
            );
        }
        "noiommu" => {
            assert!(iommus.is_empty(), "noiommu lab with IOMMUs {iommus:?}");
            assert_eq!(
                noiommu.as_deref().ok(),
                Some("Y"),
                "{param} (a vfio.ko built with CONFIG_VFIO_NOIOMMU, loaded with \
                 enable_unsafe_noiommu_mode=1)"
            );
        }
        other => panic!("FASTPATH_LAB_IOMMU={other:?}: expected type1 or noiommu"),
    }
}

#[test]
fn vf0_is_bound_to_vfio_pci() {
    drivers::testing::assert_in_vm_lab();
    let vf0 = lab_var("FASTPATH_LAB_VF0");
    let driver = link_name(&pci_device(&vf0).join("driver"));
    assert_eq!(driver.as_deref(), Some("vfio-pci"), "driver of VF0 {vf0}");
}

#[test]
fn vf1_netdev_exists_on_igbvf() {
    drivers::testing::assert_in_vm_lab();
    let vf1 = lab_var("FASTPATH_LAB_VF1_KERNEL");
    let netdev = lab_var("FASTPATH_LAB_VF1_NETDEV");
    let class = Path::new("/sys/class/net").join(&netdev);
    assert!(class.exists(), "netdev {netdev} of VF1 does not exist");
    assert_eq!(
        link_name(&class.join("device")).as_deref(),
        Some(vf1.as_str()),
        "netdev {netdev} does not belong to VF1"
    );
    let driver = link_name(&pci_device(&vf1).join("driver"));
    assert_eq!(driver.as_deref(), Some("igbvf"), "driver of VF1 {vf1}");
}

#[test]
fn pf_netdev_is_up() {
    drivers::testing::assert_in_vm_lab();
    let pf = lab_var("FASTPATH_LAB_PF_NETDEV");
    let flags_path = Path::new("/sys/class/net").join(&pf).join("flags");
    let flags = fs::read_to_string(&flags_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", flags_path.display()));
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("{}: {flags:?}: {e}", flags_path.display()));
    assert_ne!(
        flags & IFF_UP,
        0,
        "PF netdev {pf} is not up (flags {flags:#x})"
    );
}

#[test]
fn free_2m_hugepages_can_back_a_dma_region() {
    drivers::testing::assert_in_vm_lab();
    let free = hugepage_status()
        .into_iter()
        .find(|pool| pool.size == PageSize::Size2M)
        .map_or(0, |pool| pool.free);
    assert!(free >= 2, "only {free} free 2M hugepages in the lab guest");
    let region = DmaRegion::allocate(2 << 20, &MemoryBacking::Hugepages(HugepageSize::Size2M))
        .unwrap_or_else(|e| panic!("a 2M hugepage DMA region: {e}"));
    assert_eq!(
        region.page_size(),
        PageSize::Size2M,
        "{}",
        region.describe()
    );
}
