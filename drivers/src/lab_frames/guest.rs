//! The guest's end of the exchange: an AF_PACKET socket on the VF's
//! interface (eth0), in the `lab-frames` binary that runs in the lab's
//! busybox guest.
//!
//! The buffers come from a pool on ordinary 4 KiB pages
//! ([`MemoryBacking::NoHuge`]): a software port needs no hugepages and no
//! DMA mapping, and the guest has neither.

use super::exchange::{self, Endpoint, Report, Role, RoundConfig, DEFAULT_WINDOW};
use super::LabFramesError;
use crate::mbuf::{PortId, DEFAULT_DATA_ROOM};
use crate::memory::MemoryBacking;
use crate::net::MacAddr;
use crate::pool::{Pool, PoolConfig};
use crate::port::af_packet::AfPacketPort;
use crate::port::Port;
use std::time::Duration;

/// What the guest's report line starts with.
pub const TAG: &str = "VFU-FRAMES";
/// The line printed when the handshake ends.
pub const READY_TAG: &str = "VFU-FRAMES-READY";
/// Buffers of the guest's pool: two windows each way and the socket's
/// bursts, with room to spare.
const POOL_BUFFERS: u32 = 2048;
/// IFF_UP in /sys/class/net/<if>/flags.
const IFF_UP: u32 = 0x1;

/// The usage text.
pub const USAGE: &str =
    "usage: lab-frames guest --iface IFACE [--peer MAC] [--count N] [--round N] \
[--timeout SECS] [--window N]
  Exchanges N payload-checked frames each way with the host's end (MAC) over
  an AF_PACKET socket on IFACE, then prints one line
  `VFU-FRAMES round=N sent=.. rx_ok=.. rx_bad=.. rx_dup=.. missing=.. secs=.. ...`.
  Exit status: 0 when all N arrived verified each way, 1 when not, 2 on error.
  Without --peer the hellos are broadcast and the host's MAC is learnt from
  its answer. Defaults: --count 10000 --round 1 --timeout 120 --window 256";

/// The guest's settings (`lab-frames guest ...`).
#[derive(Clone, Debug, PartialEq)]
pub struct GuestArgs {
    /// The interface (the VF's netdev).
    pub iface: String,
    /// The host's MAC (None: broadcast the hellos, learn it).
    pub peer: Option<MacAddr>,
    /// Frames each way.
    pub count: u32,
    /// Round number.
    pub round: u32,
    /// Time for the round, handshake included.
    pub timeout: Duration,
    /// Frames in flight each way.
    pub window: u32,
}

/// A command line that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}\n{USAGE}")]
pub struct UsageError(pub String);

impl GuestArgs {
    /// Parses the arguments after `guest`.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<GuestArgs, UsageError> {
        let bad = |s: String| UsageError(s);
        let (mut iface, mut peer) = (None, None);
        let (mut count, mut round, mut timeout, mut window) =
            (10_000u32, 1u32, Duration::from_secs(120), DEFAULT_WINDOW);
        let mut it = args.into_iter();
        while let Some(opt) = it.next() {
            let mut value = || it.next().ok_or_else(|| bad(format!("{opt} needs a value")));
            let number = |v: String, min: u32| -> Result<u32, UsageError> {
                v.parse::<u32>()
                    .ok()
                    .filter(|&n| n >= min)
                    .ok_or_else(|| bad(format!("{opt}: {v:?} is not a whole number >= {min}")))
            };
            match opt.as_str() {
                "--iface" => iface = Some(value()?),
                "--peer" => {
                    let v = value()?;
                    let mac: MacAddr = v.parse().map_err(|e| bad(format!("--peer: {e}")))?;
                    if !mac.is_unicast() {
                        return Err(bad(format!("--peer: {mac} is not a unicast address")));
                    }
                    peer = Some(mac);
                }
                "--count" => count = number(value()?, 1)?,
                "--round" => round = number(value()?, 0)?,
                "--timeout" => {
                    let v = value()?;
                    let secs = v
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                        .ok_or_else(|| {
                            bad(format!(
                                "--timeout: {v:?} is not a number of seconds in (0, 86400]"
                            ))
                        })?;
                    timeout = Duration::from_secs_f64(secs);
                }
                "--window" => window = number(value()?, 1)?,
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        Ok(GuestArgs {
            iface: iface.ok_or_else(|| bad("--iface is required".into()))?,
            peer,
            count,
            round,
            timeout,
            window,
        })
    }
}

/// Runs one round as the guest on `args.iface`; `on_ready` is called when
/// the host has answered.
pub fn run(args: &GuestArgs, on_ready: &mut dyn FnMut(&Report)) -> Result<Report, LabFramesError> {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{}/flags", args.iface))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok());
    if flags.is_some_and(|f| f & IFF_UP == 0) {
        return Err(LabFramesError::Config(format!(
            "{} is down: `ip link set {} up` first",
            args.iface, args.iface
        )));
    }
    let port = AfPacketPort::open(PortId(0), &args.iface, DEFAULT_DATA_ROOM as usize)?;
    let me = port.info().mac;
    if !me.is_unicast() {
        return Err(LabFramesError::Config(format!(
            "{} has no unicast MAC ({me})",
            args.iface
        )));
    }
    let pool = Pool::new(
        &PoolConfig::new("lab-frames", POOL_BUFFERS).with_backing(MemoryBacking::NoHuge),
    )?;
    let mut cache = pool.cache();
    let mut ep = Endpoint::new(port)?;
    let cfg = RoundConfig {
        role: Role::Guest,
        me,
        peer: args.peer,
        round: args.round,
        count: args.count,
        window: args.window,
        timeout: args.timeout,
    };
    exchange::run(&mut ep, &mut cache, &cfg, on_ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<GuestArgs, UsageError> {
        GuestArgs::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments_parse_with_defaults() {
        let a = parse("--iface eth0 --peer 02:00:00:00:00:02").unwrap();
        assert_eq!(a.iface, "eth0");
        assert_eq!(a.peer, Some(MacAddr([2, 0, 0, 0, 0, 2])));
        assert_eq!(parse("--iface eth0").unwrap().peer, None);
        assert_eq!((a.count, a.round, a.window), (10_000, 1, DEFAULT_WINDOW));
        assert_eq!(a.timeout, Duration::from_secs(120));
        let a = parse(
            "--round 2 --count 5 --timeout 2.5 --window 8 --iface e1 --peer 02:00:00:00:00:03",
        )
        .unwrap();
        assert_eq!((a.count, a.round, a.window), (5, 2, 8));
        assert_eq!(a.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (args, says) in [
            ("--peer 02:00:00:00:00:02", "--iface is required"),
            ("--iface eth0 --peer ff:ff:ff:ff:ff:ff", "not a unicast"),
            ("--iface eth0 --peer 02:00", "bad MAC"),
            ("--iface eth0 --peer 02:00:00:00:00:02 --count 0", "--count"),
            ("--iface eth0 --peer 02:00:00:00:00:02 --count x", "--count"),
            (
                "--iface eth0 --peer 02:00:00:00:00:02 --timeout 0",
                "--timeout",
            ),
            (
                "--iface eth0 --peer 02:00:00:00:00:02 --timeout nan",
                "--timeout",
            ),
            (
                "--iface eth0 --peer 02:00:00:00:00:02 --window 0",
                "--window",
            ),
            (
                "--iface eth0 --peer 02:00:00:00:00:02 --bogus 1",
                "unknown option",
            ),
            ("--iface", "--iface needs a value"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.0.contains(says), "{args}: {e}");
            assert!(e.to_string().contains("usage: lab-frames guest"));
        }
    }

    #[test]
    fn a_missing_interface_is_an_error() {
        let a = parse("--iface nosuchif9 --peer 02:00:00:00:00:02").unwrap();
        let e = run(&a, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("nosuchif9"), "{e}");
    }
}
