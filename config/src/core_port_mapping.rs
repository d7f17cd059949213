//! Which worker CPU polls which port: 6WIND's CORE_PORT_MAPPING
//! (`c<cpu>=<port>[:<port>...]` entries joined by `/`, anchors.md section
//! 2.2), also given as `fastpath run --core-port-mapping`.
//!
//! A port named by several CPUs gets one RX queue per CPU that names it
//! (RSS spreads its traffic over them); the k-th of those CPUs, in
//! ascending order, polls queue k. Every worker keeps a TX queue on every
//! port, as without a mapping: any worker may send out of any port.

use drivers::cpu::{CpuId, CpuSet, MAX_CPU_ID};
use std::fmt;
use std::str::FromStr;

/// One `c<cpu>=<port>[:<port>...]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePorts {
    /// The polling CPU.
    pub cpu: CpuId,
    /// The ports it polls (port ids, in the ports' order).
    pub ports: Vec<u16>,
}

/// A whole mapping: each CPU once, each with at least one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePortMapping(Vec<CorePorts>);

/// Why a mapping's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingSyntaxError {
    /// Nothing given.
    #[error("the mapping is empty")]
    Empty,
    /// An entry not of the form `c<cpu>=<ports>`.
    #[error("entry {0:?} is not c<cpu>=<port>[:<port>...]")]
    Entry(String),
    /// A CPU that is not a number in range.
    #[error("entry {entry:?}: {cpu:?} is not a CPU number from 0 to {MAX_CPU_ID}")]
    Cpu {
        /// The entry.
        entry: String,
        /// The CPU as written.
        cpu: String,
    },
    /// A port that is not a number in range.
    #[error("entry {entry:?}: {port:?} is not a port number from 0 to 65535")]
    Port {
        /// The entry.
        entry: String,
        /// The port as written.
        port: String,
    },
    /// One CPU in two entries.
    #[error("CPU {0} is given twice: list all its ports in one entry (c{0}=0:1)")]
    CpuTwice(CpuId),
    /// One port twice in one entry.
    #[error("entry {entry:?} names port {port} twice")]
    PortTwice {
        /// The entry.
        entry: String,
        /// The port.
        port: u16,
    },
}

/// What the mapping accepts, for error messages.
pub const MAPPING_SYNTAX: &str =
    "c<cpu>=<port>[:<port>...] entries joined by '/', such as c1=0/c2=1:2, each CPU once";

impl FromStr for CorePortMapping {
    type Err = MappingSyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(MappingSyntaxError::Empty);
        }
        let mut out: Vec<CorePorts> = Vec::new();
        for entry in s.split('/') {
            let owned = || entry.to_string();
            let (cpu, ports) = entry
                .strip_prefix('c')
                .and_then(|rest| rest.split_once('='))
                .ok_or_else(|| MappingSyntaxError::Entry(owned()))?;
            let cpu = cpu
                .parse::<u32>()
                .ok()
                .filter(|&c| c <= MAX_CPU_ID)
                .map(CpuId)
                .ok_or_else(|| MappingSyntaxError::Cpu {
                    entry: owned(),
                    cpu: cpu.to_string(),
                })?;
            if out.iter().any(|c| c.cpu == cpu) {
                return Err(MappingSyntaxError::CpuTwice(cpu));
            }
            let mut list = Vec::new();
            for p in ports.split(':') {
                let port = p.parse::<u16>().map_err(|_| MappingSyntaxError::Port {
                    entry: owned(),
                    port: p.to_string(),
                })?;
                if list.contains(&port) {
                    return Err(MappingSyntaxError::PortTwice {
                        entry: owned(),
                        port,
                    });
                }
                list.push(port);
            }
            out.push(CorePorts { cpu, ports: list });
        }
        Ok(CorePortMapping(out))
    }
}

impl fmt::Display for CorePortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "c{}=", e.cpu)?;
            for (j, p) in e.ports.iter().enumerate() {
                if j > 0 {
                    f.write_str(":")?;
                }
                write!(f, "{p}")?;
            }
        }
        Ok(())
    }
}

/// For clap's `value_parser`: the syntax error as text.
pub fn parse_core_port_mapping(s: &str) -> Result<CorePortMapping, String> {
    s.parse::<CorePortMapping>()
        .map_err(|e| format!("{e}; expected {MAPPING_SYNTAX}"))
}

impl CorePortMapping {
    /// The entries, as given.
    pub fn entries(&self) -> &[CorePorts] {
        &self.0
    }

    /// The CPUs that poll something: the workers.
    pub fn cpus(&self) -> CpuSet {
        CpuSet::from_ids(self.0.iter().map(|e| e.cpu))
    }

    /// The CPUs that poll `port`, in ascending order: the k-th polls RX
    /// queue k of the port.
    pub fn pollers(&self, port: usize) -> Vec<CpuId> {
        let mut cpus: Vec<CpuId> = self
            .0
            .iter()
            .filter(|e| e.ports.iter().any(|&p| usize::from(p) == port))
            .map(|e| e.cpu)
            .collect();
        cpus.sort();
        cpus
    }

    /// The largest port id named, if any.
    pub fn max_port(&self) -> Option<u16> {
        self.0.iter().flat_map(|e| e.ports.iter().copied()).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> CorePortMapping {
        s.parse().unwrap()
    }

    #[test]
    fn entries_and_pollers() {
        let map = m("c10=0/c8=0/c6=1/c4=1");
        assert_eq!(map.pollers(0), vec![CpuId(8), CpuId(10)]);
        assert_eq!(map.pollers(1), vec![CpuId(4), CpuId(6)]);
        assert!(map.pollers(2).is_empty());
        assert_eq!(map.cpus().to_string(), "4,6,8,10");
        assert_eq!(map.to_string(), "c10=0/c8=0/c6=1/c4=1");
        let map = m(" c2=0:1/c4=2:3\n");
        assert_eq!(map.entries()[1].ports, vec![2, 3]);
        assert_eq!(map.max_port(), Some(3));
    }

    #[test]
    fn bad_text_says_what_is_wrong() {
        for (text, want) in [
            ("", "the mapping is empty"),
            ("2=0", "entry \"2=0\" is not c<cpu>=<port>[:<port>...]"),
            ("c2", "entry \"c2\" is not"),
            ("cx=0", "\"x\" is not a CPU number from 0 to 65535"),
            ("c65536=0", "\"65536\" is not a CPU number"),
            ("c2=", "\"\" is not a port number"),
            ("c2=0:", "\"\" is not a port number"),
            ("c2=70000", "\"70000\" is not a port number"),
            ("c2=0/c2=1", "CPU 2 is given twice"),
            ("c2=0:0", "names port 0 twice"),
            ("c1=0//c2=1", "entry \"\" is not"),
        ] {
            let e = text.parse::<CorePortMapping>().unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    proptest! {
        #[test]
        fn no_text_panics_and_display_round_trips(s in "[c0-9=:/ x]{0,30}") {
            if let Ok(map) = s.parse::<CorePortMapping>() {
                prop_assert_eq!(map.to_string().parse::<CorePortMapping>(), Ok(map));
            }
        }
    }
}
