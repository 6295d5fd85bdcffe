//! Large stores: `fill` loads a store through the public API with many experiments and runs
//! (each with params, metrics and tags) plus a few very long metric series, and `queries` times
//! the searches and reads a user makes on such a store, first pages and all pages.
//!
//! Everything goes through MLflow's REST API, so the same commands fill and measure any server
//! that speaks it; the data is derived from the run's number, so two servers filled with the
//! same arguments hold the same runs and must give the same answers.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{Metric, MlflowClient, Param, SearchRequest, now_ms};
use crate::data::{mix, unit};
use crate::report::{median, round3};

/// Tag values a run's `team` tag takes; a tags filter selects one of them.
const TEAMS: [&str; 5] = ["vision", "speech", "ranking", "forecast", "nlp"];
/// The key of the long series; also a key every run has one point of.
pub const SERIES_KEY: &str = "loss";
/// Points per `log-batch` call for the long series (MLflow's limit per request).
const SERIES_BATCH: u64 = 1000;

/// What `fill` creates.
#[derive(Debug, Clone)]
pub struct FillConfig {
    pub url: String,
    /// Experiments, named `<prefix>-<k>`; runs are spread evenly over them.
    pub experiments: u32,
    pub runs: u64,
    pub params: u32,
    pub metrics: u32,
    pub tags: u32,
    /// Runs (the first ones) that also get a long `loss` series.
    pub series: u32,
    pub series_steps: u64,
    pub concurrency: u32,
    /// Experiment name prefix, so several fills can share a server.
    pub prefix: String,
}

/// The params, metrics and tags of run `i`. Param `p00` is the optimizer (two values), the
/// rest take a handful of values each; metric `acc` is uniform in [0, 1); tag `team` is one of
/// [`TEAMS`].
pub fn large_run(i: u64, config: &FillConfig) -> (Vec<Param>, Vec<Metric>, Vec<(String, String)>) {
    let params = (0..config.params)
        .map(|k| {
            let value = match k {
                0 => ["adam", "sgd"][(mix(i ^ 0xA0) % 2) as usize].to_owned(),
                1 => i.to_string(),
                _ => format!("v{}", mix(i ^ (u64::from(k) << 40)) % 8),
            };
            Param { key: format!("p{k:02}"), value }
        })
        .collect();
    let ts = now_ms();
    let metrics = (0..config.metrics)
        .map(|k| {
            let key = match k {
                0 => "acc".to_owned(),
                1 => SERIES_KEY.to_owned(),
                _ => format!("m{k:02}"),
            };
            Metric { key, value: unit(&[i, u64::from(k)]), timestamp: ts, step: 0 }
        })
        .collect();
    let tags = (0..config.tags)
        .map(|k| match k {
            0 => ("team".to_owned(), TEAMS[(mix(i ^ 0x7E) % TEAMS.len() as u64) as usize].to_owned()),
            _ => (format!("t{k:02}"), format!("tag-{}", mix(i ^ (u64::from(k) << 48)) % 16)),
        })
        .collect();
    (params, metrics, tags)
}

/// A progress bar on stderr when it is a terminal, nothing otherwise (a pipe, CI).
fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} {{per_sec}}, {{eta}} left");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Fills the server and reports how long each part took.
pub async fn fill(config: &FillConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(config.experiments > 0 && config.concurrency > 0, "experiments and concurrency must be positive");
    anyhow::ensure!(
        config.params >= 2 && config.metrics >= 2 && config.tags >= 1,
        "need 2+ params, 2+ metrics, 1+ tag"
    );
    let client = MlflowClient::new(&config.url)?;
    let mut experiment_ids = Vec::with_capacity(config.experiments as usize);
    for k in 0..config.experiments {
        experiment_ids.push(client.create_experiment(&format!("{}-{k}", config.prefix)).await?);
    }

    let bar = progress_bar(config.runs, "runs");
    let started = Instant::now();
    let mut lanes = Vec::new();
    for lane in 0..u64::from(config.concurrency) {
        let (client, ids, config, bar) = (client.clone(), experiment_ids.clone(), config.clone(), bar.clone());
        lanes.push(tokio::spawn(async move {
            let mut series_runs = Vec::new();
            for i in (lane..config.runs).step_by(config.concurrency as usize) {
                let experiment = &ids[(i % ids.len() as u64) as usize];
                let run_id = client.create_run(experiment, &format!("run-{i}")).await?;
                let (params, metrics, tags) = large_run(i, &config);
                client.log_batch_with_tags(&run_id, &metrics, &params, &tags).await?;
                client.finish_run(&run_id).await?;
                if i < u64::from(config.series) {
                    series_runs.push(run_id);
                }
                bar.inc(1);
            }
            anyhow::Ok(series_runs)
        }));
    }
    let mut series_runs = Vec::new();
    for lane in lanes {
        series_runs.extend(lane.await??);
    }
    let runs_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let points = series_runs.len() as u64 * config.series_steps;
    let bar = progress_bar(points, "series points");
    let started = Instant::now();
    for run_id in &series_runs {
        log_series(&client, run_id, config.series_steps, config.concurrency, &bar).await?;
    }
    let series_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    Ok(json!({
        "scenario": "fill",
        "experiments": config.experiments,
        "experiment_ids": experiment_ids,
        "runs": config.runs,
        "params_per_run": config.params,
        "metrics_per_run": config.metrics,
        "tags_per_run": config.tags,
        "runs_s": round3(runs_s),
        "runs_per_s": round3(config.runs as f64 / runs_s.max(1e-9)),
        "series_run_ids": series_runs,
        "series_steps": config.series_steps,
        "series_s": round3(series_s),
        "series_points_per_s": round3(points as f64 / series_s.max(1e-9)),
    }))
}

/// Logs steps `1..=steps` of [`SERIES_KEY`] to `run_id` (step 0 is the run's own point), with
/// `concurrency` batches in flight.
async fn log_series(
    client: &MlflowClient,
    run_id: &str,
    steps: u64,
    concurrency: u32,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let batches = steps.div_ceil(SERIES_BATCH);
    let mut lanes = Vec::new();
    for lane in 0..u64::from(concurrency) {
        let (client, run_id, bar) = (client.clone(), run_id.to_owned(), bar.clone());
        lanes.push(tokio::spawn(async move {
            for b in (lane..batches).step_by(concurrency as usize) {
                let first = b * SERIES_BATCH + 1;
                let last = (first + SERIES_BATCH - 1).min(steps);
                let points: Vec<Metric> = (first..=last)
                    .map(|s| Metric {
                        key: SERIES_KEY.to_owned(),
                        // A slow decay with noise and a spike every 100,000 steps, which a
                        // downsampled chart must keep.
                        value: if s % 100_000 == 0 { 50.0 } else { 1.0 / (1.0 + s as f64 / 1e4) + unit(&[s]) * 0.01 },
                        timestamp: 1_700_000_000_000 + s as i64,
                        step: s as i64,
                    })
                    .collect();
                client.log_batch(&run_id, &points, &[]).await?;
                bar.inc(points.len() as u64);
            }
            anyhow::Ok(())
        }));
    }
    for lane in lanes {
        lane.await??;
    }
    Ok(())
}

/// What `queries` measures.
#[derive(Debug, Clone)]
pub struct QueriesConfig {
    pub url: String,
    /// All experiments of the fill; the per-experiment queries use the first.
    pub experiment_ids: Vec<String>,
    /// A run with a long series, for the history reads.
    pub series_run_id: Option<String>,
    pub page_size: u32,
    pub repeat: u32,
}

/// Times each query `repeat` times and reports the median and fastest, in milliseconds.
pub async fn queries(config: &QueriesConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(!config.experiment_ids.is_empty() && config.repeat > 0, "need experiments and repeat > 0");
    let client = MlflowClient::new(&config.url)?;
    let one = vec![config.experiment_ids[0].clone()];
    let order = vec!["metrics.acc DESC".to_owned()];
    let searches: [(&str, Vec<String>, &str); 5] = [
        ("params filter", one.clone(), "params.p00 = 'adam'"),
        ("metrics filter", one.clone(), "metrics.acc > 0.5"),
        ("tags filter", one.clone(), "tags.team = 'vision'"),
        ("attribute filter", one.clone(), "attributes.status = 'FINISHED' AND attributes.run_name LIKE 'run-1%'"),
        (
            "all experiments, params and metrics filter",
            config.experiment_ids.clone(),
            "params.p00 = 'adam' AND metrics.acc > 0.9",
        ),
    ];
    let mut results = Vec::new();
    for (name, experiment_ids, filter) in searches {
        let request = SearchRequest {
            experiment_ids,
            filter: filter.to_owned(),
            order_by: order.clone(),
            max_results: config.page_size,
            page_token: None,
        };
        let mut first = Vec::new();
        let mut all = Vec::new();
        let mut hits = 0;
        let mut pages = 0;
        for _ in 0..config.repeat {
            let started = Instant::now();
            let page = client.search_page(&request).await?;
            first.push(started.elapsed());
            let (h, p) = rest_of_pages(&client, &request, page).await?;
            all.push(started.elapsed());
            (hits, pages) = (h, p);
        }
        results.push(json!({
            "query": name, "filter": filter, "order_by": order, "hits": hits, "pages": pages,
            "first_page_ms": timing(&first), "all_pages_ms": timing(&all),
        }));
    }

    let mut listing = Vec::new();
    for _ in 0..config.repeat {
        let started = Instant::now();
        let _: Value = client
            .call(reqwest::Method::POST, "/api/2.0/mlflow/experiments/search", Some(&json!({"max_results": 1000})))
            .await?;
        listing.push(started.elapsed());
    }
    results.push(json!({ "query": "experiment listing (max_results 1000)", "ms": timing(&listing) }));

    if let Some(run_id) = &config.series_run_id {
        let mut history = Vec::new();
        let mut points = 0;
        for _ in 0..config.repeat {
            let started = Instant::now();
            points = full_history(&client, run_id).await?;
            history.push(started.elapsed());
        }
        results.push(
            json!({ "query": "metric history (get-history, all pages)", "points": points, "ms": timing(&history) }),
        );
        let mut sampled = Vec::new();
        for _ in 0..config.repeat {
            let started = Instant::now();
            let path = format!("/api/cairn/v1/metrics/sampled?run_id={run_id}&key={SERIES_KEY}&points=1000");
            // Not every server has the UI's endpoint; MLflow's UI reads get-history-bulk-interval.
            match client.call(reqwest::Method::GET, &path, None).await {
                Ok(_) => sampled.push(started.elapsed()),
                Err(e) => {
                    results.push(json!({ "query": "downsampled history", "error": e.to_string() }));
                    break;
                }
            }
        }
        if !sampled.is_empty() {
            results.push(json!({ "query": "downsampled history (1,000 buckets)", "ms": timing(&sampled) }));
        }
    }
    Ok(json!({ "scenario": "queries", "page_size": config.page_size, "repeat": config.repeat, "results": results }))
}

/// Median and fastest of `times`, in milliseconds.
fn timing(times: &[Duration]) -> Value {
    let ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let fastest = ms.iter().copied().fold(f64::INFINITY, f64::min);
    json!({ "median": median(&ms).map(round3), "fastest": round3(fastest) })
}

/// Follows page tokens from `first` to the end; returns hits and pages, `first` included.
async fn rest_of_pages(
    client: &MlflowClient,
    request: &SearchRequest,
    first: crate::client::SearchPage,
) -> anyhow::Result<(u64, u64)> {
    let mut request = request.clone();
    let (mut hits, mut pages) = (0, 0);
    let mut page = first;
    loop {
        hits += page.runs.len() as u64;
        pages += 1;
        request.page_token = page.next_page_token.filter(|t| !t.is_empty());
        if request.page_token.is_none() {
            return Ok((hits, pages));
        }
        anyhow::ensure!(pages < 1_000_000, "search paging did not terminate");
        page = client.search_page(&request).await?;
    }
}

/// Reads the whole history of the series in the mlflow client's page size; returns its points.
async fn full_history(client: &MlflowClient, run_id: &str) -> anyhow::Result<u64> {
    let mut token: Option<String> = None;
    let mut points = 0;
    loop {
        let page = client.history_page(run_id, SERIES_KEY, crate::history::CLIENT_PAGE_SIZE, token.as_deref()).await?;
        points += page.metrics.len() as u64;
        token = page.next_page_token.filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(points);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FillConfig {
        FillConfig {
            url: String::new(),
            experiments: 2,
            runs: 10,
            params: 20,
            metrics: 10,
            tags: 10,
            series: 1,
            series_steps: 10,
            concurrency: 2,
            prefix: "t".into(),
        }
    }

    #[test]
    fn runs_have_the_asked_shape_and_are_deterministic() {
        let (params, metrics, tags) = large_run(7, &config());
        assert_eq!((params.len(), metrics.len(), tags.len()), (20, 10, 10));
        assert!(["adam", "sgd"].contains(&params[0].value.as_str()));
        assert_eq!(params[1].value, "7");
        assert_eq!(metrics[0].key, "acc");
        assert_eq!(tags[0].0, "team");
        let again = large_run(7, &config());
        assert_eq!(params, again.0);
        assert_eq!(tags, again.2);
        assert_ne!(large_run(8, &config()).0[1], params[1]);
    }
}
