//! `history`: log K steps of one metric (or use an existing run), then time reading the whole
//! history back through `metrics/get-history`, page by page as the Python client does.

use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{Metric, MlflowClient, now_ms};
use crate::data::unit;
use crate::ingest::unique_name;
use crate::report::{median, round3};

/// The page size the `mlflow` client asks for (`GET_METRIC_HISTORY_MAX_RESULTS`).
pub const CLIENT_PAGE_SIZE: u32 = 25_000;

/// What the history scenario does.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// Server base URL.
    pub url: String,
    /// Read this existing run instead of logging a new one.
    pub run_id: Option<String>,
    /// The metric key to read.
    pub key: String,
    /// Steps to log when no run is given.
    pub steps: u64,
    /// Points per `log-batch` call while logging.
    pub batch_size: u32,
    /// `max_results` per history page.
    pub page_size: u32,
    /// Timed reads; the result reports the fastest and the median.
    pub repeat: u32,
}

/// Reads the whole history of `key` and returns (points, pages).
pub async fn count_history(
    client: &MlflowClient,
    run_id: &str,
    key: &str,
    page_size: u32,
) -> anyhow::Result<(u64, u32)> {
    let (mut points, mut pages) = (0u64, 0u32);
    let mut token: Option<String> = None;
    loop {
        let page = client.history_page(run_id, key, page_size, token.as_deref()).await?;
        points += page.metrics.len() as u64;
        pages += 1;
        token = page.next_page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok((points, pages));
        }
        // A server that keeps returning tokens would loop forever; no real history is this big.
        anyhow::ensure!(pages < 100_000, "history paging did not terminate after {pages} pages");
    }
}

/// Runs the scenario and returns its JSON result.
pub async fn run(config: &HistoryConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(
        config.repeat > 0 && config.page_size > 0 && config.batch_size > 0,
        "repeat, page size and batch size must be positive"
    );
    let client = MlflowClient::new(&config.url)?;
    let mut logged: Option<(u64, f64)> = None;
    let run_id = match &config.run_id {
        Some(id) => id.clone(),
        None => {
            let experiment = client.create_experiment(&unique_name("cairn-bench-history")).await?;
            let run_id = client.create_run(&experiment, "history").await?;
            let started = Instant::now();
            log_steps(&client, &run_id, &config.key, config.steps, config.batch_size).await?;
            logged = Some((config.steps, started.elapsed().as_secs_f64()));
            run_id
        }
    };
    let mut times = Vec::new();
    let mut counts = Vec::new();
    let mut pages = 0;
    for _ in 0..config.repeat {
        let started = Instant::now();
        let (n, p) = count_history(&client, &run_id, &config.key, config.page_size).await?;
        times.push(started.elapsed().as_secs_f64());
        counts.push(n);
        pages = p;
    }
    let points = counts[0];
    let consistent = counts.iter().all(|&c| c == points) && logged.is_none_or(|(steps, _)| steps == points);
    Ok(json!({
        "bench": "history",
        "url": config.url,
        "run_id": run_id,
        "points": points,
        "pages": pages,
        "page_size": config.page_size,
        "seconds_min": round3(times.iter().copied().fold(f64::INFINITY, f64::min)),
        "seconds_median": median(&times).map(round3),
        "repeat": config.repeat,
        "logged_points": logged.map(|(n, _)| n),
        "log_points_per_s": logged.map(|(n, s)| round3(n as f64 / s)),
        "verified": consistent,
    }))
}

async fn log_steps(client: &MlflowClient, run_id: &str, key: &str, steps: u64, batch_size: u32) -> anyhow::Result<()> {
    let base_ms = now_ms();
    let mut step = 0u64;
    while step < steps {
        let end = (step + u64::from(batch_size)).min(steps);
        let metrics: Vec<Metric> = (step..end)
            .map(|s| Metric { key: key.to_owned(), value: unit(&[s]), timestamp: base_ms + s as i64, step: s as i64 })
            .collect();
        client.log_batch(run_id, &metrics, &[]).await?;
        step = end;
    }
    Ok(())
}
