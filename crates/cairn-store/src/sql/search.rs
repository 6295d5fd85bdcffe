//! Search compilation (placeholder until the search helper lands its implementation).

use cairn_core::model::Page;
use cairn_core::store::{ExperimentQuery, RunQuery};
use cairn_core::{Error, Result};

use crate::sql::db::Db;

/// Returns the run_pk of the runs matching `q`, in order.
pub fn search_runs(db: &mut dyn Db, q: &RunQuery) -> Result<Page<i64>> {
    let _ = (db, q);
    Err(Error::Internal("search not built yet".to_owned()))
}

/// Returns the ids of the experiments matching `q`, in order.
pub fn search_experiments(db: &mut dyn Db, q: &ExperimentQuery) -> Result<Page<i64>> {
    let _ = (db, q);
    Err(Error::Internal("search not built yet".to_owned()))
}
