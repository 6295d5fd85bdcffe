//! Lineage answers for callers who may not read everything in them: a run, logged model or model
//! version outside the caller's permissions becomes a placeholder `{"id": "redacted:N",
//! "kind": …, "redacted": true}`, and edges point at the placeholder, so the graph keeps its
//! shape without leaking a name, parameter or digest. Datasets, code, environments and
//! deployments are not under per-resource permissions and stay as they are.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use cairn_core::auth::{AuthData, Permission, ResourceType};

use super::{Auth, Principal};

/// Redacts every node (and the edges between them) in `answer`, wherever it holds a graph:
/// `nodes`/`edges` at the top, a `node`, or a `lineage` subgraph (a prediction's trace).
pub async fn redact(auth: &Auth, data: &AuthData, principal: &Principal, answer: &mut Map<String, Value>) {
    let mut placeholders = HashMap::new();
    redact_graph(auth, data, principal, answer, &mut placeholders).await;
}

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
    if let Some(node) = graph.get_mut("node") {
        redact_node(auth, data, principal, node, placeholders).await;
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
                    if let Some(placeholder) = placeholders.get(id.as_str()) {
                        *id = placeholder.clone();
                    } else if !readable(auth, data, principal, id).await {
                        let placeholder = format!("redacted:{}", placeholders.len() + 1);
                        placeholders.insert(id.clone(), placeholder.clone());
                        *id = placeholder;
                    }
                }
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
async fn readable(auth: &Auth, data: &AuthData, principal: &Principal, id: &str) -> bool {
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
