//! Serves a device model to a QEMU guest over vfio-user, for
//! scripts/vfio-user-lab. A test tool (needs the `sim` feature), not part
//! of any product build: it lives next to the models it serves.
//!
//!   vfio_user_server SOCKET TRACE [MODEL]
//!
//! MODEL is `regfile` (the 82599 VF config space over a plain register
//! file; the default until the ixgbevf model exists). Exits 0 when QEMU
//! disconnects, 1 on a protocol or socket error, 2 on bad arguments.

use drivers::sim::vfio_user::{serve, RegisterFileVf};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (sock, trace) = match (args.get(1), args.get(2)) {
        (Some(s), Some(t)) => (s, t),
        _ => {
            eprintln!("usage: {} SOCKET TRACE [regfile]", args[0]);
            return ExitCode::from(2);
        }
    };
    let model = args.get(3).map_or("regfile", String::as_str);
    if model != "regfile" {
        eprintln!("vfio_user_server: unknown model '{model}' (regfile)");
        return ExitCode::from(2);
    }
    let trace: Box<dyn Write> = match File::create(trace) {
        // Line-buffered enough: the writer is flushed when serve returns,
        // and the lab reads the trace only after QEMU exited.
        Ok(f) => Box::new(BufWriter::new(f)),
        Err(e) => {
            eprintln!("vfio_user_server: cannot create {trace}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut dev = RegisterFileVf::new();
    eprintln!("vfio_user_server: serving {model} (8086:10ed) on {sock}");
    let r = serve(Path::new(sock), &mut dev, trace);
    eprintln!(
        "vfio_user_server: BAR0 reads {} writes {}",
        dev.reads, dev.writes
    );
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vfio_user_server: {e}");
            ExitCode::FAILURE
        }
    }
}
