//! Drives the load generator against an in-process fake MLflow server, so that its counting,
//! paging and verification are checked without a real server.

mod fake;

use cairn_bench::history::{self, HistoryConfig};
use cairn_bench::ingest::{self, IngestConfig};
use cairn_bench::search::{self, DEFAULT_FILTER, DEFAULT_ORDER_BY, SearchConfig};

fn ingest_config(url: &str, points: u64) -> IngestConfig {
    IngestConfig { url: url.to_owned(), writers: 3, points, batch_size: 100, keys: 10, verify: true }
}

#[tokio::test]
async fn ingest_counts_points_and_verifies_history() {
    let server = fake::start(fake::Behaviour::default()).await;
    let result = ingest::run(&ingest_config(&server.url, 1_000)).await.unwrap();
    assert_eq!(result["points_ok"], 1_000);
    assert_eq!(result["errors"], 0);
    assert_eq!(result["verified"], true);
    assert!(result["p99_ms"].as_f64().unwrap() >= result["p50_ms"].as_f64().unwrap());
}

#[tokio::test]
async fn ingest_counts_database_locked_separately_and_fails_verification() {
    let server = fake::start(fake::Behaviour { lock_every: Some(4), ..Default::default() }).await;
    let result = ingest::run(&ingest_config(&server.url, 2_000)).await.unwrap();
    // 20 batches; every fourth log-batch call the fake receives is refused.
    assert_eq!(result["errors"], 5);
    assert_eq!(result["db_locked"], 5);
    assert_eq!(result["points_ok"], 1_500);
    assert_eq!(result["verified"], false);
    assert!(result["first_error"].as_str().unwrap().contains("database is locked"));
}

#[tokio::test]
async fn history_reads_every_page() {
    let server = fake::start(fake::Behaviour::default()).await;
    let config = HistoryConfig {
        url: server.url.clone(),
        run_id: None,
        key: "loss".into(),
        steps: 2_345,
        batch_size: 1000,
        page_size: 1000,
        repeat: 2,
    };
    let result = history::run(&config).await.unwrap();
    assert_eq!(result["points"], 2_345);
    assert_eq!(result["pages"], 3);
    assert_eq!(result["verified"], true);
}

fn search_config(url: &str) -> SearchConfig {
    SearchConfig {
        url: url.to_owned(),
        experiment_id: None,
        create_runs: 120,
        concurrency: 3,
        filter: DEFAULT_FILTER.into(),
        order_by: vec![DEFAULT_ORDER_BY.into()],
        max_results: 10,
        repeat: 1,
    }
}

#[tokio::test]
async fn search_pages_through_hits_and_checks_count_and_order() {
    let server = fake::start(fake::Behaviour::default()).await;
    let result = search::run(&search_config(&server.url)).await.unwrap();
    let expected = search::expected_default_hits(120);
    assert_eq!(result["hits"], expected);
    assert_eq!(result["pages"], expected.div_ceil(10));
    assert_eq!(result["ordered"], true);
    assert_eq!(result["verified"], true);
}

#[tokio::test]
async fn search_flags_a_server_that_orders_wrongly() {
    let server = fake::start(fake::Behaviour { ascending_search: true, ..Default::default() }).await;
    let result = search::run(&search_config(&server.url)).await.unwrap();
    assert_eq!(result["ordered"], false);
    assert_eq!(result["verified"], false);
}
