//! `raw-postgres`: the physical limit on PostgreSQL. The same metric rows Cairn stores, written
//! with binary `COPY` into a scratch copy of Cairn's own `metrics` table (same columns and primary
//! key) in the database a Cairn server just used, with no server, no audit and no JSON.

use std::time::Instant;

use anyhow::Context;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use serde_json::{Value, json};

use crate::report::round3;

/// What the raw copy does.
#[derive(Debug, Clone)]
pub struct RawPostgresConfig {
    /// A database that holds Cairn's schema (`postgresql://…`).
    pub url: String,
    /// Rows to write.
    pub rows: u64,
    /// Rows per `COPY` transaction.
    pub batch_size: u32,
    /// Distinct runs and metric keys the rows are spread over.
    pub runs: u32,
    pub keys: u32,
}

/// Runs the copy and returns its JSON result. The scratch table is dropped afterwards.
pub fn run(config: &RawPostgresConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(config.runs > 0 && config.keys > 0 && config.batch_size > 0, "sizes must be positive");
    let mut client = postgres::Client::connect(&config.url, postgres::NoTls).context("cannot connect")?;
    let table = format!("raw_metrics_{}", std::process::id());
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE metrics INCLUDING ALL)"))
        .context("cannot copy the metrics table's definition (is this a Cairn database?)")?;
    let types = [Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::FLOAT8, Type::INT2, Type::INT8];
    let batch = u64::from(config.batch_size);
    let started = Instant::now();
    let mut written = 0u64;
    let mut seq = 0i64;
    while written < config.rows {
        let n = batch.min(config.rows - written);
        let mut tx = client.transaction()?;
        let sink = tx.copy_in(&format!(
            "COPY {table} (run_pk, key_id, step, timestamp, value, is_nan, seq) FROM STDIN BINARY"
        ))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for i in written..written + n {
            // Keys vary fastest, then steps, so rows land in the table's key order per run.
            let run = (i % u64::from(config.runs)) as i64;
            let key = ((i / u64::from(config.runs)) % u64::from(config.keys)) as i64;
            let step = (i / (u64::from(config.runs) * u64::from(config.keys))) as i64;
            seq += 1;
            writer.write(&[&run, &key, &step, &(1_700_000_000_000 + step), &(step as f64 * 0.5), &0_i16, &seq])?;
        }
        writer.finish()?;
        tx.commit()?;
        written += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored: i64 = client.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?.get(0);
    let bytes: i64 = client.query_one(&format!("SELECT pg_total_relation_size('{table}')"), &[])?.get(0);
    client.batch_execute(&format!("DROP TABLE {table}"))?;
    Ok(json!({
        "bench": "raw-postgres",
        "rows": written,
        "rows_per_s": round3(written as f64 / seconds.max(1e-9)),
        "seconds": round3(seconds),
        "bytes_per_row": round3(bytes as f64 / written.max(1) as f64),
        "verified": u64::try_from(stored).ok() == Some(written),
    }))
}
