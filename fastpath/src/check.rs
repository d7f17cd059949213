//! `fastpath check`: the first command an operator runs in a pod. It
//! reads the run configuration exactly as `fastpath run` would (the same
//! options, `--env` file and defaults) and checks what the pod was given
//! against it with the config crate's Kubernetes discovery
//! ([`config::k8s`]): the VFs of the SR-IOV device plugin, the
//! network-status annotation, the cpuset, hugepages, NUMA placement,
//! capabilities, memlock and device nodes. Each finding is printed as
//! OK, WARN or FAIL with the fix; any FAIL makes the exit status 1 (2
//! stays a usage error, as for `fastpath run`).

use crate::cli::{apply_env_file, env_file_to_read, RunArgs};
use clap::{ArgMatches, Args};
use config::fast_path_env::DEFAULT_PATH;
use config::fwd_mode::FwdMode;
use config::k8s::{check_pod, worst, CpuRequest, Finding, MemoryNeed, PodCheck, PodReport, Status};
use config::pool_sizing::{pool_bytes, DEFAULT_NB_MBUF_FLOOR};
use config::port_spec::PortSpec;
use drivers::cpu::{thread_affinity, CpuId};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status when a check fails.
pub const EXIT_FAIL: u8 = 1;

/// `fastpath check` options: those of `fastpath run` (`--annotations`,
/// the pod's annotations file, among them), and where to look.
#[derive(Args, Debug, Clone)]
#[command(mut_arg("json", |a| a.help("Print the findings as one JSON array on stdout")))]
pub struct CheckArgs {
    /// The run to check for (`--ports`, `--cores`, `--env FILE`, `--json`,
    /// ... as `fastpath run` takes them).
    #[command(flatten)]
    pub run: RunArgs,
    /// For tests only: read /proc, /sys, /dev and /var/run under DIR
    /// instead of /, and take the CPU affinity from DIR's online CPUs.
    #[arg(long, hide = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Runs the checks, prints them and returns the exit status. `given`:
/// clap's matches of `check`, so a `--env` file fills only what the
/// command line leaves (as for `fastpath run`).
pub fn main(args: &CheckArgs, given: &ArgMatches) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let report = check(args, given, &env);
    let mut out = std::io::stdout().lock();
    let written = if args.run.json {
        serde_json::to_writer_pretty(&mut out, &report.findings)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print_text(&mut out, &report.findings)
    };
    if written.is_err() {
        return ExitCode::from(EXIT_FAIL);
    }
    if worst(&report.findings) == Status::Fail {
        ExitCode::from(EXIT_FAIL)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_text(out: &mut impl Write, findings: &[Finding]) -> std::io::Result<()> {
    for f in findings {
        writeln!(out, "{f}")?;
    }
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    writeln!(
        out,
        "fastpath check: {} FAIL, {} WARN, {} OK",
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Ok)
    )
}

/// Every finding for `args` in the environment `env`.
pub fn check(args: &CheckArgs, given: &ArgMatches, env: &BTreeMap<String, String>) -> PodReport {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut findings = Vec::new();
    let mut a = args.run.clone();
    // The file `fastpath run` would read: --env, else the default path
    // (under --root in tests) when it exists.
    let default = root.join(DEFAULT_PATH.trim_start_matches('/'));
    if let Some(path) = env_file_to_read(&a, &default) {
        match apply_env_file(&mut a, &path, env, given) {
            Ok(()) => {
                findings.push(Finding::ok(
                    "fast-path.env",
                    format!("{} read", path.display()),
                ));
            }
            Err(e) => findings.push(Finding::fail(
                "fast-path.env",
                e.to_string(),
                "correct the line and value named (config/fast-path.env.sample documents \
                 each variable)",
            )),
        }
    }
    let nb_mbuf = match a.validate() {
        Ok(cfg) => {
            let ports: Vec<String> = cfg.ports.iter().map(ToString::to_string).collect();
            findings.push(Finding::ok(
                "run-config",
                format!(
                    "ports {}, {} worker(s), mode {}, pool of {} buffers",
                    ports.join(","),
                    cfg.workers(),
                    cfg.mode,
                    cfg.nb_mbuf()
                ),
            ));
            if let Err(e) = a.router_options(&cfg) {
                findings.push(Finding::fail(
                    "run-config",
                    e.to_string(),
                    "correct the option named",
                ));
            }
            cfg.nb_mbuf()
        }
        Err(e) => {
            findings.push(Finding::fail(
                "run-config",
                e.to_string(),
                "correct the option named (`fastpath run --help`)",
            ));
            // Go on with what was asked, so the pod is still checked.
            a.nb_mbuf
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(DEFAULT_NB_MBUF_FLOOR as u32)
        }
    };
    let cfg = a.to_config();
    let vf_ports: Vec<_> = cfg
        .ports
        .iter()
        .filter_map(|p| match p {
            PortSpec::Pci(address) => Some(*address),
            _ => None,
        })
        .collect();
    let on_this_machine = root == Path::new("/");
    let pod = PodCheck {
        affinity: on_this_machine.then(|| thread_affinity().ok()).flatten(),
        cpus: CpuRequest {
            workers: cfg.cores.clone(),
            mapping: cfg.core_port_mapping.as_ref().map(|m| m.cpus()),
            exception: a.exception_cpu.map(CpuId),
        },
        memory: MemoryNeed {
            backing: cfg.backing.clone(),
            pool_bytes: pool_bytes(nb_mbuf, &cfg.backing),
            vf_ports: vf_ports.len(),
        },
        vf_ports,
        exception_path: cfg.mode == FwdMode::L3,
        annotations: a.annotations_file(),
        pod_prefix: a.pod_prefix.unwrap_or_default(),
        env: env.clone(),
        root,
    };
    let mut report = check_pod(&pod);
    findings.append(&mut report.findings);
    report.findings = findings;
    report
}
