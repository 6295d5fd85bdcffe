//! Lineage answers for callers who may not read everything in them: a run, logged model or model
//! version outside the caller's permissions becomes a placeholder `{"id": "redacted:N",
//! "kind": …, "redacted": true}`, and edges point at the placeholder, so the graph keeps its
//! shape without leaking a name, parameter or digest. Datasets, code, environments and
//! deployments are not under per-resource permissions and stay as they are.
//!
//! JSON answers are redacted after the handler, wherever they name nodes: a graph (`nodes`,
//! `edges`, a `node`, a trace's `lineage`), a comparison's node lists (`shared`, `only_left`,
//! …), a prediction's model version, and the model versions of rows (serving intervals,
//! lineage health's incomplete versions). One answer numbers its placeholders once, so a hidden
//! node has the same placeholder everywhere in it (both sides of a diff). Answers that are not
//! JSON graphs (DOT, PROV-JSON exports) are redacted before they are drawn, by
//! [`redact_subgraph`], with a placeholder node of the same kind keyed `redacted:N`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use cairn_core::auth::{AuthData, Permission, ResourceType};
use cairn_core::lineage::{Node, NodeRef, Subgraph};

use super::{Auth, Principal};

/// Redacts every node (and the edges between them) in `answer`, wherever it holds a graph:
/// `nodes`/`edges` at the top, a `node`, or a `lineage` subgraph (a prediction's trace).
pub async fn redact(auth: &Auth, data: &AuthData, principal: &Principal, answer: &mut Map<String, Value>) {
    let mut placeholders = HashMap::new();
    redact_graph(auth, data, principal, answer, &mut placeholders).await;
}

/// Fields of an answer that hold one node id (a diff's sides, a completeness answer's node).
const ID_FIELDS: &[&str] = &["left", "right"];
/// Fields of an answer that hold a list of node ids (a diff's comparison).
const ID_LIST_FIELDS: &[&str] = &["shared", "only_left", "only_right"];
/// Fields of an answer that hold a list of rows, and the field of each row that holds a node id:
/// the deployments' serving intervals and lineage health's incomplete versions.
const ROW_ID_FIELDS: &[(&str, &str)] = &[("intervals", "model_version"), ("incomplete", "model_version")];

async fn redact_graph(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    graph: &mut Map<String, Value>,
    placeholders: &mut HashMap<String, String>,
) {
    if let Some(Value::Object(inner)) = graph.get_mut("lineage") {
        Box::pin(redact_graph(auth, data, principal, inner, placeholders)).await;
    }
    match graph.get_mut("node") {
        Some(Value::String(id)) => redact_id(auth, data, principal, id, placeholders).await,
        Some(node) => redact_node(auth, data, principal, node, placeholders).await,
        None => {}
    }
    // A prediction's trace names the model version that made it.
    if let Some(Value::Object(prediction)) = graph.get_mut("prediction")
        && let Some(Value::String(id)) = prediction.get_mut("model_version")
    {
        redact_id(auth, data, principal, id, placeholders).await;
    }
    for field in ID_FIELDS {
        if let Some(Value::String(id)) = graph.get_mut(*field) {
            redact_id(auth, data, principal, id, placeholders).await;
        }
    }
    for field in ID_LIST_FIELDS {
        if let Some(Value::Array(ids)) = graph.get_mut(*field) {
            for id in ids.iter_mut() {
                if let Value::String(id) = id {
                    redact_id(auth, data, principal, id, placeholders).await;
                }
            }
        }
    }
    for (list, field) in ROW_ID_FIELDS {
        if let Some(Value::Array(rows)) = graph.get_mut(*list) {
            for row in rows.iter_mut() {
                if let Some(Value::String(id)) = row.get_mut(*field) {
                    redact_id(auth, data, principal, id, placeholders).await;
                }
            }
        }
    }
    if let Some(Value::Array(nodes)) = graph.get_mut("nodes") {
        for node in nodes.iter_mut() {
            redact_node(auth, data, principal, node, placeholders).await;
        }
    }
    if let Some(Value::Array(edges)) = graph.get_mut("edges") {
        for edge in edges.iter_mut() {
            for end in ["source", "target"] {
                if let Some(Value::String(id)) = edge.get_mut(end) {
                    redact_id(auth, data, principal, id, placeholders).await;
                }
            }
        }
    }
}

/// Replaces a node id the caller may not read with its placeholder.
async fn redact_id(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    id: &mut String,
    placeholders: &mut HashMap<String, String>,
) {
    if let Some(placeholder) = placeholders.get(id.as_str()) {
        *id = placeholder.clone();
    } else if !readable(auth, data, principal, id).await {
        let placeholder = format!("redacted:{}", placeholders.len() + 1);
        placeholders.insert(id.clone(), placeholder.clone());
        *id = placeholder;
    }
}

/// Redacts a subgraph before it is drawn in a format that is not a JSON graph: each node the
/// caller may not read becomes a node of its kind keyed `redacted:N`, labelled "redacted",
/// without digest, attributes or recording time, and edges point at it.
pub async fn redact_subgraph(auth: &Auth, data: &AuthData, principal: &Principal, graph: &mut Subgraph) {
    // Each node is judged once: an edge end is usually a node of the graph too.
    let mut verdicts: HashMap<NodeRef, Option<NodeRef>> = HashMap::new();
    let judge = async |node: &NodeRef, verdicts: &mut HashMap<NodeRef, Option<NodeRef>>| -> Option<NodeRef> {
        if let Some(verdict) = verdicts.get(node) {
            return verdict.clone();
        }
        let hidden = verdicts.values().filter(|v| v.is_some()).count();
        let verdict = (!readable(auth, data, principal, &node.to_string()).await)
            .then(|| NodeRef { kind: node.kind, key: format!("redacted:{}", hidden + 1) });
        verdicts.insert(node.clone(), verdict.clone());
        verdict
    };
    for node in graph.nodes.iter_mut() {
        if let Some(placeholder) = judge(&node.node, &mut verdicts).await {
            *node = Node {
                node: placeholder,
                label: "redacted".to_owned(),
                digest: None,
                attributes: Map::from_iter([("redacted".to_owned(), Value::Bool(true))]),
                recorded_at: 0,
            };
        }
    }
    for edge in graph.edges.iter_mut() {
        for end in [&mut edge.source, &mut edge.target] {
            if let Some(placeholder) = judge(end, &mut verdicts).await {
                *end = placeholder;
            }
        }
    }
}

async fn redact_node(
    auth: &Auth,
    data: &AuthData,
    principal: &Principal,
    node: &mut Value,
    placeholders: &mut HashMap<String, String>,
) {
    let Some(id) = node.get("id").and_then(Value::as_str).map(str::to_owned) else { return };
    if readable(auth, data, principal, &id).await {
        return;
    }
    let next = placeholders.len() + 1;
    let placeholder = placeholders.entry(id.clone()).or_insert_with(|| format!("redacted:{next}")).clone();
    let kind = id.split_once(':').map_or("", |(k, _)| k).to_owned();
    *node = json!({ "id": placeholder, "kind": kind, "redacted": true });
}

/// Whether the caller may read the node named `id` (`kind:key`).
pub(crate) async fn readable(auth: &Auth, data: &AuthData, principal: &Principal, id: &str) -> bool {
    if principal.is_admin {
        return true;
    }
    let Some((kind, key)) = id.split_once(':') else { return true };
    let experiment_allows = |experiment: &str| {
        auth.permission(data, principal, ResourceType::Experiment, experiment).allows(Permission::Read)
    };
    match kind {
        "run" => match auth.run_experiment(key).await {
            Ok(Some(experiment)) => experiment_allows(&experiment),
            Ok(None) => true,
            Err(_) => false,
        },
        "model" => match auth.store.get_logged_model_any_stage(key).await {
            Ok(model) => experiment_allows(&model.experiment_id),
            Err(_) => true,
        },
        "model-version" => {
            let name = key.rsplit_once('/').map_or(key, |(name, _)| name);
            auth.permission(data, principal, ResourceType::RegisteredModel, name).allows(Permission::Read)
        }
        _ => true,
    }
}
