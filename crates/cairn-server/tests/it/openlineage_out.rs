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

/// An OpenLineage endpoint on a free port that keeps every event it is sent.
async fn collector() -> (Received, std::net::SocketAddr) {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let collector = Router::new().route("/api/v1/lineage", post(capture)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, collector).await });
    (received, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_reported_when_they_start_and_end() {
    let (received, address) = collector().await;

    let app = TestApp::new().await;
    let actor = Actor("ol".into());
    // History before the emitter starts is not replayed.
    let exp = app
        .store
        .create_experiment(&actor, NewExperiment { name: "nightly".into(), ..Default::default() })
        .await
        .unwrap();
    app.store.create_run(&actor, NewRun { experiment_id: exp.clone(), ..Default::default() }).await.unwrap();

    let config = EmitterConfig {
        url: format!("http://{address}"),
        namespace: "team-a".into(),
        poll: Duration::from_millis(20),
        lease_ttl: Duration::from_secs(10),
    };
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

/// Two servers on one database each run an emitter: only the lease holder sends, so every event
/// arrives once; when the leader stops, the other takes over where it stopped, after the lease's
/// time to live, and still sends each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_servers_send_each_event_once_and_take_over_from_a_dead_leader() {
    let (received, address) = collector().await;

    let app = TestApp::new().await;
    let actor = Actor("ol".into());
    let exp = app
        .store
        .create_experiment(&actor, NewExperiment { name: "shared".into(), ..Default::default() })
        .await
        .unwrap();
    let config = EmitterConfig {
        url: format!("http://{address}"),
        namespace: "team-a".into(),
        poll: Duration::from_millis(20),
        // Long enough that a busy machine's slow send does not outlast it (a lapse lets the other
        // emitter send that event again), short enough to take over quickly.
        lease_ttl: Duration::from_secs(2),
    };
    let mut emitters = vec![spawn(app.store.clone(), config.clone()), spawn(app.store.clone(), config)];
    tokio::time::sleep(Duration::from_millis(200)).await;

    let run_and_finish = || async {
        let run =
            app.store.create_run(&actor, NewRun { experiment_id: exp.clone(), ..Default::default() }).await.unwrap();
        let run_id = run.info.run_id;
        let update =
            RunUpdate { run_id: run_id.clone(), status: Some(RunStatus::Finished), end_time: Some(5), run_name: None };
        app.store.update_run(&actor, update).await.unwrap();
        run_id
    };
    let wait_for = |count: usize| {
        let received = received.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while received.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Long enough for a second sender, were there one, to have sent its copies too.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(run_and_finish().await);
    }
    wait_for(6).await;

    // Both emitters stop in turn; whichever led, the other (or nobody, at the end) carries on.
    emitters.remove(0).abort();
    for _ in 0..2 {
        runs.push(run_and_finish().await);
    }
    wait_for(10).await;
    for emitter in emitters {
        emitter.abort();
    }

    let events = received.lock().unwrap().clone();
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| parse_openlineage_event(e).expect("a valid run event"))
        .map(|e| (e.run_id, format!("{:?}", e.event_type)))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = runs
        .iter()
        .flat_map(|id| {
            [OpenLineageEventType::Start, OpenLineageEventType::Complete].map(|t| (run_uuid(id), format!("{t:?}")))
        })
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "each run's start and end exactly once");
}
