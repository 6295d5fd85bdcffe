//! Node kinds and node references (`kind:key`).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::{Error, Result};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// A dataset version; key `<name>@<version>`.
    Dataset,
    /// A slice of a dataset version; key: the slice digest.
    Slice,
    /// A tracking run; key: the run id.
    Run,
    /// A code version; key `<repository>@<commit>`, plus `+<diff digest>` for a dirty tree.
    Code,
    /// A resolved environment; key: the digest of its package list.
    Environment,
    /// An MLflow logged model; key: `m-…`.
    Model,
    /// A registered model version; key `<name>/<version>`.
    ModelVersion,
    /// A named serving target; key: its name.
    Deployment,
    /// A served prediction; key: the caller's prediction id.
    Prediction,
}

impl NodeKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [NodeKind; 9] = [
        NodeKind::Dataset,
        NodeKind::Slice,
        NodeKind::Run,
        NodeKind::Code,
        NodeKind::Environment,
        NodeKind::Model,
        NodeKind::ModelVersion,
        NodeKind::Deployment,
        NodeKind::Prediction,
    ];

    /// The prefix of a [`NodeRef`] of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Dataset => "dataset",
            NodeKind::Slice => "slice",
            NodeKind::Run => "run",
            NodeKind::Code => "code",
            NodeKind::Environment => "env",
            NodeKind::Model => "model",
            NodeKind::ModelVersion => "model-version",
            NodeKind::Deployment => "deployment",
            NodeKind::Prediction => "prediction",
        }
    }

    /// Parses a kind prefix.
    pub fn parse(s: &str) -> Result<Self> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = NodeKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::invalid(format!("Unknown node kind '{s}'; expected one of {}", known.join(", ")))
        })
    }

    /// Whether nodes of this kind are PROV activities (things that happen over time and use
    /// and generate entities) rather than entities. A deployment is the activity of serving.
    pub fn is_activity(self) -> bool {
        matches!(self, NodeKind::Run | NodeKind::Deployment)
    }
}

/// The longest key a node reference may have.
pub const MAX_NODE_KEY_LEN: usize = 1000;

/// A node's identity: its kind and a key unique within the kind. Written `kind:key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRef {
    pub kind: NodeKind,
    pub key: String,
}

impl NodeRef {
    /// Builds a reference after checking the key: not empty, not too long, no control
    /// characters (keys end up in file names of exports and in terminal output).
    pub fn new(kind: NodeKind, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::invalid(format!("A {} node needs a non-empty key", kind.as_str())));
        }
        if key.len() > MAX_NODE_KEY_LEN {
            return Err(Error::invalid(format!(
                "Node key of {} bytes exceeds the limit of {MAX_NODE_KEY_LEN}",
                key.len()
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(Error::invalid("Node keys may not contain control characters"));
        }
        Ok(NodeRef { kind, key })
    }

    /// Parses `kind:key`.
    pub fn parse(s: &str) -> Result<Self> {
        let (kind, key) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("Node reference '{s}' is not of the form kind:key")))?;
        NodeRef::new(NodeKind::parse(kind)?, key)
    }

    /// A dataset version node.
    pub fn dataset(name: &str, version: &str) -> Result<Self> {
        NodeRef::new(NodeKind::Dataset, format!("{name}@{version}"))
    }

    /// A model version node.
    pub fn model_version(name: &str, version: i64) -> Result<Self> {
        NodeRef::new(NodeKind::ModelVersion, format!("{name}/{version}"))
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.key)
    }
}

impl Serialize for NodeRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_through_text() {
        for text in ["run:0123abcd", "model-version:churn/3", "dataset:sales@2026-11-01", "code:git@host:x.git@abc"] {
            let node = NodeRef::parse(text).unwrap();
            assert_eq!(node.to_string(), text);
        }
        let mv = NodeRef::parse("model-version:a:b/1").unwrap();
        assert_eq!((mv.kind, mv.key.as_str()), (NodeKind::ModelVersion, "a:b/1"));
    }

    #[test]
    fn malformed_references_are_refused_with_a_reason() {
        for (text, needle) in
            [("run", "kind:key"), ("robot:1", "Unknown node kind"), ("run:", "non-empty"), ("run:a\nb", "control")]
        {
            let err = NodeRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        assert!(NodeRef::new(NodeKind::Run, "x".repeat(MAX_NODE_KEY_LEN + 1)).is_err());
    }
}
