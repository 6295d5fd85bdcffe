//! The lineage graph over SQL. PLACEHOLDER being filled in this session.
#![allow(unused_variables)]

use async_trait::async_trait;
use cairn_core::lineage::{
    Completeness, Edge, LineageHealth, LineageStore, NewEdge, NewNode, NewPrediction, Node, NodeRef,
    OpenLineageEvent, PredictionBatchReport, PredictionTrace, SliceSpec, Subgraph, TraversalQuery,
};
use cairn_core::model::{Actor, Millis};
use cairn_core::{Error, Result};

use crate::sql::SqlStore;

fn pending(what: &str) -> Error {
    Error::internal(format!("{what} is not available yet"))
}

#[async_trait]
impl LineageStore for SqlStore {
    async fn register_node(&self, actor: &Actor, node: NodeRef, new: NewNode) -> Result<Node> {
        Err(pending("register_node"))
    }

    async fn register_slice(&self, actor: &Actor, dataset: NodeRef, spec: SliceSpec) -> Result<Node> {
        Err(pending("register_slice"))
    }

    async fn add_edge(&self, actor: &Actor, edge: NewEdge) -> Result<Edge> {
        Err(pending("add_edge"))
    }

    async fn deploy(&self, actor: &Actor, name: &str, model_version: NodeRef, at: Option<Millis>) -> Result<Edge> {
        Err(pending("deploy"))
    }

    async fn get_node(&self, node: &NodeRef, as_of: Option<Millis>) -> Result<Node> {
        Err(pending("get_node"))
    }

    async fn traverse(&self, query: TraversalQuery) -> Result<Subgraph> {
        Err(pending("traverse"))
    }

    async fn log_predictions(
        &self,
        actor: &Actor,
        predictions: Vec<NewPrediction>,
        strict: bool,
    ) -> Result<PredictionBatchReport> {
        Err(pending("log_predictions"))
    }

    async fn trace_prediction(&self, prediction_id: &str, as_of: Option<Millis>) -> Result<PredictionTrace> {
        Err(pending("trace_prediction"))
    }

    async fn completeness(&self, model_version: &NodeRef, as_of: Option<Millis>) -> Result<Completeness> {
        Err(pending("completeness"))
    }

    async fn lineage_health(&self) -> Result<LineageHealth> {
        Err(pending("lineage_health"))
    }

    async fn ingest_openlineage(&self, actor: &Actor, event: OpenLineageEvent) -> Result<()> {
        Err(pending("ingest_openlineage"))
    }
}
