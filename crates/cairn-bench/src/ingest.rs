//! `ingest`: N concurrent writers, each logging to its own run in `log-batch` calls.

use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{CallError, MlflowClient, now_ms};
use crate::data::{BatchShape, batch_metrics, key_name};
use crate::report::{Latencies, round3};

/// What the ingest scenario does.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Server base URL.
    pub url: String,
    /// Concurrent writers, each with its own run.
    pub writers: u32,
    /// Total points across all writers.
    pub points: u64,
    /// Points per `log-batch` call.
    pub batch_size: u32,
    /// Distinct metric keys per batch.
    pub keys: u32,
    /// Read each run's history back afterwards and check every point arrived.
    pub verify: bool,
}

/// What one writer saw.
#[derive(Debug, Default)]
struct WriterOutcome {
    points_ok: u64,
    errors: u64,
    db_locked: u64,
    first_error: Option<String>,
    latencies: Latencies,
}

/// Runs the scenario and returns its JSON result.
pub async fn run(config: &IngestConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(config.writers > 0, "at least one writer is needed");
    let shape = BatchShape::new(config.batch_size, config.keys)?;
    let client = MlflowClient::new(&config.url)?;
    let experiment = client.create_experiment(&unique_name("cairn-bench-ingest")).await?;
    let batches_total = config.points.div_ceil(u64::from(shape.size()));

    // Runs are created before the clock starts, so the timing covers only metric ingest.
    let mut runs = Vec::new();
    for w in 0..config.writers {
        runs.push(client.create_run(&experiment, &format!("writer-{w}")).await?);
    }
    let base_ms = now_ms();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, run_id) in runs.iter().enumerate() {
        let w = w as u32;
        // Writer w takes batches w, w + writers, ...: every writer gets a nearly equal share.
        let batches: u64 = (w as u64..batches_total).step_by(config.writers as usize).count() as u64;
        let (client, run_id) = (client.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move { write(&client, &run_id, w, batches, shape, base_ms).await }));
    }
    let mut total = WriterOutcome::default();
    for task in tasks {
        let outcome = task.await?;
        total.points_ok += outcome.points_ok;
        total.errors += outcome.errors;
        total.db_locked += outcome.db_locked;
        total.first_error = total.first_error.or(outcome.first_error);
        total.latencies.merge(outcome.latencies);
    }
    let seconds = started.elapsed().as_secs_f64();

    let verified =
        if config.verify { Some(verify(&client, &runs, shape, batches_total, config.writers).await?) } else { None };
    Ok(json!({
        "bench": "ingest",
        "url": config.url,
        "writers": config.writers,
        "batch_size": shape.size(),
        "points_requested": batches_total * u64::from(shape.size()),
        "points_ok": total.points_ok,
        "seconds": round3(seconds),
        "points_per_s": round3(total.points_ok as f64 / seconds),
        "p50_ms": total.latencies.percentile_ms(50.0).map(round3),
        "p99_ms": total.latencies.percentile_ms(99.0).map(round3),
        "max_ms": total.latencies.percentile_ms(100.0).map(round3),
        "errors": total.errors,
        "db_locked": total.db_locked,
        "first_error": total.first_error,
        "verified": verified,
    }))
}

async fn write(
    client: &MlflowClient,
    run_id: &str,
    writer: u32,
    batches: u64,
    shape: BatchShape,
    base_ms: i64,
) -> WriterOutcome {
    let mut outcome = WriterOutcome::default();
    for b in 0..batches {
        let metrics = batch_metrics(writer, b, shape, base_ms);
        let sent = Instant::now();
        let result = client.log_batch(run_id, &metrics, &[]).await;
        outcome.latencies.record(sent.elapsed());
        match result {
            Ok(()) => outcome.points_ok += metrics.len() as u64,
            // A failed batch is counted, not retried: retries would hide the failure rate.
            Err(e) => record_error(&mut outcome, &e),
        }
    }
    outcome
}

fn record_error(outcome: &mut WriterOutcome, e: &CallError) {
    outcome.errors += 1;
    if e.is_database_locked() {
        outcome.db_locked += 1;
    }
    if outcome.first_error.is_none() {
        outcome.first_error = Some(e.to_string());
    }
}

/// Checks that every run holds the history it was sent, for key `m0`: batch count times steps.
async fn verify(
    client: &MlflowClient,
    runs: &[String],
    shape: BatchShape,
    batches_total: u64,
    writers: u32,
) -> anyhow::Result<bool> {
    for (w, run_id) in runs.iter().enumerate() {
        let batches = (w as u64..batches_total).step_by(writers as usize).count() as u64;
        let expected = batches * u64::from(shape.steps);
        let got = crate::history::count_history(client, run_id, &key_name(0), 25_000).await?.0;
        if got != expected {
            eprintln!("ingest verify: run {run_id} has {got} points of m0, expected {expected}");
            return Ok(false);
        }
    }
    Ok(true)
}

/// A name no earlier invocation used, so repeated runs against one server do not collide.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}
