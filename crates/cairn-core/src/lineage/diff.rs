//! Comparing the upstream of two nodes: "was this model trained on the same data snapshot, code
//! and environment as the baseline?"
//!
//! Nodes are matched by identity, and data nodes also by content digest: two dataset versions
//! with different names but the same bytes count as the same data.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{NodeKind, NodeRef, Subgraph};

/// What the upstreams of two nodes share and where they differ, per node kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamDiff {
    pub left: NodeRef,
    pub right: NodeRef,
    /// Upstream nodes both have.
    pub shared: Vec<NodeRef>,
    /// Upstream nodes only the left has.
    pub only_left: Vec<NodeRef>,
    /// Upstream nodes only the right has.
    pub only_right: Vec<NodeRef>,
    /// Whether both read exactly the same data (dataset versions and slices, by digest).
    pub same_data: bool,
    /// Whether both come from the same code versions.
    pub same_code: bool,
    /// Whether both ran in the same environments.
    pub same_environment: bool,
}

/// The identity a node is compared by: data by digest when it has one, the rest by reference.
fn identity(graph: &Subgraph, node: &NodeRef) -> String {
    let digest = matches!(node.kind, NodeKind::Dataset | NodeKind::Slice)
        .then(|| graph.node(node).and_then(|n| n.digest.clone()))
        .flatten();
    match digest {
        Some(d) => format!("{}#{d}", node.kind.as_str()),
        None => node.to_string(),
    }
}

/// Compares the upstream subgraphs `left` and `right` of the nodes `left_node` and
/// `right_node` (the start nodes themselves are left out).
pub fn diff_upstream(left_node: &NodeRef, left: &Subgraph, right_node: &NodeRef, right: &Subgraph) -> UpstreamDiff {
    let ids = |graph: &Subgraph, start: &NodeRef| -> BTreeSet<(String, NodeRef)> {
        graph.nodes.iter().filter(|n| &n.node != start).map(|n| (identity(graph, &n.node), n.node.clone())).collect()
    };
    let (l, r) = (ids(left, left_node), ids(right, right_node));
    let l_keys: BTreeSet<&String> = l.iter().map(|(k, _)| k).collect();
    let r_keys: BTreeSet<&String> = r.iter().map(|(k, _)| k).collect();
    let shared: Vec<NodeRef> = l.iter().filter(|(k, _)| r_keys.contains(k)).map(|(_, n)| n.clone()).collect();
    let only_left: Vec<NodeRef> = l.iter().filter(|(k, _)| !r_keys.contains(k)).map(|(_, n)| n.clone()).collect();
    let only_right: Vec<NodeRef> = r.iter().filter(|(k, _)| !l_keys.contains(k)).map(|(_, n)| n.clone()).collect();
    let differs_in = |kinds: &[NodeKind]| only_left.iter().chain(&only_right).any(|n| kinds.contains(&n.kind));
    UpstreamDiff {
        left: left_node.clone(),
        right: right_node.clone(),
        same_data: !differs_in(&[NodeKind::Dataset, NodeKind::Slice]),
        same_code: !differs_in(&[NodeKind::Code]),
        same_environment: !differs_in(&[NodeKind::Environment]),
        shared,
        only_left,
        only_right,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::lineage::Node;

    fn node(kind: NodeKind, key: &str, digest: Option<&str>) -> Node {
        Node {
            node: NodeRef::new(kind, key).unwrap(),
            label: key.into(),
            digest: digest.map(str::to_owned),
            attributes: Map::new(),
            recorded_at: 0,
        }
    }

    #[test]
    fn same_bytes_under_another_name_count_as_the_same_data() {
        let mv1 = NodeRef::model_version("m", 1).unwrap();
        let mv2 = NodeRef::model_version("m", 2).unwrap();
        let left = Subgraph {
            nodes: vec![
                node(NodeKind::ModelVersion, "m/1", None),
                node(NodeKind::Dataset, "sales@v1", Some("d1")),
                node(NodeKind::Code, "repo@aaa", None),
            ],
            edges: vec![],
            truncated: false,
        };
        let right = Subgraph {
            nodes: vec![
                node(NodeKind::ModelVersion, "m/2", None),
                node(NodeKind::Dataset, "sales-copy@v9", Some("d1")),
                node(NodeKind::Code, "repo@bbb", None),
            ],
            edges: vec![],
            truncated: false,
        };
        let diff = diff_upstream(&mv1, &left, &mv2, &right);
        assert!(diff.same_data);
        assert!(!diff.same_code);
        assert!(diff.same_environment);
        assert_eq!(diff.shared, vec![NodeRef::dataset("sales", "v1").unwrap()]);
        assert_eq!(diff.only_left, vec![NodeRef::new(NodeKind::Code, "repo@aaa").unwrap()]);
        assert_eq!(diff.only_right, vec![NodeRef::new(NodeKind::Code, "repo@bbb").unwrap()]);
    }

    #[test]
    fn a_retrained_model_on_new_data_is_reported_as_different_data() {
        let a = NodeRef::model_version("m", 1).unwrap();
        let b = NodeRef::model_version("m", 2).unwrap();
        let left = Subgraph { nodes: vec![node(NodeKind::Slice, "s1", Some("x"))], edges: vec![], truncated: false };
        let right = Subgraph { nodes: vec![node(NodeKind::Slice, "s2", Some("y"))], edges: vec![], truncated: false };
        let diff = diff_upstream(&a, &left, &b, &right);
        assert!(!diff.same_data);
        assert_eq!(diff.only_left.len() + diff.only_right.len(), 2);
    }
}
