//! `lineage`: bulk prediction ingest (predictions/s) and the provenance trace of one prediction
//! over a deep graph (ms), through Cairn's native API. MLflow has no equivalent, so this
//! scenario reports Cairn's numbers alone.
//!
//! The graph: a chain of `depth` dataset versions, each derived from the one before; a tracked
//! training run that used the last one, with a code version and an environment; a registered
//! model version of that run; a deployment serving it. Predictions are logged against the
//! deployment in batches, then one prediction is traced back through the whole chain.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{MlflowClient, now_ms};
use crate::ingest::unique_name;
use crate::report::{Latencies, round3};

/// What the lineage scenario does.
#[derive(Debug, Clone)]
pub struct LineageConfig {
    pub url: String,
    /// Predictions to log in all.
    pub predictions: u64,
    /// Predictions per request.
    pub batch_size: u32,
    /// Concurrent batch senders.
    pub writers: u32,
    /// Length of the dataset derivation chain.
    pub depth: u32,
    /// Timed traces.
    pub repeat: u32,
}

async fn build_graph(client: &MlflowClient, name: &str, depth: u32) -> anyhow::Result<()> {
    let experiment = client.create_experiment(name).await?;
    let run = client.create_run(&experiment, "train").await?;
    let tags = json!({"run_id": run, "tags": [
        {"key": "mlflow.source.git.commit", "value": "0123456789abcdef0123456789abcdef01234567"},
        {"key": "mlflow.source.git.repoURL", "value": "https://git.example/bench.git"},
        {"key": "cairn.environment.digest", "value": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    ]});
    client.call(Method::POST, "/api/2.0/mlflow/runs/log-batch", Some(&tags)).await?;
    let dataset = |i: u32| format!("dataset:{name}-d{i}@1");
    for i in 0..=depth {
        let node = json!({"digest": format!("{:064x}", u64::from(i) + 1), "attributes": {"row_count": 1000}});
        client.call(Method::PUT, &format!("/api/cairn/v1/lineage/nodes/dataset/{name}-d{i}@1"), Some(&node)).await?;
        if i > 0 {
            let edge = json!({"source": dataset(i), "kind": "was_derived_from", "target": dataset(i - 1)});
            client.call(Method::POST, "/api/cairn/v1/lineage/edges", Some(&edge)).await?;
        }
    }
    let used = json!({"source": format!("run:{run}"), "kind": "used", "target": dataset(depth)});
    client.call(Method::POST, "/api/cairn/v1/lineage/edges", Some(&used)).await?;
    client.call(Method::POST, "/api/2.0/mlflow/registered-models/create", Some(&json!({"name": name}))).await?;
    let version = json!({"name": name, "source": format!("runs:/{run}/model"), "run_id": run});
    client.call(Method::POST, "/api/2.0/mlflow/model-versions/create", Some(&version)).await?;
    let deploy = json!({"model_version": format!("{name}/1")});
    client.call(Method::POST, &format!("/api/cairn/v1/deployments/{name}-api"), Some(&deploy)).await?;
    client.finish_run(&run).await?;
    Ok(())
}

fn batch(name: &str, first: u64, n: u64) -> Value {
    let predictions: Vec<Value> = (first..first + n)
        .map(|i| {
            json!({"prediction_id": format!("{name}-p{i}"), "deployment": format!("{name}-api"),
                        "input_digest": format!("{i:064x}")})
        })
        .collect();
    json!({ "predictions": predictions })
}

/// Runs the scenario and returns its result line.
pub async fn run(config: &LineageConfig) -> anyhow::Result<Value> {
    let client = MlflowClient::new(&config.url)?;
    let name = unique_name("bench-lineage");
    build_graph(&client, &name, config.depth).await?;

    let batches = config.predictions.div_ceil(u64::from(config.batch_size.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..u64::from(config.writers.max(1)) {
        let (client, name) = (client.clone(), name.clone());
        let (size, total, writers) =
            (u64::from(config.batch_size.max(1)), config.predictions, u64::from(config.writers.max(1)));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut sent = 0u64;
            let mut index = writer;
            while index < batches {
                let first = index * size;
                let n = size.min(total - first);
                let t = Instant::now();
                let reply =
                    client.call(Method::POST, "/api/cairn/v1/predictions", Some(&batch(&name, first, n))).await?;
                latencies.record(t.elapsed());
                anyhow::ensure!(reply["accepted"].as_u64() == Some(n), "batch not accepted whole: {reply}");
                sent += n;
                index += writers;
            }
            anyhow::Ok((sent, latencies))
        }));
    }
    let (mut sent, mut latencies) = (0u64, Latencies::default());
    for task in tasks {
        let (n, l) = task.await??;
        sent += n;
        latencies.merge(l);
    }
    let ingest_secs = started.elapsed().as_secs_f64();

    let mut traces = Vec::new();
    let mut nodes = 0;
    for i in 0..config.repeat.max(1) {
        let id = format!("{name}-p{}", (u64::from(i) * 7919) % config.predictions.max(1));
        let t = Instant::now();
        let trace = client.call(Method::GET, &format!("/api/cairn/v1/predictions/{id}/trace"), None).await?;
        traces.push(t.elapsed().as_secs_f64() * 1000.0);
        nodes = trace["lineage"]["nodes"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(
            trace["completeness"]["complete"] == json!(true),
            "incomplete lineage in the bench graph: {trace}"
        );
    }
    traces.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "lineage",
        "predictions": sent,
        "batch_size": config.batch_size,
        "writers": config.writers,
        "ingest_seconds": round3(ingest_secs),
        "predictions_per_sec": round3(sent as f64 / ingest_secs.max(1e-9)),
        "batch_p50_ms": latencies.percentile_ms(50.0),
        "batch_p99_ms": latencies.percentile_ms(99.0),
        "graph_depth": config.depth,
        "trace_nodes": nodes,
        "trace_ms_min": round3(traces[0]),
        "trace_ms_median": round3(traces[traces.len() / 2]),
        "finished_at_ms": now_ms(),
    }))
}
