//! Metric history routes.

use serde_json::json;

use crate::common::{API, TestApp};

async fn run_with_points(app: &TestApp, points: i64) -> String {
    let run_id = app.run("0").await;
    let metrics: Vec<_> =
        (0..points).map(|i| json!({ "key": "m", "value": i, "timestamp": 100 + i, "step": i })).collect();
    app.post(&format!("{API}/runs/log-batch"), json!({ "run_id": run_id, "metrics": metrics })).await.ok();
    run_id
}

#[tokio::test]
async fn history_is_complete_by_default_and_pages_on_request() {
    let app = TestApp::new().await;
    let run_id = run_with_points(&app, 5).await;
    let all = app.get(&format!("{API}/metrics/get-history?run_id={run_id}&metric_key=m")).await.ok();
    assert_eq!(all["metrics"].as_array().unwrap().len(), 5);
    assert_eq!(all["metrics"][0], json!({ "key": "m", "value": 0.0, "timestamp": 100, "step": 0 }));
    assert!(all.get("next_page_token").is_none());

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{API}/metrics/get-history?run_uuid={run_id}&metric_key=m&max_results=2");
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={t}"));
        }
        let page = app.get(&path).await.ok();
        seen.extend(page["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_i64().unwrap()));
        match page.get("next_page_token") {
            Some(t) => token = Some(t.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);

    let r = app.get(&format!("{API}/metrics/get-history?run_id={run_id}&metric_key=m&max_results=0")).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.get(&format!("{API}/metrics/get-history?run_id={run_id}")).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("'metric_key'"));
    let empty = app.get(&format!("{API}/metrics/get-history?run_id={run_id}&metric_key=other")).await.ok();
    assert_eq!(empty, json!({}));
}

#[tokio::test]
async fn bulk_interval_reads_repeated_run_ids() {
    let app = TestApp::new().await;
    let a = run_with_points(&app, 3).await;
    let b = run_with_points(&app, 2).await;
    let body = app
        .get(&format!("{API}/metrics/get-history-bulk-interval?run_ids={a}&run_ids={b}&metric_key=m&max_results=10"))
        .await
        .ok();
    let points = body["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    assert!(points.iter().all(|p| p["run_id"] == a.as_str() || p["run_id"] == b.as_str()));
    assert!(points.iter().all(|p| p["key"] == "m" && p["timestamp"].is_i64()));

    let bulk = |query: String| format!("{API}/metrics/get-history-bulk-interval?{query}");
    let r = app.get(&bulk("metric_key=m".into())).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("'run_ids'"));
    let many: Vec<String> = (0..101).map(|i| format!("run_ids=r{i}")).collect();
    let r = app.get(&bulk(format!("{}&metric_key=m", many.join("&")))).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("at most 100 run_ids. Received 101"));
    let r = app.get(&bulk(format!("run_ids={a}&metric_key=m&start_step=1"))).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.get(&bulk(format!("run_ids={a}&metric_key=m&start_step=3&end_step=1"))).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.get(&bulk(format!("run_ids={a}&metric_key=m&max_results=2501"))).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").starts_with("max_results must be between 1 and 2500."));
}
