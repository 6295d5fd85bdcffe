//! OpenLineage out: Cairn's runs reported to another lineage system (Marquez, a data catalog,
//! another Cairn) as OpenLineage run events.
//!
//! The emitter follows the audit log rather than hooking into request handlers: every run that
//! is created produces a `START` event, and every run that ends (status FINISHED, FAILED or
//! KILLED) a `COMPLETE`, `FAIL` or `ABORT` event carrying the datasets it logged as inputs and
//! the logged models it produced as outputs. Delivery is best-effort and never slows a client
//! down: a failed POST is retried a few times, then logged and skipped. The first emitter ever
//! started starts at the end of the log, so history is not replayed.
//!
//! With several servers on one database, only one emits: each runs an emitter, and the one
//! holding the `openlineage-out` lease (`cairn_core::lease`) follows the log while the others
//! wait. The lease's cursor records the last event handled, so a server that takes over, because
//! the leader died or shut down, carries on from there and each event is sent once. (A leader
//! killed between sending an event and recording it leaves that one event to be sent again.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use cairn_core::audit::AuditEvent;
use cairn_core::model::{Run, RunStatus};
use cairn_core::store::Store;
use cairn_core::time::format_instant;

/// Identifies Cairn as the producer of the events it sends.
pub const PRODUCER: &str = "https://github.com/cairn-tracking/cairn";
const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Audit events read per poll.
const PAGE: u64 = 500;
/// Attempts per event before it is given up.
const ATTEMPTS: u32 = 3;
/// Runs whose end was reported, kept to report each end once; bounded so it cannot grow forever.
const ENDED_MEMORY: usize = 100_000;
/// The lease that makes one server at a time the emitter.
pub const LEASE: &str = "openlineage-out";

/// Where and how to send events.
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// The endpoint: a URL ending in `/lineage` is used as is, any other gets `/api/v1/lineage`
    /// appended (OpenLineage's HTTP transport default).
    pub url: String,
    /// The OpenLineage job namespace of Cairn's experiments.
    pub namespace: String,
    /// How often the audit log is polled (and the lease renewed or asked for).
    pub poll: Duration,
    /// How long the lease outlives a leader that stopped renewing it: the longest a dead leader
    /// delays events.
    pub lease_ttl: Duration,
}

impl EmitterConfig {
    fn endpoint(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/lineage") { base.to_owned() } else { format!("{base}/api/v1/lineage") }
    }
}

/// An MLflow run id (32 hex digits) as the UUID OpenLineage requires.
pub fn run_uuid(run_id: &str) -> String {
    if run_id.len() == 32 && run_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("{}-{}-{}-{}-{}", &run_id[..8], &run_id[8..12], &run_id[12..16], &run_id[16..20], &run_id[20..])
    } else {
        run_id.to_owned()
    }
}

fn event_type(status: RunStatus) -> Option<&'static str> {
    match status {
        RunStatus::Finished => Some("COMPLETE"),
        RunStatus::Failed => Some("FAIL"),
        RunStatus::Killed => Some("ABORT"),
        RunStatus::Running | RunStatus::Scheduled => None,
    }
}

/// The OpenLineage run event for `run` at `time`.
pub async fn run_event(store: &dyn Store, namespace: &str, run: &Run, kind: &str, time: i64) -> Value {
    let job = match store.get_experiment(&run.info.experiment_id).await {
        Ok(experiment) => experiment.name,
        Err(_) => format!("experiment-{}", run.info.experiment_id),
    };
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    if kind != "START" {
        if let Ok(found) = store.run_inputs(&run.info.run_id).await {
            for input in found.dataset_inputs {
                let dataset = input.dataset;
                inputs.push(json!({
                    "namespace": if dataset.source_type.is_empty() { "mlflow".to_owned() } else { dataset.source_type.clone() },
                    "name": dataset.name,
                    "facets": {"version": {"_producer": PRODUCER, "_schemaURL":
                        "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
                        "datasetVersion": dataset.digest}},
                }));
            }
        }
        if let Ok(found) = store.run_outputs(&run.info.run_id).await {
            for output in found.model_outputs {
                outputs.push(json!({ "namespace": namespace, "name": format!("models/{}", output.model_id) }));
            }
        }
    }
    json!({
        "eventType": kind,
        "eventTime": format_instant(time),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": { "runId": run_uuid(&run.info.run_id), "facets": {} },
        "job": { "namespace": namespace, "name": job, "facets": {} },
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// The sequence number of the newest audit event, found with a few probes (an exponential then
/// a binary search) rather than by reading the whole log.
async fn log_head(store: &dyn Store) -> i64 {
    // Whether some event has a sequence number above `seq`.
    let exists_after = |seq: i64| async move { store.audit_events(seq, 1).await.is_ok_and(|e| !e.is_empty()) };
    if !exists_after(0).await {
        return 0;
    }
    let mut high = 1i64;
    while exists_after(high).await {
        high = high.saturating_mul(2);
    }
    let mut low = high / 2;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if exists_after(middle).await { low = middle } else { high = middle }
    }
    high
}

struct Emitter {
    store: Arc<dyn Store>,
    config: EmitterConfig,
    client: reqwest::Client,
    ended: HashSet<String>,
}

impl Emitter {
    async fn send(&self, event: &Value) {
        let endpoint = self.config.endpoint();
        for attempt in 1..=ATTEMPTS {
            match self.client.post(&endpoint).json(event).send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(status = %response.status(), attempt, "OpenLineage endpoint refused an event")
                }
                Err(error) => tracing::warn!(%error, attempt, "cannot reach the OpenLineage endpoint"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        tracing::warn!(run = %event["run"]["runId"], kind = %event["eventType"], "OpenLineage event dropped");
    }

    async fn handle(&mut self, audit: &AuditEvent) {
        let kind = match audit.action.as_str() {
            "create_run" => Some("START"),
            "update_run" => None,
            _ => return,
        };
        let Ok(run) = self.store.get_run(&audit.entity_id).await else { return };
        let kind = match kind {
            Some(start) => start,
            None => match event_type(run.info.status) {
                Some(end) if !self.ended.contains(&run.info.run_id) => end,
                _ => return,
            },
        };
        if kind != "START" {
            if self.ended.len() >= ENDED_MEMORY {
                self.ended.clear();
            }
            self.ended.insert(run.info.run_id.clone());
        }
        let time = if kind == "START" { run.info.start_time.unwrap_or(audit.time) } else { audit.time };
        let event = run_event(self.store.as_ref(), &self.config.namespace, &run, kind, time).await;
        self.send(&event).await;
    }
}

/// Starts the emitter; it runs until the returned task is aborted.
pub fn spawn(store: Arc<dyn Store>, config: EmitterConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot build an HTTP client; OpenLineage events are off");
                return;
            }
        };
        let mut lease = Leadership::new(store.clone(), &config);
        let mut emitter = Emitter { store, config, client, ended: HashSet::new() };
        let mut after: Option<i64> = None;
        loop {
            // Asked for (or renewed) before every page: a follower waits here, a leader that
            // lost its lease stops and forgets its position.
            let Some(start) = lease.hold().await else {
                after = None;
                tokio::time::sleep(emitter.config.poll).await;
                continue;
            };
            let from = match (after, start) {
                (Some(position), _) => position,
                (None, Some(recorded)) => recorded,
                (None, None) => log_head(emitter.store.as_ref()).await,
            };
            if after.is_none() {
                tracing::info!(endpoint = %emitter.config.endpoint(), from_seq = from, "emitting OpenLineage events");
                after = Some(from);
            }
            match emitter.store.audit_events(from, PAGE).await {
                Ok(events) if !events.is_empty() => {
                    for event in &events {
                        emitter.handle(event).await;
                        after = Some(event.seq);
                        if !lease.record(event.seq).await {
                            after = None;
                            break;
                        }
                    }
                    continue;
                }
                Ok(_) => {
                    // Record where an empty log starts, so a successor does not skip ahead.
                    if start.is_none() && !lease.record(from).await {
                        after = None;
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the audit log for OpenLineage events"),
            }
            tokio::time::sleep(emitter.config.poll).await;
        }
    })
}

/// This server's claim on the emitter's lease. A store without leases (one process by
/// definition) always leads.
struct Leadership {
    leases: Option<Arc<dyn cairn_core::lease::Leases>>,
    holder: String,
    ttl: i64,
    leading: bool,
}

impl Leadership {
    fn new(store: Arc<dyn Store>, config: &EmitterConfig) -> Self {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Leadership {
            leases: store.leases(),
            holder: format!("server-{}-{}", std::process::id(), started.as_nanos()),
            ttl: i64::try_from(config.lease_ttl.as_millis()).unwrap_or(i64::MAX),
            leading: false,
        }
    }

    /// Takes or renews the lease: `Some(recorded cursor)` while this server leads.
    async fn hold(&mut self) -> Option<Option<i64>> {
        let Some(leases) = &self.leases else { return Some(None) };
        match leases.acquire_lease(LEASE, &self.holder, self.ttl).await {
            Ok(Some(state)) => {
                if !self.leading {
                    tracing::info!(holder = %self.holder, "this server now emits OpenLineage events");
                }
                self.leading = true;
                Some(state.cursor)
            }
            Ok(None) => {
                if self.leading {
                    tracing::warn!("another server took over emitting OpenLineage events");
                }
                self.leading = false;
                None
            }
            Err(error) => {
                tracing::warn!(%error, "cannot renew the OpenLineage emitter's lease");
                self.leading = false;
                None
            }
        }
    }

    /// Records that events up to `seq` were handled, renewing the lease, so that the lease only
    /// lapses while one event is being sent; `false` if it was lost meanwhile.
    async fn record(&mut self, seq: i64) -> bool {
        let Some(leases) = &self.leases else { return true };
        match leases.advance_lease(LEASE, &self.holder, seq, self.ttl).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!("the OpenLineage emitter's lease expired; another server may carry on");
                self.leading = false;
                false
            }
            Err(error) => {
                tracing::warn!(%error, "cannot record the OpenLineage emitter's position");
                self.leading = false;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_become_uuids_and_endpoints_default_like_the_python_client() {
        assert_eq!(run_uuid("0123456789abcdef0123456789abcdef"), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(run_uuid("not-hex"), "not-hex");
        let config = |url: &str| EmitterConfig {
            url: url.into(),
            namespace: "n".into(),
            poll: Duration::ZERO,
            lease_ttl: Duration::ZERO,
        };
        assert_eq!(config("http://h:5000/").endpoint(), "http://h:5000/api/v1/lineage");
        assert_eq!(config("http://h/x/api/v1/lineage").endpoint(), "http://h/x/api/v1/lineage");
    }
}
