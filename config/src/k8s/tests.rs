//! [`check_pod`] over fake pods: a tree with sysfs, /dev, /proc and the
//! annotations file, and an environment map.

use super::*;
use crate::core_choice::CoreChoice;
use crate::cpu_list::parse_cpu_list;
use std::os::unix::fs::symlink;

/// A fake pod's root in a temporary directory.
struct FakePod {
    dir: tempfile::TempDir,
}

impl FakePod {
    /// Two CPUs (0-1) in a v2 cgroup cpuset of 1, 512 free 2M pages,
    /// IPC_LOCK and NET_ADMIN, 8 MiB memlock, /dev/vfio/vfio and
    /// /dev/net/tun.
    fn new() -> FakePod {
        let pod = FakePod {
            dir: tempfile::tempdir().unwrap(),
        };
        pod.write("proc/self/cgroup", "0::/\n")
            .write(
                "proc/self/mountinfo",
                "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            )
            .write("sys/fs/cgroup/cpuset.cpus.effective", "1\n")
            .write("sys/devices/system/cpu/online", "0-1\n")
            .write("sys/devices/system/node/node0/cpulist", "0-1\n")
            .write(
                "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                "512\n",
            )
            .write(
                "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
                "512\n",
            )
            .write(
                "sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages",
                "0\n",
            )
            .write(
                "proc/mounts",
                "nodev /hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
            )
            .caps(0x5000)
            .write(
                "proc/self/limits",
                "Max locked memory         8388608              8388608              bytes\n",
            )
            .write("dev/vfio/vfio", "")
            .write("dev/net/tun", "");
        pod
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> &Self {
        fixture::write(self.root(), &[(rel, text)]);
        self
    }

    fn link(&self, rel: &str, target: &str) -> &Self {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        symlink(target, p).unwrap();
        self
    }

    fn caps(&self, cap_eff: u64) -> &Self {
        self.write(
            "proc/self/status",
            &format!("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t{cap_eff:016x}\n"),
        )
    }

    /// An 82599 VF at `addr` bound to `driver`, in IOMMU group `group`
    /// (with its /dev/vfio node).
    fn vf(&self, addr: &str, driver: &str, group: u32) -> &Self {
        let dev = format!("sys/bus/pci/devices/{addr}");
        self.write(&format!("{dev}/vendor"), "0x8086\n")
            .write(&format!("{dev}/device"), "0x10ed\n")
            .write(&format!("{dev}/numa_node"), "0\n")
            .link(
                &format!("{dev}/driver"),
                &format!("../../../bus/pci/drivers/{driver}"),
            )
            .link(
                &format!("{dev}/iommu_group"),
                &format!("../../../kernel/iommu_groups/{group}"),
            )
            .write(&format!("dev/vfio/{group}"), "")
    }

    fn check(&self, env: &[(&str, &str)], ports: &[&str]) -> PodReport {
        self.check_run(env, ports, false, PodPrefix::default())
    }

    /// As [`FakePod::check`], for a run with exception interfaces (L3)
    /// or not, and the operator's prefix lengths.
    fn check_run(
        &self,
        env: &[(&str, &str)],
        ports: &[&str],
        exception_path: bool,
        pod_prefix: PodPrefix,
    ) -> PodReport {
        let vf_ports: Vec<PciAddress> = ports.iter().map(|p| p.parse().unwrap()).collect();
        check_pod(&PodCheck {
            root: self.root().to_path_buf(),
            env: fixture::env(env),
            affinity: None,
            cpus: CpuRequest {
                workers: CoreChoice::List(parse_cpu_list("1").unwrap()),
                mapping: None,
                exception: None,
            },
            memory: MemoryNeed {
                backing: MemoryBacking::default(),
                pool_bytes: 16 << 20,
                vf_ports: vf_ports.len(),
            },
            vf_ports,
            exception_path,
            annotations: Some(PathBuf::from("/etc/podnetinfo/annotations")),
            pod_prefix,
        })
    }
}

/// Asserts finding `i` of `f` says `text`.
fn says(f: &[&Finding], i: usize, text: &str) {
    assert!(f[i].found.contains(text), "{:?} lacks {text:?}", f[i].found);
}

fn named<'a>(r: &'a PodReport, name: &str) -> Vec<&'a Finding> {
    r.findings.iter().filter(|f| f.name == name).collect()
}

const A: &str = "0000:03:02.1";

/// A pod with VF `A` on vfio-pci and its network-status entry (an IP
/// without a prefix, as Multus writes it); the device plugin's info.
fn good_pod() -> (FakePod, String) {
    let pod = FakePod::new();
    pod.vf(A, "vfio-pci", 42);
    let info = format!(
        r#"{{"{A}":{{"generic":{{"deviceID":"{A}"}},"vfio":{{"dev-mount":"/dev/vfio/42","mount":"/dev/vfio/vfio"}}}}}}"#
    );
    let status = r#"[{"name":"default/sriov-a","interface":"net1","ips":["10.1.0.5"],"mac":"02:00:00:00:00:01","device-info":{"type":"pci","pci":{"pci-address":"0000:03:02.1"}}}]"#;
    pod.write(
        "etc/podnetinfo/annotations",
        &format!(
            "k8s.v1.cni.cncf.io/network-status={}\n",
            go_quote::tests::go_quote(status)
        ),
    );
    (pod, info)
}

#[test]
fn an_ip_without_a_prefix_warns_in_l3_until_one_is_given() {
    let (pod, info) = good_pod();
    let env = [
        ("PCIDEVICE_INTEL_COM_SRIOV_A", A),
        ("PCIDEVICE_INTEL_COM_SRIOV_A_INFO", info.as_str()),
    ];
    let r = pod.check_run(&env, &[A], true, PodPrefix::default());
    let f = named(&r, "network-status");
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(f[1].status, Status::Warn);
    assert_eq!(
        f[1].found,
        "0000:03:02.1: 10.1.0.5 not applied to the exception interface: no prefix length"
    );
    assert!(f[1].fix.as_ref().unwrap().contains("--pod-prefix"));
    let r = pod.check_run(&env, &[A], true, "24".parse().unwrap());
    let f = named(&r, "network-status");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].status, Status::Ok);
    // A v6 prefix alone does not cover an IPv4 address.
    let r = pod.check_run(&env, &[A], true, "/64".parse().unwrap());
    assert_eq!(named(&r, "network-status")[1].status, Status::Warn);
}

#[test]
fn a_good_pod_is_all_ok() {
    let (pod, info) = good_pod();
    let r = pod.check(
        &[
            ("PCIDEVICE_INTEL_COM_SRIOV_A", A),
            ("PCIDEVICE_INTEL_COM_SRIOV_A_INFO", &info),
        ],
        &[A],
    );
    let bad: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.status != Status::Ok)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let vf = named(&r, A);
    says(
        &vf,
        0,
        "vfio-pci, IOMMU group 42 (/dev/vfio/42), NUMA node 0",
    );
    assert_eq!(r.addressing.len(), 1);
    assert_eq!(r.addressing[0].ips[0].addr.to_string(), "10.1.0.5");
    assert_eq!(worst(&r.findings), Status::Ok);
}

#[test]
fn an_absent_device_fails_naming_variable_address_and_fix() {
    let pod = FakePod::new();
    let r = pod.check(&[("PCIDEVICE_INTEL_COM_SRIOV_A", A)], &[]);
    let f = named(&r, A);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].status, Status::Fail);
    assert!(
        f[0].found.starts_with(&format!(
            "PCIDEVICE_INTEL_COM_SRIOV_A names {A}, which is not a PCI device here"
        )),
        "{}",
        f[0].found
    );
    assert!(f[0]
        .fix
        .as_ref()
        .unwrap()
        .contains("restart the sriov-device-plugin pod"));
    // Its IPs are unknown too: no annotations file.
    assert_eq!(named(&r, "network-status")[0].status, Status::Warn);
}

#[test]
fn a_device_on_its_kernel_driver_fails() {
    let pod = FakePod::new();
    pod.vf(A, "ixgbevf", 42);
    let r = pod.check(&[("PCIDEVICE_INTEL_COM_SRIOV_A", A)], &[A]);
    let f = named(&r, A);
    assert_eq!(f[0].status, Status::Fail, "{f:?}");
    says(&f, 0, "is bound to ixgbevf, not vfio-pci");
    assert!(f[0]
        .fix
        .as_ref()
        .unwrap()
        .contains("driverctl set-override"));
}

#[test]
fn group_node_missing_or_disagreeing_fails() {
    let pod = FakePod::new();
    pod.vf(A, "vfio-pci", 42);
    std::fs::remove_file(pod.root().join("dev/vfio/42")).unwrap();
    let r = pod.check(&[("PCIDEVICE_X", A)], &[]);
    let f = named(&r, A);
    assert_eq!(f[0].status, Status::Fail);
    says(&f, 0, "/dev/vfio/42 is not in the container");

    pod.write("dev/vfio/42", "");
    let info = format!(r#"{{"{A}":{{"vfio":{{"dev-mount":"/dev/vfio/7"}}}}}}"#);
    let r = pod.check(&[("PCIDEVICE_X", A), ("PCIDEVICE_X_INFO", &info)], &[]);
    let f = named(&r, A);
    assert_eq!(f[0].status, Status::Fail);
    says(&f, 0, "group node /dev/vfio/7");
}

#[test]
fn malformed_inputs_are_findings_not_panics() {
    let pod = FakePod::new();
    pod.vf(A, "vfio-pci", 42);
    pod.write(
        "etc/podnetinfo/annotations",
        "k8s.v1.cni.cncf.io/network-status=[oops\n",
    );
    pod.write(
        "var/run/k8s.cni.cncf.io/devinfo/dp/x-device.json",
        "{\"type\": \"pci\", ",
    );
    let r = pod.check(
        &[
            ("PCIDEVICE_X", "0000:03:02.1,not-an-address"),
            ("PCIDEVICE_X_INFO", "{\"0000:03:02.1\": [}"),
        ],
        &[],
    );
    assert_eq!(named(&r, "PCIDEVICE_X_INFO")[0].status, Status::Warn);
    let bad = named(&r, "PCIDEVICE_X");
    assert_eq!(bad[0].status, Status::Fail);
    says(&bad, 0, "invalid PCI address \"not-an-address\"");
    assert_eq!(named(&r, "network-status")[0].status, Status::Warn);
    assert_eq!(named(&r, "devinfo")[0].status, Status::Warn);
    // The device itself is still checked (and fine).
    assert_eq!(named(&r, A)[0].status, Status::Ok);
}

#[test]
fn devinfo_files_name_vfs_too() {
    let pod = FakePod::new();
    pod.vf(A, "vfio-pci", 42);
    pod.write(
        "var/run/k8s.cni.cncf.io/devinfo/dp/intel.com-sriov-0000:03:02.1-device.json",
        &format!(r#"{{"type":"pci","version":"1.1.0","pci":{{"pci-address":"{A}","pf-pci-address":"0000:03:00.0"}}}}"#),
    );
    let r = pod.check(&[], &[]);
    assert!(named(&r, "sriov").is_empty(), "{:#?}", r.findings);
    let f = named(&r, A);
    assert_eq!(f[0].status, Status::Ok, "{f:?}");
    says(&f, 0, "/var/run/k8s.cni.cncf.io/devinfo/dp/");
}

#[test]
fn without_sriov_it_warns_and_checks_the_rest() {
    let pod = FakePod::new();
    pod.caps(0);
    let r = pod.check(&[], &[]);
    assert_eq!(named(&r, "sriov")[0].status, Status::Warn);
    assert_eq!(named(&r, "cores")[0].status, Status::Ok);
    assert_eq!(named(&r, "hugepages-2M")[0].status, Status::Ok);
    assert_eq!(named(&r, "cap-net-admin")[0].status, Status::Warn);
    assert_eq!(worst(&r.findings), Status::Warn);
}

#[test]
fn a_port_the_plugin_did_not_give_warns() {
    let pod = FakePod::new();
    pod.vf(A, "vfio-pci", 42).vf("0000:03:02.2", "vfio-pci", 43);
    let r = pod.check(&[("PCIDEVICE_X", A)], &[A, "0000:03:02.2"]);
    let f = named(&r, "0000:03:02.2");
    assert_eq!(f[0].status, Status::Warn, "{f:?}");
    assert_eq!(f[1].status, Status::Ok, "{f:?}");
    assert!(f[1].found.contains("from --ports / FP_PORTS"), "{f:?}");
    // An absent port of the command line: the fix is not the plugin's.
    let r = pod.check(&[], &["0000:09:00.0"]);
    let f = named(&r, "0000:09:00.0");
    assert_eq!(f[0].status, Status::Fail, "{f:?}");
    let fix = f[0].fix.as_ref().unwrap();
    assert!(
        fix.contains("FP_PORTS=all") && !fix.contains("device plugin's allocation"),
        "{fix}"
    );
}
