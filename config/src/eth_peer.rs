//! The destination MAC written by the mac mode for one output port:
//! `PORT,MAC`, as testpmd's `--eth-peer`.

use drivers::net::{MacAddr, MacParseError};
use std::fmt;
use std::str::FromStr;

/// The peer (next hop) MAC of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthPeer {
    /// Port index, in `ports` order.
    pub port: usize,
    /// The MAC written as destination on frames sent out of that port.
    pub mac: MacAddr,
}

/// Why a `PORT,MAC` pair was rejected. Each variant quotes what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthPeerError {
    /// No comma.
    #[error("{0:?}: expected PORT,MAC such as 1,02:00:00:00:00:01")]
    Syntax(String),
    /// The port is not a decimal number.
    #[error("{given:?}: port {port:?} is not a port number (0, 1, ...)")]
    BadPort {
        /// The pair.
        given: String,
        /// The port part.
        port: String,
    },
    /// The MAC does not parse.
    #[error("{given:?}: {source}")]
    BadMac {
        /// The pair.
        given: String,
        /// Why.
        source: MacParseError,
    },
}

impl FromStr for EthPeer {
    type Err = EthPeerError;
    fn from_str(s: &str) -> Result<Self, EthPeerError> {
        let (port, mac) = s
            .split_once(',')
            .ok_or_else(|| EthPeerError::Syntax(s.to_string()))?;
        let bad_port = || EthPeerError::BadPort {
            given: s.to_string(),
            port: port.to_string(),
        };
        // Digits only: usize's parser would also take "+1".
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_port());
        }
        let port = port.parse().map_err(|_| bad_port())?;
        let mac = mac.parse().map_err(|source| EthPeerError::BadMac {
            given: s.to_string(),
            source,
        })?;
        Ok(EthPeer { port, mac })
    }
}

impl fmt::Display for EthPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.port, self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_print_back() {
        let p: EthPeer = "1,02:00:00:00:00:09".parse().unwrap();
        assert_eq!(p.port, 1);
        assert_eq!(p.to_string(), "1,02:00:00:00:00:09");
    }

    #[test]
    fn bad_pairs_are_quoted() {
        for bad in [
            "1",
            "x,02:00:00:00:00:01",
            "+1,02:00:00:00:00:01",
            "-1,02:00:00:00:00:01",
            "99999999999999999999999,02:00:00:00:00:01",
            "1,02:00:00:00:00",
            "1,zz:00:00:00:00:01",
            ",",
            "",
        ] {
            let e = bad.parse::<EthPeer>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad:?}: {e}");
        }
    }
}
