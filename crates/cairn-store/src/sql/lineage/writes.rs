//! Writing the graph: registering nodes, slices and edges, deployments, and OpenLineage events.
//! Each public function is one write request: it appends exactly one audit event.

use cairn_core::audit::{Change, Payload, entity};
use cairn_core::lineage::{
    Edge, EdgeKind, NewEdge, NewNode, Node, NodeKind, NodeRef, OpenLineageDataset, OpenLineageEvent, SliceSpec,
    slice_digest,
};
use cairn_core::model::{Actor, Millis};
use cairn_core::{Error, Result};
use serde_json::{Map, Value, json};

use crate::sql::audit::NewEvent;
use crate::sql::db::Db;
use crate::sql::lineage::edges::{self, EdgeRow};
use crate::sql::lineage::graph;
use crate::sql::lineage::nodes::{self, NodeRow, Registered};
use crate::sql::writer::WriteTx;

/// The longest label accepted.
const MAX_LABEL_LEN: usize = 1000;
/// The largest attributes object accepted, as JSON text.
const MAX_ATTRIBUTES_LEN: usize = 64 * 1024;

fn append(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    action: &str,
    subject: &str,
    changes: Vec<Change>,
) -> Result<()> {
    tx.append(
        db,
        NewEvent {
            actor: &actor.0,
            action,
            entity_type: entity::LINEAGE_NODE,
            entity_id: subject,
            payload: Payload::of(changes),
        },
    )
}

/// The stored row of a node that an edge or prediction names, creating an anchor row for a
/// tracking entity (run, logged model, model version) or a derived node (an MLflow dataset, a
/// code version from tags) on first use. Returns the change to audit when a row was written.
pub fn anchor(db: &mut dyn Db, tx: &WriteTx, node: &NodeRef) -> Result<(i64, Option<Change>)> {
    if let Some(row) = nodes::find(db, node)? {
        return Ok((row.node_pk, None));
    }
    let found =
        graph::resolve(db, node)?.ok_or_else(|| Error::not_found(format!("Lineage node {node} does not exist")))?;
    // Anchors carry no digest or attributes: those of tracking entities are read live from the
    // tracking tables, and an anchor must never contradict them.
    let mut marker = Map::new();
    marker.insert("anchor".into(), json!(true));
    match nodes::register(db, tx, node, &found.label, None, &marker)? {
        Registered::Created(row) => Ok((row.node_pk, Some(row.change()))),
        Registered::Existing(row) => Ok((row.node_pk, None)),
    }
}

/// Which kinds `register_node` accepts: tracking entities come from tracking, slices from
/// `register_slice` and predictions from batches.
fn registrable(kind: NodeKind) -> bool {
    matches!(kind, NodeKind::Dataset | NodeKind::Code | NodeKind::Environment | NodeKind::Deployment | NodeKind::Run)
}

/// Checks a node's label and attributes.
pub fn validate_new_node(node: &NodeRef, new: &NewNode) -> Result<()> {
    if !registrable(node.kind) {
        let how = match node.kind {
            NodeKind::Slice => "register slices through the slices endpoint",
            NodeKind::Prediction => "log predictions through the predictions endpoint",
            _ => "they come from tracking (runs, logged models, the model registry)",
        };
        return Err(Error::invalid(format!(
            "Nodes of kind {} cannot be registered directly: {how}",
            node.kind.as_str()
        )));
    }
    if new.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_LEN || l.chars().any(char::is_control)) {
        return Err(Error::invalid(format!(
            "A node label must be at most {MAX_LABEL_LEN} characters, without control characters"
        )));
    }
    if let Some(digest) = &new.digest
        && (digest.is_empty()
            || digest.len() > 256
            || !digest.chars().all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-'))
    {
        return Err(Error::invalid(format!(
            "Digest '{digest}' is not a digest (hex, optionally prefixed like sha256:)"
        )));
    }
    let size = serde_json::to_string(&new.attributes).map_or(usize::MAX, |s| s.len());
    if size > MAX_ATTRIBUTES_LEN {
        return Err(Error::invalid(format!(
            "Node attributes of {size} bytes exceed the limit of {MAX_ATTRIBUTES_LEN}"
        )));
    }
    Ok(())
}

/// `register_node`: one node, idempotent for identical content.
pub fn register_node(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, node: &NodeRef, new: &NewNode) -> Result<Node> {
    if node.kind == NodeKind::Run && graph::resolve(db, node)?.is_some() && nodes::find(db, node)?.is_none() {
        return Err(Error::AlreadyExists(format!(
            "Run {} is a tracking run; its lineage is derived from it",
            node.key
        )));
    }
    let label = new.label.clone().unwrap_or_else(|| node.key.clone());
    let registered = nodes::register(db, tx, node, &label, new.digest.as_deref(), &new.attributes)?;
    let row = registered.row().clone();
    if let Registered::Created(row) = &registered {
        append(db, tx, actor, "register_lineage_node", &node.to_string(), vec![row.change()])?;
    } else {
        append(db, tx, actor, "confirm_lineage_node", &node.to_string(), Vec::new())?;
    }
    row.to_node()
}

/// `register_slice`: the slice node (keyed by its digest) and its derivation from the dataset.
pub fn register_slice(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    dataset: &NodeRef,
    spec: &SliceSpec,
) -> Result<Node> {
    if dataset.kind != NodeKind::Dataset {
        return Err(Error::invalid(format!("A slice is taken of a dataset version, not of {dataset}")));
    }
    let data = graph::resolve(db, dataset)?
        .ok_or_else(|| Error::not_found(format!("Lineage node {dataset} does not exist")))?;
    let digest = data.digest.clone().ok_or_else(|| {
        Error::invalid(format!("Dataset version {dataset} has no content digest, so a slice of it cannot be pinned"))
    })?;
    let spec = spec.clone().normalized()?;
    let slice_key = slice_digest(&digest, &spec)?;
    let slice = NodeRef::new(NodeKind::Slice, slice_key.clone())?;
    let mut attributes = Map::new();
    attributes.insert("dataset".into(), json!(dataset.to_string()));
    attributes.insert("dataset_digest".into(), json!(digest));
    attributes.insert("spec".into(), serde_json::to_value(&spec).map_err(Error::internal)?);
    let label = format!("slice of {}", data.label);
    let mut changes = Vec::new();
    let registered = nodes::register(db, tx, &slice, &label, Some(&slice_key), &attributes)?;
    if let Registered::Created(row) = &registered {
        changes.push(row.change());
    }
    let slice_pk = registered.row().node_pk;
    let (dataset_pk, anchored) = anchor(db, tx, dataset)?;
    changes.extend(anchored);
    if edges::find_timeless(db, slice_pk, EdgeKind::WasDerivedFrom, dataset_pk)?.is_none() {
        let edge = edges::insert(db, tx, slice_pk, EdgeKind::WasDerivedFrom, dataset_pk, None)?;
        changes.push(edge.change(&slice.to_string(), &dataset.to_string()));
    }
    append(db, tx, actor, "register_slice", &slice.to_string(), changes)?;
    registered.row().to_node()
}

/// Checks that an edge of `kind` may join nodes of these kinds, as PROV's relations allow.
fn check_edge_kinds(edge: &NewEdge) -> Result<()> {
    let (s, t) = (edge.source.kind, edge.target.kind);
    let entity = |k: NodeKind| !k.is_activity();
    let ok = match edge.kind {
        EdgeKind::Used => s.is_activity() && entity(t) && t != NodeKind::Prediction,
        EdgeKind::WasGeneratedBy => entity(s) && t.is_activity(),
        EdgeKind::WasDerivedFrom => entity(s) && (entity(t) || t == NodeKind::Run),
        EdgeKind::WasInformedBy => s == NodeKind::Run && t == NodeKind::Run,
        EdgeKind::Served => {
            return Err(Error::invalid(
                "Served edges are time-bound: point a deployment at a model version with the deployments endpoint",
            ));
        }
    };
    if !ok {
        return Err(Error::invalid(format!(
            "An edge {} -{}-> {} does not make sense: {} joins {}",
            edge.source,
            edge.kind.as_str(),
            edge.target,
            edge.kind.as_str(),
            match edge.kind {
                EdgeKind::Used => "an activity (run, deployment) to the entity it read",
                EdgeKind::WasGeneratedBy => "an entity to the activity (run) that produced it",
                EdgeKind::WasInformedBy => "a run to the run it re-ran or followed",
                _ => "an entity to the entity or run it was made from",
            }
        )));
    }
    Ok(())
}

/// `add_edge`: both ends must exist; an edge closing a cycle is refused; an identical edge is
/// confirmed rather than duplicated.
pub fn add_edge(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, edge: &NewEdge) -> Result<Edge> {
    check_edge_kinds(edge)?;
    if edge.source == edge.target {
        return Err(Error::invalid(format!("An edge from {} to itself would be a cycle", edge.source)));
    }
    for end in [&edge.source, &edge.target] {
        if graph::resolve(db, end)?.is_none() {
            return Err(Error::not_found(format!("Lineage node {end} does not exist")));
        }
    }
    if graph::reaches(db, &edge.target, &edge.source)? {
        return Err(Error::invalid(format!(
            "The edge {} -{}-> {} would close a cycle: {} already depends on {}",
            edge.source,
            edge.kind.as_str(),
            edge.target,
            edge.target,
            edge.source
        )));
    }
    let mut changes = Vec::new();
    let (source_pk, a) = anchor(db, tx, &edge.source)?;
    let (target_pk, b) = anchor(db, tx, &edge.target)?;
    changes.extend(a.into_iter().chain(b));
    let row = match edges::find_timeless(db, source_pk, edge.kind, target_pk)? {
        Some(row) => row,
        None => {
            let row = edges::insert(db, tx, source_pk, edge.kind, target_pk, None)?;
            changes.push(row.change(&edge.source.to_string(), &edge.target.to_string()));
            row
        }
    };
    append(db, tx, actor, "add_lineage_edge", &edge.source.to_string(), changes)?;
    row.to_edge(edge.source.clone(), edge.target.clone())
}

/// `deploy`: the deployment now serves `model_version`; the interval of the version it served
/// before ends at the same moment.
pub fn deploy(
    db: &mut dyn Db,
    tx: &mut WriteTx,
    actor: &Actor,
    name: &str,
    model_version: &NodeRef,
    at: Option<Millis>,
) -> Result<Edge> {
    if model_version.kind != NodeKind::ModelVersion {
        return Err(Error::invalid(format!("A deployment serves a model version, not {model_version}")));
    }
    let deployment = NodeRef::new(NodeKind::Deployment, name)?;
    let at = at.unwrap_or(tx.now());
    let mut changes = Vec::new();
    // A deployment registered earlier (with attributes or not) is the same deployment.
    let registered = match nodes::find(db, &deployment)? {
        Some(row) => Registered::Existing(row),
        None => nodes::register(db, tx, &deployment, name, None, &Map::new())?,
    };
    if let Registered::Created(row) = &registered {
        changes.push(row.change());
    }
    let deployment_pk = registered.row().node_pk;
    let (version_pk, anchored) = anchor(db, tx, model_version)?;
    changes.extend(anchored);
    if let Some(mut open) = edges::open_served(db, deployment_pk)? {
        if open.target_pk == version_pk {
            append(db, tx, actor, "confirm_deployment", &deployment.to_string(), changes)?;
            return open.to_edge(deployment, model_version.clone());
        }
        edges::close(db, tx, &mut open, at)?;
        let previous = nodes::by_pk(db, open.target_pk)?.audit_id();
        changes.push(open.change(&deployment.to_string(), &previous));
    }
    let row: EdgeRow = edges::insert(db, tx, deployment_pk, EdgeKind::Served, version_pk, Some(at))?;
    changes.push(row.change(&deployment.to_string(), &model_version.to_string()));
    append(db, tx, actor, "deploy", &deployment.to_string(), changes)?;
    row.to_edge(deployment, model_version.clone())
}

/// A node for an OpenLineage dataset: versioned when the producer sent a version.
fn openlineage_dataset(dataset: &OpenLineageDataset) -> Result<(NodeRef, Map<String, Value>)> {
    let version = dataset.version.clone().unwrap_or_else(|| "unversioned".to_owned());
    let node = NodeRef::dataset(&dataset.qualified_name(), &version)?;
    let mut attributes = Map::new();
    attributes.insert("namespace".into(), json!(dataset.namespace));
    attributes.insert("name".into(), json!(dataset.name));
    attributes.insert("version".into(), json!(dataset.version));
    attributes.insert("source".into(), json!("openlineage"));
    Ok((node, attributes))
}

/// Registers a node an OpenLineage event names unless one exists. Producers describe the same
/// run and datasets in every event of a run (with more facets as it goes), so the first
/// description stands rather than each later one being refused.
fn keep_or_register(
    db: &mut dyn Db,
    tx: &WriteTx,
    node: &NodeRef,
    label: &str,
    attributes: &Map<String, Value>,
    changes: &mut Vec<Change>,
) -> Result<NodeRow> {
    if let Some(row) = nodes::find(db, node)? {
        return Ok(row);
    }
    match nodes::register(db, tx, node, label, None, attributes)? {
        Registered::Created(row) => {
            changes.push(row.change());
            Ok(row)
        }
        Registered::Existing(row) => Ok(row),
    }
}

/// `ingest_openlineage`: the event's run, its datasets and the used / generated edges.
pub fn ingest_openlineage(db: &mut dyn Db, tx: &mut WriteTx, actor: &Actor, event: &OpenLineageEvent) -> Result<()> {
    let run = NodeRef::new(NodeKind::Run, event.run_id.clone())?;
    if graph::resolve(db, &run)?.is_some() && nodes::find(db, &run)?.is_none() {
        return Err(Error::invalid(format!(
            "runId {} is a tracking run's id; OpenLineage runs need their own ids",
            event.run_id
        )));
    }
    let mut changes = Vec::new();
    let mut attributes = Map::new();
    attributes.insert("job_namespace".into(), json!(event.job_namespace));
    attributes.insert("job_name".into(), json!(event.job_name));
    attributes.insert("parent_run_id".into(), json!(event.parent_run_id));
    attributes.insert("source".into(), json!("openlineage"));
    let label = format!("{}.{}", event.job_namespace, event.job_name);
    let run_row = keep_or_register(db, tx, &run, &label, &attributes, &mut changes)?;
    for (datasets, kind) in [(&event.inputs, EdgeKind::Used), (&event.outputs, EdgeKind::WasGeneratedBy)] {
        for dataset in datasets {
            let (node, attributes) = openlineage_dataset(dataset)?;
            let row = keep_or_register(db, tx, &node, &dataset.qualified_name(), &attributes, &mut changes)?;
            let (source, target) = if kind == EdgeKind::Used { (&run_row, &row) } else { (&row, &run_row) };
            if edges::find_timeless(db, source.node_pk, kind, target.node_pk)?.is_none() {
                let (from, to) = if kind == EdgeKind::Used { (&node, &run) } else { (&run, &node) };
                if graph::reaches(db, from, to)? {
                    return Err(Error::invalid(format!(
                        "Linking {run} and {node} would close a cycle: {from} already depends on {to}"
                    )));
                }
                let edge = edges::insert(db, tx, source.node_pk, kind, target.node_pk, None)?;
                changes.push(edge.change(&source.audit_id(), &target.audit_id()));
            }
        }
    }
    append(db, tx, actor, "openlineage_event", &run.to_string(), changes)
}

/// Hands the verifier every node and edge as stored.
pub fn verify_live(db: &mut dyn Db, verifier: &mut cairn_core::audit::Verifier) -> Result<()> {
    for row in nodes::all(db)? {
        verifier.live_entity(entity::LINEAGE_NODE, &row.audit_id(), &row.image());
    }
    for (edge, source, target) in edges::all(db)? {
        verifier.live_entity(entity::LINEAGE_EDGE, &edge.edge_pk.to_string(), &edge.image(&source, &target));
    }
    Ok(())
}
