//! Serves a device model to a QEMU guest over vfio-user, for
//! scripts/vfio-user-lab. A test tool (needs the `sim` feature), not part
//! of any product build: it lives next to the models it serves.
//!
//!   vfio_user_server SOCKET TRACE [MODEL]
//!
//! MODEL is `regfile` (the 82599 VF config space over a plain register
//! file) or `ixgbevf[:82599|x540|x550|x550em]` (the ixgbevf model behind
//! the Linux ixgbe PF, admin MAC 02:09:00:00:00:01; 82599 by default).
//! At the end it prints what the guest's driver did and every rule of the
//! model it broke (`violations: N`, then one line each). Exits 0 when QEMU
//! disconnects with no violation, 1 on a protocol or socket error or a
//! violation, 2 on bad arguments.

use drivers::net::MacAddr;
use drivers::sim::ixgbevf::{Flavor, Ixgbevf, IxgbevfConfig};
use drivers::sim::vfio_user::{ixgbevf_config_space, serve, RegisterFileVf, ServedModel};
use drivers::sim::Iommu;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// The admin MAC the modelled PF gives the guest's VF (`ip link set PF vf
/// 0 mac ...` on a real host).
const GUEST_VF_MAC: &str = "02:09:00:00:00:01";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (sock, trace) = match (args.get(1), args.get(2)) {
        (Some(s), Some(t)) => (s, t),
        _ => {
            eprintln!("usage: {} SOCKET TRACE [regfile|ixgbevf[:FLAVOR]]", args[0]);
            return ExitCode::from(2);
        }
    };
    let model = args.get(3).map_or("regfile", String::as_str);
    let flavor = match model {
        "regfile" => None,
        "ixgbevf" | "ixgbevf:82599" => Some(Flavor::X82599),
        "ixgbevf:x540" => Some(Flavor::X540),
        "ixgbevf:x550" => Some(Flavor::X550),
        "ixgbevf:x550em" => Some(Flavor::X550EmX),
        _ => {
            eprintln!(
                "vfio_user_server: unknown model '{model}' (regfile, ixgbevf[:82599|x540|x550|x550em])"
            );
            return ExitCode::from(2);
        }
    };
    let trace: Box<dyn Write> = match File::create(trace) {
        // Line-buffered enough: the writer is flushed when serve returns,
        // and the lab reads the trace only after QEMU exited.
        Ok(f) => Box::new(BufWriter::new(f)),
        Err(e) => {
            eprintln!("vfio_user_server: cannot create {trace}: {e}");
            return ExitCode::from(2);
        }
    };
    let sock = Path::new(sock);
    match flavor {
        None => serve_regfile(sock, trace),
        Some(f) => serve_ixgbevf(sock, trace, f),
    }
}

fn serve_regfile(sock: &Path, trace: Box<dyn Write>) -> ExitCode {
    let mut dev = RegisterFileVf::new();
    eprintln!(
        "vfio_user_server: serving regfile (8086:10ed) on {}",
        sock.display()
    );
    let r = serve(sock, &mut dev, trace);
    eprintln!(
        "vfio_user_server: BAR0 reads {} writes {}",
        dev.reads, dev.writes
    );
    exit(r.map(|()| 0))
}

fn serve_ixgbevf(sock: &Path, trace: Box<dyn Write>, flavor: Flavor) -> ExitCode {
    let mac: MacAddr = GUEST_VF_MAC.parse().expect("a valid constant");
    let cfg = IxgbevfConfig::new(flavor, Some(mac));
    let iommu = Iommu::new();
    let mut dev = ServedModel::start(ixgbevf_config_space(flavor.device_id()), &iommu, |n| {
        Ixgbevf::new(cfg, n)
    });
    eprintln!(
        "vfio_user_server: serving the ixgbevf model ({flavor:?}, 8086:{:04x}, VF MAC {mac}) on {}",
        flavor.device_id(),
        sock.display()
    );
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
    eprintln!(
        "vfio_user_server: guest RAM sections {}, odd BAR accesses {}, frames sent by the VF {wire}, MSI-X messages {irqs:?}",
        dev.sections, dev.odd_accesses
    );
    eprintln!("vfio_user_server: mailbox requests {}", requests.join(" "));
    let violations = dev.finish();
    eprintln!("vfio_user_server: violations: {}", violations.len());
    for v in &violations {
        eprintln!("vfio_user_server: violation {v}");
    }
    exit(r.map(|()| u8::from(!violations.is_empty())))
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
