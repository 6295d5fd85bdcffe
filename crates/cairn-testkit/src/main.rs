//! `cairn-testkit`: starts and stops throw-away PostgreSQL clusters for end-to-end tests
//! written in shell or Python, the same way the Rust tests do.
//!
//! ```text
//! cairn-testkit pg-start <dir>   # make (if needed) and start a cluster in <dir>; print its URL
//! cairn-testkit pg-stop <dir>    # stop it (the directory is left for the caller to delete)
//! ```

use std::path::Path;
use std::process::ExitCode;

use cairn_testkit::LocalCluster;

const USAGE: &str = "usage: cairn-testkit pg-start <dir> | pg-stop <dir>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["pg-start", dir] => LocalCluster::start(Path::new(dir)).map(|c| println!("{}", c.url("postgres"))),
        ["pg-stop", dir] => LocalCluster::stop_dir(Path::new(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn-testkit: {e}");
            ExitCode::FAILURE
        }
    }
}
