//! Property test of the `fastpath run` command line, through the same
//! parser the binary uses (`fastpath::cli::parse_run_args`): for any
//! argument vector built from the real option names and edge values
//! (empty, huge, negative, NaN, infinite, unicode, units), the result is
//! never a panic, always either a configuration that validation accepts
//! or an error whose message is not empty and names an option.

use fastpath::cli::{parse_run_args, CliError};
use proptest::prelude::*;

/// Every `fastpath run` option that takes a value.
const VALUE_OPTIONS: &[&str] = &[
    "--ports",
    "--cores",
    "--cpus",
    "--mode",
    "--burst",
    "--duration",
    "--stats-period",
    "--tx-first",
    "--nb-mbuf",
    "--cache-size",
    "--packet-size",
    "--ring-size",
    "--eth-peer",
    "--huge-dir",
    "--huge-size",
    "--core-port-mapping",
    "--rxd",
    "--txd",
    "--fp-memory",
];

/// Values worth trying on any option.
const EDGE_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "-1",
    "-0",
    "+1",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "infinity",
    "1e308",
    "1e-320",
    "0.0001",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "16777215",
    "65536",
    "65535",
    "1024",
    "513",
    "512",
    "60",
    "59",
    "2049",
    "10s",
    "1m",
    "500ms",
    "1h",
    "99999h",
    "10d",
    "½",
    "٣",
    "日本",
    "é",
    " ",
    "null",
    "ring",
    "null,ring",
    "ring,ring",
    "null,null,null",
    "afpacket:lo",
    "afpacket:",
    "afpacket:a/b",
    "afpacket:lo,afpacket:lo",
    "0000:01:10.0",
    "01:10.4",
    "0000:01:10",
    "1,02:00:00:00:00:01",
    "9,02:00:00:00:00:01",
    "1,zz",
    "0-1",
    "3-1",
    "0-65535",
    "1,1",
    "auto",
    "2M",
    "1G",
    "4K",
    "io",
    "mac",
    "/dev/hugepages",
    "--burst",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(EDGE_VALUES).prop_map(String::from),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| f.to_string()),
        1 => "\\PC{0,8}",
    ]
}

/// One option as it may appear: `--opt value`, `--opt=value`, a flag,
/// or a stray word.
fn word() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        6 => (prop::sample::select(VALUE_OPTIONS), value())
            .prop_map(|(o, v)| vec![o.to_string(), v]),
        2 => (prop::sample::select(VALUE_OPTIONS), value())
            .prop_map(|(o, v)| vec![format!("{o}={v}")]),
        1 => Just(vec!["--no-huge".to_string()]),
        1 => value().prop_map(|v| vec![v]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn any_arguments_give_a_valid_config_or_an_error_naming_an_option(
        words in prop::collection::vec(word(), 0..6)
    ) {
        let args: Vec<String> = words.into_iter().flatten().collect();
        match parse_run_args(&args) {
            Ok(valid) => {
                // What was accepted passes validation again, unchanged.
                let again = valid.config().clone().validate();
                prop_assert_eq!(again.as_ref(), Ok(&valid), "{:?}", args);
            }
            Err(CliError::Invalid { option, source }) => {
                let msg = CliError::Invalid { option, source }.to_string();
                prop_assert!(VALUE_OPTIONS.contains(&option), "{:?}: {}", args, msg);
                prop_assert!(msg.starts_with(&format!("{option}: ")), "{}", msg);
                prop_assert!(msg.len() > option.len() + 2, "{}", msg);
            }
            Err(CliError::Unexpected(word)) => {
                prop_assert!(args.contains(&word), "{:?}: {}", args, word);
            }
            Err(CliError::Usage(e)) => {
                let msg = e.to_string();
                prop_assert!(!msg.trim().is_empty(), "{:?}", args);
                // clap names the option ("'--burst <BURST>'") or quotes the
                // word it could not place.
                let named = args.iter().any(|a| {
                    let name = a.split('=').next().unwrap_or(a);
                    (name.starts_with("--") && msg.contains(name))
                        || msg.contains(&format!("'{a}'"))
                });
                prop_assert!(named, "{:?}: {}", args, msg);
            }
            Err(e @ CliError::Router(_)) => {
                prop_assert!(e.to_string().starts_with("--exception-ifnames: "), "{}", e);
            }
            Err(CliError::RouterOnly(option)) => {
                prop_assert!(args.iter().any(|a| a.starts_with(option)), "{:?}: {}", args, option);
            }
            Err(e @ (CliError::EnvInvalid { .. } | CliError::EnvMask { .. })) => {
                prop_assert!(args.iter().any(|a| a.starts_with("--env")), "{:?}: {}", args, e);
            }
            Err(e @ (CliError::EnvRead { .. } | CliError::EnvFile { .. })) => {
                prop_assert!(args.iter().any(|a| a.starts_with("--env")), "{:?}: {}", args, e);
                prop_assert!(e.to_string().starts_with("--env "), "{}", e);
            }
        }
    }
}
