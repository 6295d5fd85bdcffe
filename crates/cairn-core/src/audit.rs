//! The tamper-evident audit log: canonical change payloads, their digests and the hash chain.
//!
//! Every mutation appends one [`AuditEvent`] in the same transaction as the mutation. The event's
//! payload lists the *after-image* of every entity the mutation touched (or `null` when it was
//! removed) and, for metric points, a count and digest of the rows inserted; each data row
//! carries the sequence number of the event that wrote it. Verification therefore checks three
//! things: the chain links (`prev_hash`), each event's digest and hash, and that the live tables
//! equal what the log says they should be. Editing, removing or inserting a row behind the
//! server's back breaks one of the three.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::Millis;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entity kinds that appear in payloads. They double as the names verification reports.
pub mod entity {
    pub const EXPERIMENT: &str = "experiment";
    pub const EXPERIMENT_TAG: &str = "experiment_tag";
    pub const RUN: &str = "run";
    pub const PARAM: &str = "param";
    pub const RUN_TAG: &str = "run_tag";
    /// A file in a run's artifact manifest; its id is `run_id/path`.
    pub const ARTIFACT_FILE: &str = "artifact_file";
    /// The artifact root, owner of files uploaded outside any run or logged model.
    pub const ARTIFACT_ROOT: &str = "artifact_root";
    /// The metric rows one event wrote, removed together when their run is purged. Its id is
    /// that event's `seq`; it only ever appears as a removal.
    pub const METRIC_ROWS: &str = "metric_rows";
    /// The params one event wrote, recorded by count and digest (see [`super::Payload::params`])
    /// and removed together when their run is purged. Its id is that event's `seq`; it only ever
    /// appears as a removal.
    pub const PARAM_ROWS: &str = "param_rows";
    /// A registered model; its id is the model's internal key (`model_pk`), which survives renames.
    pub const REGISTERED_MODEL: &str = "registered_model";
    /// A registered model's tag; its id is `model_pk/key`.
    pub const REGISTERED_MODEL_TAG: &str = "registered_model_tag";
    /// A model version; its id is `model_pk/version`.
    pub const MODEL_VERSION: &str = "model_version";
    /// A model version's tag; its id is `model_pk/version/key`.
    pub const MODEL_VERSION_TAG: &str = "model_version_tag";
    /// A registered model's alias; its id is `model_pk/alias`.
    pub const REGISTERED_MODEL_ALIAS: &str = "registered_model_alias";
    /// A pinned file of a model version; its id is `pin_id/path`.
    pub const MODEL_VERSION_FILE: &str = "model_version_file";
    /// One registry history entry; its id is `seq/entry`. Written once, never changed.
    pub const MODEL_HISTORY: &str = "model_history";
    /// A logged model (MLflow 3); its id is the model id (`m-` and 32 hex digits).
    pub const LOGGED_MODEL: &str = "logged_model";
    /// A tag of a logged model; its id is `model_id/key`.
    pub const LOGGED_MODEL_TAG: &str = "logged_model_tag";
    /// A param of a logged model; its id is `model_id/key`.
    pub const LOGGED_MODEL_PARAM: &str = "logged_model_param";
    /// The model-linked metric rows one event wrote; its id is that event's `seq` and its image
    /// the count and digest of those rows.
    pub const LOGGED_MODEL_METRIC_ROWS: &str = "logged_model_metric_rows";
    /// A dataset version of an experiment; its id is the dataset's uuid.
    pub const DATASET: &str = "dataset";
    /// A dataset a run used, with the input's tags; its id is `run_id/dataset uuid`.
    pub const RUN_DATASET_INPUT: &str = "run_dataset_input";
    /// A logged model a run used; its id is `run_id/model_id`.
    pub const RUN_MODEL_INPUT: &str = "run_model_input";
    /// A logged model a run produced at a step; its id is `run_id/model_id/step`.
    pub const RUN_MODEL_OUTPUT: &str = "run_model_output";
    /// A node of the lineage graph; its id is the node reference (`kind:key`).
    pub const LINEAGE_NODE: &str = "lineage_node";
    /// An edge of the lineage graph; its id is the edge's internal key (`edge_pk`).
    pub const LINEAGE_EDGE: &str = "lineage_edge";
    /// The prediction rows one event wrote; its id is that event's `seq` and its image the
    /// count and digest of those rows.
    pub const PREDICTION_ROWS: &str = "prediction_rows";
    /// A user who can sign in; its id is the user id. The image holds a digest of the password
    /// hash, so a swapped hash is noticed without the log spreading hashes.
    pub const AUTH_USER: &str = "auth_user";
    /// A role; its id is the role id.
    pub const AUTH_ROLE: &str = "auth_role";
    /// A permission of a role; its id is the role permission id.
    pub const AUTH_ROLE_PERMISSION: &str = "auth_role_permission";
    /// A user's membership of a role; its id is the assignment id.
    pub const AUTH_ROLE_ASSIGNMENT: &str = "auth_role_assignment";
    /// A direct grant; its id is `user_id/resource_type/resource_id`.
    pub const AUTH_GRANT: &str = "auth_grant";
    /// An API token; its id is the token id (never the secret).
    pub const AUTH_TOKEN: &str = "auth_token";
    /// A verification checkpoint: the log was verified up to event `id`, whose hash the image
    /// holds. It describes the log, not a table, so no live row answers to it.
    pub const AUDIT_CHECKPOINT: &str = "audit_checkpoint";
}

/// The action of the event that records a verification checkpoint.
pub const CHECKPOINT_ACTION: &str = "verify_checkpoint";

/// How a store marks the digest of an event whose stored payload does not decode: the prefix,
/// then why. Verification reports such an event as unreadable.
pub const UNREADABLE_DIGEST: &str = "unreadable: ";

/// The payload of a checkpoint saying that events up to `seq` verified, the last with `hash`.
pub fn checkpoint_payload(seq: i64, hash: &str) -> Payload {
    Payload {
        changes: vec![Change {
            entity: entity::AUDIT_CHECKPOINT,
            id: seq.to_string(),
            after: Some(serde_json::json!({ "seq": seq, "hash": hash })),
        }],
        metrics: None,
        params: None,
    }
}

/// The `(seq, hash)` a checkpoint payload names, if it is one.
pub fn parse_checkpoint(payload: &Payload) -> Option<(i64, String)> {
    let [change] = payload.changes.as_slice() else { return None };
    let after = change.after.as_ref().filter(|_| change.entity == entity::AUDIT_CHECKPOINT)?;
    let seq = after.get("seq")?.as_i64()?;
    let hash = after.get("hash")?.as_str()?;
    (change.id == seq.to_string()).then(|| (seq, hash.to_owned()))
}

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub time: Millis,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// Canonical JSON of the change (see [`Payload`]).
    pub payload: String,
    /// SHA-256 of `payload`, hex.
    pub digest: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Which audit events to read, for people browsing the log: every filter given must match,
/// and the page is taken from one end of what matches (after or before a sequence number).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action (`create_run`, `set_alias`, …).
    pub action: Option<String>,
    /// Exact entity type (`run`, `registered_model`, …).
    pub entity_type: Option<String>,
    /// Exact entity id.
    pub entity_id: Option<String>,
    /// Events at or after this time.
    pub since: Option<Millis>,
    /// Events at or before this time.
    pub until: Option<Millis>,
    /// Only events with a larger `seq`.
    pub after_seq: Option<i64>,
    /// Only events with a smaller `seq`.
    pub before_seq: Option<i64>,
    /// Newest first (the default for browsing); oldest first otherwise.
    pub newest_first: bool,
    pub limit: u64,
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash that links an event into the chain. Fields are length-prefixed so that no two
/// different events can encode to the same byte string.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    time: Millis,
    actor: &str,
    action: &str,
    entity_type: &str,
    entity_id: &str,
    digest: &str,
) -> String {
    let mut h = Sha256::new();
    for field in [prev_hash, actor, action, entity_type, entity_id, digest] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update(seq.to_be_bytes());
    h.update(time.to_be_bytes());
    hex::encode(h.finalize())
}

/// Serialises a JSON value with object keys sorted at every level and no insignificant
/// whitespace, so that equal values always produce equal bytes.
pub fn canonical_json(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, &Value> = map.iter().collect();
                out.push('{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The after-image of one entity touched by a mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub entity: &'static str,
    pub id: String,
    /// The entity's canonical state after the mutation; `None` when it was removed.
    pub after: Option<Value>,
}

/// Count and digest of the rows of one kind (metric points, params) one event inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsDigest {
    pub count: u64,
    pub digest: String,
}

/// The content of one audit event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload {
    pub changes: Vec<Change>,
    pub metrics: Option<RowsDigest>,
    /// The params the event inserted, by count and digest rather than one after-image each: a
    /// param never changes once logged and its row keeps the event's `seq`, so verification
    /// recomputes the digest from the live rows, and the log does not hold every value twice
    /// (ten params were two thirds of a log-batch event's stored bytes). Older events record
    /// params as `param` changes, which verification still reads.
    pub params: Option<RowsDigest>,
}

impl Payload {
    /// A payload of entity changes only.
    pub fn of(changes: Vec<Change>) -> Self {
        Payload { changes, ..Payload::default() }
    }

    /// Canonical JSON encoding.
    pub fn to_canonical(&self) -> String {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "entity": c.entity,
                    "id": c.id,
                    "after": c.after.clone().unwrap_or(Value::Null),
                })
            })
            .collect();
        let mut obj = serde_json::json!({ "changes": changes });
        if let Some(m) = &self.metrics {
            obj["metrics"] = serde_json::json!({ "count": m.count, "digest": m.digest });
        }
        if let Some(p) = &self.params {
            obj["params"] = serde_json::json!({ "count": p.count, "digest": p.digest });
        }
        canonical_json(&obj)
    }

    /// Decodes a stored canonical payload.
    pub fn parse(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("payload is not JSON: {e}"))?;
        let mut payload = Payload::default();
        let changes = v.get("changes").and_then(Value::as_array).ok_or("payload has no 'changes' array")?;
        for c in changes {
            let entity = c.get("entity").and_then(Value::as_str).ok_or("change without entity")?;
            let entity = known_entity(entity).ok_or_else(|| format!("unknown entity '{entity}'"))?;
            let id = c.get("id").and_then(Value::as_str).ok_or("change without id")?.to_owned();
            let after = match c.get("after") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.clone()),
            };
            payload.changes.push(Change { entity, id, after });
        }
        payload.metrics = v.get("metrics").map(|m| rows_digest(m, "metrics")).transpose()?;
        payload.params = v.get("params").map(|p| rows_digest(p, "params")).transpose()?;
        Ok(payload)
    }
}

fn rows_digest(v: &Value, what: &str) -> Result<RowsDigest, String> {
    let count = v.get("count").and_then(Value::as_u64).ok_or_else(|| format!("{what} without count"))?;
    let digest = v.get("digest").and_then(Value::as_str).ok_or_else(|| format!("{what} without digest"))?;
    Ok(RowsDigest { count, digest: digest.to_owned() })
}

fn known_entity(name: &str) -> Option<&'static str> {
    [
        entity::EXPERIMENT,
        entity::EXPERIMENT_TAG,
        entity::RUN,
        entity::PARAM,
        entity::RUN_TAG,
        entity::ARTIFACT_FILE,
        entity::ARTIFACT_ROOT,
        entity::METRIC_ROWS,
        entity::PARAM_ROWS,
        entity::REGISTERED_MODEL,
        entity::REGISTERED_MODEL_TAG,
        entity::MODEL_VERSION,
        entity::MODEL_VERSION_TAG,
        entity::REGISTERED_MODEL_ALIAS,
        entity::MODEL_VERSION_FILE,
        entity::MODEL_HISTORY,
        entity::LOGGED_MODEL,
        entity::LOGGED_MODEL_TAG,
        entity::LOGGED_MODEL_PARAM,
        entity::LOGGED_MODEL_METRIC_ROWS,
        entity::DATASET,
        entity::RUN_DATASET_INPUT,
        entity::RUN_MODEL_INPUT,
        entity::RUN_MODEL_OUTPUT,
        entity::LINEAGE_NODE,
        entity::AUTH_USER,
        entity::AUTH_ROLE,
        entity::AUTH_ROLE_PERMISSION,
        entity::AUTH_ROLE_ASSIGNMENT,
        entity::AUTH_GRANT,
        entity::AUTH_TOKEN,
        entity::LINEAGE_EDGE,
        entity::PREDICTION_ROWS,
        entity::AUDIT_CHECKPOINT,
    ]
    .into_iter()
    .find(|e| *e == name)
}

/// Builds the entity id of a keyed child (a tag or param) of `parent`.
pub fn child_id(parent: &str, key: &str) -> String {
    format!("{parent}/{key}")
}

/// One metric row as hashed for the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow<'a> {
    pub run_id: &'a str,
    pub key: &'a str,
    pub step: i64,
    pub timestamp: Millis,
    pub value: f64,
}

/// Digest of a set of metric rows, independent of their order. NaN is hashed by a fixed bit
/// pattern so that every NaN is the same NaN.
pub fn metrics_digest(rows: &mut [MetricRow<'_>]) -> RowsDigest {
    rows.sort_by(|a, b| {
        (a.run_id, a.key, a.step, a.timestamp, canonical_bits(a.value)).cmp(&(
            b.run_id,
            b.key,
            b.step,
            b.timestamp,
            canonical_bits(b.value),
        ))
    });
    let mut h = Sha256::new();
    for r in rows.iter() {
        for field in [r.run_id, r.key] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        h.update(r.step.to_be_bytes());
        h.update(r.timestamp.to_be_bytes());
        h.update(canonical_bits(r.value).to_be_bytes());
    }
    RowsDigest { count: rows.len() as u64, digest: hex::encode(h.finalize()) }
}

/// A param as [`params_digest`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParamRow<'a> {
    pub run_id: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

/// Digest of a set of params, independent of their order.
pub fn params_digest(rows: &mut [ParamRow<'_>]) -> RowsDigest {
    rows.sort();
    let mut h = Sha256::new();
    for r in rows.iter() {
        for field in [r.run_id, r.key, r.value] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
    }
    RowsDigest { count: rows.len() as u64, digest: hex::encode(h.finalize()) }
}

fn canonical_bits(v: f64) -> u64 {
    if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() }
}

/// A problem found by verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first event implicated, when there is one.
    pub seq: Option<i64>,
    pub message: String,
}

/// The outcome of verifying the log against itself and the live tables.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub problems: Vec<Problem>,
    /// Set when only the events after this one were checked, because a checkpoint says the
    /// log up to it verified before (and the live tables were not compared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<i64>,
    /// The last event checked and its hash, which a new checkpoint records.
    #[serde(skip)]
    pub last: Option<(i64, String)>,
}

impl VerifyReport {
    /// True when nothing was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a log event by event, then compares the state it implies with the live tables.
///
/// Feed events in ascending `seq` with [`Verifier::event`], then live rows with
/// [`Verifier::live_entity`] and [`Verifier::live_metrics`], then call [`Verifier::finish`].
#[derive(Debug)]
pub struct Verifier {
    report: VerifyReport,
    prev_hash: Option<String>,
    prev_seq: Option<i64>,
    /// Last after-image per (entity, id), with the seq that wrote it.
    expected: BTreeMap<(&'static str, String), (i64, Option<Value>)>,
    /// Count and digest of the metric rows, and of the params, each event wrote.
    expected_metrics: RowGroups,
    expected_params: RowGroups,
    live_seen: BTreeMap<(&'static str, String), ()>,
}

/// What the log says each event wrote of one kind of row kept by digest (metric points, params).
#[derive(Debug)]
struct RowGroups {
    /// Names the rows in messages: "metric rows", "params".
    what: &'static str,
    by_seq: BTreeMap<i64, RowsDigest>,
}

impl RowGroups {
    fn new(what: &'static str) -> Self {
        RowGroups { what, by_seq: BTreeMap::new() }
    }

    fn insert(&mut self, seq: i64, digest: RowsDigest) {
        self.by_seq.insert(seq, digest);
    }

    fn remove(&mut self, seq: i64) {
        self.by_seq.remove(&seq);
    }

    fn contains(&self, seq: i64) -> bool {
        self.by_seq.contains_key(&seq)
    }

    /// Checks the live rows claiming event `seq`; the problem, if any.
    fn live(&mut self, seq: i64, live: &RowsDigest) -> Option<String> {
        let what = self.what;
        match self.by_seq.remove(&seq) {
            Some(expected) if &expected == live => None,
            Some(expected) => Some(format!(
                "{what} written by event {seq} were altered: {} rows now, {} recorded",
                live.count, expected.count
            )),
            None => Some(format!("{} {what} claim event {seq}, which wrote none", live.count)),
        }
    }

    /// The events none of whose rows the live tables had, with a message each; emptied.
    fn take_vanished(&mut self) -> Vec<(i64, String)> {
        let what = self.what;
        std::mem::take(&mut self.by_seq)
            .into_iter()
            .map(|(seq, d)| (seq, format!("all {} {what} written by event {seq} are missing", d.count)))
            .collect()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            report: VerifyReport::default(),
            prev_hash: None,
            prev_seq: None,
            expected: BTreeMap::new(),
            expected_metrics: RowGroups::new("metric rows"),
            expected_params: RowGroups::new("params"),
            live_seen: BTreeMap::new(),
        }
    }
}

impl Verifier {
    /// A verifier for an empty log.
    pub fn new() -> Self {
        Verifier::default()
    }

    /// A verifier for the events after `seq`, which a checkpoint says verified with `hash`.
    /// It checks the chain and the payloads only: the state the log implies needs every
    /// event, so finish it with [`Verifier::finish_log`].
    pub fn resume(seq: i64, hash: &str) -> Self {
        let mut verifier = Verifier { prev_hash: Some(hash.to_owned()), prev_seq: Some(seq), ..Verifier::default() };
        verifier.report.checkpoint = Some(seq);
        verifier.report.last = Some((seq, hash.to_owned()));
        verifier
    }

    fn problem(&mut self, seq: Option<i64>, message: String) {
        self.report.problems.push(Problem { seq, message });
    }

    /// Checks one event's digest, hash and link, and records what it says the state is.
    pub fn event(&mut self, ev: &AuditEvent) {
        self.report.events += 1;
        let expected_prev = self.prev_hash.clone().unwrap_or_else(|| GENESIS_HASH.to_owned());
        if let Some(prev) = self.prev_seq
            && ev.seq != prev + 1
        {
            self.problem(
                Some(ev.seq),
                format!("event {} follows event {prev}: events are missing or inserted", ev.seq),
            );
        }
        if ev.prev_hash != expected_prev {
            self.problem(Some(ev.seq), format!("event {} does not link to the event before it", ev.seq));
        }
        if let Some(why) = ev.digest.strip_prefix(UNREADABLE_DIGEST) {
            self.problem(Some(ev.seq), format!("event {} payload does not match its digest: {why}", ev.seq));
        } else if sha256_hex(ev.payload.as_bytes()) != ev.digest {
            self.problem(Some(ev.seq), format!("event {} payload does not match its digest", ev.seq));
        }
        let hash = chain_hash(
            &ev.prev_hash,
            ev.seq,
            ev.time,
            &ev.actor,
            &ev.action,
            &ev.entity_type,
            &ev.entity_id,
            &ev.digest,
        );
        if hash != ev.hash {
            self.problem(Some(ev.seq), format!("event {} hash does not match its content", ev.seq));
        }
        match Payload::parse(&ev.payload) {
            Ok(payload) => {
                for change in payload.changes {
                    // Metric rows and digested params are tracked per writing event, not as
                    // entities: a removal says the rows of that event are gone for good (their
                    // run was purged).
                    let groups = match change.entity {
                        entity::METRIC_ROWS => Some(&mut self.expected_metrics),
                        entity::PARAM_ROWS => Some(&mut self.expected_params),
                        _ => None,
                    };
                    if let Some(groups) = groups {
                        match change.id.parse::<i64>() {
                            Ok(seq) if change.after.is_none() => groups.remove(seq),
                            _ => self.problem(
                                Some(ev.seq),
                                format!("event {} has a malformed {} change", ev.seq, change.entity),
                            ),
                        }
                        continue;
                    }
                    // A checkpoint's claim is checked where it is used (incremental
                    // verification compares it with the stored hash); it has no live row.
                    if change.entity == entity::AUDIT_CHECKPOINT {
                        continue;
                    }
                    self.expected.insert((change.entity, change.id), (ev.seq, change.after));
                }
                if let Some(m) = payload.metrics {
                    self.expected_metrics.insert(ev.seq, m);
                }
                if let Some(p) = payload.params {
                    self.expected_params.insert(ev.seq, p);
                }
            }
            Err(e) => self.problem(Some(ev.seq), format!("event {} payload is unreadable: {e}", ev.seq)),
        }
        self.prev_hash = Some(ev.hash.clone());
        self.prev_seq = Some(ev.seq);
        self.report.last = Some((ev.seq, ev.hash.clone()));
    }

    /// Records a problem found outside the events themselves (a checkpoint that does not hold).
    pub fn report_problem(&mut self, seq: Option<i64>, message: String) {
        self.problem(seq, message);
    }

    /// The report of a verification that checked the log only (see [`Verifier::resume`]).
    pub fn finish_log(mut self) -> VerifyReport {
        self.report.problems.sort_by_key(|p| p.seq.unwrap_or(i64::MAX));
        self.report
    }

    /// Compares one live row (in canonical after-image form) with the log's expectation.
    pub fn live_entity(&mut self, entity: &'static str, id: &str, state: &Value) {
        let key = (entity, id.to_owned());
        self.live_seen.insert(key.clone(), ());
        match self.expected.get(&key) {
            Some((seq, Some(after))) => {
                if canonical_json(after) != canonical_json(state) {
                    let seq = *seq;
                    self.problem(
                        Some(seq),
                        format!(
                            "{entity} '{id}' differs from what event {seq} recorded: stored {} but the log says {}",
                            canonical_json(state),
                            canonical_json(after)
                        ),
                    );
                }
            }
            Some((seq, None)) => {
                let seq = *seq;
                self.problem(Some(seq), format!("{entity} '{id}' exists but event {seq} removed it"));
            }
            None => self.problem(None, format!("{entity} '{id}' exists but no audit event wrote it")),
        }
    }

    /// Compares the metric rows written by event `seq` (count and digest) with the log.
    pub fn live_metrics(&mut self, seq: i64, live: &RowsDigest) {
        if let Some(message) = self.expected_metrics.live(seq, live) {
            self.problem(Some(seq), message);
        }
    }

    /// True if event `seq` recorded its params by digest, so that the params claiming it are
    /// checked with [`Verifier::live_params`] rather than one by one as entities.
    pub fn params_digested_by(&self, seq: i64) -> bool {
        self.expected_params.contains(seq)
    }

    /// Compares the params written by event `seq` (count and digest) with the log. `keys` are the
    /// live params' run and key, which a problem names: the digest cannot say which one changed.
    pub fn live_params(&mut self, seq: i64, live: &RowsDigest, keys: &[String]) {
        if let Some(message) = self.expected_params.live(seq, live) {
            const SHOWN: usize = 10;
            let more = keys.len().saturating_sub(SHOWN);
            let mut named = keys.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
            if more > 0 {
                named.push_str(&format!(" and {more} more"));
            }
            self.problem(Some(seq), format!("{message} (the params claiming it now: {named})"));
        }
    }

    /// Reports entities the log says exist but the tables lack, and metric rows that vanished.
    pub fn finish(mut self) -> VerifyReport {
        let missing: Vec<_> = self
            .expected
            .iter()
            .filter(|(k, (_, after))| after.is_some() && !self.live_seen.contains_key(*k))
            .map(|((entity, id), (seq, _))| (*seq, format!("{entity} '{id}' written by event {seq} is missing")))
            .collect();
        for (seq, msg) in missing {
            self.problem(Some(seq), msg);
        }
        let vanished = [&mut self.expected_metrics, &mut self.expected_params].map(RowGroups::take_vanished);
        for (seq, message) in vanished.into_iter().flatten() {
            self.problem(Some(seq), message);
        }
        self.report.problems.sort_by_key(|p| p.seq.unwrap_or(i64::MAX));
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "0123456789abcdef0123456789abcdef";

    /// A chained log of `payloads`, one event each, about run [`RUN`].
    fn log(payloads: &[Payload]) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut events = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            let seq = i as i64 + 1;
            let payload = payload.to_canonical();
            let digest = sha256_hex(payload.as_bytes());
            let hash = chain_hash(&prev, seq, 1000 + seq, "tester", "log_batch", "run", RUN, &digest);
            events.push(AuditEvent {
                seq,
                time: 1000 + seq,
                actor: "tester".into(),
                action: "log_batch".into(),
                entity_type: "run".into(),
                entity_id: RUN.into(),
                payload,
                digest,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        events
    }

    fn param(key: &str, value: &str) -> ParamRow<'static> {
        ParamRow { run_id: RUN, key: Box::leak(key.into()), value: Box::leak(value.into()) }
    }

    /// The payload an older Cairn wrote for one param: an after-image.
    fn legacy_param(key: &str, value: &str) -> Payload {
        Payload::of(vec![Change {
            entity: entity::PARAM,
            id: child_id(RUN, key),
            after: Some(serde_json::json!({ "key": key, "run_id": RUN, "value": value })),
        }])
    }

    fn digested(params: &[ParamRow<'_>]) -> Payload {
        Payload { params: Some(params_digest(&mut params.to_vec())), ..Payload::default() }
    }

    /// Feeds the live params the way the store does: by digest per event where the log digested
    /// them, one by one otherwise.
    fn verify(events: &[AuditEvent], live: &[(i64, ParamRow<'_>)]) -> VerifyReport {
        let mut verifier = Verifier::new();
        for e in events {
            verifier.event(e);
        }
        let mut groups: BTreeMap<i64, Vec<ParamRow<'_>>> = BTreeMap::new();
        for (seq, row) in live {
            if verifier.params_digested_by(*seq) {
                groups.entry(*seq).or_default().push(row.clone());
            } else {
                let image = serde_json::json!({ "key": row.key, "run_id": row.run_id, "value": row.value });
                verifier.live_entity(entity::PARAM, &child_id(row.run_id, row.key), &image);
            }
        }
        for (seq, mut rows) in groups {
            let keys: Vec<String> = rows.iter().map(|r| child_id(r.run_id, r.key)).collect();
            verifier.live_params(seq, &params_digest(&mut rows), &keys);
        }
        verifier.finish()
    }

    #[test]
    fn params_recorded_either_way_verify_and_a_changed_value_is_named() {
        let events = log(&[legacy_param("lr", "0.1"), digested(&[param("epochs", "3"), param("seed", "7")])]);
        let honest = [(1, param("lr", "0.1")), (2, param("seed", "7")), (2, param("epochs", "3"))];
        let report = verify(&events, &honest);
        assert!(report.is_ok(), "{:?}", report.problems);

        let edited = [(1, param("lr", "0.1")), (2, param("epochs", "4")), (2, param("seed", "7"))];
        let report = verify(&events, &edited);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        let problem = &report.problems[0];
        assert_eq!(problem.seq, Some(2));
        assert!(problem.message.contains("params written by event 2 were altered"), "{}", problem.message);
        assert!(problem.message.contains(&format!("{RUN}/epochs")), "{}", problem.message);

        let legacy_edited = [(1, param("lr", "0.2")), (2, param("epochs", "3")), (2, param("seed", "7"))];
        let report = verify(&events, &legacy_edited);
        assert!(report.problems[0].message.contains("differs from what event 1 recorded"), "{:?}", report.problems);
    }

    #[test]
    fn digested_params_that_vanish_or_appear_are_reported() {
        let events = log(&[digested(&[param("epochs", "3")])]);
        let report = verify(&events, &[]);
        assert!(
            report.problems[0].message.contains("all 1 params written by event 1 are missing"),
            "{:?}",
            report.problems
        );

        let added = [(1, param("epochs", "3")), (1, param("extra", "x"))];
        let report = verify(&events, &added);
        assert!(report.problems[0].message.contains("2 rows now, 1 recorded"), "{:?}", report.problems);
    }

    #[test]
    fn a_purge_removes_digested_params_from_what_the_log_expects() {
        let purge = Payload::of(vec![Change { entity: entity::PARAM_ROWS, id: "1".into(), after: None }]);
        let events = log(&[digested(&[param("epochs", "3")]), purge]);
        let report = verify(&events, &[]);
        assert!(report.is_ok(), "{:?}", report.problems);
    }

    #[test]
    fn the_params_digest_ignores_order_and_covers_every_field() {
        let a = params_digest(&mut [param("a", "1"), param("b", "2")]);
        assert_eq!(a, params_digest(&mut [param("b", "2"), param("a", "1")]));
        assert_ne!(a, params_digest(&mut [param("a", "1"), param("b", "3")]));
        // Length prefixes keep ("ab", "1") and ("a", "b1") apart.
        assert_ne!(params_digest(&mut [param("ab", "1")]), params_digest(&mut [param("a", "b1")]));
        let parsed = Payload::parse(&digested(&[param("a", "1")]).to_canonical()).unwrap();
        assert_eq!(parsed.params.unwrap().count, 1);
    }
}
