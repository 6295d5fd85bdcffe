//! The `cairn` binary: parse the command line, set up logging and the runtime, dispatch.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Request handling allocates many small, short-lived JSON values across worker threads;
/// profiling the log-batch path showed glibc's allocator taking a quarter of server CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
