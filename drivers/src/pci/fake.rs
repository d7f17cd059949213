//! A fake sysfs (and /dev) tree in a temporary directory, shaped like the
//! real one (Documentation/ABI/testing/sysfs-bus-pci), for unit tests.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::Sysfs;

pub(crate) struct FakeHost {
    dir: tempfile::TempDir,
}

impl FakeHost {
    pub(crate) fn new() -> FakeHost {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("sys/bus/pci/devices")).expect("mkdir");
        fs::create_dir_all(dir.path().join("sys/bus/pci/drivers")).expect("mkdir");
        fs::write(dir.path().join("sys/bus/pci/drivers_probe"), "").expect("drivers_probe");
        FakeHost { dir }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn sysfs(&self) -> Sysfs {
        Sysfs::new(self.root())
    }

    pub(crate) fn device_dir(&self, address: &str) -> PathBuf {
        self.root().join("sys/bus/pci/devices").join(address)
    }

    /// A device with ids, NUMA node -1 and an empty driver_override.
    pub(crate) fn add_device(&self, address: &str, vendor: u16, device: u16) -> &Self {
        let dir = self.device_dir(address);
        fs::create_dir_all(&dir).expect("mkdir device");
        fs::write(dir.join("vendor"), format!("0x{vendor:04x}\n")).expect("vendor");
        fs::write(dir.join("device"), format!("0x{device:04x}\n")).expect("device");
        fs::write(dir.join("numa_node"), "-1\n").expect("numa_node");
        fs::write(dir.join("driver_override"), "(null)\n").expect("driver_override");
        let mut config = vec![0u8; 64];
        config[0..2].copy_from_slice(&vendor.to_le_bytes());
        config[2..4].copy_from_slice(&device.to_le_bytes());
        fs::write(dir.join("config"), config).expect("config");
        self
    }

    /// Registers a driver (its directory with bind/unbind files).
    pub(crate) fn add_driver(&self, name: &str) -> &Self {
        let dir = self.root().join("sys/bus/pci/drivers").join(name);
        fs::create_dir_all(&dir).expect("mkdir driver");
        fs::write(dir.join("unbind"), "").expect("unbind");
        fs::write(dir.join("bind"), "").expect("bind");
        self
    }

    /// Binds `address` to `driver` (relative link, as sysfs has).
    pub(crate) fn bind(&self, address: &str, driver: &str) -> &Self {
        self.add_driver(driver);
        let link = self.device_dir(address).join("driver");
        let _ = fs::remove_file(&link);
        symlink(format!("../../../bus/pci/drivers/{driver}"), link).expect("driver link");
        self
    }

    pub(crate) fn set(&self, address: &str, attribute: &str, value: &str) -> &Self {
        fs::write(self.device_dir(address).join(attribute), value).expect("attribute");
        self
    }

    /// Puts `address` in IOMMU group `group`.
    pub(crate) fn group(&self, address: &str, group: u32) -> &Self {
        let devices = self
            .root()
            .join(format!("sys/kernel/iommu_groups/{group}/devices"));
        fs::create_dir_all(&devices).expect("mkdir group");
        symlink(self.device_dir(address), devices.join(address)).expect("group member");
        symlink(
            format!("../../../kernel/iommu_groups/{group}"),
            self.device_dir(address).join("iommu_group"),
        )
        .expect("iommu_group link");
        self
    }

    /// Makes `vf` the VF number `index` of `pf`.
    pub(crate) fn vf_of(&self, vf: &str, pf: &str, index: u32) -> &Self {
        symlink(format!("../{pf}"), self.device_dir(vf).join("physfn")).expect("physfn");
        symlink(
            format!("../{vf}"),
            self.device_dir(pf).join(format!("virtfn{index}")),
        )
        .expect("virtfn");
        self
    }

    /// Creates /dev/vfio entries (plain files) named `names`.
    pub(crate) fn dev_vfio(&self, names: &[&str]) -> &Self {
        let dir = self.root().join("dev/vfio");
        fs::create_dir_all(&dir).expect("mkdir dev/vfio");
        for name in names {
            fs::write(dir.join(name), "").expect("dev node");
        }
        self
    }
}
