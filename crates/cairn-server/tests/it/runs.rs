//! Run routes: lifecycle, logging, batches, search.

use serde_json::{Value, json};

use crate::common::{API, TestApp};

fn find<'a>(items: &'a Value, key: &str) -> &'a Value {
    items.as_array().unwrap().iter().find(|i| i["key"] == key).unwrap_or_else(|| panic!("no {key} in {items}"))
}

#[tokio::test]
async fn create_returns_info_and_data_like_mlflow() {
    let app = TestApp::new().await;
    let exp = app.experiment("e").await;
    let body = app
        .post(
            &format!("{API}/runs/create"),
            json!({
                "experiment_id": exp, "user_id": "ann", "run_name": "first",
                "start_time": "1700000000000", "tags": [{ "key": "t", "value": "v" }]
            }),
        )
        .await
        .ok();
    let run = &body["run"];
    let info = &run["info"];
    let run_id = info["run_id"].as_str().unwrap();
    assert_eq!(info["run_uuid"], run_id);
    assert_eq!(info["run_name"], "first");
    assert_eq!(info["experiment_id"], exp.as_str());
    assert_eq!(info["user_id"], "ann");
    assert_eq!(info["status"], "RUNNING");
    assert_eq!(info["start_time"], 1_700_000_000_000_i64, "an int64 string is accepted, a number returned");
    assert!(info.get("end_time").is_none(), "unset optional fields are omitted: {info}");
    assert_eq!(info["lifecycle_stage"], "active");
    assert!(info["artifact_uri"].as_str().unwrap().contains(run_id));
    assert_eq!(find(&run["data"]["tags"], "mlflow.runName")["value"], "first");
    assert_eq!(find(&run["data"]["tags"], "t")["value"], "v");
    assert!(run["data"].get("metrics").is_none());
    assert_eq!(run["inputs"], json!({}));

    let r = app
        .post(
            &format!("{API}/runs/create"),
            json!({ "experiment_id": exp, "run_name": "a", "tags": [{ "key": "mlflow.runName", "value": "b" }] }),
        )
        .await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("different values"));
    let r = app.post(&format!("{API}/runs/create"), json!({ "experiment_id": "999999" })).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn log_single_items_and_read_them_back() {
    let app = TestApp::new().await;
    let run_id = app.run("0").await;
    let metric = |value: Value, step: i64| json!({ "run_id": run_id, "key": "loss", "value": value, "timestamp": 5, "step": step });
    for (value, step) in [(json!(0.5), 0), (json!("NaN"), 1), (json!("Infinity"), 2), (json!("-Infinity"), 3)] {
        app.post(&format!("{API}/runs/log-metric"), metric(value, step)).await.ok();
    }
    app.post(
        &format!("{API}/runs/log-metric"),
        json!({ "run_uuid": run_id, "key": "acc", "value": 1, "timestamp": "7" }),
    )
    .await
    .ok();
    app.post(&format!("{API}/runs/log-parameter"), json!({ "run_id": run_id, "key": "lr", "value": "0.1" })).await.ok();
    app.post(&format!("{API}/runs/set-tag"), json!({ "run_id": run_id, "key": "note", "value": "hi" })).await.ok();

    let run = app.get_run(&run_id).await;
    let data = &run["data"];
    // The latest point of `loss` is the one at the highest step: -inf, sent back clamped.
    assert_eq!(find(&data["metrics"], "loss")["value"].to_string(), "-1.7976931348623157e+308");
    assert_eq!(find(&data["metrics"], "loss")["step"], 3);
    assert_eq!(find(&data["metrics"], "acc")["value"], 1.0);
    assert_eq!(find(&data["metrics"], "acc")["step"], 0);
    assert_eq!(data["params"], json!([{ "key": "lr", "value": "0.1" }]));
    assert_eq!(find(&data["tags"], "note")["value"], "hi");

    let history = app.get(&format!("{API}/metrics/get-history?run_id={run_id}&metric_key=loss")).await.ok();
    let values: Vec<String> = history["metrics"].as_array().unwrap().iter().map(|m| m["value"].to_string()).collect();
    assert_eq!(values, ["0.5", "\"NaN\"", "1.7976931348623157e+308", "-1.7976931348623157e+308"]);

    app.post(&format!("{API}/runs/delete-tag"), json!({ "run_id": run_id, "key": "note" })).await.ok();
    let run = app.get_run(&run_id).await;
    assert!(run["data"]["tags"].as_array().unwrap().iter().all(|t| t["key"] != "note"));
    let r = app.post(&format!("{API}/runs/delete-tag"), json!({ "run_id": run_id, "key": "note" })).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn update_delete_restore() {
    let app = TestApp::new().await;
    let run_id = app.run("0").await;
    let body = app
        .post(
            &format!("{API}/runs/update"),
            json!({ "run_id": run_id, "status": "FINISHED", "end_time": 2000, "run_name": "renamed" }),
        )
        .await
        .ok();
    let info = &body["run_info"];
    assert_eq!(
        (info["status"].clone(), info["end_time"].clone(), info["run_name"].clone()),
        (json!("FINISHED"), json!(2000), json!("renamed"))
    );
    assert_eq!(find(&app.get_run(&run_id).await["data"]["tags"], "mlflow.runName")["value"], "renamed");

    app.post(&format!("{API}/runs/delete"), json!({ "run_id": run_id })).await.ok();
    assert_eq!(app.get_run(&run_id).await["info"]["lifecycle_stage"], "deleted");
    app.post(&format!("{API}/runs/restore"), json!({ "run_id": run_id })).await.ok();
    assert_eq!(app.get_run(&run_id).await["info"]["lifecycle_stage"], "active");

    let r = app.post(&format!("{API}/runs/update"), json!({ "run_id": run_id, "status": "DANCING" })).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r = app.get(&format!("{API}/runs/get?run_id=0123456789abcdef0123456789abcdef")).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
    let r = app.get(&format!("{API}/runs/get")).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").contains("'run_id'"));
}

#[tokio::test]
async fn log_batch_writes_everything_or_nothing() {
    let app = TestApp::new().await;
    let run_id = app.run("0").await;
    let ok = app
        .post(
            &format!("{API}/runs/log-batch"),
            json!({
                "run_id": run_id,
                "metrics": [
                    { "key": "m", "value": 1.0, "timestamp": 1, "step": 0 },
                    { "key": "m", "value": 2.0, "timestamp": 2, "step": 1 }
                ],
                "params": [{ "key": "p", "value": "1" }],
                "tags": [{ "key": "t", "value": "x" }]
            }),
        )
        .await;
    assert_eq!(ok.ok(), json!({}));
    let before_run = app.get_run(&run_id).await;
    let before_events = app.event_count().await;

    let too_many: Vec<Value> =
        (0..1001).map(|i| json!({ "key": "n", "value": 1.0, "timestamp": 1, "step": i })).collect();
    let refusals = [
        (json!({ "run_id": run_id, "metrics": too_many }), "at most 1000 metrics"),
        (
            json!({ "run_id": run_id, "metrics": [{ "key": "n", "value": "abc", "timestamp": 1 }] }),
            "'metrics[0].value'",
        ),
        (json!({ "run_id": run_id, "metrics": [{ "key": "n", "value": 1.0 }] }), "'metrics[0].timestamp'"),
        (json!({ "run_id": run_id, "metrics": [{ "key": "n", "value": 1.0, "timestamp": -1 }] }), "nonnegative"),
        (json!({ "run_id": run_id, "params": [{ "key": "p", "value": "2" }] }), ""),
        (
            json!({ "run_id": run_id, "params": [{ "key": "q", "value": "1" }, { "key": "q", "value": "1" }] }),
            "Duplicate",
        ),
        (json!({ "run_id": run_id, "params": [{ "value": "1" }] }), "'params[0].key'"),
        (json!({ "run_id": run_id, "tags": [{ "key": "k".repeat(251), "value": "1" }] }), "'tags[0].key' exceeds"),
        (json!({ "run_id": run_id, "tags": "not a list" }), "Value was of type 'str'"),
        (
            json!({ "run_id": run_id, "tags": [{ "key": "ok", "value": "1" }], "metrics": [{ "key": "bad!", "value": 1, "timestamp": 1 }] }),
            "Names may only contain",
        ),
    ];
    for (body, fragment) in refusals {
        let r = app.post(&format!("{API}/runs/log-batch"), body.clone()).await;
        let message = r.error(400, "INVALID_PARAMETER_VALUE");
        assert!(message.contains(fragment), "{fragment:?} not in {message:?} for {body}");
    }
    let r = app.post(&format!("{API}/runs/log-batch"), json!({ "run_id": "0123456789abcdef0123456789abcdef" })).await;
    r.error(404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(app.get_run(&run_id).await, before_run, "refused batches change nothing");
    assert_eq!(app.event_count().await, before_events);
}

#[tokio::test]
async fn long_values_follow_mlflow_truncation_and_long_keys_fail() {
    let app = TestApp::new().await;
    let run_id = app.run("0").await;
    app.post(
        &format!("{API}/runs/log-parameter"),
        json!({ "run_id": run_id, "key": "long", "value": "v".repeat(7000) }),
    )
    .await
    .ok();
    app.post(&format!("{API}/runs/set-tag"), json!({ "run_id": run_id, "key": "long", "value": "é".repeat(9000) }))
        .await
        .ok();
    let run = app.get_run(&run_id).await;
    assert_eq!(find(&run["data"]["params"], "long")["value"].as_str().unwrap().chars().count(), 6000);
    assert_eq!(find(&run["data"]["tags"], "long")["value"].as_str().unwrap().chars().count(), 8000);
    let r = app
        .post(&format!("{API}/runs/log-parameter"), json!({ "run_id": run_id, "key": "k".repeat(251), "value": "v" }))
        .await;
    assert_eq!(r.error(400, "INVALID_PARAMETER_VALUE"), "'Param key' exceeds the maximum length of 250 characters");
}

#[tokio::test]
async fn search_runs_pages_and_checks_limits() {
    let app = TestApp::new().await;
    let exp = app.experiment("s").await;
    for _ in 0..3 {
        app.run(&exp).await;
    }
    let first =
        app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": [exp], "max_results": 2 })).await.ok();
    assert_eq!(first["runs"].as_array().unwrap().len(), 2);
    let token = first["next_page_token"].as_str().unwrap();
    let second = app
        .post(&format!("{API}/runs/search"), json!({ "experiment_ids": [exp], "max_results": 2, "page_token": token }))
        .await
        .ok();
    assert_eq!(second["runs"].as_array().unwrap().len(), 1);
    assert!(second.get("next_page_token").is_none());
    let empty = app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": ["0"] })).await.ok();
    assert_eq!(empty, json!({}), "no runs: the list is omitted");

    let r = app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": [exp], "max_results": 50001 })).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").starts_with("Invalid value 50001 for parameter 'max_results'"));
    let r = app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": exp })).await;
    r.error(400, "INVALID_PARAMETER_VALUE");
    let r =
        app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": [exp], "page_token": "eyJ4IjogMX0=" })).await;
    assert!(r.error(400, "INVALID_PARAMETER_VALUE").starts_with("Invalid page token"));
    let r = app.get(&format!("{API}/runs/search")).await;
    r.error(405, "BAD_REQUEST");
}

/// The client searches logged models while listing a run's artifact folders; with no logged
/// models recorded the answer is empty, and a malformed request is still refused.
#[tokio::test]
async fn logged_model_search_is_empty_and_validated() {
    let app = TestApp::new().await;
    let body = json!({ "experiment_ids": ["0"], "filter": "source_run_id = 'abc'", "max_results": 10 });
    // Like MLflow's server, an empty result omits the empty `models` list.
    assert_eq!(app.post(&format!("{API}/logged-models/search"), body).await.ok(), json!({}));
    let reply = app.post(&format!("{API}/logged-models/search"), json!({ "experiment_ids": "0" })).await;
    assert!(reply.error(400, "INVALID_PARAMETER_VALUE").contains("experiment_ids"));
}

#[tokio::test]
async fn a_run_created_under_a_chosen_id_keeps_it_and_a_replay_answers_the_same_run() {
    let app = TestApp::new().await;
    let exp = app.experiment("offline").await;
    let id = "fedcba9876543210fedcba9876543210";
    let path = format!("/api/cairn/v1/runs/{id}");
    let body = json!({
        "experiment_id": exp, "user_id": "ann", "start_time": 1_700_000_000_000_i64,
        "tags": [{ "key": "t", "value": "v" }]
    });
    let first = app.put(&path, body.clone()).await.ok();
    assert_eq!(first["run"]["info"]["run_id"], id);
    assert_eq!(first["run"]["info"]["start_time"], 1_700_000_000_000_i64);
    assert_eq!(find(&first["run"]["data"]["tags"], "t")["value"], "v");
    // MLflow's routes see it like any other run.
    let got = app.get(&format!("{API}/runs/get?run_id={id}")).await.ok();
    assert_eq!(got["run"]["info"]["experiment_id"], exp.as_str());
    let events = app.event_count().await;

    // The same request again (a replayed sync) answers the run and writes nothing.
    let again = app.put(&path, body).await.ok();
    assert_eq!(again["run"]["info"]["run_id"], id);
    assert_eq!(app.event_count().await, events);

    let other = app.experiment("other").await;
    let message = app.put(&path, json!({ "experiment_id": other })).await.error(400, "RESOURCE_ALREADY_EXISTS");
    assert!(message.contains("another experiment"), "{message}");
    let message = app
        .put("/api/cairn/v1/runs/NOT-HEX", json!({ "experiment_id": exp }))
        .await
        .error(400, "INVALID_PARAMETER_VALUE");
    assert!(message.contains("32 lowercase hexadecimal digits"), "{message}");
    app.put(&path.replace("fedc", "0000"), json!({})).await.error(400, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn a_logged_model_created_under_a_chosen_id_keeps_it_and_a_replay_answers_the_same_model() {
    let app = TestApp::new().await;
    let exp = app.experiment("offline-models").await;
    let run_id = app.run(&exp).await;
    let id = "m-fedcba9876543210fedcba9876543210";
    let path = format!("/api/cairn/v1/logged-models/{id}");
    let body = json!({
        "experiment_id": exp, "name": "model", "model_type": "pyfunc", "source_run_id": run_id,
        "tags": [{ "key": "t", "value": "v" }], "params": [{ "key": "p", "value": "1" }]
    });
    let first = app.put(&path, body.clone()).await.ok();
    let info = &first["model"]["info"];
    assert_eq!(info["model_id"], id);
    assert_eq!(info["name"], "model");
    assert_eq!(info["source_run_id"], run_id.as_str());
    assert_eq!(info["status"], "LOGGED_MODEL_PENDING");
    assert!(info["artifact_uri"].as_str().unwrap().ends_with(&format!("/models/{id}/artifacts")), "{info}");
    assert_eq!(find(&info["tags"], "t")["value"], "v");
    assert_eq!(find(&first["model"]["data"]["params"], "p")["value"], "1");
    // MLflow's routes see it like any other logged model.
    let got = app.get(&format!("{API}/logged-models/{id}")).await.ok();
    assert_eq!(got["model"]["info"]["experiment_id"], exp.as_str());
    app.patch(&format!("{API}/logged-models/{id}"), json!({ "status": "LOGGED_MODEL_READY" })).await.ok();
    let events = app.event_count().await;

    // The same request again (a replayed sync) answers the model as it stands and writes nothing.
    let again = app.put(&path, body).await.ok();
    assert_eq!(again["model"]["info"]["model_id"], id);
    assert_eq!(again["model"]["info"]["status"], "LOGGED_MODEL_READY");
    assert_eq!(app.event_count().await, events);

    let other = app.experiment("other-models").await;
    let message = app.put(&path, json!({ "experiment_id": other })).await.error(400, "RESOURCE_ALREADY_EXISTS");
    assert!(message.contains("another experiment"), "{message}");
    for bad in ["NOT-AN-ID", "m-FEDCBA9876543210FEDCBA9876543210", "fedcba9876543210fedcba9876543210"] {
        let message = app
            .put(&format!("/api/cairn/v1/logged-models/{bad}"), json!({ "experiment_id": exp }))
            .await
            .error(400, "INVALID_PARAMETER_VALUE");
        assert!(message.contains("32 lowercase hexadecimal digits"), "{bad}: {message}");
    }
    app.put(&path.replace("fedc", "0000"), json!({})).await.error(400, "INVALID_PARAMETER_VALUE");
}

/// A write sent twice with one Idempotency-Key is applied once; the repeat gets the recorded
/// answer. The key is scoped by user and bound to the request it first named.
#[tokio::test]
async fn an_idempotency_key_makes_a_repeated_write_a_replay() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    let app = TestApp::new().await;
    let exp = app.experiment("idem").await;
    let create = |key: &str, user: Option<&str>, body: &Value| {
        let mut request = Request::post(format!("{API}/runs/create"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key);
        if let Some(user) = user {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
            request = request.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        request.body(Body::from(body.to_string())).unwrap()
    };
    let body = json!({ "experiment_id": exp, "run_name": "once" });
    let first = app.send(create("k-1", None, &body)).await.ok();
    let events = app.event_count().await;
    let response = app.router.clone().oneshot(create("k-1", None, &body)).await.unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let again = app.send(create("k-1", None, &body)).await.ok();
    assert_eq!(again, first, "the repeat is the recorded answer");
    assert_eq!(app.event_count().await, events, "and nothing was written");

    // Another request under the same key is refused; another user's same key is their own.
    let other = json!({ "experiment_id": exp, "run_name": "twice" });
    let message = app.send(create("k-1", None, &other)).await.error(400, "INVALID_PARAMETER_VALUE");
    assert!(message.contains("already used for a different request"), "{message}");
    let theirs = app.send(create("k-1", Some("bob"), &body)).await.ok();
    assert_ne!(theirs["run"]["info"]["run_id"], first["run"]["info"]["run_id"]);
    app.send(create("bad key with spaces", None, &body)).await.error(400, "INVALID_PARAMETER_VALUE");

    // A failed write is not recorded: sent again, it is tried again.
    let missing = json!({ "experiment_id": "404" });
    app.send(create("k-2", None, &missing)).await.error(404, "RESOURCE_DOES_NOT_EXIST");
    app.send(create("k-2", None, &missing)).await.error(404, "RESOURCE_DOES_NOT_EXIST");
}

/// Many requests with one Idempotency-Key at the same moment (a client retrying while its first
/// attempt is still being served): the write is applied once and every request gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_idempotency_key_apply_the_write_once() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use std::sync::Arc;

    const CONTENDERS: usize = 12;
    let app = Arc::new(TestApp::new().await);
    let exp = app.experiment("race").await;
    let events = app.event_count().await;
    let body = json!({ "experiment_id": exp, "run_name": "once" }).to_string();
    let mut handles = Vec::new();
    for _ in 0..CONTENDERS {
        let (app, body) = (app.clone(), body.clone());
        handles.push(tokio::spawn(async move {
            let request = Request::post(format!("{API}/runs/create"))
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "race-1")
                .body(Body::from(body))
                .unwrap();
            app.send(request).await.ok()["run"]["info"]["run_id"].as_str().expect("run_id").to_owned()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.expect("task"));
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one run for all: {ids:?}");
    let found = app.post(&format!("{API}/runs/search"), json!({ "experiment_ids": [exp] })).await.ok();
    assert_eq!(found["runs"].as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(app.event_count().await, events + 1, "one run created, nothing else");
}

/// A repeat of a write whose first attempt is still running waits for its answer, and after
/// 10 s is told to retry: 409 INVALID_STATE with `Retry-After`, nothing applied. Here the first
/// attempt is a claim left in the store as a write in flight leaves it; once it is released (the
/// write failed), the same request runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_of_a_write_still_in_progress_is_told_to_retry_after_ten_seconds() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use cairn_core::idempotency::Claim;
    use cairn_server::idempotency::{request_digest, scoped_key};
    use tower::ServiceExt;

    let app = TestApp::new().await;
    let exp = app.experiment("held").await;
    let body = json!({ "experiment_id": exp, "run_name": "held" }).to_string();
    let path = format!("{API}/runs/create");
    let (key, digest) = (scoped_key("", "held-1"), request_digest("", "POST", &path, body.as_bytes()));
    assert_eq!(app.store.claim_idempotency_key(&key, &digest).await.unwrap(), Claim::Claimed);
    let events = app.event_count().await;
    let request = || {
        Request::post(&path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "held-1")
            .body(Body::from(body.clone()))
            .unwrap()
    };

    let started = std::time::Instant::now();
    let response = app.router.clone().oneshot(request()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 409);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert!(waited >= std::time::Duration::from_secs(10), "answered after {waited:?}, before the wait was over");
    let answer = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error_code"], "INVALID_STATE", "{answer}");
    assert_eq!(app.event_count().await, events, "nothing was applied while the key was held");

    app.store.release_idempotency_key(&key).await.unwrap();
    let run = app.send(request()).await.ok();
    assert_eq!(run["run"]["info"]["run_name"], "held");
    assert_eq!(app.event_count().await, events + 1);
}
