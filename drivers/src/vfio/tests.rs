//! What can be tested without /dev/vfio: the checks before any ioctl, the
//! error messages, and physical addresses.

use std::io;
use std::path::Path;

use super::container::open_error;
use super::dma::decode_pagemap_entry;
use super::*;
use crate::pci::fake::FakeHost;
use crate::pci::PciAddress;

fn addr(s: &str) -> PciAddress {
    s.parse().expect("address")
}

/// VF 0000:01:10.0 in group 5; `driver` is its driver, if any.
fn one_vf(driver: Option<&str>) -> FakeHost {
    let host = FakeHost::new();
    host.add_device("0000:01:10.0", 0x8086, 0x10ca)
        .group("0000:01:10.0", 5);
    if let Some(driver) = driver {
        host.bind("0000:01:10.0", driver);
    }
    host
}

#[test]
fn device_bound_to_a_kernel_driver_says_how_to_rebind() {
    let host = one_vf(Some("igbvf"));
    host.add_driver("vfio-pci");
    let err = preflight(&host.sysfs(), addr("0000:01:10.0")).expect_err("bound to igbvf");
    assert!(matches!(err, VfioError::NotBoundToVfio { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "0000:01:10.0 is bound to igbvf, not vfio-pci: run `echo 0000:01:10.0 > \
         /sys/bus/pci/drivers/igbvf/unbind; echo vfio-pci > \
         /sys/bus/pci/devices/0000:01:10.0/driver_override; echo 0000:01:10.0 > \
         /sys/bus/pci/drivers_probe`"
    );
}

#[test]
fn unbound_device_without_vfio_pci_module_says_modprobe() {
    let host = one_vf(None);
    let err = preflight(&host.sysfs(), addr("0000:01:10.0")).expect_err("unbound");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "0000:01:10.0 is not bound to any driver, not vfio-pci (and the vfio-pci \
             module is not loaded): run `modprobe vfio-pci; echo vfio-pci >"
        ),
        "{message}"
    );
    assert!(!message.contains("unbind"), "{message}");
}

#[test]
fn missing_dev_vfio_says_modprobe() {
    let host = one_vf(Some("vfio-pci"));
    let err = preflight(&host.sysfs(), addr("0000:01:10.0")).expect_err("no /dev/vfio");
    assert!(matches!(err, VfioError::VfioMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("`modprobe vfio-pci`"), "{err}");

    let err = Container::open_at(host.sysfs()).expect_err("no /dev/vfio");
    assert!(matches!(err, VfioError::VfioMissing { .. }), "{err:?}");
    // This host has no vfio at all: the real path gives the same answer.
    if !Path::new("/dev/vfio").exists() {
        let err = Container::open().expect_err("no /dev/vfio on this host");
        assert!(err.to_string().contains("modprobe vfio-pci"), "{err}");
    }
}

#[test]
fn group_nodes_are_found_plain_or_noiommu() {
    let host = one_vf(Some("vfio-pci"));
    host.dev_vfio(&["vfio"]);
    let err = preflight(&host.sysfs(), addr("0000:01:10.0")).expect_err("no group node");
    assert!(
        matches!(err, VfioError::GroupNodeMissing { group: 5, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/dev/vfio/5"), "{err}");

    host.dev_vfio(&["noiommu-5"]);
    let (device, node) = preflight(&host.sysfs(), addr("0000:01:10.0")).expect("noiommu");
    assert!(device.is_bound_to_vfio());
    assert_eq!(node.group, 5);
    assert!(node.noiommu);
    assert!(node.path.ends_with("dev/vfio/noiommu-5"));

    host.dev_vfio(&["5"]);
    let (_, node) = preflight(&host.sysfs(), addr("0000:01:10.0")).expect("plain");
    assert!(!node.noiommu);
    assert!(node.path.ends_with("dev/vfio/5"));
}

#[test]
fn device_without_iommu_group_is_explained() {
    let host = FakeHost::new();
    host.add_device("0000:00:04.0", 0x8086, 0x10ca)
        .bind("0000:00:04.0", "vfio-pci");
    let err = preflight(&host.sysfs(), addr("0000:00:04.0")).expect_err("no group");
    assert!(matches!(err, VfioError::NoIommuGroup { .. }), "{err:?}");
    assert!(err.to_string().contains("intel_iommu=on"), "{err}");
    assert!(
        err.to_string().contains("enable_unsafe_noiommu_mode"),
        "{err}"
    );
}

#[test]
fn missing_device_is_a_pci_error() {
    let host = FakeHost::new();
    let err = preflight(&host.sysfs(), addr("0000:09:00.0")).expect_err("missing");
    assert!(matches!(err, VfioError::Pci(_)), "{err:?}");
    assert!(
        err.to_string().contains("no PCI device 0000:09:00.0"),
        "{err}"
    );
}

#[test]
fn non_viable_group_lists_every_device_and_the_culprits() {
    let host = one_vf(Some("vfio-pci"));
    host.add_device("0000:01:10.1", 0x8086, 0x10ca)
        .bind("0000:01:10.1", "igbvf")
        .group("0000:01:10.1", 5);
    host.add_device("0000:01:10.2", 0x8086, 0x10ca)
        .group("0000:01:10.2", 5);
    let err = VfioError::GroupNotViable {
        group: 5,
        members: host.sysfs().group_members(5).expect("members"),
    };
    let message = err.to_string();
    eprintln!("{message}");
    assert!(
        message.starts_with("VFIO group 5 is not viable"),
        "{message}"
    );
    assert!(
        message.contains("\n  0000:01:10.0 bound to vfio-pci: ok"),
        "{message}"
    );
    assert!(
        message.contains(
            "\n  0000:01:10.1 bound to igbvf: must be bound to vfio-pci or unbound \
             (`echo 0000:01:10.1 > /sys/bus/pci/drivers/igbvf/unbind`)"
        ),
        "{message}"
    );
    assert!(
        message.contains("\n  0000:01:10.2 bound to no driver: ok"),
        "{message}"
    );
}

#[test]
fn open_errors_name_the_fix() {
    let path = Path::new("/dev/vfio/5");
    let busy = open_error(path, Some(5), io::Error::from_raw_os_error(libc::EBUSY));
    assert!(
        matches!(busy, VfioError::GroupBusy { group: 5, .. }),
        "{busy:?}"
    );
    assert!(busy
        .to_string()
        .contains("another process already holds VFIO group 5"));
    assert!(busy.to_string().contains("fuser -v /dev/vfio/5"));

    let denied = open_error(path, Some(5), io::Error::from_raw_os_error(libc::EACCES));
    assert!(matches!(denied, VfioError::Permission { .. }), "{denied:?}");
    assert!(denied
        .to_string()
        .contains("run as root, or give the pod /dev/vfio access"));
    let eperm = open_error(path, Some(5), io::Error::from_raw_os_error(libc::EPERM));
    assert!(matches!(eperm, VfioError::Permission { .. }), "{eperm:?}");

    let missing = open_error(
        Path::new("/dev/vfio/vfio"),
        None,
        io::Error::from_raw_os_error(libc::ENOENT),
    );
    assert!(
        missing.to_string().contains("modprobe vfio-pci"),
        "{missing}"
    );
}

#[test]
fn a_file_that_is_not_a_vfio_node_gives_an_ioctl_error() {
    let host = FakeHost::new();
    host.dev_vfio(&["vfio"]);
    let err = Container::open_at(host.sysfs()).expect_err("a plain file");
    assert!(
        matches!(
            err,
            VfioError::Ioctl {
                op: "VFIO_GET_API_VERSION",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a vfio node"), "{err}");
}

#[test]
fn dma_and_reset_errors_carry_hints() {
    let enomem = VfioError::DmaMap {
        iova: 0x1000_0000,
        len: 2 << 20,
        source: io::Error::from_raw_os_error(libc::ENOMEM),
    };
    assert!(enomem.to_string().contains("ulimit -l"), "{enomem}");
    let reset = VfioError::ResetUnsupported {
        address: addr("0000:01:10.0"),
    };
    assert!(reset
        .to_string()
        .contains("does not support VFIO_DEVICE_RESET"));
}

#[test]
fn pagemap_entries_decode() {
    let present = 1u64 << 63;
    assert_eq!(
        decode_pagemap_entry(present | 0x12345, 0x7f00_0000_0abc, 4096).ok(),
        Some(0x12345 * 4096 + 0xabc)
    );
    let hidden = decode_pagemap_entry(present, 0x1000, 4096).expect_err("PFN hidden");
    assert!(hidden.to_string().contains("CAP_SYS_ADMIN"), "{hidden}");
    let absent = decode_pagemap_entry(0x12345, 0x1000, 4096).expect_err("not present");
    assert!(absent.to_string().contains("not in memory"), "{absent}");
}

#[test]
fn physical_addresses_of_a_hugepage_are_contiguous() {
    use crate::memory::{DmaRegion, HugepageSize, MemoryBacking};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        crate::skip_test!("reading physical addresses needs root");
        return;
    }
    let region = match DmaRegion::allocate(2 << 20, &MemoryBacking::Hugepages(HugepageSize::Size2M))
    {
        Ok(region) => region,
        Err(err) => {
            crate::skip_test!("no free 2M hugepage ({err})");
            return;
        }
    };
    let base = region.as_ptr().as_ptr() as usize;
    let first = physical_address(base).expect("physical address as root");
    assert_eq!(
        first % (2 << 20),
        0,
        "a 2M hugepage is 2M aligned physically"
    );
    for offset in [4096, 0x1234, (2 << 20) - 1] {
        assert_eq!(
            physical_address(base + offset).expect("same page"),
            first + offset as u64
        );
    }
}

#[test]
fn iova_ranges_are_read_from_the_capability_chain() {
    // vfio_iommu_type1_info (24 bytes, cap_offset = 24) then a first
    // capability of another id (16 bytes) pointing at the IOVA-range one:
    // two ranges around the x86 MSI window.
    let mut b = vec![0u8; 24 + 16 + 16 + 2 * 16];
    b[16..20].copy_from_slice(&24u32.to_ne_bytes());
    b[24..26].copy_from_slice(&2u16.to_ne_bytes()); // some other capability
    b[28..32].copy_from_slice(&40u32.to_ne_bytes());
    b[40..42].copy_from_slice(&1u16.to_ne_bytes()); // IOVA_RANGE
    b[48..52].copy_from_slice(&2u32.to_ne_bytes());
    let ranges = [(0u64, 0xfedf_ffffu64), (0xfef0_0000, (1 << 39) - 1)];
    for (i, (s, e)) in ranges.iter().enumerate() {
        b[56 + i * 16..64 + i * 16].copy_from_slice(&s.to_ne_bytes());
        b[64 + i * 16..72 + i * 16].copy_from_slice(&e.to_ne_bytes());
    }
    assert_eq!(
        super::container::parse_iova_ranges(&b),
        Some(ranges.to_vec())
    );
    // A chain that points past the buffer is not trusted.
    let mut broken = b.clone();
    broken[28..32].copy_from_slice(&4000u32.to_ne_bytes());
    assert_eq!(super::container::parse_iova_ranges(&broken), None);
    // No capability at all.
    assert_eq!(super::container::parse_iova_ranges(&[0u8; 24]), None);
}

#[test]
fn iovas_stay_inside_the_usable_ranges() {
    let mut a = super::dma::IovaAllocator::default();
    // The MSI window 0xfee00000-0xfeefffff is a hole between two ranges.
    a.set_ranges(vec![(0xfef0_0000, (1 << 39) - 1), (0, 0xfedf_ffff)]);
    let two_m = 2u64 << 20;
    let first = a.allocate(two_m, two_m).expect("room");
    assert_eq!(first, two_m, "page 0 is never used, then 2M-aligned");
    // Fill the low range up to the hole: the next one must skip it.
    let big = 0xfed0_0000 - 2 * two_m;
    let low = a.allocate(big, two_m).expect("low range");
    assert!(low + big - 1 <= 0xfedf_ffff);
    let next = a.allocate(two_m, two_m).expect("high range");
    assert!(
        next >= 0xfef0_0000,
        "{next:#x} must be above the MSI window"
    );
    assert_eq!(next % two_m, 0);
    assert!(a.allocate(1 << 40, two_m).is_none(), "no room is None");
}
