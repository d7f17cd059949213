//! `lab-frames guest --iface eth0 [--peer MAC] ...`: the guest's end of the
//! vfio-user lab's frame exchange (drivers::lab_frames). Built static by
//! scripts/vfio-user-lab/build-guest-tool.sh for the busybox guest, which
//! has no libc; the netns test (drivers/tests/frames_netns.rs) runs it
//! too.
//!
//! Prints `VFU-FRAMES-READY ...` when the host answered, then one line
//! `VFU-FRAMES round=N sent=.. rx_ok=.. rx_bad=.. rx_dup=.. missing=..
//! secs=.. ... result=ok|fail|timeout`. Exit status: 0 when every frame
//! arrived verified each way, 1 when not, 2 on a usage or set-up error
//! (then the line is `VFU-FRAMES-ERROR round=N <why>`).

use std::process::ExitCode;

#[cfg(not(loom))]
fn main() -> ExitCode {
    tool::main()
}

/// Under `--cfg loom` the crate is built only for the ring's model checks
/// (drivers/tests/loom_ring.rs), without the ports this tool runs on.
#[cfg(loom)]
fn main() -> ExitCode {
    eprintln!("lab-frames: not available in a --cfg loom build");
    ExitCode::from(2)
}

#[cfg(not(loom))]
mod tool {
    use drivers::lab_frames::guest::{self, GuestArgs, READY_TAG, TAG, USAGE};
    use std::io::Write;
    use std::process::ExitCode;

    pub fn main() -> ExitCode {
        let mut args = std::env::args().skip(1);
        match args.next().as_deref() {
            Some("guest") => {}
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("lab-frames: expected the `guest` command\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        let args = match GuestArgs::parse(args) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("lab-frames: {e}");
                return ExitCode::from(2);
            }
        };
        let mut on_ready = |r: &drivers::lab_frames::Report| {
            let peer = r.peer.map(|m| m.to_string()).unwrap_or_default();
            let secs = r.handshake_secs.unwrap_or_default();
            println!(
                "{READY_TAG} round={} peer={peer} hellos={} secs={secs:.2}",
                r.round, r.hellos
            );
            // Seen at once on the console, not at exit.
            let _ = std::io::stdout().flush();
        };
        match guest::run(&args, &mut on_ready) {
            Ok(report) => {
                println!("{}", report.line(TAG));
                if report.complete() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                println!("{TAG}-ERROR round={} {e}", args.round);
                eprintln!("lab-frames: {e}");
                ExitCode::from(2)
            }
        }
    }
}
