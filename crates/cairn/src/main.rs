//! The `cairn` binary: parse the command line, set up logging and the runtime, dispatch.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Request handling allocates many small, short-lived JSON values across worker threads;
/// profiling the log-batch path showed glibc's allocator taking a quarter of server CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option for how long freed memory stays resident before it is returned to the
/// system. Its default keeps pages after a burst (a large history read, an upload) long enough
/// to lift the server's peak memory by a third; returning them at once cost no measurable
/// ingest speed in the benchmark. mimalloc reads it from the environment before `main` runs.
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Restarts `cairn server` in place (same process id, same arguments) with the allocator's
/// purge delay set, unless the caller set it. Setting it in-process would need `unsafe`, which
/// the workspace forbids; `exec` is the safe equivalent.
#[cfg(unix)]
fn exec_with_purge_delay() {
    use std::os::unix::process::CommandExt;

    let mut args = std::env::args_os();
    let is_server = args.nth(1).is_some_and(|a| a == "server");
    if !is_server || std::env::var_os(PURGE_DELAY_VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let error = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env(PURGE_DELAY_VAR, "0").exec();
    // Only reached when exec failed; the server then runs with the allocator's default.
    eprintln!("warning: could not restart with {PURGE_DELAY_VAR}=0: {error}");
}

fn main() -> ExitCode {
    #[cfg(unix)]
    exec_with_purge_delay();
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
