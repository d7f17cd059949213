//! The `fastpath` binary as an operator meets it.

mod common;
use common::fastpath;

#[test]
fn run_for_a_duration_prints_live_and_final_statistics() {
    let out = fastpath()
        .args(["run", "--no-huge", "--duration", "2.2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = stdout
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("Mpps"))
        .count();
    assert!(live >= 2, "one line per second expected:\n{stdout}");
    assert!(stdout.contains("final statistics"), "{stdout}");
    assert!(
        stdout.contains("buffers: 8192 of 8192 back in the pool"),
        "{stdout}"
    );
}

#[test]
fn a_cpu_outside_the_allowed_set_is_named() {
    let out = fastpath()
        .args(["run", "--no-huge", "--cpus", "4000", "--duration", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("CPU 4000 is not allowed") && err.contains("allowed CPUs are"),
        "{err}"
    );
}

#[test]
fn missing_hugepages_say_how_to_reserve_them() {
    let free_1g: u64 =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
    if free_1g > 0 {
        drivers::skip_test!("this machine has free 1G hugepages, so none can be missing");
        return;
    }
    let out = fastpath()
        .args(["run", "--huge-size", "1G", "--duration", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("nr_hugepages") && err.contains("--no-huge"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_are_rejected_with_usage() {
    for args in [
        &["run", "--mode", "teleport"][..],
        &["run", "--ports", "null,warp"],
        &["run", "--cores", "2", "--cpus", "1"],
    ] {
        let out = fastpath().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let out = fastpath()
        .args(["run", "--no-huge", "--ports", "ring", "--duration", "1"])
        .output()
        .unwrap();
    // A configuration that parses but is refused is a usage error too.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fastpath: error: --ports: ring ports come in connected pairs; 1 given"),
        "{err}"
    );
}

/// Runs the binary to completion; (exit code, stdout, stderr).
fn run_args(args: &[&str]) -> (Option<i32>, String, String) {
    let out = fastpath().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A device of this host that fastpath has no driver for, with its ids
/// ("1af4:1045") and kernel interfaces; CI machines and VMs have some
/// (virtio, bridges).
fn unsupported_device() -> Option<(String, String, Vec<String>)> {
    let mut found = std::fs::read_dir("/sys/bus/pci/devices")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|a| {
            let id = |f: &str| {
                let t = std::fs::read_to_string(format!("/sys/bus/pci/devices/{a}/{f}"))
                    .unwrap_or_default();
                t.trim().trim_start_matches("0x").to_string()
            };
            let ids = format!("{}:{}", id("vendor"), id("device"));
            let ours = [
                "8086:10ca",
                "8086:1520",
                "8086:10ed",
                "8086:1515",
                "8086:1565",
                "8086:15a8",
                "8086:15c5",
                "8086:57ad",
                "8086:154c",
                "8086:1889",
                "8086:37cd",
                "8086:374d",
            ];
            (!ours.contains(&ids.as_str())).then(|| {
                let dev = std::fs::canonicalize(format!("/sys/bus/pci/devices/{a}")).ok();
                let mut ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| {
                        let p = std::fs::canonicalize(e.path()).ok();
                        matches!((&p, &dev), (Some(p), Some(d)) if p.starts_with(d))
                    })
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                ifaces.sort();
                (a, ids, ifaces)
            })
        })
        .collect::<Vec<_>>();
    found.sort();
    // Prefer one with a network interface, to see it offered.
    let with_net = found.iter().position(|(_, _, i)| !i.is_empty());
    match with_net {
        Some(i) => Some(found.swap_remove(i)),
        None => found.into_iter().next(),
    }
}

#[test]
fn a_device_with_no_huge_is_named_for_what_it_is() {
    let Some((addr, ids, _)) = unsupported_device() else {
        drivers::skip_test!("no PCI device without a fastpath driver is visible");
        return;
    };
    let (code, _, err) = run_args(&[
        "run",
        "--no-huge",
        "--ports",
        &format!("{addr},null"),
        "--duration",
        "0.1",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "fastpath: error: {addr} is {ids}, not a supported VF"
        )),
        "{err}"
    );
    assert!(!err.contains("is a VF"), "{err}");
}

#[test]
fn pci_addresses_in_ports_parse_and_a_missing_vf_names_the_fix() {
    // A PCI address is accepted by the parser (clap's usage errors exit
    // with 2); what fails is the device, with the fix in the message.
    let addr = "0000:7e:1f.6";
    if std::path::Path::new(&format!("/sys/bus/pci/devices/{addr}")).exists() {
        drivers::skip_test!("{addr} exists on this host");
        return;
    }
    for ports in [format!("{addr},null"), format!("null,ring,ring,{addr}")] {
        let (code, out, err) = run_args(&["run", "--ports", &ports, "--duration", "0.1"]);
        assert_eq!(code, Some(1), "{out}{err}");
        assert!(
            err.contains(&format!(
                "fastpath: error: no PCI device {addr} (/sys/bus/pci/devices/{addr} does not exist): \
                 check the address with `lspci -D`"
            )),
            "{err}"
        );
        assert!(!out.contains("forwarding"), "{out}");
    }
}

#[test]
fn a_pci_device_that_is_not_a_supported_vf_is_a_clear_error() {
    let Some((addr, ids, ifaces)) = unsupported_device() else {
        drivers::skip_test!("no PCI device without a fastpath driver is visible");
        return;
    };
    let (code, _, err) = run_args(&[
        "run",
        "--ports",
        &format!("{addr},null"),
        "--duration",
        "0.1",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "fastpath: error: {addr} is {ids}, not a supported VF (supported: \
             8086:10ca 82576 VF (igbvf), 8086:1520 I350 VF (igbvf), 8086:10ed 82599 VF (ixgbevf), \
             8086:1515 X540 VF (ixgbevf), 8086:1565 X550 VF (ixgbevf), 8086:15a8 X550EM_x VF \
             (ixgbevf), 8086:15c5 X550EM_a VF (ixgbevf), 8086:57ad E610 VF (ixgbevf), 8086:154c \
             XL710/X710 VF (iavf), 8086:1889 Adaptive VF (iavf), 8086:37cd X722 VF (iavf), \
             8086:374d X722 VF (A0) (iavf)): "
        )),
        "{err}"
    );
    // Every driver is built now, iavf included.
    assert!(err.contains("(iavf)"), "{err}");
    // The AF_PACKET alternative is spelled as --ports takes it.
    let hint = match ifaces.first() {
        Some(name) => format!("fastpath: hint: {addr} is the kernel interface {name}: give it to --ports as afpacket:{name}"),
        None => "fastpath: hint: a kernel interface is given to --ports as afpacket:IFACE".into(),
    };
    assert!(err.contains(&hint), "{err}");
}

#[test]
fn a_bad_port_is_a_usage_error() {
    let (code, _, err) = run_args(&["run", "--ports", "null,0000:01:10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("expected null, ring, afpacket:IFACE, sim:ixgbevf, sim:iavf or a PCI address such as 0000:01:10.0"),
        "{err}"
    );
}

#[test]
fn a_healthy_run_has_no_drops_part() {
    let (code, out, err) = run_args(&[
        "run",
        "--no-huge",
        "--ports",
        "ring,ring",
        "--duration",
        "1.2",
        "--stats-period",
        "0.3",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let live: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    assert!(live.len() >= 2, "{out}");
    for l in live {
        assert!(!l.contains("drops:") && !l.contains("STARVED"), "{l}");
    }
    assert!(!out.contains("total port drops"), "{out}");
}
