//! `fastpath`: the daemon and its commands.

#![forbid(unsafe_code)]

use fastpath::advice::start_error_advice;
use fastpath::cli::{parse, CliError, Invocation};
use fastpath::control::commands::{show, watch};
use fastpath::run::{run_with, RunError};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (cfg, output, router, control) = match parse(std::env::args_os()) {
        Ok(Invocation::Run(cfg, output, router, control)) => (cfg, output, router, control),
        Ok(Invocation::Demo(args)) => return demo(&args),
        Ok(Invocation::Check(args, given)) => return fastpath::check::main(&args, &given),
        Ok(Invocation::Show(cmd)) => return show(&cmd),
        Ok(Invocation::Watch(args)) => return watch(&args),
        // clap prints its own errors, help and version, with their status.
        Err(CliError::Usage(e)) => e.exit(),
        Err(e) => {
            // Not eprintln!, which panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "fastpath: error: {e}");
            return ExitCode::from(2);
        }
    };
    match run_with(&cfg, output, &router, &control, None) {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "fastpath: error: {e}");
            if let RunError::Start(start) = &e {
                if let Some(hint) = start_error_advice(start, &cfg) {
                    let _ = writeln!(err, "fastpath: hint: {hint}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// `fastpath demo`: exit status as `fastpath run`'s.
fn demo(args: &fastpath::demo::DemoArgs) -> ExitCode {
    match fastpath::demo::run_demo(args) {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "fastpath: error: {e}");
            ExitCode::FAILURE
        }
    }
}
