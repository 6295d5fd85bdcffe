//! Reading the graph: resolving nodes (registered or derived from tracking data), the edges
//! around a node, traversals with a depth limit, as of a time, and lineage completeness.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cairn_core::lineage::{Completeness, Direction, Edge, Node, NodeKind, NodeRef, Subgraph};
use cairn_core::model::Millis;
use cairn_core::{Error, Result};
use serde_json::Map;

use crate::sql::db::Db;
use crate::sql::lineage::{derived, edges, nodes, predictions};

/// How many predictions a traversal lists below one model version or deployment; a busy
/// deployment has millions, which belong in a trace of one prediction, not in a graph.
pub const PREDICTION_FANOUT: u64 = 100;

/// Which part of history a read sees: what had been recorded by `known_by`, with time-bound
/// edges as they held at `valid_at`. "As of T" sets both to T; a prediction's trace looks at
/// the deployment as it was when the prediction was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    pub known_by: Option<Millis>,
    pub valid_at: Option<Millis>,
}

impl View {
    /// The graph as it stood at `as_of` (now when `None`).
    pub fn as_of(as_of: Option<Millis>) -> Self {
        View { known_by: as_of, valid_at: as_of }
    }

    fn sees_node(&self, node: &Node) -> bool {
        self.known_by.is_none_or(|t| node.recorded_at <= t)
    }

    fn sees_edge(&self, edge: &Edge) -> bool {
        self.known_by.is_none_or(|t| edge.recorded_at <= t)
            && match self.valid_at {
                Some(at) => edge.valid_from.is_none_or(|from| from <= at) && edge.valid_to.is_none_or(|to| at < to),
                // Now: a closed interval no longer holds.
                None => edge.valid_to.is_none(),
            }
    }
}

/// The node `node` as stored or derived, whatever the view.
pub fn resolve(db: &mut dyn Db, node: &NodeRef) -> Result<Option<Node>> {
    if node.kind == NodeKind::Prediction {
        return predictions::node(db, &node.key);
    }
    // Tracking entities are described by the tracking tables, which stay current (a run
    // finishes, a model gets its files); a registered row for them is only an anchor.
    let tracking_first = matches!(node.kind, NodeKind::Run | NodeKind::Model | NodeKind::ModelVersion);
    if tracking_first && let Some(found) = derived::node(db, node)? {
        return Ok(Some(found));
    }
    if let Some(row) = nodes::find(db, node)? {
        return Ok(Some(row.to_node()?));
    }
    if tracking_first { Ok(None) } else { derived::node(db, node) }
}

/// The node as the view sees it, or not found.
pub fn visible_node(db: &mut dyn Db, node: &NodeRef, view: View) -> Result<Node> {
    match resolve(db, node)? {
        Some(found) if view.sees_node(&found) => Ok(found),
        Some(_) => Err(Error::not_found(format!("Lineage node {node} was not recorded yet at that time"))),
        None => Err(Error::not_found(format!("Lineage node {node} does not exist"))),
    }
}

/// Every edge around `node` in `direction` (registered and derived), and whether some were
/// left out (prediction fan-out).
pub fn neighbours(db: &mut dyn Db, node: &NodeRef, direction: Direction) -> Result<(Vec<Edge>, bool)> {
    let upstream = direction == Direction::Upstream;
    let mut out = if upstream { derived::upstream(db, node)? } else { derived::downstream(db, node)? };
    let mut truncated = false;
    if let Some(row) = nodes::find(db, node)? {
        for (edge, other) in edges::around(db, row.node_pk, upstream)? {
            let (source, target) = if upstream { (node.clone(), other) } else { (other, node.clone()) };
            out.push(edge.to_edge(source, target)?);
        }
        if !upstream {
            let (made, more) = predictions::made_by(db, row.node_pk, node, PREDICTION_FANOUT)?;
            out.extend(made);
            truncated |= more;
        }
    }
    if upstream && node.kind == NodeKind::Prediction {
        out.extend(predictions::upstream(db, &node.key)?);
    }
    Ok((out, truncated))
}

/// Walks from `start` in `direction` up to `max_depth` edges away, seeing what `view` sees.
pub fn traverse(
    db: &mut dyn Db,
    start: &NodeRef,
    direction: Direction,
    max_depth: u32,
    view: View,
) -> Result<Subgraph> {
    let first = visible_node(db, start, view)?;
    let mut graph = Subgraph::default();
    let mut seen: BTreeMap<NodeRef, ()> = BTreeMap::new();
    let mut edge_keys: BTreeSet<(NodeRef, &'static str, NodeRef, Option<Millis>)> = BTreeSet::new();
    seen.insert(start.clone(), ());
    graph.nodes.push(first);
    let mut frontier: VecDeque<(NodeRef, u32)> = VecDeque::from([(start.clone(), 0)]);
    while let Some((current, depth)) = frontier.pop_front() {
        let (around, truncated) = neighbours(db, &current, direction)?;
        graph.truncated |= truncated;
        for edge in around.into_iter().filter(|e| view.sees_edge(e)) {
            let other = if direction == Direction::Upstream { edge.target.clone() } else { edge.source.clone() };
            if depth >= max_depth && !seen.contains_key(&other) {
                // A visible edge beyond the limit: the answer is incomplete.
                graph.truncated = true;
                continue;
            }
            if !seen.contains_key(&other) {
                let node = match resolve(db, &other)? {
                    Some(node) if view.sees_node(&node) => node,
                    Some(_) => continue,
                    // An edge to something no table describes (say, a run that was purged):
                    // keep the reference so the chain stays visible.
                    None => Node {
                        node: other.clone(),
                        label: other.key.clone(),
                        digest: None,
                        attributes: Map::new(),
                        recorded_at: edge.recorded_at,
                    },
                };
                seen.insert(other.clone(), ());
                graph.nodes.push(node);
                frontier.push_back((other.clone(), depth + 1));
            }
            let key = (edge.source.clone(), edge.kind.as_str(), edge.target.clone(), edge.valid_from);
            if edge_keys.insert(key) {
                graph.edges.push(edge);
            }
        }
    }
    Ok(graph)
}

/// Whether `from` reaches `to` by following edges upstream (used to refuse cycles).
pub fn reaches(db: &mut dyn Db, from: &NodeRef, to: &NodeRef) -> Result<bool> {
    let mut seen: BTreeSet<NodeRef> = BTreeSet::from([from.clone()]);
    let mut frontier = vec![from.clone()];
    while let Some(current) = frontier.pop() {
        if &current == to {
            return Ok(true);
        }
        for edge in neighbours(db, &current, Direction::Upstream)?.0 {
            if seen.insert(edge.target.clone()) {
                frontier.push(edge.target);
            }
        }
    }
    Ok(false)
}

/// How far completeness looks upstream of a model version.
const COMPLETENESS_DEPTH: u32 = 16;

/// Which lineage facts `model_version` can prove as the view sees it: a training run, datasets
/// with digests, a code version and an environment.
pub fn completeness(db: &mut dyn Db, model_version: &NodeRef, view: View) -> Result<Completeness> {
    let graph = traverse(db, model_version, Direction::Upstream, COMPLETENESS_DEPTH, view)?;
    let upstream: Vec<&Node> = graph.nodes.iter().filter(|n| &n.node != model_version).collect();
    let has = |kind: NodeKind| upstream.iter().any(|n| n.node.kind == kind);
    let mut missing = Vec::new();
    if !has(NodeKind::Run) {
        missing.push("training_run".to_owned());
    }
    let data: Vec<&&Node> =
        upstream.iter().filter(|n| matches!(n.node.kind, NodeKind::Dataset | NodeKind::Slice)).collect();
    if data.is_empty() {
        missing.push("dataset".to_owned());
    }
    for node in data {
        if node.digest.as_deref().is_none_or(str::is_empty) {
            missing.push(format!("dataset_digest:{}", node.node));
        }
    }
    if !has(NodeKind::Code) {
        missing.push("code_version".to_owned());
    }
    if !has(NodeKind::Environment) {
        missing.push("environment".to_owned());
    }
    Ok(Completeness { complete: missing.is_empty(), missing })
}
