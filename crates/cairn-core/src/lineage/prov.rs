//! Export of a subgraph as W3C PROV-JSON.
//!
//! Runs and deployments are PROV activities; everything else is an entity. Each edge becomes the
//! PROV relation that says the same thing: `used` (an activity read an entity; a deployment's
//! serving of a model version is a `used` with role `served` and its interval), `wasGeneratedBy`
//! (an entity produced by an activity) and `wasDerivedFrom` (an entity made from another).
//! A derivation whose target is an activity (a model version "derived from" the run that trained
//! it) is exported as `wasGeneratedBy`, the relation PROV has for it.

use serde_json::{Map, Value, json};

use super::{Edge, EdgeKind, Node, NodeRef, Subgraph};

/// The namespace of Cairn's identifiers and attributes in exports.
pub const CAIRN_NAMESPACE: &str = "https://cairn.dev/ns/lineage#";

/// The qualified name of a node: `cairn:<kind>/<key>`, with characters outside a conservative
/// set percent-encoded so any PROV tool can read it.
pub fn qualified_name(node: &NodeRef) -> String {
    let mut out = format!("cairn:{}/", node.kind.as_str());
    for byte in node.key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn element(node: &Node) -> Value {
    let mut attributes = Map::new();
    attributes.insert("prov:label".into(), json!(node.label));
    attributes.insert("prov:type".into(), json!(format!("cairn:{}", node.node.kind.as_str())));
    if let Some(digest) = &node.digest {
        attributes.insert("cairn:digest".into(), json!(digest));
    }
    for (key, value) in &node.attributes {
        // PROV-JSON attribute values are literals; nested structures are kept as JSON text.
        let literal = match value {
            Value::Object(_) | Value::Array(_) => json!(value.to_string()),
            other => other.clone(),
        };
        attributes.insert(format!("cairn:{key}"), literal);
    }
    attributes.insert("cairn:recorded_at".into(), json!(node.recorded_at));
    Value::Object(attributes)
}

/// The PROV relation name and body for one edge.
fn relation(edge: &Edge) -> (&'static str, Value) {
    let (source, target) = (qualified_name(&edge.source), qualified_name(&edge.target));
    let mut body = match (edge.kind, edge.target.kind.is_activity()) {
        (EdgeKind::Used, _) => ("used", json!({ "prov:activity": source, "prov:entity": target })),
        (EdgeKind::Served, _) => {
            ("used", json!({ "prov:activity": source, "prov:entity": target, "prov:role": "cairn:served" }))
        }
        (EdgeKind::WasGeneratedBy, _) | (EdgeKind::WasDerivedFrom, true) => {
            ("wasGeneratedBy", json!({ "prov:entity": source, "prov:activity": target }))
        }
        (EdgeKind::WasInformedBy, _) => ("wasInformedBy", json!({ "prov:informed": source, "prov:informant": target })),
        (EdgeKind::WasDerivedFrom, false) => {
            ("wasDerivedFrom", json!({ "prov:generatedEntity": source, "prov:usedEntity": target }))
        }
    };
    if let Some(from) = edge.valid_from {
        body.1["prov:time"] = json!(from);
    }
    if let Some(to) = edge.valid_to {
        body.1["cairn:valid_to"] = json!(to);
    }
    body.1["cairn:recorded_at"] = json!(edge.recorded_at);
    body
}

/// The subgraph as a PROV-JSON document.
pub fn to_prov_json(graph: &Subgraph) -> Value {
    let mut doc = Map::new();
    doc.insert("prefix".into(), json!({ "cairn": CAIRN_NAMESPACE }));
    let (mut entities, mut activities) = (Map::new(), Map::new());
    for node in &graph.nodes {
        let target = if node.node.kind.is_activity() { &mut activities } else { &mut entities };
        target.insert(qualified_name(&node.node), element(node));
    }
    doc.insert("entity".into(), Value::Object(entities));
    doc.insert("activity".into(), Value::Object(activities));
    let mut relations: Map<String, Value> = Map::new();
    for (i, edge) in graph.edges.iter().enumerate() {
        let (name, body) = relation(edge);
        let group = relations.entry(name).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(group) = group {
            group.insert(format!("_:e{i}"), body);
        }
    }
    doc.extend(relations);
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::NodeKind;

    fn node(kind: NodeKind, key: &str) -> Node {
        Node {
            node: NodeRef::new(kind, key).unwrap(),
            label: key.into(),
            digest: Some("d".into()),
            attributes: Map::new(),
            recorded_at: 5,
        }
    }

    fn edge(source: &Node, kind: EdgeKind, target: &Node) -> Edge {
        Edge {
            source: source.node.clone(),
            kind,
            target: target.node.clone(),
            recorded_at: 5,
            valid_from: None,
            valid_to: None,
        }
    }

    #[test]
    fn each_edge_becomes_the_prov_relation_that_means_the_same() {
        let raw = node(NodeKind::Dataset, "raw@1");
        let clean = node(NodeKind::Dataset, "clean@1");
        let run = node(NodeKind::Run, "r1");
        let rerun = node(NodeKind::Run, "r2");
        let mv = node(NodeKind::ModelVersion, "churn/1");
        let deploy = node(NodeKind::Deployment, "prod api");
        let mut served = edge(&deploy, EdgeKind::Served, &mv);
        served.valid_from = Some(10);
        let graph = Subgraph {
            nodes: vec![raw.clone(), clean.clone(), run.clone(), rerun.clone(), mv.clone(), deploy.clone()],
            edges: vec![
                edge(&clean, EdgeKind::WasDerivedFrom, &raw),
                edge(&run, EdgeKind::Used, &clean),
                edge(&mv, EdgeKind::WasDerivedFrom, &run),
                served,
                edge(&rerun, EdgeKind::WasInformedBy, &run),
            ],
            truncated: false,
        };
        let doc = to_prov_json(&graph);
        assert_eq!(doc["entity"].as_object().unwrap().len(), 3);
        assert_eq!(doc["activity"].as_object().unwrap().len(), 3);
        assert!(doc["activity"].get("cairn:deployment/prod%20api").is_some());
        let informed = &doc["wasInformedBy"]["_:e4"];
        assert_eq!(informed["prov:informed"], "cairn:run/r2");
        assert_eq!(informed["prov:informant"], "cairn:run/r1");
        let derived = &doc["wasDerivedFrom"]["_:e0"];
        assert_eq!(derived["prov:generatedEntity"], "cairn:dataset/clean@1");
        assert_eq!(derived["prov:usedEntity"], "cairn:dataset/raw@1");
        assert_eq!(doc["used"]["_:e1"]["prov:activity"], "cairn:run/r1");
        assert_eq!(doc["wasGeneratedBy"]["_:e2"]["prov:activity"], "cairn:run/r1");
        assert_eq!(doc["used"]["_:e3"]["prov:role"], "cairn:served");
        assert_eq!(doc["used"]["_:e3"]["prov:time"], 10);
        assert_eq!(doc["entity"]["cairn:dataset/raw@1"]["cairn:digest"], "d");
    }
}
