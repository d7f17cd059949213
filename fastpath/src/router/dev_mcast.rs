//! The kernel's link-layer multicast lists, from `/proc/net/dev_mcast`:
//! the groups each interface's driver is asked to receive (the kernel adds
//! IPv6 solicited-node groups for each address, all-nodes, all-routers,
//! the IPv4 groups a routing daemon joins). rtnetlink does not carry them,
//! so the file is read.
//!
//! One line per group and interface, written by the kernel's
//! `dev_mc_seq_show` (net/core/dev_addr_lists.c) as
//! `"%-4d %-15s %-5d %-5d %*phN\n"`: ifindex, name, users, global use,
//! the address in hex without separators. The text is parsed as
//! untrusted: a line that does not fit is an error naming it, never a
//! panic.

use drivers::net::MacAddr;
use std::collections::BTreeMap;
use std::path::Path;

/// Where the kernel publishes the lists.
pub const DEV_MCAST: &str = "/proc/net/dev_mcast";

/// Why the lists could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DevMcastError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (is /proc mounted in this network namespace?)")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `ifindex name users global address`.
    #[error("{DEV_MCAST} line {line}: {why}: {text:?}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: &'static str,
        /// The line (cut to 80 characters).
        text: String,
    },
}

/// The multicast groups of each interface, by name, each list in the
/// file's order without repeats.
pub type McastLists = BTreeMap<String, Vec<MacAddr>>;

/// Parse the text of `/proc/net/dev_mcast`. Addresses that are not 6
/// bytes (an InfiniBand or other link type's) are skipped: they are not
/// Ethernet groups and no port of ours has them.
pub fn parse(text: &str) -> Result<McastLists, DevMcastError> {
    let mut out = McastLists::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let bad = |why| DevMcastError::Line {
            line: i + 1,
            why,
            text: l.chars().take(80).collect(),
        };
        let mut f = l.split_whitespace();
        let (Some(index), Some(name), Some(users), Some(global), Some(addr), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad("not five fields"));
        };
        for n in [index, users, global] {
            n.parse::<u32>()
                .map_err(|_| bad("a count is not a number"))?;
        }
        let Some(mac) = parse_hex_mac(addr).map_err(bad)? else {
            continue;
        };
        let list = out.entry(name.to_owned()).or_default();
        if !list.contains(&mac) {
            list.push(mac);
        }
    }
    Ok(out)
}

/// A hex address without separators: `Some` for 6 bytes, `None` for
/// another length of well-formed hex.
fn parse_hex_mac(s: &str) -> Result<Option<MacAddr>, &'static str> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the address is not hex bytes");
    }
    if s.len() != 12 {
        return Ok(None);
    }
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| "the address is not hex bytes")?;
    }
    Ok(Some(MacAddr(m)))
}

/// Read and parse the lists at `path` ([`DEV_MCAST`] outside tests).
pub fn read(path: &Path) -> Result<McastLists, DevMcastError> {
    let text = std::fs::read_to_string(path).map_err(|source| DevMcastError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines as a 6.x kernel writes them (taken from this machine's
    /// file, with a TAP that has an IPv6 address and OSPF's group).
    const FIXTURE: &str = "\
2    ifb0            1     0     333300000001
4    eth0            1     0     333300000001
4    eth0            1     0     01005e000001
4    eth0            1     0     3333ff000001
9    fp0             1     0     333300000001
9    fp0             1     0     3333ff4d0a01
9    fp0             2     0     01005e000005
9    fp0             1     0     01005e000005
";

    #[test]
    fn groups_by_interface_in_order_without_repeats() {
        let l = parse(FIXTURE).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l["fp0"],
            vec![
                MacAddr([0x33, 0x33, 0, 0, 0, 1]),
                MacAddr([0x33, 0x33, 0xff, 0x4d, 0x0a, 0x01]),
                MacAddr([0x01, 0x00, 0x5e, 0, 0, 5]),
            ]
        );
        assert_eq!(l["ifb0"].len(), 1);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn other_link_types_are_skipped_and_bad_lines_named() {
        let ib = "5    ib0             1     0     00ffffffff12401bffff00000000000000000001\n";
        assert!(parse(ib).unwrap().is_empty());
        for (text, why) in [
            ("4 eth0 1 0\n", "not five fields"),
            ("4 eth0 1 0 3333 extra\n", "not five fields"),
            ("x eth0 1 0 333300000001\n", "a count is not a number"),
            ("4 eth0 1 0 33330000000g\n", "the address is not hex bytes"),
            ("4 eth0 1 0 33330000001\n", "the address is not hex bytes"),
        ] {
            match parse(text) {
                Err(DevMcastError::Line {
                    line: 1, why: w, ..
                }) => assert_eq!(w, why, "{text}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_file_says_which() {
        let d = tempfile::tempdir().unwrap();
        let e = read(&d.path().join("dev_mcast")).unwrap_err();
        assert!(e.to_string().contains("dev_mcast"), "{e}");
        std::fs::write(d.path().join("dev_mcast"), FIXTURE).unwrap();
        assert_eq!(read(&d.path().join("dev_mcast")).unwrap().len(), 3);
    }

    proptest! {
        #[test]
        fn no_input_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn lines_of_the_right_shape_parse(
            rows in proptest::collection::vec((1u32..100, "[a-z]{1,15}", any::<[u8; 6]>()), 0..20)
        ) {
            let text: String = rows
                .iter()
                .map(|(i, n, m)| {
                    let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{i:<4} {n:<15} 1     0     {hex}\n")
                })
                .collect();
            let l = parse(&text).unwrap();
            for (_, n, m) in &rows {
                prop_assert!(l[n].contains(&MacAddr(*m)));
            }
        }
    }
}
