//! Subcommands. `main` only parses, initialises logging and calls [`run`].

pub mod access;
pub mod artifacts;
pub mod attest;
pub mod audit;
pub mod gc;
pub mod lineage;
pub mod logging;
pub mod models;
pub mod predictions;
pub mod progress;
pub mod reproduce;
pub mod run;
pub mod tracking;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use cairn_server::{LogFormat, ServerConfig};
use cairn_store::StoreConfig;

/// Cairn: an experiment-tracking and model-lineage server that speaks MLflow's REST API.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tracking server.
    Server(Box<ServerConfig>),
    /// Inspect and verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// List run artifacts with their digests, and verify stored blobs.
    #[command(subcommand)]
    Artifacts(artifacts::ArtifactsCommand),
    /// Purge long-deleted runs and delete artifact blobs nothing references.
    Gc(Box<gc::GcArgs>),
    /// Registered models' history: alias moves and stage transitions, and "as of" lookups.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Ask the lineage graph: a node, its upstream or downstream, a comparison, an export, health.
    #[command(subcommand)]
    Lineage(lineage::LineageCommand),
    /// Trace a served prediction back to its data, code and environment.
    #[command(subcommand)]
    Predictions(predictions::PredictionsCommand),
    /// Write or verify a signed in-toto attestation of a model version's lineage.
    Attest(Box<attest::AttestArgs>),
    /// Users who sign in to a server run with `--auth basic`.
    #[command(subcommand)]
    Users(access::UsersCommand),
    /// API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Tokens(access::TokensCommand),
    /// Grants of users on experiments and registered models.
    #[command(subcommand)]
    Permissions(access::PermissionsCommand),
    /// Run a command as a tracked run: code, environment, inputs, output and exit status recorded.
    Run(Box<run::RunArgs>),
    /// Re-execute a recorded run from its record and say, metric by metric, whether it reproduced.
    Reproduce(Box<reproduce::ReproduceArgs>),
}

/// Which store a command-line tool opens: the same defaults and variables as `cairn server`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder holding the default SQLite database.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// Metadata store URI; defaults to `cairn.db` inside the data folder.
    #[arg(long, env = "CAIRN_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,
}

impl StoreArgs {
    /// How to open the store.
    pub fn store_config(&self) -> StoreConfig {
        let uri = self
            .backend_store_uri
            .clone()
            .unwrap_or_else(|| cairn_server::config::default_backend_store_uri(&self.data_dir));
        StoreConfig::new(uri)
    }
}

impl Cli {
    /// The log format the chosen command asks for.
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Server(config) => config.log_format,
            Command::Audit(_)
            | Command::Artifacts(_)
            | Command::Gc(_)
            | Command::Models(_)
            | Command::Lineage(_)
            | Command::Predictions(_)
            | Command::Attest(_)
            | Command::Users(_)
            | Command::Tokens(_)
            | Command::Permissions(_)
            | Command::Run(_)
            | Command::Reproduce(_) => LogFormat::Text,
        }
    }
}

/// Builds the runtime the command needs and runs it.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Server(config) => {
            let runtime = runtime(config.workers)?;
            runtime.block_on(cairn_server::serve(*config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(command) => runtime(Some(1))?.block_on(audit::run(command)),
        Command::Artifacts(command) => runtime(Some(1))?.block_on(artifacts::run(command)),
        Command::Gc(args) => runtime(Some(1))?.block_on(gc::run(*args)),
        Command::Models(command) => runtime(Some(1))?.block_on(models::run(command)),
        Command::Lineage(command) => runtime(Some(1))?.block_on(lineage::run(command)),
        Command::Predictions(command) => runtime(Some(1))?.block_on(predictions::run(command)),
        Command::Attest(args) => runtime(Some(1))?.block_on(attest::run(*args)),
        Command::Users(command) => runtime(Some(1))?.block_on(access::users(command)),
        Command::Tokens(command) => runtime(Some(1))?.block_on(access::tokens(command)),
        Command::Permissions(command) => runtime(Some(1))?.block_on(access::permissions(command)),
        Command::Run(args) => runtime(Some(2))?.block_on(run::run(*args)),
        Command::Reproduce(args) => runtime(Some(2))?.block_on(reproduce::run(*args)),
    }
}

fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n.max(1));
    }
    Ok(builder.enable_all().build()?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from(["cairn", "server", "--port", "0"]).unwrap();
        assert!(matches!(cli.command, Command::Server(c) if c.port == 0));
        let cli = Cli::try_parse_from(["cairn", "audit", "verify", "--json", "--backend-store-uri", "sqlite:///x.db"])
            .unwrap();
        assert!(matches!(cli.command, Command::Audit(audit::AuditCommand::Verify { json: true, .. })));
        let cli = Cli::try_parse_from(["cairn", "audit", "log", "--after", "5", "--limit", "2"]).unwrap();
        assert!(matches!(cli.command, Command::Audit(audit::AuditCommand::Log { after: 5, limit: 2, .. })));
        let cli = Cli::try_parse_from(["cairn", "models", "alias", "m", "champion", "--as-of", "2025-11-23T10:00:00Z"])
            .unwrap();
        assert!(matches!(cli.command, Command::Models(models::ModelsCommand::Alias { as_of: 1_763_892_000_000, .. })));
        assert!(Cli::try_parse_from(["cairn", "models", "history", "m", "--as-of", "yesterday"]).is_err());
        let cli = Cli::try_parse_from(["cairn", "lineage", "upstream", "model-version:m/1", "--depth", "3", "--json"])
            .unwrap();
        assert!(matches!(cli.command, Command::Lineage(lineage::LineageCommand::Upstream { .. })));
        assert!(Cli::try_parse_from(["cairn", "lineage", "upstream", "run:a", "--depth", "65"]).is_err());
        let cli =
            Cli::try_parse_from(["cairn", "predictions", "trace", "p1", "--as-of", "1763892000000", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Predictions(predictions::PredictionsCommand::Trace { .. })));
        let cli =
            Cli::try_parse_from(["cairn", "run", "--input", "d.csv", "--", "python", "t.py", "--lr", "1"]).unwrap();
        assert!(
            matches!(&cli.command, Command::Run(a) if a.command == ["python", "t.py", "--lr", "1"] && a.inputs == ["d.csv"])
        );
        // The command comes after `--`, so its own options never reach `cairn run`.
        assert!(Cli::try_parse_from(["cairn", "run", "python", "t.py"]).is_err());
        assert!(Cli::try_parse_from(["cairn", "run", "--"]).is_err());
        let cli = Cli::try_parse_from(["cairn", "reproduce", "abc", "--tolerance", "*=rel:1e-3", "--dry-run"]).unwrap();
        assert!(matches!(&cli.command, Command::Reproduce(a) if a.run_id == "abc" && a.dry_run));
    }

    #[test]
    fn store_args_default_to_the_server_database() {
        let args = StoreArgs { data_dir: "./cairn-data".into(), backend_store_uri: None };
        assert_eq!(args.store_config().uri, "sqlite:///./cairn-data/cairn.db");
    }
}
