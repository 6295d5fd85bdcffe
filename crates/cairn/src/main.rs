//! The `cairn` binary: parse the command line, set up logging and the runtime, dispatch.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::logging::init(cli.log_format());
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cairn failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
