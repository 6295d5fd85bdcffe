//! Export of a subgraph as Graphviz DOT, for a picture of the lineage.

use std::fmt::Write;

use super::{NodeKind, Subgraph};

/// Quotes `text` as a DOT string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shape(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Run | NodeKind::Deployment => "box",
        NodeKind::Dataset | NodeKind::Slice => "cylinder",
        NodeKind::Prediction => "note",
        NodeKind::Code | NodeKind::Environment => "component",
        NodeKind::Model | NodeKind::ModelVersion => "ellipse",
    }
}

/// The subgraph as a DOT digraph, edges drawn from dependent to dependency as stored.
pub fn to_dot(graph: &Subgraph) -> String {
    let mut out = String::from("digraph lineage {\n  rankdir=RL;\n");
    for node in &graph.nodes {
        let mut label = format!("{}\n{}", node.node.kind.as_str(), node.label);
        if let Some(digest) = &node.digest {
            label.push_str(&format!("\n{}", &digest[..digest.len().min(12)]));
        }
        let _ = writeln!(
            out,
            "  {} [shape={}, label={}];",
            quoted(&node.node.to_string()),
            shape(node.node.kind),
            quoted(&label)
        );
    }
    for edge in &graph.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label={}];",
            quoted(&edge.source.to_string()),
            quoted(&edge.target.to_string()),
            quoted(edge.kind.as_str())
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::lineage::{Edge, EdgeKind, Node, NodeRef};

    #[test]
    fn nodes_and_edges_are_quoted_so_any_key_is_safe() {
        let a = NodeRef::new(NodeKind::Dataset, "we\"ird\\name@1").unwrap();
        let b = NodeRef::new(NodeKind::Run, "r1").unwrap();
        let graph = Subgraph {
            nodes: vec![Node {
                node: a.clone(),
                label: "weird".into(),
                digest: Some("0123456789abcdef".into()),
                attributes: Map::new(),
                recorded_at: 0,
            }],
            edges: vec![Edge {
                source: b,
                kind: EdgeKind::Used,
                target: a,
                recorded_at: 0,
                valid_from: None,
                valid_to: None,
            }],
            truncated: false,
        };
        let dot = to_dot(&graph);
        assert!(dot.starts_with("digraph lineage {"));
        assert!(dot.contains(r#""dataset:we\"ird\\name@1" [shape=cylinder"#), "{dot}");
        assert!(dot.contains(r#""run:r1" -> "dataset:we\"ird\\name@1" [label="used"];"#), "{dot}");
        assert!(dot.contains("0123456789ab"));
        assert!(!dot.contains("0123456789abc"));
    }
}
