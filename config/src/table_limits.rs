//! The router's table capacities: most routes and most neighbours the
//! control side installs (`fastpath run --max-routes / --max-neighbours`,
//! or 6WIND's FP_OPTIONS `--max-route=N --max-neigh=N`).
//!
//! 6WIND sizes its shared-memory tables up front from these (defaults
//! max-route 50000, max-neigh 5000, anchors.md section 2.2). Ours grow as
//! needed, so there is no default limit: a limit, when given, makes the
//! router refuse (log and count) the route or neighbour beyond it, so a
//! full BGP table pushed by mistake cannot take the pod's memory. One
//! count covers IPv4 and IPv6 together (6WIND has max-route and
//! max-route6).

/// Most routes and neighbours (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableLimits {
    /// Routes, IPv4 and IPv6 together.
    pub max_routes: Option<usize>,
    /// Neighbours (ARP and ND entries), both families.
    pub max_neighbours: Option<usize>,
}

/// The largest limit accepted: 2^24, the limit of the FIBs' next-hop
/// groups (MAX_GROUPS_LIMIT of fastpath's dir24_8 and lpm6).
pub const MAX_TABLE_LIMIT: usize = 1 << 24;

/// Parses a limit: 1 to [`MAX_TABLE_LIMIT`] (for clap and FP_OPTIONS).
pub fn parse_table_limit(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(1..=MAX_TABLE_LIMIT).contains(&n) {
        return Err(format!("{n} is out of range 1..={MAX_TABLE_LIMIT}"));
    }
    Ok(n)
}

/// What FP_OPTIONS gave: the limits, and the options we do not act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FpOptions {
    /// The limits named.
    pub limits: TableLimits,
    /// Options with no effect here (6WIND's other capacities, `--mod-opt`).
    pub ignored: Vec<String>,
}

/// What FP_OPTIONS accepts, for error messages.
pub const FP_OPTIONS_SYNTAX: &str = "space-separated --<option>=<value> words; we apply \
     --max-route=N (or --max-routes) and --max-neigh=N (or --max-neighbours), N from 1 to 16777216";

/// Parses FP_OPTIONS: `--max-route=N` / `--max-routes=N` and
/// `--max-neigh=N` / `--max-neighbours=N` set the limits; any other
/// `--option[=value]` is kept in [`FpOptions::ignored`].
pub fn parse_fp_options(s: &str) -> Result<FpOptions, String> {
    let mut out = FpOptions::default();
    for word in s.split_whitespace() {
        let Some(opt) = word.strip_prefix("--") else {
            return Err(format!("{word:?} is not a --<option>=<value> word"));
        };
        let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
        let slot = match name {
            "max-route" | "max-routes" => &mut out.limits.max_routes,
            "max-neigh" | "max-neighbours" => &mut out.limits.max_neighbours,
            _ => {
                out.ignored.push(word.to_string());
                continue;
            }
        };
        *slot = Some(parse_table_limit(value).map_err(|e| format!("{word}: {e}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limits_and_the_rest() {
        let o = parse_fp_options("--max-route=1000 --mod-opt=ipsec:--max-sp=10 --max-neigh=50")
            .unwrap();
        assert_eq!(
            o.limits,
            TableLimits {
                max_routes: Some(1000),
                max_neighbours: Some(50)
            }
        );
        assert_eq!(o.ignored, ["--mod-opt=ipsec:--max-sp=10"]);
        let o = parse_fp_options("--max-routes=7 --max-neighbours=8").unwrap();
        assert_eq!(
            (o.limits.max_routes, o.limits.max_neighbours),
            (Some(7), Some(8))
        );
        assert_eq!(parse_fp_options("").unwrap(), FpOptions::default());
        for (s, want) in [
            (
                "--max-route=0",
                "--max-route=0: 0 is out of range 1..=16777216",
            ),
            ("--max-neigh", "--max-neigh: \"\" is not a number"),
            (
                "max-route=5",
                "\"max-route=5\" is not a --<option>=<value> word",
            ),
            ("--max-route=x1", "\"x1\" is not a number"),
        ] {
            let e = parse_fp_options(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    proptest! {
        #[test]
        fn no_text_panics(s in "[-a-z=0-9 :]{0,40}") {
            let _ = parse_fp_options(&s);
        }
    }
}
