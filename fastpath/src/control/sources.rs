//! Where each value of `fastpath run` came from, for `show config`: the
//! command line (clap says which options it saw there), the `--env`
//! fast-path.env file (what it changed), or the default.

use super::config_view::{given_value, Item, Source};
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

    fn env_or_default(&self, changed: bool) -> Source {
        match (&self.after_env.env, changed) {
            (Some(path), true) => Source::EnvFile { path: path.clone() },
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
                        given_value(&self.before_env.to_config(), s)
                            != given_value(&self.after_env.to_config(), s),
                    ),
                }
            }
            Item::Option(id) if self.on_command_line(id) => {
                Source::CommandLine { option: option(id) }
            }
            Item::Option("exception_cpu") => {
                self.env_or_default(self.before_env.exception_cpu != self.after_env.exception_cpu)
            }
            Item::Option(_) => Source::Default,
        }
    }
}
