//! Whole-graph summaries for people: every deployment's serving history, and prediction
//! counts per deployment. Both are one query over the stored rows, dated like the rest of the
//! graph so that an "as of" question sees what was known then.

use cairn_core::lineage::{DeploymentPredictions, EdgeKind, NodeKind, NodeRef, ServingInterval};
use cairn_core::model::Millis;
use cairn_core::{Error, Result};

use crate::sql::db::{Db, SqlValue};

/// Every `served` interval known at `as_of` (all when `None`), of one deployment or all, by
/// deployment name and then start. An interval closed after `as_of` is reported open.
pub fn serving_history(
    db: &mut dyn Db,
    deployment: Option<&str>,
    as_of: Option<Millis>,
) -> Result<Vec<ServingInterval>> {
    let until = as_of.unwrap_or(i64::MAX);
    let mut params: Vec<SqlValue> =
        vec![EdgeKind::Served.as_str().into(), NodeKind::Deployment.as_str().into(), until.into()];
    let mut filter = String::new();
    if let Some(name) = deployment {
        params.push(name.into());
        filter = format!(" AND d.key = ${}", params.len());
    }
    let sql = format!(
        "SELECT d.key, v.kind, v.key, e.valid_from, e.valid_to, d.recorded_at \
         FROM lineage_edges e JOIN lineage_nodes d ON d.node_pk = e.source_pk \
         JOIN lineage_nodes v ON v.node_pk = e.target_pk \
         WHERE e.kind = $1 AND d.kind = $2 AND e.recorded_at <= $3{filter} \
         ORDER BY d.key, e.valid_from, e.edge_pk"
    );
    db.query(&sql, &params)?
        .into_iter()
        .map(|row| {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let deployment = next().into_text()?;
            let kind = NodeKind::parse(&next().into_text()?)?;
            let model_version = NodeRef::new(kind, next().into_text()?)?;
            let valid_from = next().opt_int()?;
            let valid_to = next().opt_int()?.filter(|to| *to <= until);
            let recorded_at = next().int()?;
            Ok(ServingInterval { deployment, model_version, valid_from, valid_to, recorded_at })
        })
        .collect()
}

/// Predictions and flagged predictions recorded by `until`, per deployment (a model version's
/// own predictions under `None`, last on every backend), by deployment name.
pub fn by_deployment(db: &mut dyn Db, until: Millis) -> Result<Vec<DeploymentPredictions>> {
    let rows = db.query(
        "SELECT d.key, COUNT(*), COALESCE(SUM(CASE WHEN p.lineage_complete = 0 THEN 1 ELSE 0 END), 0) \
         FROM predictions p LEFT JOIN lineage_nodes d ON d.node_pk = p.deployment_pk \
         WHERE p.recorded_at <= $1 GROUP BY d.key ORDER BY d.key IS NULL, d.key",
        &[until.into()],
    )?;
    rows.into_iter()
        .map(|row| {
            let mut it = row.into_iter();
            let mut next = || it.next().unwrap_or(SqlValue::Null);
            let deployment = match next() {
                SqlValue::Null => None,
                other => Some(other.into_text()?),
            };
            let count = |v: SqlValue| -> Result<u64> {
                u64::try_from(v.int()?).map_err(|_| Error::internal("a negative prediction count"))
            };
            Ok(DeploymentPredictions { deployment, predictions: count(next())?, flagged: count(next())? })
        })
        .collect()
}
