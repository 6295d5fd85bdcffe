//! Small helpers shared by the store modules: clocks, id parsing, placeholder lists and
//! MLflow's URI joining.

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::model::Millis;
use cairn_core::{Error, Result};

use crate::sql::db::{Db, Dialect, SqlValue};

/// Most values bound in one `IN (…)` list. Both backends allow far more; this keeps
/// statements small enough that their plans are cheap.
pub const IN_LIST_CHUNK: usize = 1000;

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// Parses an experiment id as MLflow does: a decimal integer, anything else is the caller's
/// mistake.
pub fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid(format!("Invalid experiment ID '{id}'. Experiment ID must be a valid integer.")))
}

/// `$first, $first+1, …` for `n` placeholders.
pub fn placeholders(first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(first + i).to_string());
    }
    out
}

/// Appends `segment` to a URI path the way MLflow's `append_to_uri_path` does for the cases the
/// store produces: exactly one `/` between the parts.
pub fn join_uri(base: &str, segment: &str) -> String {
    if base.is_empty() {
        return segment.to_owned();
    }
    format!("{}/{}", base.trim_end_matches('/'), segment.trim_start_matches('/'))
}

/// Joins the experiment root with an experiment id. A root that is a bare scheme such as
/// `mlflow-artifacts:/` keeps its single slash (`mlflow-artifacts:/1`).
pub fn experiment_artifact_location(root: &str, experiment_id: i64) -> String {
    if root.ends_with('/') { format!("{root}{experiment_id}") } else { join_uri(root, &experiment_id.to_string()) }
}

/// Runs `f` inside a read transaction so that the several queries it issues see one snapshot.
pub fn read_snapshot<T>(db: &mut dyn Db, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
    let begin = match db.dialect() {
        Dialect::Sqlite => "BEGIN",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    db.batch(begin)?;
    let result = f(db);
    // A read transaction has nothing to keep, so its end is the same either way; an error while
    // ending it matters only if the reads themselves succeeded.
    let end = db.batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let value = result?;
    end?;
    Ok(value)
}

/// The single integer a `SELECT MAX(…)`-style query returns, or `None` for no row / NULL.
pub fn query_opt_int(db: &mut dyn Db, sql: &str, params: &[SqlValue]) -> Result<Option<i64>> {
    let rows = db.query(sql, params)?;
    match rows.into_iter().next() {
        Some(row) => Ok(row.first().map(SqlValue::opt_int).transpose()?.flatten()),
        None => Ok(None),
    }
}

/// The next free integer key of `table.column` (`MAX + 1`, or `first` for an empty table).
/// Called only inside the write transaction, so no other writer can take the same value; unlike
/// a sequence, a rolled-back savepoint gives its number back.
pub fn next_id(db: &mut dyn Db, table: &str, column: &str, first: i64) -> Result<i64> {
    // `table` and `column` are compile-time constants from this crate, never user input.
    let sql = format!("SELECT MAX({column}) FROM {table}");
    Ok(query_opt_int(db, &sql, &[])?.map_or(first, |max| max + 1).max(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }

    #[test]
    fn uri_joining_matches_mlflow() {
        assert_eq!(experiment_artifact_location("mlflow-artifacts:/", 4), "mlflow-artifacts:/4");
        assert_eq!(experiment_artifact_location("/data/artifacts", 4), "/data/artifacts/4");
        assert_eq!(join_uri("s3://b/1/", "abc"), "s3://b/1/abc");
        assert_eq!(join_uri("mlflow-artifacts:/1", "r/artifacts"), "mlflow-artifacts:/1/r/artifacts");
    }

    #[test]
    fn experiment_ids_must_be_integers() {
        assert_eq!(parse_experiment_id("12").unwrap(), 12);
        assert!(matches!(parse_experiment_id("abc"), Err(Error::InvalidParameter(_))));
    }
}
