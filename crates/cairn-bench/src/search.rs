//! `search`: optionally create R runs with ten params and three metrics each, then time
//! `runs/search` with a metric filter, a param filter and an ORDER BY, across all pages.

use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{MlflowClient, SearchRequest};
use crate::data::search_run;
use crate::ingest::unique_name;
use crate::report::{median, round3};

/// The filter the bench uses unless told otherwise (the Python workload uses the same).
pub const DEFAULT_FILTER: &str = "metrics.acc > 0.49 AND params.optimizer = 'adam'";
/// The ordering the bench uses unless told otherwise.
pub const DEFAULT_ORDER_BY: &str = "metrics.acc DESC";

/// What the search scenario does.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// Server base URL.
    pub url: String,
    /// Search this existing experiment instead of creating runs.
    pub experiment_id: Option<String>,
    /// Runs to create (in a new experiment) when no experiment is given.
    pub create_runs: u64,
    /// Concurrent requests while creating runs.
    pub concurrency: u32,
    /// The filter string.
    pub filter: String,
    /// ORDER BY clauses.
    pub order_by: Vec<String>,
    /// `max_results` per page.
    pub max_results: u32,
    /// Timed searches; the result reports the fastest and the median.
    pub repeat: u32,
}

/// Runs the scenario and returns its JSON result.
pub async fn run(config: &SearchConfig) -> anyhow::Result<Value> {
    anyhow::ensure!(config.repeat > 0 && config.max_results > 0, "repeat and max results must be positive");
    let client = MlflowClient::new(&config.url)?;
    let mut created: Option<f64> = None;
    let experiment_id = match &config.experiment_id {
        Some(id) => id.clone(),
        None => {
            let id = client.create_experiment(&unique_name("cairn-bench-search")).await?;
            let started = Instant::now();
            create_runs(&client, &id, config.create_runs, config.concurrency.max(1)).await?;
            created = Some(started.elapsed().as_secs_f64());
            id
        }
    };

    let request = SearchRequest {
        experiment_ids: vec![experiment_id.clone()],
        filter: config.filter.clone(),
        order_by: config.order_by.clone(),
        max_results: config.max_results,
        page_token: None,
    };
    let mut times = Vec::new();
    let mut outcome = Outcome::default();
    for _ in 0..config.repeat {
        let started = Instant::now();
        outcome = search_all(&client, &request).await?;
        times.push(started.elapsed().as_secs_f64());
    }
    let ordered = match single_metric_order(&config.order_by) {
        Some((_, descending)) => Some(is_sorted(&outcome.sort_values, descending)),
        None => None,
    };
    // The expected hit count is known only for runs this invocation made with the default filter.
    let expected_hits =
        (created.is_some() && config.filter == DEFAULT_FILTER).then(|| expected_default_hits(config.create_runs));
    let verified = ordered.unwrap_or(true) && expected_hits.is_none_or(|e| e == outcome.hits);
    Ok(json!({
        "bench": "search",
        "url": config.url,
        "experiment_id": experiment_id,
        "runs_created": created.map(|_| config.create_runs),
        "create_seconds": created.map(round3),
        "create_runs_per_s": created.map(|s| round3(config.create_runs as f64 / s)),
        "filter": config.filter,
        "order_by": config.order_by,
        "hits": outcome.hits,
        "expected_hits": expected_hits,
        "pages": outcome.pages,
        "seconds_min": round3(times.iter().copied().fold(f64::INFINITY, f64::min)),
        "seconds_median": median(&times).map(round3),
        // Milliseconds with two decimals: a search over a few thousand runs takes a few
        // milliseconds, too short for `seconds_median`'s three decimals to compare two set-ups.
        "ms_median": median(&times).map(|s| (s * 1e5).round() / 100.0),
        "repeat": config.repeat,
        "ordered": ordered,
        "verified": verified,
    }))
}

#[derive(Debug, Default)]
struct Outcome {
    hits: u64,
    pages: u32,
    sort_values: Vec<Option<f64>>,
}

async fn search_all(client: &MlflowClient, request: &SearchRequest) -> anyhow::Result<Outcome> {
    let sort_key = single_metric_order(&request.order_by).map(|(k, _)| k.to_owned());
    let mut request = request.clone();
    let mut outcome = Outcome::default();
    loop {
        let page = client.search_page(&request).await?;
        outcome.pages += 1;
        outcome.hits += page.runs.len() as u64;
        if let Some(key) = &sort_key {
            outcome.sort_values.extend(page.runs.iter().map(|r| r.metric(key)));
        }
        request.page_token = page.next_page_token.filter(|t| !t.is_empty());
        if request.page_token.is_none() {
            return Ok(outcome);
        }
        anyhow::ensure!(outcome.pages < 100_000, "search paging did not terminate");
    }
}

async fn create_runs(client: &MlflowClient, experiment_id: &str, runs: u64, concurrency: u32) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for lane in 0..u64::from(concurrency) {
        let (client, experiment_id) = (client.clone(), experiment_id.to_owned());
        tasks.push(tokio::spawn(async move {
            // Lane k creates runs k, k + concurrency, ...
            for i in (lane..runs).step_by(concurrency as usize) {
                let run_id = client.create_run(&experiment_id, &format!("run-{i}")).await?;
                let (params, metrics) = search_run(i);
                client.log_batch(&run_id, &metrics, &params).await?;
                client.finish_run(&run_id).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// How many of runs `0..runs` match [`DEFAULT_FILTER`].
pub fn expected_default_hits(runs: u64) -> u64 {
    (0..runs)
        .filter(|&i| {
            let (params, metrics) = search_run(i);
            params[0].value == "adam" && metrics[0].value > 0.49
        })
        .count() as u64
}

/// `Some((key, descending))` when the ordering is exactly one `metrics.<key> [ASC|DESC]` clause,
/// the one case whose order this tool can check from the returned runs.
fn single_metric_order(order_by: &[String]) -> Option<(&str, bool)> {
    let [clause] = order_by else { return None };
    let mut words = clause.split_whitespace();
    let key = words.next()?.strip_prefix("metrics.")?;
    let descending = match words.next().map(str::to_ascii_uppercase).as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(_) => return None,
    };
    words.next().is_none().then_some((key, descending))
}

/// Whether the values are in order, runs lacking the metric last (MLflow's null ordering).
fn is_sorted(values: &[Option<f64>], descending: bool) -> bool {
    values.windows(2).all(|w| match (w[0], w[1]) {
        (Some(a), Some(b)) => {
            if descending {
                a >= b
            } else {
                a <= b
            }
        }
        (Some(_), None) | (None, None) => true,
        (None, Some(_)) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_single_metric_orderings() {
        let o = |s: &str| vec![s.to_owned()];
        assert_eq!(single_metric_order(&o("metrics.acc DESC")), Some(("acc", true)));
        assert_eq!(single_metric_order(&o("metrics.acc")), Some(("acc", false)));
        assert_eq!(single_metric_order(&o("metrics.acc asc")), Some(("acc", false)));
        assert_eq!(single_metric_order(&o("params.lr DESC")), None);
        assert_eq!(single_metric_order(&o("metrics.acc DESC extra")), None);
        assert_eq!(single_metric_order(&[]), None);
    }

    #[test]
    fn sortedness_puts_missing_values_last() {
        assert!(is_sorted(&[Some(3.0), Some(2.0), None], true));
        assert!(!is_sorted(&[Some(2.0), Some(3.0)], true));
        assert!(!is_sorted(&[None, Some(1.0)], false));
        assert!(is_sorted(&[Some(1.0), Some(1.0), Some(2.0)], false));
    }

    #[test]
    fn default_filter_matches_about_a_quarter() {
        let hits = expected_default_hits(2000);
        assert!((400..600).contains(&hits), "{hits} of 2000");
    }
}
