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
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pairs"));
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

#[test]
fn a_vf_port_with_no_huge_is_a_clear_error() {
    let (code, _, err) = run_args(&[
        "run",
        "--no-huge",
        "--ports",
        "0000:01:10.0,null",
        "--duration",
        "0.1",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "fastpath: error: port 0000:01:10.0 is a VF, and devices need hugepage DMA memory"
        ) && err.contains("drop --no-huge"),
        "{err}"
    );
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
    // Any device of this host that fastpath has no driver for (a host with
    // no vfio and no supported VF, as CI machines are).
    let Some(addr) = std::fs::read_dir("/sys/bus/pci/devices")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|a| {
            let id = |f: &str| {
                std::fs::read_to_string(format!("/sys/bus/pci/devices/{a}/{f}")).unwrap_or_default()
            };
            !(id("vendor").trim() == "0x8086"
                && [
                    "0x10ca", "0x1520", "0x10ed", "0x1515", "0x1565", "0x154c", "0x1889",
                ]
                .contains(&id("device").trim()))
        })
    else {
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
        err.contains("fastpath: error: unsupported device")
            && err.contains(&format!("at {addr} (supported: 8086:10ca 82576 VF (igbvf)")),
        "{err}"
    );
}

#[test]
fn a_bad_port_is_a_usage_error() {
    let (code, _, err) = run_args(&["run", "--ports", "null,0000:01:10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("expected null, ring or a VF's PCI address such as 0000:01:10.0"),
        "{err}"
    );
}

#[test]
fn a_starved_pool_is_named_in_the_live_line_and_the_summary() {
    let (code, out, err) = run_args(&[
        "run",
        "--no-huge",
        "--nb-mbuf",
        "10",
        "--duration",
        "1.5",
        "--stats-period",
        "0.5",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let live: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).collect();
    assert!(!live.is_empty(), "{out}");
    for l in &live {
        assert!(
            l.contains("| drops: port0 rx_nombuf=")
                && l.contains(" port1 rx_nombuf=")
                && l.contains(
                    "| STARVED: port0,port1 found no free buffer (pool of 10: raise --nb-mbuf)"
                ),
            "{l}"
        );
    }
    assert!(out.contains("total port drops: rx_nombuf="), "{out}");
    assert!(
        out.contains("receives found no free buffer: the pool of 10 buffers is too small"),
        "{out}"
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
