//! Where each value of `fastpath run` came from, for `show config`: the
//! command line (clap says which options it saw there), the fast-path.env
//! file (the line of each setting it filled), or the default.

use super::config_view::{Item, Source};
use crate::cli::RunArgs;
use clap::parser::ValueSource;
use clap::ArgMatches;
use config::setting::Setting;

/// The sources of `fastpath run`'s values: `before_env` are the options
/// before the `--env` file was applied, `after_env` after; `matches`
/// is clap's record of the `run` subcommand.
#[derive(Debug)]
pub struct Sources<'a> {
    /// `run`'s matches.
    pub matches: Option<&'a ArgMatches>,
    /// The options before the env file.
    pub before_env: &'a RunArgs,
    /// The options after it.
    pub after_env: &'a RunArgs,
}

impl Sources<'_> {
    /// True when `id` (a `run` argument) was given on the command line.
    pub fn on_command_line(&self, id: &str) -> bool {
        // Every id asked is an argument of `run` (clap checks that in
        // debug builds).
        self.matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine)
    }

    /// The fast-path.env file, when `changed` says it set the value.
    fn env_or_default(&self, changed: bool, setting: Option<Setting>) -> Source {
        match (&self.after_env.env_origins, changed) {
            (Some(o), true) => Source::EnvFile {
                path: o.path.clone().into(),
                at: setting
                    .and_then(|s| o.by_setting.get(&s))
                    .map(|origin| origin.to_string()),
            },
            _ => Source::Default,
        }
    }

    /// Where `item`'s value came from.
    pub fn of(&self, item: Item) -> Source {
        let option = |id: &str| format!("--{}", id.replace('_', "-"));
        match item {
            Item::Setting(s) => {
                let ids: &[&str] = match s {
                    Setting::Memory => &["no_huge", "huge_dir", "huge_size"],
                    Setting::Cores => &["cpus", "cores"],
                    _ => &[],
                };
                let own = self
                    .after_env
                    .option_for(s)
                    .trim_start_matches("--")
                    .replace('-', "_");
                let seen = ids
                    .iter()
                    .copied()
                    .chain([own.as_str()])
                    .find(|id| self.on_command_line(id));
                match seen {
                    Some(id) => Source::CommandLine { option: option(id) },
                    None => self.env_or_default(
                        self.after_env
                            .env_origins
                            .as_ref()
                            .is_some_and(|o| o.by_setting.contains_key(&s)),
                        Some(s),
                    ),
                }
            }
            Item::Option(id) if self.on_command_line(id) => {
                Source::CommandLine { option: option(id) }
            }
            Item::Option("exception_cpu") => self.env_or_default(
                self.before_env.exception_cpu != self.after_env.exception_cpu,
                None,
            ),
            Item::Option(_) => Source::Default,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse, Invocation};
    use crate::control::config_view::Source;

    fn config_of(line: &str) -> Vec<(String, String, Source)> {
        let argv = ["fastpath", "run"]
            .into_iter()
            .map(String::from)
            .chain(line.split_whitespace().map(String::from));
        match parse(argv).unwrap() {
            Invocation::Run(_, _, _, c) => c
                .config
                .settings
                .iter()
                .map(|s| (s.name.clone(), s.value.clone(), s.source.clone()))
                .collect(),
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn each_value_names_the_command_line_the_env_file_or_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("fast-path.env");
        std::fs::write(
            &env,
            ": ${FP_PORTS:='ring ring'}\nNB_MBUF=4096\nFP_MASK=1\n",
        )
        .unwrap();
        let c = config_of(&format!(
            "--env {} --burst 16 --cpus 1 --control-socket none",
            env.display()
        ));
        let get = |n: &str| c.iter().find(|(name, _, _)| name == n).unwrap().clone();
        assert_eq!(get("ports").1, "ring,ring");
        let (_, _, ports) = get("ports");
        assert!(
            matches!(&ports, Source::EnvFile { path, at: Some(at) } if *path == env && at.starts_with("1: FP_PORTS=")),
            "{ports}"
        );
        assert!(ports.to_string().starts_with("fast-path.env "), "{ports}");
        let (_, value, mbuf) = get("nb_mbuf");
        assert_eq!(value, "4096");
        assert!(
            matches!(&mbuf, Source::EnvFile { at: Some(at), .. } if at.starts_with("2: NB_MBUF=")),
            "{mbuf}"
        );
        let line = |o: &str| Source::CommandLine { option: o.into() };
        // The command line wins over FP_MASK, and says so.
        assert_eq!(get("cores").2, line("--cpus"));
        assert_eq!(get("burst").2, line("--burst"));
        assert_eq!(get("mode").2, Source::Default);
        assert_eq!(get("control_socket").1, "none");
        assert_eq!(get("control_socket").2, line("--control-socket"));
        assert_eq!(get("metrics").1, "off");
        let c = config_of("--no-huge --mode l3 --exception-cpu 0 --no-env");
        let get = |n: &str| c.iter().find(|(name, _, _)| name == n).unwrap().clone();
        assert_eq!(get("memory").2, line("--no-huge"));
        assert_eq!(get("exception_cpu").1, "0");
        assert_eq!(get("exception_cpu").2, line("--exception-cpu"));
        assert_eq!(get("exception_ifnames").1, "fp0,fp1");
    }
}
