//! `cairn-bench`: parse the command line, run one scenario, print its JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cairn_bench::history::{CLIENT_PAGE_SIZE, HistoryConfig};
use cairn_bench::ingest::IngestConfig;
use cairn_bench::large::{FillConfig, QueriesConfig};
use cairn_bench::lineage::LineageConfig;
use cairn_bench::raw_postgres::RawPostgresConfig;
use cairn_bench::raw_sqlite::RawSqliteConfig;
use cairn_bench::search::{DEFAULT_FILTER, DEFAULT_ORDER_BY, SearchConfig};
use cairn_bench::{history, ingest, large, lineage, raw_postgres, raw_sqlite, report, search};

/// Load generator for any server that speaks MLflow's REST API. Each subcommand prints one JSON
/// object on stdout.
#[derive(Debug, Parser)]
#[command(name = "cairn-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N concurrent writers, each its own run, logging `log-batch` calls; reports points/s,
    /// latency percentiles and errors ("database is locked" counted separately).
    Ingest {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 8)]
        writers: u32,
        #[arg(long, default_value_t = 1_000_000)]
        points: u64,
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
        #[arg(long, default_value_t = 10)]
        keys: u32,
        /// Read every run's history back afterwards and check nothing was lost.
        #[arg(long)]
        verify: bool,
    },
    /// Times `runs/search` with a filter and ORDER BY over all pages, after creating runs if asked.
    Search {
        #[arg(long)]
        url: String,
        /// Search this existing experiment (otherwise runs are created in a new one).
        #[arg(long)]
        experiment_id: Option<String>,
        #[arg(long, default_value_t = 5000)]
        create_runs: u64,
        #[arg(long, default_value_t = 4)]
        concurrency: u32,
        #[arg(long, default_value = DEFAULT_FILTER)]
        filter: String,
        #[arg(long, default_value = DEFAULT_ORDER_BY)]
        order_by: Vec<String>,
        #[arg(long, default_value_t = 1000)]
        max_results: u32,
        #[arg(long, default_value_t = 3)]
        repeat: u32,
    },
    /// Logs K steps of one metric (unless given a run), then times reading the whole history.
    History {
        #[arg(long)]
        url: String,
        /// Read this existing run instead of logging a new one.
        #[arg(long)]
        run_id: Option<String>,
        #[arg(long, default_value = "loss")]
        key: String,
        #[arg(long, default_value_t = 100_000)]
        steps: u64,
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
        #[arg(long, default_value_t = CLIENT_PAGE_SIZE)]
        page_size: u32,
        #[arg(long, default_value_t = 3)]
        repeat: u32,
    },
    /// Fills a store for the large-store measurements: E experiments, R runs spread over them
    /// (each with P params, M metrics of one point and T tags in one log-batch), and a `loss`
    /// series of S steps on the first few runs. Shows progress on a terminal.
    Fill {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 100)]
        experiments: u32,
        #[arg(long, default_value_t = 100_000)]
        runs: u64,
        #[arg(long, default_value_t = 20)]
        params: u32,
        #[arg(long, default_value_t = 10)]
        metrics: u32,
        #[arg(long, default_value_t = 10)]
        tags: u32,
        /// Runs that also get the long series.
        #[arg(long, default_value_t = 2)]
        series: u32,
        #[arg(long, default_value_t = 1_000_000)]
        series_steps: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: u32,
        #[arg(long, default_value = "large")]
        prefix: String,
    },
    /// Times the large-store queries (searches with each kind of filter ordered by a metric,
    /// first page and all pages; a search across experiments; experiment listing; a long
    /// history read whole and downsampled) on a store `fill` made.
    Queries {
        #[arg(long)]
        url: String,
        /// The experiments of the fill (repeat the flag, or comma-separated); the
        /// per-experiment searches use the first.
        #[arg(long, value_delimiter = ',', required = true)]
        experiment_id: Vec<String>,
        #[arg(long)]
        series_run_id: Option<String>,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[arg(long, default_value_t = 5)]
        repeat: u32,
    },
    /// Cairn only: bulk prediction ingest through the native API (predictions/s), then the
    /// provenance trace of one prediction over a dataset chain `depth` long (ms).
    Lineage {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 100_000)]
        predictions: u64,
        #[arg(long, default_value_t = 5000)]
        batch_size: u32,
        #[arg(long, default_value_t = 2)]
        writers: u32,
        #[arg(long, default_value_t = 50)]
        depth: u32,
        #[arg(long, default_value_t = 20)]
        repeat: u32,
    },
    /// Writes metric rows with binary COPY into a copy of Cairn's `metrics` table in a Cairn
    /// PostgreSQL database: the physical limit there.
    RawPostgres {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 100_000)]
        batch_size: u32,
        #[arg(long, default_value_t = 8)]
        runs: u32,
        #[arg(long, default_value_t = 10)]
        keys: u32,
    },
    /// Inserts metric rows straight into SQLite with Cairn's `metrics` schema: the physical limit.
    RawSqlite {
        /// Cairn's SQLite migration holding `CREATE TABLE metrics`.
        #[arg(long, default_value = "crates/cairn-store/migrations/sqlite/0001_init.sql")]
        migration: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 8)]
        runs: u32,
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
        #[arg(long, default_value_t = 10)]
        keys: u32,
        /// Folder for the scratch database (default: the system temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(result) => {
            report::emit(&result);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cairn-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<serde_json::Value> {
    match command {
        Command::Ingest { url, writers, points, batch_size, keys, verify } => {
            ingest::run(&IngestConfig { url, writers, points, batch_size, keys, verify }).await
        }
        Command::Search { url, experiment_id, create_runs, concurrency, filter, order_by, max_results, repeat } => {
            search::run(&SearchConfig {
                url,
                experiment_id,
                create_runs,
                concurrency,
                filter,
                order_by,
                max_results,
                repeat,
            })
            .await
        }
        Command::History { url, run_id, key, steps, batch_size, page_size, repeat } => {
            history::run(&HistoryConfig { url, run_id, key, steps, batch_size, page_size, repeat }).await
        }
        Command::Fill { url, experiments, runs, params, metrics, tags, series, series_steps, concurrency, prefix } => {
            let config =
                FillConfig { url, experiments, runs, params, metrics, tags, series, series_steps, concurrency, prefix };
            large::fill(&config).await
        }
        Command::Queries { url, experiment_id, series_run_id, page_size, repeat } => {
            large::queries(&QueriesConfig { url, experiment_ids: experiment_id, series_run_id, page_size, repeat })
                .await
        }
        Command::Lineage { url, predictions, batch_size, writers, depth, repeat } => {
            lineage::run(&LineageConfig { url, predictions, batch_size, writers, depth, repeat }).await
        }
        Command::RawPostgres { url, rows, batch_size, runs, keys } => {
            let config = RawPostgresConfig { url, rows, batch_size, runs, keys };
            // The postgres client blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || raw_postgres::run(&config)).await?
        }
        Command::RawSqlite { migration, rows, runs, batch_size, keys, dir } => {
            // SQLite blocks; keep it off the async workers.
            let config = RawSqliteConfig { migration, rows, runs, batch_size, keys, dir };
            tokio::task::spawn_blocking(move || raw_sqlite::run(&config)).await?
        }
    }
}
