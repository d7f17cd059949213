//! Sysfs discovery against fake trees.

use super::fake::FakeHost;
use super::*;

fn addr(s: &str) -> PciAddress {
    s.parse().expect("address")
}

/// The VM lab's shape: igb PF 0000:01:00.0 with two igbvf VFs, each in its
/// own IOMMU group (reference/vmlab/REPORT.md).
fn lab_tree() -> FakeHost {
    let host = FakeHost::new();
    host.add_device("0000:01:00.0", 0x8086, 0x10c9)
        .bind("0000:01:00.0", "igb")
        .group("0000:01:00.0", 4)
        .set("0000:01:00.0", "sriov_numvfs", "2\n")
        .set("0000:01:00.0", "sriov_totalvfs", "7\n")
        .set("0000:01:00.0", "numa_node", "0\n");
    for (i, vf) in ["0000:01:10.0", "0000:01:10.2"].iter().enumerate() {
        host.add_device(vf, 0x8086, 0x10ca)
            .vf_of(vf, "0000:01:00.0", i as u32)
            .group(vf, 5 + i as u32);
    }
    host.bind("0000:01:10.0", "vfio-pci")
        .set("0000:01:10.0", "driver_override", "vfio-pci\n")
        .bind("0000:01:10.2", "igbvf");
    host
}

#[test]
fn vf_with_physfn_is_read() {
    let host = lab_tree();
    let vf = host.sysfs().device(addr("01:10.0")).expect("VF");
    assert_eq!((vf.vendor_id, vf.device_id), (0x8086, 0x10ca));
    assert_eq!(vf.driver.as_deref(), Some("vfio-pci"));
    assert!(vf.is_bound_to_vfio());
    assert!(vf.is_vf());
    assert_eq!(vf.physfn, Some(addr("0000:01:00.0")));
    assert_eq!(vf.iommu_group, Some(5));
    assert_eq!(vf.numa_node, None, "numa_node -1 means none");
    assert_eq!(vf.sriov_numvfs, None);
    assert_eq!(
        vf.driver_override,
        DriverOverride::Driver("vfio-pci".into())
    );
    assert_eq!(vf.header_type, Some(0));
    assert_eq!(
        vf.supported().map(|d| d.driver).ok(),
        Some(DriverKind::Igbvf)
    );

    let other = host.sysfs().device(addr("0000:01:10.2")).expect("VF1");
    assert_eq!(other.driver.as_deref(), Some("igbvf"));
    assert_eq!(other.driver_override, DriverOverride::None);
    assert_eq!(other.iommu_group, Some(6));
}

#[test]
fn pf_with_vfs_is_read() {
    let host = lab_tree();
    let sysfs = host.sysfs();
    let pf = sysfs.device(addr("0000:01:00.0")).expect("PF");
    assert!(!pf.is_vf());
    assert_eq!(pf.sriov_numvfs, Some(2));
    assert_eq!(pf.sriov_totalvfs, Some(7));
    assert_eq!(pf.numa_node, Some(0));
    assert_eq!(pf.driver.as_deref(), Some("igb"));
    assert_eq!(
        sysfs.virtfns(pf.address).expect("virtfns"),
        vec![addr("0000:01:10.0"), addr("0000:01:10.2")]
    );
    let err = pf.supported().expect_err("a PF is not driven");
    assert!(err
        .to_string()
        .contains("0000:01:00.0 is 8086:10c9, not a supported VF"));
}

#[test]
fn device_without_iommu_group_or_driver() {
    let host = FakeHost::new();
    host.add_device("0000:00:03.0", 0x8086, 0x10ca);
    std::fs::remove_file(host.device_dir("0000:00:03.0").join("driver_override")).expect("rm");
    let dev = host.sysfs().device(addr("0000:00:03.0")).expect("device");
    assert_eq!(dev.iommu_group, None);
    assert_eq!(dev.driver, None);
    assert_eq!(dev.numa_node, None);
    assert_eq!(dev.physfn, None);
    assert_eq!(dev.driver_override, DriverOverride::Unsupported);
}

#[test]
fn missing_device_and_bad_files_are_typed_errors() {
    let host = lab_tree();
    let err = host
        .sysfs()
        .device(addr("0000:02:00.0"))
        .expect_err("missing");
    assert!(matches!(err, PciError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("lspci -D"), "{err}");

    host.set("0000:01:10.2", "vendor", "intel\n");
    let err = host
        .sysfs()
        .device(addr("0000:01:10.2"))
        .expect_err("bad vendor");
    assert!(matches!(err, PciError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("\"intel\""), "{err}");
}

#[test]
fn group_members_list_drivers_and_blockers() {
    let host = lab_tree();
    // A second function that shares group 5 and is bound to a kernel driver.
    host.add_device("0000:01:10.4", 0x8086, 0x10ca)
        .bind("0000:01:10.4", "igbvf")
        .group("0000:01:10.4", 5);
    let members = host.sysfs().group_members(5).expect("group 5");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].address, addr("0000:01:10.0"));
    assert_eq!(members[0].driver.as_deref(), Some("vfio-pci"));
    assert!(!members[0].blocks_vfio());
    assert_eq!(members[1].driver.as_deref(), Some("igbvf"));
    assert!(members[1].blocks_vfio());
    let bridge = GroupMember {
        address: addr("0000:00:1c.0"),
        driver: Some("pcieport".into()),
        bridge: true,
    };
    assert!(!bridge.blocks_vfio());
    let unbound = GroupMember {
        address: addr("0000:00:1c.1"),
        driver: None,
        bridge: false,
    };
    assert!(!unbound.blocks_vfio());
}

#[test]
fn bind_to_vfio_writes_override_unbind_and_probe() {
    let host = lab_tree();
    let sysfs = host.sysfs();
    assert_eq!(
        sysfs.bind_to_vfio(addr("0000:01:10.0")).expect("already"),
        BindOutcome::AlreadyBound
    );
    // No kernel here rebinds the device, so the final check fails; the
    // files written show the sequence.
    let err = sysfs
        .bind_to_vfio(addr("0000:01:10.2"))
        .expect_err("no kernel");
    assert!(matches!(err, PciError::BindFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("still bound to igbvf"), "{err}");
    let read = |p: &str| std::fs::read_to_string(host.root().join(p)).expect(p);
    assert_eq!(
        read("sys/bus/pci/devices/0000:01:10.2/driver_override"),
        "vfio-pci"
    );
    assert_eq!(read("sys/bus/pci/drivers/igbvf/unbind"), "0000:01:10.2");
    assert_eq!(read("sys/bus/pci/drivers_probe"), "0000:01:10.2");
}

#[test]
fn bind_to_vfio_without_the_module_says_modprobe() {
    let host = FakeHost::new();
    host.add_device("0000:01:10.0", 0x8086, 0x10ca)
        .bind("0000:01:10.0", "igbvf");
    let err = host
        .sysfs()
        .bind_to_vfio(addr("0000:01:10.0"))
        .expect_err("no vfio-pci");
    assert!(matches!(err, PciError::VfioPciNotLoaded { .. }), "{err:?}");
    assert!(err.to_string().contains("modprobe vfio-pci"), "{err}");
}

#[test]
fn net_interfaces_of_a_device() {
    let host = FakeHost::new();
    host.add_device("0000:00:03.0", 0x1af4, 0x1041);
    host.add_device("0000:00:04.0", 0x1af4, 0x1041);
    let sysfs = host.sysfs();
    assert!(sysfs.net_interfaces(addr("0000:00:03.0")).is_empty());
    let class = sysfs.root().join("sys/class/net");
    std::fs::create_dir_all(&class).expect("mkdir");
    // One interface right under the device, one under a virtio child, one
    // of another device.
    for (dev, rel, name) in [
        ("0000:00:03.0", "net/eth1", "eth1"),
        ("0000:00:03.0", "virtio2/net/eth0", "eth0"),
        ("0000:00:04.0", "net/eth2", "eth2"),
    ] {
        let dir = host.device_dir(dev).join(rel);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::os::unix::fs::symlink(&dir, class.join(name)).expect("symlink");
    }
    assert_eq!(sysfs.net_interfaces(addr("0000:00:03.0")), ["eth0", "eth1"]);
    assert_eq!(sysfs.net_interfaces(addr("0000:00:04.0")), ["eth2"]);
    assert!(sysfs.net_interfaces(addr("0000:00:09.0")).is_empty());
}
