//! Predictions: bulk ingest from serving systems, their place in the graph, and verification.
//!
//! A batch is written in one transaction with one audit event, whose payload carries the count
//! and digest of the rows it inserted (like metric points), so a batch of ten thousand does not
//! make a ten-thousand-entry payload, yet any later edit of a row breaks verification.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cairn_core::audit::{Change, Payload, Verifier, canonical_json, entity, sha256_hex};
use cairn_core::lineage::{
    Completeness, Edge, EdgeKind, MAX_PREDICTION_BATCH, NewPrediction, Node, NodeKind, NodeRef, Prediction,
    PredictionBatchReport,
};
use cairn_core::model::{Actor, Millis};
use cairn_core::{Error, Result};
use serde_json::{Map, Value, json};

use crate::sql::audit::NewEvent;
use crate::sql::common::{IN_LIST_CHUNK, next_id, placeholders};
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::lineage::graph::{self, View};
use crate::sql::lineage::{edges, nodes, writes};
use crate::sql::writer::WriteTx;

/// The longest prediction id or digest accepted.
const MAX_ID_LEN: usize = 256;

/// A row of `predictions` as stored.
#[derive(Debug, Clone, PartialEq)]
struct PredictionRow {
    prediction_id: String,
    deployment_pk: Option<i64>,
    model_version_pk: Option<i64>,
    input_digest: String,
    output_digest: Option<String>,
    time: i64,
    recorded_at: i64,
    lineage_complete: bool,
}

const COLUMNS: &str =
    "prediction_id, deployment_pk, model_version_pk, input_digest, output_digest, time, recorded_at, lineage_complete";

impl PredictionRow {
    fn from_row(row: &Row) -> Result<Self> {
        let col = |i: usize| row.get(i).cloned().unwrap_or(SqlValue::Null);
        Ok(PredictionRow {
            prediction_id: col(0).into_text()?,
            deployment_pk: col(1).opt_int()?,
            model_version_pk: col(2).opt_int()?,
            input_digest: col(3).into_text()?,
            output_digest: match col(4) {
                SqlValue::Null => None,
                v => Some(v.into_text()?),
            },
            time: col(5).int()?,
            recorded_at: col(6).int()?,
            lineage_complete: col(7).int()? != 0,
        })
    }

    /// The canonical text hashed for the audit log.
    fn image(&self) -> String {
        canonical_json(&json!({
            "prediction_id": self.prediction_id,
            "deployment_pk": self.deployment_pk,
            "model_version_pk": self.model_version_pk,
            "input_digest": self.input_digest,
            "output_digest": self.output_digest,
            "time": self.time,
            "recorded_at": self.recorded_at,
            "lineage_complete": self.lineage_complete,
        }))
    }
}

/// The audit image of a set of rows: their count and a digest independent of their order.
fn rows_image(rows: &[PredictionRow]) -> Value {
    let mut images: Vec<String> = rows.iter().map(PredictionRow::image).collect();
    images.sort_unstable();
    json!({ "count": images.len(), "digest": sha256_hex(images.join("\n").as_bytes()) })
}

fn find(db: &mut dyn Db, prediction_id: &str) -> Result<Option<PredictionRow>> {
    db.query(&format!("SELECT {COLUMNS} FROM predictions WHERE prediction_id = $1"), &[prediction_id.into()])?
        .first()
        .map(PredictionRow::from_row)
        .transpose()
}

fn node_ref(db: &mut dyn Db, pk: Option<i64>) -> Result<Option<NodeRef>> {
    pk.map(|pk| nodes::by_pk(db, pk).and_then(|row| row.to_node()).map(|n| n.node)).transpose()
}

fn to_domain(db: &mut dyn Db, row: &PredictionRow) -> Result<Prediction> {
    Ok(Prediction {
        prediction_id: row.prediction_id.clone(),
        deployment: node_ref(db, row.deployment_pk)?.map(|n| n.key),
        model_version: node_ref(db, row.model_version_pk)?,
        input_digest: row.input_digest.clone(),
        output_digest: row.output_digest.clone(),
        time: row.time,
        recorded_at: row.recorded_at,
        lineage_complete: row.lineage_complete,
    })
}

/// A stored prediction, or not found.
pub fn get(db: &mut dyn Db, prediction_id: &str) -> Result<Prediction> {
    let row = find(db, prediction_id)?
        .ok_or_else(|| Error::not_found(format!("Prediction '{prediction_id}' does not exist")))?;
    to_domain(db, &row)
}

/// The graph node of a prediction.
pub fn node(db: &mut dyn Db, prediction_id: &str) -> Result<Option<Node>> {
    let Some(row) = find(db, prediction_id)? else { return Ok(None) };
    let mut attributes = Map::new();
    attributes.insert("time".into(), json!(row.time));
    attributes.insert("output_digest".into(), json!(row.output_digest));
    attributes.insert("lineage_complete".into(), json!(row.lineage_complete));
    Ok(Some(Node {
        node: NodeRef { kind: NodeKind::Prediction, key: row.prediction_id.clone() },
        label: row.prediction_id,
        digest: Some(row.input_digest),
        attributes,
        recorded_at: row.recorded_at,
    }))
}

/// A prediction's edges: generated by its deployment, derived from the model version that
/// made it.
pub fn upstream(db: &mut dyn Db, prediction_id: &str) -> Result<Vec<Edge>> {
    let Some(row) = find(db, prediction_id)? else { return Ok(Vec::new()) };
    let me = NodeRef { kind: NodeKind::Prediction, key: prediction_id.to_owned() };
    let mut out = Vec::new();
    let plain = |kind, target| Edge {
        source: me.clone(),
        kind,
        target,
        recorded_at: row.recorded_at,
        valid_from: None,
        valid_to: None,
    };
    if let Some(deployment) = node_ref(db, row.deployment_pk)? {
        out.push(plain(EdgeKind::WasGeneratedBy, deployment));
    }
    if let Some(version) = node_ref(db, row.model_version_pk)? {
        out.push(plain(EdgeKind::WasDerivedFrom, version));
    }
    Ok(out)
}

/// Predictions made by the deployment or model version stored as `node_pk`, at most `limit`,
/// and whether there were more.
pub fn made_by(db: &mut dyn Db, node_pk: i64, node: &NodeRef, limit: u64) -> Result<(Vec<Edge>, bool)> {
    let (column, kind) = match node.kind {
        NodeKind::Deployment => ("deployment_pk", EdgeKind::WasGeneratedBy),
        NodeKind::ModelVersion => ("model_version_pk", EdgeKind::WasDerivedFrom),
        _ => return Ok((Vec::new(), false)),
    };
    // `column` is one of two constants above.
    let rows = db.query(
        &format!(
            "SELECT prediction_id, recorded_at FROM predictions WHERE {column} = $1 ORDER BY prediction_pk LIMIT $2"
        ),
        &[node_pk.into(), i64::try_from(limit + 1).unwrap_or(i64::MAX).into()],
    )?;
    let more = rows.len() as u64 > limit;
    let edges = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            Ok(Edge {
                source: NodeRef { kind: NodeKind::Prediction, key: r[0].clone().into_text()? },
                kind,
                target: node.clone(),
                recorded_at: r[1].int()?,
                valid_from: None,
                valid_to: None,
            })
        })
        .collect::<Result<_>>()?;
    Ok((edges, more))
}

fn check_text(what: &str, id: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "Prediction '{id}': {what} must be 1 to {MAX_ID_LEN} characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a batch before anything is stored.
pub fn validate(batch: &[NewPrediction]) -> Result<()> {
    if batch.is_empty() {
        return Err(Error::invalid("A prediction batch needs at least one prediction"));
    }
    if batch.len() > MAX_PREDICTION_BATCH {
        return Err(Error::invalid(format!(
            "A prediction batch may hold at most {MAX_PREDICTION_BATCH} predictions; got {}",
            batch.len()
        )));
    }
    let mut ids = HashSet::with_capacity(batch.len());
    for p in batch {
        check_text("prediction_id", &p.prediction_id, &p.prediction_id)?;
        check_text("input_digest", &p.prediction_id, &p.input_digest)?;
        if let Some(output) = &p.output_digest {
            check_text("output_digest", &p.prediction_id, output)?;
        }
        match (&p.deployment, &p.model_version) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(Error::invalid(format!(
                    "Prediction '{}' must name exactly one of deployment and model_version",
                    p.prediction_id
                )));
            }
            _ => {}
        }
        if !ids.insert(p.prediction_id.as_str()) {
            return Err(Error::invalid(format!("Prediction '{}' appears twice in the batch", p.prediction_id)));
        }
    }
    Ok(())
}

/// Ids of `batch` that are already stored.
fn existing(db: &mut dyn Db, batch: &[NewPrediction]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for chunk in batch.chunks(IN_LIST_CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|p| p.prediction_id.as_str().into()).collect();
        let sql =
            format!("SELECT prediction_id FROM predictions WHERE prediction_id IN ({})", placeholders(1, params.len()));
        for row in db.query(&sql, &params)? {
            found.push(row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?);
        }
    }
    Ok(found)
}

/// Where one prediction points: its deployment (if any) and the model version that made it.
#[derive(Clone)]
struct Target {
    deployment_pk: Option<i64>,
    model_version: NodeRef,
    model_version_pk: i64,
}

/// A deployment's serving intervals, read once per batch: the model version each `served` edge
/// points to, with the interval in which it held.
struct Serving {
    deployment_pk: i64,
    intervals: Vec<(Option<Millis>, Option<Millis>, NodeRef, i64)>,
}

impl Serving {
    fn load(db: &mut dyn Db, deployment_pk: i64) -> Result<Self> {
        let intervals = edges::around(db, deployment_pk, true)?
            .into_iter()
            .filter(|(edge, _)| edge.kind == EdgeKind::Served.as_str())
            .map(|(edge, version)| (edge.valid_from, edge.valid_to, version, edge.target_pk))
            .collect();
        Ok(Serving { deployment_pk, intervals })
    }

    /// The model version the deployment served at `at`.
    fn at(&self, name: &str, at: Millis) -> Result<(NodeRef, i64)> {
        self.intervals
            .iter()
            .find(|(from, to, _, _)| from.is_none_or(|from| from <= at) && to.is_none_or(|to| at < to))
            .map(|(_, _, version, pk)| (version.clone(), *pk))
            .ok_or_else(|| Error::invalid(format!("Deployment '{name}' served no model version at {at}")))
    }
}

/// Stores a batch (validated with [`validate`]) in the current transaction.
pub fn log(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    batch: &[NewPrediction],
    strict: bool,
) -> Result<PredictionBatchReport> {
    let taken = existing(db, batch)?;
    if !taken.is_empty() {
        let shown: Vec<&str> = taken.iter().take(10).map(String::as_str).collect();
        return Err(Error::AlreadyExists(format!(
            "{} prediction id(s) are already stored, e.g. {}; nothing from this batch was stored",
            taken.len(),
            shown.join(", ")
        )));
    }
    let now = tx.now();
    let mut changes: Vec<Change> = Vec::new();
    let mut deployments: BTreeMap<String, Serving> = BTreeMap::new();
    let mut versions: BTreeMap<String, (NodeRef, i64)> = BTreeMap::new();
    let mut targets = Vec::with_capacity(batch.len());
    for p in batch {
        let time = p.time.unwrap_or(now);
        let target = match (&p.deployment, &p.model_version) {
            (Some(name), _) => {
                if !deployments.contains_key(name) {
                    let node = NodeRef::new(NodeKind::Deployment, name.clone())?;
                    let row = nodes::find(db, &node)?
                        .ok_or_else(|| Error::not_found(format!("Deployment '{name}' does not exist")))?;
                    deployments.insert(name.clone(), Serving::load(db, row.node_pk)?);
                }
                let serving = &deployments[name];
                let (model_version, model_version_pk) = serving.at(name, time)?;
                Target { deployment_pk: Some(serving.deployment_pk), model_version, model_version_pk }
            }
            (None, Some(version)) => {
                if let Some((node, pk)) = versions.get(version) {
                    Target { deployment_pk: None, model_version: node.clone(), model_version_pk: *pk }
                } else {
                    let key = version.strip_prefix("model-version:").unwrap_or(version);
                    let node = NodeRef::new(NodeKind::ModelVersion, key)?;
                    let (pk, change) = writes::anchor(db, tx, &node)?;
                    changes.extend(change);
                    versions.insert(version.clone(), (node.clone(), pk));
                    Target { deployment_pk: None, model_version: node, model_version_pk: pk }
                }
            }
            (None, None) => return Err(Error::invalid("a prediction names neither deployment nor model version")),
        };
        targets.push((time, target));
    }

    let mut verdicts: BTreeMap<NodeRef, Completeness> = BTreeMap::new();
    for (_, target) in &targets {
        if !verdicts.contains_key(&target.model_version) {
            let verdict = graph::completeness(db, &target.model_version, View::default())?;
            verdicts.insert(target.model_version.clone(), verdict);
        }
    }
    if strict {
        let incomplete: BTreeSet<String> = verdicts
            .iter()
            .filter(|(_, v)| !v.complete)
            .map(|(node, v)| format!("{node} lacks {}", v.missing.join(", ")))
            .collect();
        if !incomplete.is_empty() {
            let flagged = targets.iter().filter(|(_, t)| !verdicts[&t.model_version].complete).count();
            return Err(Error::invalid(format!(
                "Strict mode: {flagged} prediction(s) come from model versions with incomplete lineage ({}); \
                 nothing from this batch was stored",
                incomplete.into_iter().collect::<Vec<_>>().join("; ")
            )));
        }
    }

    let seq = tx.seq();
    let first_pk = next_id(db, "predictions", "prediction_pk", 1)?;
    let mut rows = Vec::with_capacity(batch.len());
    let mut report = PredictionBatchReport::default();
    for (p, (time, target)) in batch.iter().zip(&targets) {
        let complete = verdicts[&target.model_version].complete;
        if !complete {
            report.flagged.push(p.prediction_id.clone());
        }
        rows.push(PredictionRow {
            prediction_id: p.prediction_id.clone(),
            deployment_pk: target.deployment_pk,
            model_version_pk: Some(target.model_version_pk),
            input_digest: p.input_digest.clone(),
            output_digest: p.output_digest.clone(),
            time: *time,
            recorded_at: now,
            lineage_complete: complete,
        });
    }
    insert_rows(db, first_pk, seq, &rows)?;
    report.accepted = rows.len() as u64;
    changes.push(Change { entity: entity::PREDICTION_ROWS, id: seq.to_string(), after: Some(rows_image(&rows)) });
    let id = seq.to_string();
    tx.append(
        db,
        NewEvent {
            actor: &actor.0,
            action: "log_predictions",
            entity_type: entity::PREDICTION_ROWS,
            entity_id: &id,
            payload: Payload::of(changes),
        },
    )?;
    Ok(report)
}

/// Rows per multi-row `INSERT`: ten parameters each keeps a statement well under both engines'
/// parameter limits, and one round trip per chunk rather than per row is what makes a batch of
/// thousands cheap on PostgreSQL.
const INSERT_CHUNK: usize = 500;

/// Inserts `rows` with consecutive keys from `first_pk`.
fn insert_rows(db: &mut dyn Db, first_pk: i64, seq: i64, rows: &[PredictionRow]) -> Result<()> {
    const COLUMNS_PER_ROW: usize = 10;
    for (chunk_index, chunk) in rows.chunks(INSERT_CHUNK).enumerate() {
        let mut values = Vec::with_capacity(chunk.len());
        let mut params: Vec<SqlValue> = Vec::with_capacity(chunk.len() * COLUMNS_PER_ROW);
        for (i, row) in chunk.iter().enumerate() {
            values.push(format!("({})", placeholders(i * COLUMNS_PER_ROW + 1, COLUMNS_PER_ROW)));
            let pk = first_pk + (chunk_index * INSERT_CHUNK + i) as i64;
            params.extend([
                pk.into(),
                row.prediction_id.as_str().into(),
                row.deployment_pk.into(),
                row.model_version_pk.into(),
                row.input_digest.as_str().into(),
                row.output_digest.clone().into(),
                row.time.into(),
                row.recorded_at.into(),
                i64::from(row.lineage_complete).into(),
                seq.into(),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO predictions (prediction_pk, prediction_id, deployment_pk, model_version_pk, input_digest, \
                 output_digest, time, recorded_at, lineage_complete, seq) VALUES {}",
                values.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

/// Counts of the predictions recorded by `until` and of the flagged ones among them.
pub fn counts(db: &mut dyn Db, until: Millis) -> Result<(u64, u64)> {
    let rows = db.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN lineage_complete = 0 THEN 1 ELSE 0 END), 0) FROM predictions \
         WHERE recorded_at <= $1",
        &[until.into()],
    )?;
    let row = rows.first().ok_or_else(|| Error::internal("COUNT returned no row"))?;
    let count = |v: &SqlValue| v.int().map(|n| u64::try_from(n).unwrap_or(0));
    Ok((count(&row[0])?, count(&row[1])?))
}

/// Hands the verifier the image of every batch's rows as they are now.
pub fn verify_live(db: &mut dyn Db, verifier: &mut Verifier) -> Result<()> {
    let seqs: Vec<i64> = db
        .query("SELECT DISTINCT seq FROM predictions ORDER BY seq", &[])?
        .iter()
        .map(|r| Ok(r[0].int()?))
        .collect::<Result<_>>()?;
    for seq in seqs {
        let rows: Vec<PredictionRow> = db
            .query(&format!("SELECT {COLUMNS} FROM predictions WHERE seq = $1"), &[seq.into()])?
            .iter()
            .map(PredictionRow::from_row)
            .collect::<Result<_>>()?;
        verifier.live_entity(entity::PREDICTION_ROWS, &seq.to_string(), &rows_image(&rows));
    }
    Ok(())
}
