//! Search: compiles a parsed `runs/search` or `experiments/search` query (see
//! `cairn_core::search`) into one parameterised SQL statement and returns one page of keys,
//! which the store then hydrates.
//!
//! Every value and key from the filter is a bound parameter; the SQL text depends only on the
//! filter's shape. Placeholders are numbered in order of first appearance (`$1, $2, …`), which
//! the SQLite backend rewrites. The result has the semantics of MLflow's SQL store, with three
//! deliberate choices where MLflow's answer depends on the database: `LIKE` and `ILIKE` know no
//! escape character on either backend; text sorts by code point on both; and the `start_time`
//! tie-breaker puts runs without a start time last on both.
//!
//! Indexes used: `runs_by_experiment (experiment_id, start_time)` to find candidate runs, and
//! the primary keys of `params`, `run_tags`, `latest_metrics` and `experiment_tags` to probe
//! each candidate's keys.

mod experiments;
mod logged_models;
mod query;
pub mod registry;
mod runs;
#[cfg(test)]
mod tests;

use cairn_core::Result;
use cairn_core::logged_models::LoggedModelQuery;
use cairn_core::model::Page;
use cairn_core::store::{ExperimentQuery, RunQuery};

use crate::sql::db::Db;

/// Returns the `run_pk`s of one page of runs matching `q`, in order; `next_offset` is set only
/// when more runs match.
pub fn search_runs(db: &mut dyn Db, q: &RunQuery) -> Result<Page<i64>> {
    runs::search(db, q)
}

/// Returns the ids of one page of experiments matching `q`, in order; `next_offset` is set only
/// when more experiments match.
pub fn search_experiments(db: &mut dyn Db, q: &ExperimentQuery) -> Result<Page<i64>> {
    experiments::search(db, q)
}

/// Returns the `model_pk`s of one page of logged models matching `q`, in order; `next_offset`
/// is set only when more models match.
pub fn search_logged_models(db: &mut dyn Db, q: &LoggedModelQuery) -> Result<Page<i64>> {
    logged_models::search(db, q)
}
