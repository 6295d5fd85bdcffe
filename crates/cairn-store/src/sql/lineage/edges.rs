//! Stored lineage edges (`lineage_edges`).

use cairn_core::audit::{Change, entity};
use cairn_core::lineage::{Edge, EdgeKind, NodeRef};
use cairn_core::model::Millis;
use cairn_core::{Error, Result};
use serde_json::{Value, json};

use crate::sql::common::next_id;
use crate::sql::db::{Db, Row, SqlValue};
use crate::sql::writer::WriteTx;

/// A row of `lineage_edges` joined with the references of both ends.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeRow {
    pub edge_pk: i64,
    pub source_pk: i64,
    pub kind: String,
    pub target_pk: i64,
    pub recorded_at: i64,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
}

impl EdgeRow {
    /// Columns in the order [`EdgeRow::from_row`] reads them.
    pub const COLUMNS: &'static str = "edge_pk, source_pk, kind, target_pk, recorded_at, valid_from, valid_to";

    /// Reads a row selected with [`EdgeRow::COLUMNS`] (possibly followed by more columns).
    pub fn from_row(row: &Row) -> Result<Self> {
        let col = |i: usize| row.get(i).cloned().unwrap_or(SqlValue::Null);
        Ok(EdgeRow {
            edge_pk: col(0).int()?,
            source_pk: col(1).int()?,
            kind: col(2).into_text()?,
            target_pk: col(3).int()?,
            recorded_at: col(4).int()?,
            valid_from: col(5).opt_int()?,
            valid_to: col(6).opt_int()?,
        })
    }

    /// The audit after-image. Ends are named by their references so the log reads on its own.
    pub fn image(&self, source: &str, target: &str) -> Value {
        json!({
            "source": source,
            "kind": self.kind,
            "target": target,
            "recorded_at": self.recorded_at,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
        })
    }

    /// The audit change recording this row as written.
    pub fn change(&self, source: &str, target: &str) -> Change {
        Change { entity: entity::LINEAGE_EDGE, id: self.edge_pk.to_string(), after: Some(self.image(source, target)) }
    }

    /// The domain edge between `source` and `target`.
    pub fn to_edge(&self, source: NodeRef, target: NodeRef) -> Result<Edge> {
        Ok(Edge {
            source,
            kind: EdgeKind::parse(&self.kind)?,
            target,
            recorded_at: self.recorded_at,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
        })
    }
}

/// The edges leaving (`outgoing`) or entering a node, with the reference of the other end.
pub fn around(db: &mut dyn Db, node_pk: i64, outgoing: bool) -> Result<Vec<(EdgeRow, NodeRef)>> {
    let (this, other) = if outgoing { ("source_pk", "target_pk") } else { ("target_pk", "source_pk") };
    // `this` and `other` are one of two column-name constants above.
    let sql = format!(
        "SELECT e.edge_pk, e.source_pk, e.kind, e.target_pk, e.recorded_at, e.valid_from, e.valid_to, n.kind, n.key \
         FROM lineage_edges e JOIN lineage_nodes n ON n.node_pk = e.{other} WHERE e.{this} = $1 ORDER BY e.edge_pk"
    );
    db.query(&sql, &[node_pk.into()])?
        .into_iter()
        .map(|row| {
            let edge = EdgeRow::from_row(&row)?;
            let kind = row.get(7).cloned().unwrap_or(SqlValue::Null).into_text()?;
            let key = row.get(8).cloned().unwrap_or(SqlValue::Null).into_text()?;
            let other = NodeRef { kind: cairn_core::lineage::NodeKind::parse(&kind)?, key };
            Ok((edge, other))
        })
        .collect()
}

/// An existing edge `source -kind-> target` that is not time-bound, if there is one.
pub fn find_timeless(db: &mut dyn Db, source_pk: i64, kind: EdgeKind, target_pk: i64) -> Result<Option<EdgeRow>> {
    db.query(
        &format!(
            "SELECT {} FROM lineage_edges WHERE source_pk = $1 AND kind = $2 AND target_pk = $3 AND valid_from IS NULL",
            EdgeRow::COLUMNS
        ),
        &[source_pk.into(), kind.as_str().into(), target_pk.into()],
    )?
    .first()
    .map(EdgeRow::from_row)
    .transpose()
}

/// Inserts an edge recorded now.
pub fn insert(
    db: &mut dyn Db,
    tx: &WriteTx,
    source_pk: i64,
    kind: EdgeKind,
    target_pk: i64,
    valid_from: Option<Millis>,
) -> Result<EdgeRow> {
    let row = EdgeRow {
        edge_pk: next_id(db, "lineage_edges", "edge_pk", 1)?,
        source_pk,
        kind: kind.as_str().to_owned(),
        target_pk,
        recorded_at: tx.now(),
        valid_from,
        valid_to: None,
    };
    db.execute(
        "INSERT INTO lineage_edges (edge_pk, source_pk, kind, target_pk, recorded_at, valid_from, valid_to, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            row.edge_pk.into(),
            row.source_pk.into(),
            row.kind.as_str().into(),
            row.target_pk.into(),
            row.recorded_at.into(),
            row.valid_from.into(),
            SqlValue::Null,
            tx.seq().into(),
        ],
    )?;
    Ok(row)
}

/// The `served` edge of a deployment that is still open (no `valid_to`), if any.
pub fn open_served(db: &mut dyn Db, deployment_pk: i64) -> Result<Option<EdgeRow>> {
    db.query(
        &format!(
            "SELECT {} FROM lineage_edges WHERE source_pk = $1 AND kind = $2 AND valid_to IS NULL \
             ORDER BY edge_pk DESC LIMIT 1",
            EdgeRow::COLUMNS
        ),
        &[deployment_pk.into(), EdgeKind::Served.as_str().into()],
    )?
    .first()
    .map(EdgeRow::from_row)
    .transpose()
}

/// Closes a time-bound edge at `at`, the only change an edge ever receives.
pub fn close(db: &mut dyn Db, tx: &WriteTx, edge: &mut EdgeRow, at: Millis) -> Result<()> {
    if edge.valid_from.is_some_and(|from| at < from) {
        return Err(Error::invalid(format!(
            "Cannot end a deployment interval at {at}, before it started at {}",
            edge.valid_from.unwrap_or_default()
        )));
    }
    db.execute(
        "UPDATE lineage_edges SET valid_to = $1, seq = $2 WHERE edge_pk = $3",
        &[at.into(), tx.seq().into(), edge.edge_pk.into()],
    )?;
    edge.valid_to = Some(at);
    Ok(())
}

/// Every stored edge with the references of its ends (`#pk` for a dangling end), for
/// verification.
pub fn all(db: &mut dyn Db) -> Result<Vec<(EdgeRow, String, String)>> {
    let end = |alias: &str, column: &str| {
        format!("COALESCE({alias}.kind || ':' || {alias}.key, '#' || CAST(e.{column} AS TEXT))")
    };
    let sql = format!(
        "SELECT e.edge_pk, e.source_pk, e.kind, e.target_pk, e.recorded_at, e.valid_from, e.valid_to, {}, {} \
         FROM lineage_edges e LEFT JOIN lineage_nodes s ON s.node_pk = e.source_pk \
         LEFT JOIN lineage_nodes t ON t.node_pk = e.target_pk ORDER BY e.edge_pk",
        end("s", "source_pk"),
        end("t", "target_pk")
    );
    db.query(&sql, &[])?
        .into_iter()
        .map(|row| {
            let edge = EdgeRow::from_row(&row)?;
            let source = row.get(7).cloned().unwrap_or(SqlValue::Null).into_text()?;
            let target = row.get(8).cloned().unwrap_or(SqlValue::Null).into_text()?;
            Ok((edge, source, target))
        })
        .collect()
}
