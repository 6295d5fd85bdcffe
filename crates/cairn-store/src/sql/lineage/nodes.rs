//! Stored lineage nodes (`lineage_nodes`): registered nodes and anchors for tracking entities.

use cairn_core::audit::{Change, entity};
use cairn_core::lineage::{Node, NodeKind, NodeRef};
use cairn_core::{Error, Result};
use serde_json::{Map, Value, json};

use crate::sql::common::next_id;
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::writer::WriteTx;

/// A row of `lineage_nodes`, with raw stored values.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub node_pk: i64,
    pub kind: String,
    pub key: String,
    pub label: String,
    pub digest: Option<String>,
    /// Canonical JSON of the attributes object.
    pub attributes: String,
    pub recorded_at: i64,
}

impl NodeRow {
    /// Columns in the order [`NodeRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "node_pk, kind, key, label, digest, attributes, recorded_at";

    /// Reads a row selected with [`NodeRow::COLUMNS`].
    pub fn from_row(row: Row) -> Result<Self> {
        let mut it = row.into_iter();
        let mut next = || it.next().unwrap_or(SqlValue::Null);
        Ok(NodeRow {
            node_pk: next().int()?,
            kind: next().into_text()?,
            key: next().into_text()?,
            label: next().into_text()?,
            digest: match next() {
                SqlValue::Null => None,
                v => Some(v.into_text()?),
            },
            attributes: next().into_text()?,
            recorded_at: next().int()?,
        })
    }

    /// The public reference, as stored (an edited kind is reported, not parsed away).
    pub fn audit_id(&self) -> String {
        format!("{}:{}", self.kind, self.key)
    }

    /// The audit after-image.
    pub fn image(&self) -> Value {
        json!({
            "kind": self.kind,
            "key": self.key,
            "label": self.label,
            "digest": self.digest,
            "attributes": self.attributes,
            "recorded_at": self.recorded_at,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self) -> Change {
        Change { entity: entity::LINEAGE_NODE, id: self.audit_id(), after: Some(self.image()) }
    }

    /// The domain node.
    pub fn to_node(&self) -> Result<Node> {
        let kind = NodeKind::parse(&self.kind)?;
        let attributes = match serde_json::from_str::<Value>(&self.attributes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::internal(format!("lineage node {} has unreadable attributes", self.audit_id()))),
        };
        Ok(Node {
            node: NodeRef { kind, key: self.key.clone() },
            label: self.label.clone(),
            digest: self.digest.clone(),
            attributes,
            recorded_at: self.recorded_at,
        })
    }
}

/// The stored row of `node`, if it has one.
pub fn find(db: &mut dyn Db, node: &NodeRef) -> Result<Option<NodeRow>> {
    db.query(
        &format!("SELECT {} FROM lineage_nodes WHERE kind = $1 AND key = $2", NodeRow::COLUMNS),
        &[node.kind.as_str().into(), node.key.as_str().into()],
    )?
    .into_iter()
    .next()
    .map(NodeRow::from_row)
    .transpose()
}

/// The stored rows with these keys, in no particular order.
pub fn by_pk(db: &mut dyn Db, node_pk: i64) -> Result<NodeRow> {
    db.query(&format!("SELECT {} FROM lineage_nodes WHERE node_pk = $1", NodeRow::COLUMNS), &[node_pk.into()])?
        .into_iter()
        .next()
        .map(NodeRow::from_row)
        .transpose()?
        .ok_or_else(|| Error::internal(format!("lineage edge names missing node {node_pk}")))
}

/// What registering a node did.
#[derive(Debug)]
pub enum Registered {
    /// A new row was written; its audit change must go into the request's event.
    Created(NodeRow),
    /// An identical node was already there.
    Existing(NodeRow),
}

impl Registered {
    /// The stored row either way.
    pub fn row(&self) -> &NodeRow {
        match self {
            Registered::Created(row) | Registered::Existing(row) => row,
        }
    }
}

/// Inserts `node` unless an identical one exists; a node with the same reference but other
/// content is refused, because lineage records never change.
pub fn register(
    db: &mut dyn Db,
    tx: &WriteTx,
    node: &NodeRef,
    label: &str,
    digest: Option<&str>,
    attributes: &Map<String, Value>,
) -> Result<Registered> {
    let attributes = cairn_core::audit::canonical_json(&Value::Object(attributes.clone()));
    if let Some(existing) = find(db, node)? {
        if existing.label == label && existing.digest.as_deref() == digest && existing.attributes == attributes {
            return Ok(Registered::Existing(existing));
        }
        return Err(Error::AlreadyExists(format!(
            "Lineage node {node} is already registered with different content; lineage records are \
             immutable, so register the new content under a new key (for example a new version)"
        )));
    }
    let row = NodeRow {
        node_pk: next_id(db, "lineage_nodes", "node_pk", 1)?,
        kind: node.kind.as_str().to_owned(),
        key: node.key.clone(),
        label: label.to_owned(),
        digest: digest.map(str::to_owned),
        attributes,
        recorded_at: tx.now(),
    };
    db.execute(
        "INSERT INTO lineage_nodes (node_pk, kind, key, label, digest, attributes, recorded_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            row.node_pk.into(),
            row.kind.as_str().into(),
            row.key.as_str().into(),
            row.label.as_str().into(),
            row.digest.clone().into(),
            row.attributes.as_str().into(),
            row.recorded_at.into(),
            tx.seq().into(),
        ],
    )?;
    Ok(Registered::Created(row))
}

/// Every stored node, for verification.
pub fn all(db: &mut dyn Db) -> Result<Vec<NodeRow>> {
    db.query(&format!("SELECT {} FROM lineage_nodes ORDER BY node_pk", NodeRow::COLUMNS), &[])?
        .into_iter()
        .map(NodeRow::from_row)
        .collect()
}
