//! `raw-sqlite`: the physical limit. The same metric rows Cairn stores, inserted straight into
//! SQLite with Cairn's own `metrics` schema, in one transaction through one prepared statement.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::data::{BatchShape, batch_points};
use crate::report::round3;

/// What the raw insert does.
#[derive(Debug, Clone)]
pub struct RawSqliteConfig {
    /// Cairn's SQLite migration holding `CREATE TABLE metrics`.
    pub migration: PathBuf,
    /// Rows to insert.
    pub rows: u64,
    /// Distinct runs the rows are spread over.
    pub runs: u32,
    /// Rows per batch (a batch is one audit `seq`, as one `log-batch` call is in Cairn).
    pub batch_size: u32,
    /// Distinct metric keys per batch.
    pub keys: u32,
    /// Folder for the scratch database: put it on the disk the servers use.
    pub dir: Option<PathBuf>,
}

/// Extracts the `CREATE TABLE metrics (...)` statement from a migration script. It is read at run
/// time so that the limit is always measured against the schema Cairn actually ships.
pub fn metrics_table_ddl(script: &str) -> anyhow::Result<String> {
    // Comments may contain anything, including semicolons, so drop them first.
    let sql: String =
        script.lines().map(|line| line.split_once("--").map_or(line, |(code, _)| code)).collect::<Vec<_>>().join("\n");
    let lower = sql.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("create table") {
        let start = from + found;
        let rest = lower[start + "create table".len()..].trim_start();
        let is_metrics = rest
            .strip_prefix("metrics")
            .is_some_and(|after| after.starts_with(|c: char| c == '(' || c.is_whitespace()));
        if is_metrics {
            let end = lower[start..].find(';').map_or(sql.len(), |e| start + e);
            return Ok(sql[start..end].trim().to_owned());
        }
        from = start + 1;
    }
    anyhow::bail!("no CREATE TABLE metrics statement in the migration")
}

/// Runs the insert and returns its JSON result.
pub fn run(config: &RawSqliteConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(config.runs > 0, "at least one run is needed");
    let shape = BatchShape::new(config.batch_size, config.keys)?;
    let script = std::fs::read_to_string(&config.migration)
        .with_context(|| format!("reading {}", config.migration.display()))?;
    let ddl = metrics_table_ddl(&script)?;
    let scratch = match &config.dir {
        Some(dir) => tempfile::Builder::new().prefix("raw-sqlite-").tempdir_in(dir)?,
        None => tempfile::Builder::new().prefix("raw-sqlite-").tempdir()?,
    };
    let path = scratch.path().join("raw.db");
    let mut conn = Connection::open(&path)?;
    // The pragmas Cairn's writer connection uses, so the comparison is like for like.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    conn.execute_batch(&ddl)?;

    let batches = config.rows.div_ceil(u64::from(shape.size()));
    let started = Instant::now();
    let tx = conn.transaction()?;
    let mut inserted = 0u64;
    {
        let mut insert = tx.prepare(
            "INSERT OR IGNORE INTO metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        )?;
        // Batches rotate over the runs the way concurrent writers interleave at the server.
        'outer: for g in 0..batches {
            let writer = (g % u64::from(config.runs)) as u32;
            for p in batch_points(writer, g / u64::from(config.runs), shape, 1_700_000_000_000) {
                if inserted == config.rows {
                    break 'outer;
                }
                let run_pk = i64::from(p.writer) + 1;
                let key_id = i64::from(p.key) + 1;
                insert.execute(params![run_pk, key_id, p.step, p.timestamp, p.value, g as i64 + 1])?;
                inserted += 1;
            }
        }
    }
    tx.commit()?;
    let seconds = started.elapsed().as_secs_f64();

    // Fold the WAL into the main file so the size on disk is the table's, not the log's.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let stored: i64 = conn.query_row("SELECT count(*) FROM metrics", [], |r| r.get(0))?;
    drop(conn);
    let bytes = file_bytes(&path);
    Ok(json!({
        "bench": "raw-sqlite",
        "rows": inserted,
        "rows_stored": stored,
        "seconds": round3(seconds),
        "rows_per_s": round3(inserted as f64 / seconds),
        "bytes": bytes,
        "bytes_per_row": round3(bytes as f64 / inserted.max(1) as f64),
        "schema_from": config.migration.display().to_string(),
        "verified": stored as u64 == inserted,
    }))
}

/// The database file plus any WAL and shared-memory files next to it.
fn file_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
-- Comment with ; a semicolon and CREATE TABLE metrics (nope);
CREATE TABLE metric_keys (key_id INTEGER PRIMARY KEY, key TEXT);
CREATE TABLE latest_metrics (run_pk INTEGER);
CREATE TABLE metrics (
    run_pk INTEGER NOT NULL, -- the run; really
    key_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    value REAL NOT NULL,
    is_nan INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (run_pk, key_id, step, timestamp, value, is_nan)
) WITHOUT ROWID;
CREATE TABLE other (x INTEGER);
";

    #[test]
    fn extracts_only_the_metrics_table() {
        let ddl = metrics_table_ddl(SCRIPT).unwrap();
        assert!(ddl.starts_with("CREATE TABLE metrics ("), "{ddl}");
        assert!(ddl.ends_with("WITHOUT ROWID"), "{ddl}");
        assert!(!ddl.contains("really"));
        assert!(metrics_table_ddl("CREATE TABLE metric_keys (x);").is_err());
    }

    #[test]
    fn inserts_the_requested_rows_with_the_shipped_schema() {
        let dir = tempfile::tempdir().unwrap();
        let migration = dir.path().join("0001_init.sql");
        std::fs::write(&migration, SCRIPT).unwrap();
        let config = RawSqliteConfig {
            migration,
            rows: 2_500,
            runs: 3,
            batch_size: 1000,
            keys: 10,
            dir: Some(dir.path().to_owned()),
        };
        let result = run(&config).unwrap();
        assert_eq!(result["rows"], 2_500);
        assert_eq!(result["rows_stored"], 2_500);
        assert_eq!(result["verified"], true);
        assert!(result["bytes_per_row"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn the_real_migration_has_a_metrics_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cairn-store/migrations/sqlite/0001_init.sql");
        let ddl = metrics_table_ddl(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(ddl.contains("key_id"), "{ddl}");
    }
}
