//! `metric_blocks`: each series rolled up in blocks of `BLOCK_STEPS` consecutive steps (point
//! count and extremes other than NaN), so that a downsampled history reads a bucket's whole
//! blocks instead of its rows (see migration 0011 and `sql::sampled`).
//!
//! The rollup is written in the transaction that inserts the points, from the points that
//! transaction actually inserted, so an acknowledged write and its blocks never disagree, and
//! a crash loses both or neither. Points are only ever inserted (an exact duplicate is skipped,
//! and skipped here too) or purged with their run, so a block's count and extremes only grow
//! and an upsert per block keeps them exact.
//!
//! Why blocks of steps rather than of a fixed number of points: a step block's range is known
//! without reading anything, a point that arrives late or out of order lands in the one block
//! its step names, and a bucket's whole blocks are one range of the primary key. 64 steps is a
//! compromise: a bucket scans up to 63 rows at each edge, and a batch of 1,000 consecutive
//! steps adds about 16 upserts. A series logged every few hundred steps gets about one block
//! per point, which makes its ingest dearer and its sampling no faster than a scan, but never
//! wrong.

use std::fmt::Write;

use cairn_core::Result;

use crate::sql::db::{Db, MetricInsert};

/// log2 of the steps per block: a step's block is `step >> BLOCK_SHIFT` (a floor division,
/// also for negative steps, in Rust, SQLite and PostgreSQL alike).
pub const BLOCK_SHIFT: u32 = 6;

/// Steps per block.
pub const BLOCK_STEPS: i64 = 1 << BLOCK_SHIFT;

/// The block of a step.
pub fn block_of(step: i64) -> i64 {
    step >> BLOCK_SHIFT
}

/// Blocks per upsert statement. A batch of 1,000 points over 10 keys touches about 25 blocks,
/// and one statement for all of them instead of one each is what keeps the rollup's share of
/// ingest small; the cap keeps statements (and their cached plans) few and well under both
/// backends' parameter limits.
const BLOCKS_PER_STATEMENT: usize = 64;

/// The upsert of `blocks` blocks at once.
fn upsert_blocks(blocks: usize) -> String {
    let mut sql =
        String::from("INSERT INTO metric_blocks (run_pk, key_id, block, points, min_value, max_value) VALUES ");
    for i in 0..blocks {
        let p = i * 6;
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}(${}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6);
    }
    sql.push_str(ON_CONFLICT);
    sql
}

/// Adds to a block's count and widens its extremes. A NULL extreme (only NaN so far) yields to
/// any number; a NULL in the new values (only NaN added) leaves the stored one, because
/// `NULL < x` is not true. A statement names each block once (the shares are grouped by
/// block first), as PostgreSQL requires of a multi-row upsert.
const ON_CONFLICT: &str = " ON CONFLICT (run_pk, key_id, block) DO UPDATE SET \
     points = metric_blocks.points + excluded.points, \
     min_value = CASE WHEN metric_blocks.min_value IS NULL OR excluded.min_value < metric_blocks.min_value \
                      THEN excluded.min_value ELSE metric_blocks.min_value END, \
     max_value = CASE WHEN metric_blocks.max_value IS NULL OR excluded.max_value > metric_blocks.max_value \
                      THEN excluded.max_value ELSE metric_blocks.max_value END";

/// One block's share of a request: points and extremes other than NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Share {
    points: i64,
    min: Option<f64>,
    max: Option<f64>,
}

/// Folds the rows that were inserted (`inserted[i]` says whether `rows[i]` was) into their
/// blocks, upserted a statement per [`BLOCKS_PER_STATEMENT`] blocks the request touched.
pub fn add(db: &mut dyn Db, rows: &[MetricInsert], inserted: &[bool]) -> Result<()> {
    // Sorted by block and folded block by block rather than grouped in a hash map (hashing every
    // point showed in a profile of ingest; a batch usually comes in step order, which sorts
    // fast). Sorted also means concurrent writers to one series touch its blocks in one order.
    let mut points: Vec<((i64, i64, i64), Option<f64>)> = rows
        .iter()
        .zip(inserted)
        .filter(|(_, new)| **new)
        .map(|(row, _)| ((row.run_pk, row.key_id, block_of(row.step)), (!row.is_nan).then_some(row.value)))
        .collect();
    points.sort_unstable_by_key(|(block, _)| *block);
    let mut shares: Vec<((i64, i64, i64), Share)> = Vec::new();
    for (block, extreme) in points {
        if shares.last().is_none_or(|(last, _)| *last != block) {
            shares.push((block, Share { points: 0, min: None, max: None }));
        }
        let share = &mut shares.last_mut().expect("the block's share was just pushed").1;
        share.points += 1;
        share.min = match (share.min, extreme) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        share.max = match (share.max, extreme) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    for chunk in shares.chunks(BLOCKS_PER_STATEMENT) {
        let params: Vec<_> = chunk
            .iter()
            .flat_map(|&((run_pk, key_id, block), share)| {
                [run_pk.into(), key_id.into(), block.into(), share.points.into(), share.min.into(), share.max.into()]
            })
            .collect();
        db.defer(&upsert_blocks(chunk.len()), &params)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_numbers_its_placeholders_in_order() {
        let sql = upsert_blocks(2);
        assert!(sql.contains("VALUES ($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12) ON CONFLICT"), "{sql}");
    }

    #[test]
    fn blocks_are_floor_divisions() {
        assert_eq!(block_of(0), 0);
        assert_eq!(block_of(63), 0);
        assert_eq!(block_of(64), 1);
        assert_eq!(block_of(-1), -1);
        assert_eq!(block_of(-64), -1);
        assert_eq!(block_of(-65), -2);
        assert_eq!(block_of(i64::MIN), i64::MIN / BLOCK_STEPS);
        assert_eq!(block_of(i64::MAX), i64::MAX / BLOCK_STEPS);
    }
}
