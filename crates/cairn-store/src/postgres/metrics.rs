//! The metric ingest hot path on PostgreSQL: one statement per chunk of points instead of one
//! per point. The points travel as seven arrays that `unnest` turns back into rows.
//!
//! Usually every point is new, and a plain `INSERT` is about a third faster than one with
//! `ON CONFLICT` (which makes a speculative insertion per row). So inside a transaction the
//! plain insert is tried first under a savepoint; only if it hits a duplicate is it rolled back
//! and the points inserted again with `ON CONFLICT DO NOTHING`, which skips exact duplicates.
//! `RETURNING` then names the rows actually inserted but cannot say which input each came
//! from, so they are matched back to the input here: the first input equal to a returned row is
//! the one that was inserted (the server inserts in array order, so a later equal input within
//! the same chunk conflicted with it).

use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use crate::postgres::db::{PgDb, map_err};
use crate::sql::db::{Db, DbError, MetricInsert};

/// Points per statement: large enough to amortise the round trip, small enough to keep each
/// message to a few hundred KiB.
const CHUNK: usize = 5000;

/// Inserts every point or fails on the first duplicate.
const INSERT_ALL: &str = "INSERT INTO metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) \
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::float8[], $6::int2[], $7::int8[])";

/// Inserts the points that are not stored yet and names them.
const INSERT_NEW: &str = "INSERT INTO metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) \
     SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::float8[], $6::int2[], $7::int8[]) \
     ON CONFLICT DO NOTHING \
     RETURNING run_pk, key_id, step, timestamp, value, is_nan";

const SAVEPOINT: &str = "SAVEPOINT cairn_metrics";
const RELEASE: &str = "RELEASE SAVEPOINT cairn_metrics";
const UNDO: &str = "ROLLBACK TO SAVEPOINT cairn_metrics; RELEASE SAVEPOINT cairn_metrics";

/// What makes two points the same row: the table's primary key, with the value compared the
/// way PostgreSQL compares it (`-0.0 = 0.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PointKey {
    run_pk: i64,
    key_id: i64,
    step: i64,
    timestamp: i64,
    value_bits: u64,
    is_nan: bool,
}

impl PointKey {
    fn new(run_pk: i64, key_id: i64, step: i64, timestamp: i64, value: f64, is_nan: bool) -> Self {
        let value = if value == 0.0 { 0.0 } else { value };
        PointKey { run_pk, key_id, step, timestamp, value_bits: value.to_bits(), is_nan }
    }

    fn of(row: &MetricInsert) -> Self {
        PointKey::new(row.run_pk, row.key_id, row.step, row.timestamp, row.value, row.is_nan)
    }
}

/// Inserts `rows`, returning for each whether it was new.
pub fn insert(db: &mut PgDb, rows: &[MetricInsert]) -> Result<Vec<bool>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if try_insert_all(db, rows)? {
        return Ok(vec![true; rows.len()]);
    }
    let mut new = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let inserted = insert_new(db, chunk)?;
        new.extend(match_inserted(chunk, &inserted)?);
    }
    Ok(new)
}

/// Inserts all of `rows` if none is stored yet, and says whether it did; otherwise leaves the
/// table as it was. Outside a transaction (no savepoint possible) it does nothing and answers
/// `false`, since a failure after the first chunk could not be undone there.
fn try_insert_all(db: &mut PgDb, rows: &[MetricInsert]) -> Result<bool, DbError> {
    if !db.in_transaction() {
        return Ok(false);
    }
    // The savepoint travels with the first chunk's insert.
    db.defer_batch(SAVEPOINT)?;
    for chunk in rows.chunks(CHUNK) {
        let statement = db.prepared(INSERT_ALL)?;
        match db.execute_raw(&statement, &Columns::of(chunk).params()) {
            Ok(_) => {}
            Err(DbError::UniqueViolation(_)) => {
                db.batch(UNDO)?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    // Nothing can make the release fail that would not also fail the next statement, so it
    // travels with that one.
    db.defer_batch(RELEASE)?;
    Ok(true)
}

/// The points as the seven arrays the statements bind.
struct Columns {
    run_pk: Vec<i64>,
    key_id: Vec<i64>,
    step: Vec<i64>,
    timestamp: Vec<i64>,
    value: Vec<f64>,
    is_nan: Vec<i16>,
    seq: Vec<i64>,
}

impl Columns {
    fn of(rows: &[MetricInsert]) -> Self {
        let column = |f: fn(&MetricInsert) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        Columns {
            run_pk: column(|r| r.run_pk),
            key_id: column(|r| r.key_id),
            step: column(|r| r.step),
            timestamp: column(|r| r.timestamp),
            value: rows.iter().map(|r| r.value).collect(),
            is_nan: rows.iter().map(|r| i16::from(r.is_nan)).collect(),
            seq: column(|r| r.seq),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [&self.run_pk, &self.key_id, &self.step, &self.timestamp, &self.value, &self.is_nan, &self.seq]
    }
}

fn insert_new(db: &mut PgDb, rows: &[MetricInsert]) -> Result<Vec<PointKey>, DbError> {
    let columns = Columns::of(rows);
    let statement = db.prepared(INSERT_NEW)?;
    let returned = db.query_raw(&statement, &columns.params())?;
    returned
        .iter()
        .map(|row| {
            Ok(PointKey::new(
                row.try_get(0).map_err(map_err)?,
                row.try_get(1).map_err(map_err)?,
                row.try_get(2).map_err(map_err)?,
                row.try_get(3).map_err(map_err)?,
                row.try_get(4).map_err(map_err)?,
                row.try_get::<_, i16>(5).map_err(map_err)? != 0,
            ))
        })
        .collect()
}

/// Marks, for each input row, whether it is the one `inserted` reports. Fails if the server
/// reported a row that is not in the input, which would make the audit digest wrong.
fn match_inserted(rows: &[MetricInsert], inserted: &[PointKey]) -> Result<Vec<bool>, DbError> {
    let mut pending: HashMap<PointKey, usize> = HashMap::with_capacity(inserted.len());
    for key in inserted {
        *pending.entry(*key).or_default() += 1;
    }
    let new: Vec<bool> = rows
        .iter()
        .map(|row| match pending.get_mut(&PointKey::of(row)) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        })
        .collect();
    if pending.values().any(|left| *left > 0) {
        return Err(DbError::Other("PostgreSQL reported an inserted metric row that was not sent".to_owned()));
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: i64, value: f64) -> MetricInsert {
        MetricInsert { run_pk: 1, key_id: 2, step, timestamp: 3, value, is_nan: false, seq: 9 }
    }

    #[test]
    fn first_of_equal_inputs_is_the_inserted_one() {
        let rows = [point(1, 1.0), point(2, 1.0), point(1, 1.0), point(3, 0.0)];
        let inserted = [PointKey::of(&rows[0]), PointKey::of(&rows[3])];
        assert_eq!(match_inserted(&rows, &inserted).unwrap(), vec![true, false, false, true]);
    }

    #[test]
    fn negative_zero_is_the_same_point_as_zero() {
        let rows = [point(1, -0.0)];
        assert_eq!(match_inserted(&rows, &[PointKey::of(&point(1, 0.0))]).unwrap(), vec![true]);
    }

    #[test]
    fn a_returned_row_that_was_not_sent_is_an_error() {
        let rows = [point(1, 1.0)];
        assert!(match_inserted(&rows, &[PointKey::of(&point(5, 1.0))]).is_err());
    }
}
