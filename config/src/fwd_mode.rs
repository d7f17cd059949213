//! The forwarding mode an operator picks, as in DPDK testpmd
//! (app/test-pmd/iofwd.c, macfwd.c). What each mode does to a packet is
//! the fast path's business (`fastpath::fwd_mode`).

use std::fmt;
use std::str::FromStr;

/// What a worker does to each packet between receive and send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FwdMode {
    /// Forward untouched (testpmd `io`): no packet byte is read or written.
    #[default]
    Io,
    /// Rewrite the Ethernet addresses (testpmd `mac`): destination = the
    /// peer of the output port, source = the output port's own address.
    Mac,
    /// Route (IPv4, IPv6): the router pipeline, by the tables the kernel
    /// mirror fills; what it cannot forward goes to the kernel.
    L3,
}

/// A mode name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown forwarding mode {0:?}: expected io, mac or l3")]
pub struct UnknownMode(pub String);

impl FwdMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FwdMode::Io => "io",
            FwdMode::Mac => "mac",
            FwdMode::L3 => "l3",
        }
    }
}

impl fmt::Display for FwdMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FwdMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        match s {
            "io" => Ok(FwdMode::Io),
            "mac" => Ok(FwdMode::Mac),
            "l3" => Ok(FwdMode::L3),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [FwdMode::Io, FwdMode::Mac, FwdMode::L3] {
            assert_eq!(m.to_string().parse::<FwdMode>(), Ok(m));
        }
        let e = "teleport".parse::<FwdMode>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown forwarding mode \"teleport\": expected io, mac or l3"
        );
    }
}
