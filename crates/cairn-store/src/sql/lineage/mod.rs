//! The lineage graph over SQL.
//!
//! Registered nodes and edges live in `lineage_nodes` / `lineage_edges`, predictions in
//! `predictions`; the rest of the graph is [`derived`] from the tracking tables when a query
//! reaches it. [`writes`] holds the write requests (each one audited event), [`graph`] the reads
//! (resolution, traversal as of a time, completeness), [`predictions`] the bulk ingest.

pub mod derived;
pub mod edges;
pub mod graph;
pub mod nodes;
pub mod overview;
pub mod predictions;
pub mod writes;

use async_trait::async_trait;
use cairn_core::audit::Verifier;
use cairn_core::lineage::{
    Completeness, Direction, Edge, IncompleteVersion, LineageHealth, LineageStore, MAX_TRAVERSAL_DEPTH, NewEdge,
    NewNode, NewPrediction, Node, NodeKind, NodeRef, OpenLineageEvent, PredictionBatchReport, PredictionTrace,
    ServingInterval, SliceSpec, Subgraph, TraversalQuery,
};
use cairn_core::model::{Actor, Millis};
use cairn_core::{Error, Result};

use crate::sql::SqlStore;
use crate::sql::db::Db;
use graph::View;

/// Hands the verifier every lineage row as stored (called from `audit::verify`).
pub fn verify_live(db: &mut dyn Db, verifier: &mut Verifier) -> Result<()> {
    writes::verify_live(db, verifier)?;
    predictions::verify_live(db, verifier)
}

fn check_depth(depth: u32) -> Result<u32> {
    if depth > MAX_TRAVERSAL_DEPTH {
        return Err(Error::invalid(format!("depth {depth} exceeds the maximum of {MAX_TRAVERSAL_DEPTH}")));
    }
    Ok(depth)
}

fn health(db: &mut dyn Db, as_of: Option<Millis>) -> Result<LineageHealth> {
    let until = as_of.unwrap_or(i64::MAX);
    let versions: Vec<NodeRef> = db
        .query(
            "SELECT r.name, mv.version FROM model_versions mv JOIN registered_models r ON r.model_pk = mv.model_pk \
             WHERE mv.creation_time <= $1 ORDER BY r.name, mv.version",
            &[until.into()],
        )?
        .into_iter()
        .map(|row| NodeRef::model_version(&row[0].clone().into_text()?, row[1].int()?))
        .collect::<Result<_>>()?;
    let mut complete = 0u64;
    let mut incomplete = Vec::new();
    for version in &versions {
        let found = graph::completeness(db, version, View::as_of(as_of))?;
        if found.complete {
            complete += 1;
        } else {
            incomplete.push(IncompleteVersion { model_version: version.clone(), missing: found.missing });
        }
    }
    let (predictions, flagged) = predictions::counts(db, until)?;
    let total = versions.len() as u64;
    Ok(LineageHealth {
        model_versions: total,
        model_versions_complete: complete,
        model_versions_complete_ratio: if total == 0 { 1.0 } else { complete as f64 / total as f64 },
        predictions,
        predictions_flagged: flagged,
        predictions_flagged_ratio: if predictions == 0 { 0.0 } else { flagged as f64 / predictions as f64 },
        incomplete,
        by_deployment: overview::by_deployment(db, until)?,
    })
}

#[async_trait]
impl LineageStore for SqlStore {
    async fn register_node(&self, actor: &Actor, node: NodeRef, new: NewNode) -> Result<Node> {
        writes::validate_new_node(&node, &new)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::register_node(db, tx, &actor, &node, &new)).await
    }

    async fn register_slice(&self, actor: &Actor, dataset: NodeRef, spec: SliceSpec) -> Result<Node> {
        let spec = spec.normalized()?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::register_slice(db, tx, &actor, &dataset, &spec)).await
    }

    async fn add_edge(&self, actor: &Actor, edge: NewEdge) -> Result<Edge> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::add_edge(db, tx, &actor, &edge)).await
    }

    async fn deploy(&self, actor: &Actor, name: &str, model_version: NodeRef, at: Option<Millis>) -> Result<Edge> {
        NodeRef::new(NodeKind::Deployment, name)?;
        let (actor, name) = (actor.clone(), name.to_owned());
        self.writer.write(move |db, tx| writes::deploy(db, tx, &actor, &name, &model_version, at)).await
    }

    async fn get_node(&self, node: &NodeRef, as_of: Option<Millis>) -> Result<Node> {
        let node = node.clone();
        self.read_consistent(move |db| graph::visible_node(db, &node, View::as_of(as_of))).await
    }

    async fn traverse(&self, query: TraversalQuery) -> Result<Subgraph> {
        let depth = check_depth(query.max_depth)?;
        self.read_consistent(move |db| {
            graph::traverse(db, &query.start, query.direction, depth, View::as_of(query.as_of))
        })
        .await
    }

    async fn log_predictions(
        &self,
        actor: &Actor,
        predictions: Vec<NewPrediction>,
        strict: bool,
    ) -> Result<PredictionBatchReport> {
        predictions::validate(&predictions)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| predictions::log(db, tx, &actor, &predictions, strict)).await
    }

    async fn trace_prediction(&self, prediction_id: &str, as_of: Option<Millis>) -> Result<PredictionTrace> {
        let id = prediction_id.to_owned();
        self.read_consistent(move |db| {
            let prediction = predictions::get(db, &id)?;
            if as_of.is_some_and(|t| t < prediction.recorded_at) {
                return Err(Error::not_found(format!("Prediction '{id}' was not recorded yet at that time")));
            }
            // Known facts as of the question; the deployment as it was when the prediction was made.
            let view = View { known_by: as_of, valid_at: Some(prediction.time) };
            let start = NodeRef { kind: NodeKind::Prediction, key: id.clone() };
            let lineage = graph::traverse(db, &start, Direction::Upstream, MAX_TRAVERSAL_DEPTH, view)?;
            let completeness = match &prediction.model_version {
                Some(version) => graph::completeness(db, version, view)?,
                None => Completeness { complete: false, missing: vec!["model_version".into()] },
            };
            Ok(PredictionTrace { prediction, completeness, lineage })
        })
        .await
    }

    async fn completeness(&self, model_version: &NodeRef, as_of: Option<Millis>) -> Result<Completeness> {
        if model_version.kind != NodeKind::ModelVersion {
            return Err(Error::invalid(format!("Completeness is defined for model versions, not {model_version}")));
        }
        let node = model_version.clone();
        self.read_consistent(move |db| graph::completeness(db, &node, View::as_of(as_of))).await
    }

    async fn serving_history(&self, deployment: Option<String>, as_of: Option<Millis>) -> Result<Vec<ServingInterval>> {
        self.read_consistent(move |db| overview::serving_history(db, deployment.as_deref(), as_of)).await
    }

    async fn lineage_health(&self, as_of: Option<Millis>) -> Result<LineageHealth> {
        self.read_consistent(move |db| health(db, as_of)).await
    }

    async fn ingest_openlineage(&self, actor: &Actor, event: OpenLineageEvent) -> Result<()> {
        let actor = actor.clone();
        self.writer.write(move |db, tx| writes::ingest_openlineage(db, tx, &actor, &event)).await
    }
}
