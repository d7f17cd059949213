//! Serves a device model to a QEMU guest over vfio-user, for
//! scripts/vfio-user-lab. A test tool (needs the `sim` feature), not part
//! of any product build: it lives next to the models it serves.
//!
//!   vfio_user_server SOCKET TRACE [MODEL] [--rounds N] [--count N]
//!                    [--round-timeout SECS]
//!
//! MODEL is one of
//! - `regfile`: the 82599 VF's config space over a plain register file;
//! - `iavf-regfile[:1889|154c]`: the iavf VF's (Adaptive VF 8086:1889 by
//!   default, or the X710 VF 8086:154c) over a plain register file, whose
//!   VFGEN_RSTAT reads VFACTIVE: Linux's iavf sets up its admin queue,
//!   sends VERSION and waits for an answer that never comes;
//! - `ixgbevf[:82599|x540|x550|x550em]` (82599 by default): VF 0 of a
//!   modelled ixgbe PF, admin MAC 02:09:00:00:00:01, served to the guest;
//! - `iavf[:1889|154c]` (1889 by default): VF 0 of a modelled i40e / ice
//!   PF, admin MAC 02:09:00:00:00:01, on the PF's switch, served to the
//!   guest (`--rounds` refused until our iavf PMD exists, see
//!   [`serve_iavf`]).
//!
//! With `--rounds N` (ixgbevf) the PF gets a second VF, admin MAC
//! 02:09:00:00:00:02, driven here by our PMD, which exchanges
//! `--count` (10000) payload-checked frames each way with the guest's
//! `lab-frames guest` per round through the PF's switch; round 2 takes a
//! link flap and round 3 a PF reset, injected mid-round (host_vf.rs).
//! At the end it prints what the guest's driver did, each round's
//! `PEER-FRAMES` line, and every rule of the model either driver broke
//! (`violations: N`, one line each). Exits 0 when QEMU disconnects with
//! every round complete and no violation, 1 on a protocol or socket error,
//! a violation or an incomplete round, 2 on bad arguments or a model this
//! build does not have.

mod host_vf;

use drivers::net::MacAddr;
use drivers::sim::iavf::{Flavor as IavfFlavor, Iavf, IavfConfig};
use drivers::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfConfig};
use drivers::sim::veb::{Veb, VebConfig};
use drivers::sim::vfio_user::{
    iavf_config_space, ixgbevf_config_space, serve, RegisterFileVf, ServedModel, VfLayout,
    IAVF_ADAPTIVE_VF, IAVF_X710_VF, IXGBE_82599_VF,
};
use drivers::sim::Iommu;
use host_vf::{HostVf, HostVfKind, IavfHost, IxgbevfHost, Outcome, Plan};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin MAC the modelled PF gives the guest's VF (`ip link set PF vf
/// 0 mac ...` on a real host).
const GUEST_VF_MAC: MacAddr = MacAddr([0x02, 0x09, 0x00, 0x00, 0x00, 0x01]);

const USAGE: &str = "usage: vfio_user_server SOCKET TRACE \
[regfile|iavf-regfile[:1889|154c]|ixgbevf[:82599|x540|x550|x550em]|iavf[:1889|154c]] \
[--rounds N] [--count N] [--round-timeout SECS]";

/// What the server puts behind the socket.
enum Model {
    /// A plain register file with this VF's ids and BARs.
    RegFile(VfLayout),
    /// VF 0 of the modelled ixgbe PF.
    Ixgbevf(Flavor),
    /// The iavf model's VF with this device id.
    Iavf(u16),
}

struct Args {
    sock: String,
    trace: String,
    model: Model,
    plan: Plan,
}

/// The iavf device id a `:1889` / `:154c` suffix names (Adaptive VF when
/// there is none).
fn iavf_device(suffix: Option<&str>) -> Option<u16> {
    match suffix {
        None | Some("1889") => Some(IAVF_ADAPTIVE_VF),
        Some("154c") => Some(IAVF_X710_VF),
        Some(_) => None,
    }
}

fn parse_model(m: &str) -> Result<Model, String> {
    let (name, suffix) = match m.split_once(':') {
        Some((n, s)) => (n, Some(s)),
        None => (m, None),
    };
    let unknown = || format!("unknown model '{m}'");
    Ok(match name {
        "regfile" if suffix.is_none() => Model::RegFile(VfLayout::ixgbevf(IXGBE_82599_VF.device)),
        "iavf-regfile" => Model::RegFile(VfLayout::iavf(iavf_device(suffix).ok_or_else(unknown)?)),
        "ixgbevf" => Model::Ixgbevf(match suffix {
            None | Some("82599") => Flavor::X82599,
            Some("x540") => Flavor::X540,
            Some("x550") => Flavor::X550,
            Some("x550em") => Flavor::X550EmX,
            Some(_) => return Err(unknown()),
        }),
        "iavf" => Model::Iavf(iavf_device(suffix).ok_or_else(unknown)?),
        _ => return Err(unknown()),
    })
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut pos = Vec::new();
    let mut plan = Plan {
        rounds: 0,
        count: 10_000,
        round_timeout: Duration::from_secs(150),
    };
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u32, String> {
            let v = it.next().ok_or(format!("{what} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{what}: {v:?} is not a whole number"))
        };
        match a.as_str() {
            "--rounds" => plan.rounds = num("--rounds")?,
            "--count" => plan.count = num("--count")?.max(1),
            "--round-timeout" => {
                plan.round_timeout = Duration::from_secs(u64::from(num("--round-timeout")?.max(1)))
            }
            o if o.starts_with("--") => return Err(format!("unknown option {o}")),
            _ => pos.push(a.clone()),
        }
    }
    let (sock, trace) = match (pos.first(), pos.get(1)) {
        (Some(s), Some(t)) => (s.clone(), t.clone()),
        _ => return Err("SOCKET and TRACE are required".into()),
    };
    let model = parse_model(pos.get(2).map_or("regfile", String::as_str))?;
    if pos.len() > 3 {
        return Err(format!("unexpected argument {:?}", pos[3]));
    }
    if matches!(model, Model::RegFile(_)) && plan.rounds > 0 {
        return Err("--rounds needs a model (a register file has no PF to switch frames)".into());
    }
    Ok(Args {
        sock,
        trace,
        model,
        plan,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vfio_user_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let trace: Box<dyn Write> = match File::create(&args.trace) {
        // Line-buffered enough: the writer is flushed when serve returns,
        // and the lab reads the trace only after QEMU exited.
        Ok(f) => Box::new(BufWriter::new(f)),
        Err(e) => {
            eprintln!("vfio_user_server: cannot create {}: {e}", args.trace);
            return ExitCode::from(2);
        }
    };
    let sock = Path::new(&args.sock);
    match args.model {
        Model::RegFile(layout) => serve_regfile(sock, trace, layout),
        Model::Ixgbevf(f) => serve_ixgbevf(sock, trace, f, args.plan),
        Model::Iavf(device) => serve_iavf(sock, trace, device, args.plan),
    }
}

fn serve_regfile(sock: &Path, trace: Box<dyn Write>, layout: VfLayout) -> ExitCode {
    let mut dev = RegisterFileVf::new(layout);
    eprintln!(
        "vfio_user_server: serving a register file ({:04x}:{:04x}, BAR0 {} KiB, {} MSI-X vectors) on {}",
        layout.id.vendor,
        layout.id.device,
        layout.bar0_size / 1024,
        layout.msix_vectors,
        sock.display()
    );
    let r = serve(sock, &mut dev, trace);
    eprintln!(
        "vfio_user_server: BAR0 reads {} writes {}",
        dev.reads, dev.writes
    );
    exit(r.map(|()| 0))
}

/// VF 0 of a modelled iavf PF (i40e for 154c, ice for 1889), admin MAC
/// [`GUEST_VF_MAC`], on the PF's switch (its frames are switched: to
/// another VF of the PF, or the uplink), served to the guest's iavf.ko.
/// There is no host VF yet (our iavf PMD does not exist), so with
/// `plan.rounds > 0` the run says so and fails (the lab's round checks
/// then fail too), rather than pass anything off as an exchange. Once the
/// PMD lands, an `IavfHost` [`HostVfKind`] and [`start_host`] here make
/// the rounds run as for ixgbevf.
fn serve_iavf(sock: &Path, trace: Box<dyn Write>, device: u16, plan: Plan) -> ExitCode {
    let flavor = if device == 0x154c {
        IavfFlavor::Xl710
    } else {
        IavfFlavor::Adaptive
    };
    let veb = Veb::new(VebConfig::default());
    let port = match veb.attach() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vfio_user_server: switch: {e}");
            return ExitCode::FAILURE;
        }
    };
    let veb_port = port.port();
    let cfg = IavfConfig::new(flavor, Some(GUEST_VF_MAC));
    let iommu = Iommu::new();
    let mut dev = ServedModel::start(iavf_config_space(device), &iommu, |n| {
        Iavf::with_port(cfg, n, port)
    });
    if let Err(e) = veb.set_waker(veb_port, dev.sim().waker()) {
        eprintln!("vfio_user_server: switch: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "vfio_user_server: serving the iavf model ({flavor:?}, 8086:{device:04x}, VF MAC {GUEST_VF_MAC}) on {}",
        sock.display()
    );
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let host_iommu = if plan.rounds > 0 {
        start_host(&veb, &IavfHost(flavor), plan, &outcome)
    } else {
        None
    };
    let r = serve(sock, &mut dev, trace);
    let (wire, irqs, ops) = dev.sim().with(|m, _| {
        (
            m.wire.len(),
            m.irq.sent.clone(),
            m.aq.sent_ops
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>(),
        )
    });
    let c = veb.port_counters(veb_port).unwrap_or_default();
    eprintln!(
        "vfio_user_server: guest RAM sections {}, odd BAR accesses {}, frames sent by the VF {}, \
         received {}, MSI-X messages {irqs:?}",
        dev.sections,
        dev.odd_accesses,
        c.tx_frames + wire as u64,
        c.rx_frames,
    );
    eprintln!("vfio_user_server: virtchnl opcodes {}", ops.join(" "));
    finish(r, dev.finish(), host_iommu, &outcome, plan)
}

/// Open the host's VF of `kind` on `veb` and run `plan`'s rounds on a
/// thread beside the connection, into `outcome`; the host's DMA space
/// (for its violations), or `None` if it could not open (in `outcome`).
fn start_host<K>(
    veb: &Arc<Veb>,
    kind: &K,
    plan: Plan,
    outcome: &Arc<Mutex<Outcome>>,
) -> Option<Arc<Iommu>>
where
    K: HostVfKind,
    K::Port: Send + 'static,
{
    match HostVf::open(veb, kind) {
        Ok(mut host) => {
            eprintln!(
                "vfio_user_server: host VF {} on the switch, our PMD, {} round(s) of {} frames each way",
                host_vf::HOST_VF_MAC, plan.rounds, plan.count
            );
            let iommu = host.iommu();
            let out = Arc::clone(outcome);
            std::thread::spawn(move || {
                host.run(plan, &out);
                // The host's VF lives until the process ends: its
                // violations are taken (not asserted) at the end.
                loop {
                    std::thread::park();
                }
            });
            Some(iommu)
        }
        Err(e) => {
            eprintln!("vfio_user_server: host VF: {e}");
            lock(outcome).error = Some(format!("host VF: {e}"));
            None
        }
    }
}

/// The violations, the first few in full: a driver that breaks a rule
/// tends to break it on every descriptor.
fn report_violations(violations: &[drivers::sim::Violation]) {
    eprintln!("vfio_user_server: violations: {}", violations.len());
    for v in violations.iter().take(20) {
        eprintln!("vfio_user_server: {v}");
    }
    if violations.len() > 20 {
        eprintln!("vfio_user_server: ... and {} more", violations.len() - 20);
    }
}

fn serve_ixgbevf(sock: &Path, trace: Box<dyn Write>, flavor: Flavor, plan: Plan) -> ExitCode {
    let veb = Veb::new(VebConfig::default());
    let iommu = Iommu::new();
    let port = match veb.attach() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vfio_user_server: switch: {e}");
            return ExitCode::FAILURE;
        }
    };
    let veb_port = port.port();
    let cfg = IxgbevfConfig::new(flavor, Some(GUEST_VF_MAC));
    let mut dev = ServedModel::start(ixgbevf_config_space(flavor.device_id()), &iommu, |n| {
        Ixgbevf::with_port(cfg, n, port)
    });
    if let Err(e) = veb.set_waker(veb_port, dev.sim().waker()) {
        eprintln!("vfio_user_server: switch: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "vfio_user_server: serving the ixgbevf model ({flavor:?}, 8086:{:04x}, VF MAC {GUEST_VF_MAC}) on {}",
        flavor.device_id(),
        sock.display()
    );

    // The host's VF and its rounds run beside the connection; the
    // outcome is read when QEMU has gone (the thread is not joined: a
    // round waiting for a guest that died ends with the process).
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let host_iommu = if plan.rounds > 0 {
        start_host(&veb, &IxgbevfHost(flavor), plan, &outcome)
    } else {
        None
    };

    let r = serve(sock, &mut dev, trace);
    let (wire, irqs, requests) = dev.sim().with(|m, _| {
        (
            m.wire.len(),
            m.irq.sent,
            m.mbx
                .requests
                .iter()
                .map(|w| format!("{w:#x}"))
                .collect::<Vec<_>>(),
        )
    });
    let c = veb.port_counters(veb_port).unwrap_or_default();
    eprintln!(
        "vfio_user_server: guest RAM sections {}, odd BAR accesses {}, frames sent by the VF {}, \
         received {}, MSI-X messages {irqs:?}",
        dev.sections,
        dev.odd_accesses,
        c.tx_frames + wire as u64,
        c.rx_frames,
    );
    eprintln!("vfio_user_server: mailbox requests {}", requests.join(" "));
    finish(r, dev.finish(), host_iommu, &outcome, plan)
}

/// The end of a served run: the rounds' outcome, every violation of the
/// guest's VF (`guest`) and of the host's, and the exit status (1 if a
/// round is incomplete, a rule was broken or the connection failed).
fn finish(
    r: Result<(), drivers::sim::vfio_user::ServeError>,
    guest: Vec<drivers::sim::Violation>,
    host_iommu: Option<Arc<Iommu>>,
    outcome: &Mutex<Outcome>,
    plan: Plan,
) -> ! {
    let mut bad = false;
    if plan.rounds > 0 {
        let o = lock(outcome);
        eprintln!(
            "vfio_user_server: rounds complete {} of {}{}",
            o.complete,
            plan.rounds,
            o.error
                .as_ref()
                .map_or(String::new(), |e| format!(" ({e})"))
        );
        bad |= o.complete != plan.rounds;
    }
    let mut violations = guest;
    if let Some(h) = host_iommu {
        violations.extend(h.violations().take());
    }
    report_violations(&violations);
    bad |= !violations.is_empty();
    let _ = std::io::stderr().flush();
    match r {
        // The host thread may still hold its device: leave without
        // waiting for it.
        Ok(()) => std::process::exit(i32::from(bad)),
        Err(e) => {
            eprintln!("vfio_user_server: {e}");
            std::process::exit(1)
        }
    }
}

fn lock(m: &Mutex<Outcome>) -> std::sync::MutexGuard<'_, Outcome> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn exit(r: Result<u8, drivers::sim::vfio_user::ServeError>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("vfio_user_server: {e}");
            ExitCode::FAILURE
        }
    }
}
