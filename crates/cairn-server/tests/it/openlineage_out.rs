//! OpenLineage out: a run's start and end reach a configured endpoint as run events that
//! OpenLineage consumers (and Cairn's own parser) accept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use cairn_core::lineage::{OpenLineageEventType, parse_openlineage_event};
use cairn_core::model::{Actor, NewExperiment, NewRun, RunStatus, RunUpdate};
use cairn_server::openlineage_out::{EmitterConfig, run_uuid, spawn};

use crate::common::TestApp;

type Received = Arc<Mutex<Vec<Value>>>;

async fn capture(State(received): State<Received>, Json(event): Json<Value>) -> &'static str {
    received.lock().unwrap().push(event);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_reported_when_they_start_and_end() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let collector = Router::new().route("/api/v1/lineage", post(capture)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let app = TestApp::new().await;
    let actor = Actor("ol".into());
    // History before the emitter starts is not replayed.
    let exp = app
        .store
        .create_experiment(&actor, NewExperiment { name: "nightly".into(), ..Default::default() })
        .await
        .unwrap();
    app.store.create_run(&actor, NewRun { experiment_id: exp.clone(), ..Default::default() }).await.unwrap();

    let config =
        EmitterConfig { url: format!("http://{address}"), namespace: "team-a".into(), poll: Duration::from_millis(20) };
    let emitter = spawn(app.store.clone(), config);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let run = app.store.create_run(&actor, NewRun { experiment_id: exp, ..Default::default() }).await.unwrap();
    let update = RunUpdate {
        run_id: run.info.run_id.clone(),
        status: Some(RunStatus::Finished),
        end_time: Some(5),
        run_name: None,
    };
    app.store.update_run(&actor, update).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emitter.abort();
    let events = received.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:#?}");
    let parsed: Vec<_> = events.iter().map(|e| parse_openlineage_event(e).expect("a valid run event")).collect();
    assert_eq!(parsed[0].event_type, OpenLineageEventType::Start);
    assert_eq!(parsed[1].event_type, OpenLineageEventType::Complete);
    for event in &parsed {
        assert_eq!(event.run_id, run_uuid(&run.info.run_id));
        assert_eq!((event.job_namespace.as_str(), event.job_name.as_str()), ("team-a", "nightly"));
    }
}
