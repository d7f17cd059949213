//! `fastpath check` through the binary, against a fake pod: a tree with
//! sysfs, /dev, /proc and the annotations file given with the hidden
//! `--root` option, and an environment with the device plugin's
//! variables. Exit status 1 on any FAIL, 0 otherwise; each finding a line.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

const VF: &str = "0000:03:02.1";
const ABSENT: &str = "0000:03:02.2";

/// A pod on a 4-CPU node with exclusive CPUs 2-3, 512 free 2M pages,
/// IPC_LOCK and NET_ADMIN, and one VF (VF) bound to vfio-pci in IOMMU
/// group 42 whose network-status gives it 10.1.0.5.
fn fake_pod() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let l = |rel: &str, target: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    };
    w("proc/self/cgroup", "0::/\n");
    w(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    );
    w("sys/fs/cgroup/cpuset.cpus.effective", "2-3\n");
    w("sys/devices/system/cpu/online", "0-3\n");
    w("sys/devices/system/node/node0/cpulist", "0-3\n");
    let h = "sys/kernel/mm/hugepages/hugepages-2048kB";
    w(&format!("{h}/nr_hugepages"), "512\n");
    w(&format!("{h}/free_hugepages"), "512\n");
    w(&format!("{h}/resv_hugepages"), "0\n");
    w(
        "proc/self/status",
        "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t0000000000005000\n",
    );
    w(
        "proc/self/limits",
        "Max locked memory         8388608              8388608              bytes\n",
    );
    w("dev/vfio/vfio", "");
    w("dev/vfio/42", "");
    w("dev/net/tun", "");
    let dev = format!("sys/bus/pci/devices/{VF}");
    w(&format!("{dev}/vendor"), "0x8086\n");
    w(&format!("{dev}/device"), "0x10ed\n");
    w(&format!("{dev}/numa_node"), "-1\n");
    l(
        &format!("{dev}/driver"),
        "../../../bus/pci/drivers/vfio-pci",
    );
    l(
        &format!("{dev}/iommu_group"),
        "../../../kernel/iommu_groups/42",
    );
    // As the Downward API writes it: key="value", the value Go-quoted.
    w(
        "etc/podnetinfo/annotations",
        "k8s.v1.cni.cncf.io/network-status=\"[{\\\"name\\\":\\\"default/sriov-a\\\",\
         \\\"interface\\\":\\\"net1\\\",\\\"ips\\\":[\\\"10.1.0.5\\\"],\\\"mac\\\":\
         \\\"02:00:00:00:00:01\\\",\\\"device-info\\\":{\\\"type\\\":\\\"pci\\\",\
         \\\"pci\\\":{\\\"pci-address\\\":\\\"0000:03:02.1\\\"}}}]\"\n",
    );
    dir
}

/// Runs `fastpath check --root ROOT ARGS` with only `env` in its
/// environment; (exit code, stdout, stderr).
fn check(root: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fastpath"))
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .arg("check")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("the fastpath binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
}

#[test]
fn a_good_pod_passes_with_fp_ports_all() {
    let pod = fake_pod();
    let env_file = pod.path().join("fast-path.env");
    std::fs::write(&env_file, "FP_PORTS=all\nFP_MASK=2-3\n").unwrap();
    let (code, out, err) = check(
        pod.path(),
        &[("PCIDEVICE_INTEL_COM_SRIOV_A", VF)],
        &["--env", env_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        line(&out, "OK   run-config").contains(&format!("ports {VF}, 2 worker(s)")),
        "{out}"
    );
    assert!(line(&out, &format!("OK   {VF}")).contains("vfio-pci, IOMMU group 42 (/dev/vfio/42)"));
    assert!(line(&out, "OK   network-status").contains("interface net1, IPs [10.1.0.5]"));
    assert!(
        line(&out, "OK   cores").contains("workers on CPU 2-3"),
        "{out}"
    );
    assert!(
        line(&out, "OK   hugepages-2M").contains("512 free of 512"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("FAIL")), "{out}");
    let summary = out.lines().last().unwrap();
    let oks = out.lines().filter(|l| l.starts_with("OK ")).count();
    assert_eq!(
        summary,
        format!("fastpath check: 0 FAIL, 0 WARN, {oks} OK"),
        "{out}"
    );
}

/// In L3 mode the annotation's IPs go to the exception interfaces; an IP
/// Multus reports without a prefix length warns, with the fix, until
/// `--pod-prefix` (or FP_POD_PREFIX) gives one.
#[test]
fn an_ip_without_a_prefix_warns_with_the_fix() {
    let pod = fake_pod();
    let env_file = pod.path().join("fast-path.env");
    std::fs::write(&env_file, "FP_PORTS=all\nFP_MASK=2-3\n").unwrap();
    let env = [("PCIDEVICE_INTEL_COM_SRIOV_A", VF)];
    let (code, out, err) = check(
        pod.path(),
        &env,
        &["--env", env_file.to_str().unwrap(), "--mode", "l3"],
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let warn = line(&out, "WARN network-status");
    assert!(
        warn.ends_with(
            "0000:03:02.1: 10.1.0.5 not applied to the exception interface: no prefix length"
        ),
        "{out}"
    );
    let fix = out.lines().skip_while(|l| *l != warn).nth(1).unwrap_or("");
    assert!(
        fix.trim_start().starts_with("fix: ")
            && fix.contains("--pod-prefix V4/V6 (e.g. 24/64) or FP_POD_PREFIX"),
        "{out}"
    );
    std::fs::write(&env_file, "FP_PORTS=all\nFP_MASK=2-3\nFP_POD_PREFIX=24\n").unwrap();
    let (_, out, _) = check(
        pod.path(),
        &env,
        &["--env", env_file.to_str().unwrap(), "--mode", "l3"],
    );
    assert!(!out.contains("WARN network-status"), "{out}");
    // --annotations none: nothing read, and said so.
    let (_, out, _) = check(
        pod.path(),
        &env,
        &["--env", env_file.to_str().unwrap(), "--annotations", "none"],
    );
    assert!(
        line(&out, "OK   network-status").contains("--annotations none"),
        "{out}"
    );
}

#[test]
fn an_absent_vf_and_cores_outside_the_cpuset_fail() {
    let pod = fake_pod();
    let value = format!("{VF},{ABSENT}");
    let (code, out, err) = check(
        pod.path(),
        &[("PCIDEVICE_INTEL_COM_SRIOV_A", &value)],
        &["--cpus", "1-2", "--ports", &value],
    );
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        line(&out, &format!("FAIL {ABSENT}")).contains(&format!(
            "PCIDEVICE_INTEL_COM_SRIOV_A names {ABSENT}, which is not a PCI device here"
        )),
        "{out}"
    );
    let cores = line(&out, "FAIL cores");
    assert!(
        cores.contains("CPU 1 is not allowed for this process: allowed CPUs are 2-3"),
        "{cores}"
    );
    // Each FAIL is followed by its fix.
    let after = out.split(cores).nth(1).unwrap();
    assert!(
        after.trim_start().starts_with("fix: use only allowed CPUs"),
        "{out}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn json_lists_the_findings_and_no_sriov_is_a_warning() {
    let pod = fake_pod();
    let (code, out, err) = check(pod.path(), &[], &["--json", "--no-huge"]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("a JSON document");
    let list = v.as_array().expect("an array");
    let sriov = list
        .iter()
        .find(|f| f["name"] == "sriov")
        .expect("sriov finding");
    assert_eq!(sriov["status"], "WARN");
    assert!(sriov["fix"].as_str().unwrap().contains("intel.com/<pool>"));
    assert!(list.iter().all(|f| f["status"] != "FAIL"), "{out}");
}

#[test]
fn a_bad_env_file_is_a_fail_and_the_rest_is_still_checked() {
    let pod = fake_pod();
    let env_file = pod.path().join("fast-path.env");
    std::fs::write(&env_file, "FP_PORTS=all\n").unwrap();
    let (code, out, _) = check(pod.path(), &[], &["--env", env_file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "FAIL fast-path.env").contains("no PCIDEVICE_* variable in the environment"),
        "{out}"
    );
    assert!(line(&out, "WARN sriov").contains("not in a pod with SR-IOV VFs"));
    line(&out, "OK   cores");
}

#[test]
fn fp_ports_all_reaches_fastpath_run() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("fast-path.env");
    std::fs::write(&env_file, "FP_PORTS=all\n").unwrap();
    // No such device on any machine (bus 0xfe, device 0x1f): the run gets
    // as far as opening it, which proves FP_PORTS=all became its ports.
    let out = Command::new(env!("CARGO_BIN_EXE_fastpath"))
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("PCIDEVICE_INTEL_COM_SRIOV_A", "0000:fe:1f.7")
        .args(["run", "--duration", "1", "--env"])
        .arg(&env_file)
        .output()
        .expect("the fastpath binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("0000:fe:1f.7"), "{err}");
    assert!(!err.contains("FP_PORTS"), "{err}");
}
