//! The metadata store contract. Backends (SQLite, PostgreSQL) implement [`Store`]; both pass
//! one conformance suite. Implementations validate every mutation with [`crate::validation`],
//! apply it atomically and append its audit event in the same transaction.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::artifacts::ArtifactManifest;
use crate::audit::{AuditEvent, AuditQuery, VerifyReport};
use crate::auth::AuthStore;
use crate::idempotency::IdempotencyStore;
use crate::lineage::LineageStore;
use crate::logged_models::LoggedModels;
use crate::model::{
    Actor, Batch, Experiment, KeyValue, Metric, NewExperiment, NewRun, Page, Run, RunInfo, RunMetric, RunUpdate,
    ViewType,
};
use crate::registry::ModelRegistry;
use crate::sampling::{SampledQuery, SampledSeries};
use crate::search::{Filter, OrderBy};

/// MLflow's default and maximum page sizes for searches.
pub const SEARCH_MAX_RESULTS_DEFAULT: u64 = 1000;
/// The largest `max_results` a run search accepts.
pub const SEARCH_MAX_RESULTS_THRESHOLD: u64 = 50_000;
/// The default page size of metric history.
pub const HISTORY_MAX_RESULTS_DEFAULT: u64 = 25_000_000;

/// A run search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub view: ViewType,
    pub max_results: u64,
    pub offset: u64,
    /// The sort key of the previous page's last run (from [`Page::next_after`]): the page starts
    /// after it, and `offset` only counts.
    pub after: Option<Vec<crate::model::SortValue>>,
}

/// An experiment search, already parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentQuery {
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub view: ViewType,
    pub max_results: u64,
    pub offset: u64,
}

/// A metric-history page request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    pub run_id: String,
    pub key: String,
    /// `None` returns everything.
    pub max_results: Option<u64>,
    pub offset: u64,
}

/// `metrics/get-history-bulk-interval`: up to `max_results` points per run, sampled evenly
/// over the step range, always keeping the first and last step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkIntervalQuery {
    pub run_ids: Vec<String>,
    pub key: String,
    pub start_step: Option<i64>,
    pub end_step: Option<i64>,
    pub max_results: u64,
}

/// The metadata store: tracking here; the model registry, logged models, lineage and access control in their own traits,
/// which every store implements too so that a `dyn Store` reaches all of it.
#[async_trait]
pub trait Store:
    ModelRegistry + LoggedModels + LineageStore + AuthStore + IdempotencyStore + Send + Sync + 'static
{
    // Experiments.
    async fn create_experiment(&self, actor: &Actor, new: NewExperiment) -> Result<String>;
    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment>;
    async fn search_experiments(&self, query: ExperimentQuery) -> Result<Page<Experiment>>;
    async fn rename_experiment(&self, actor: &Actor, experiment_id: &str, new_name: &str) -> Result<()>;
    async fn delete_experiment(&self, actor: &Actor, experiment_id: &str) -> Result<()>;
    async fn restore_experiment(&self, actor: &Actor, experiment_id: &str) -> Result<()>;
    async fn set_experiment_tag(&self, actor: &Actor, experiment_id: &str, tag: KeyValue) -> Result<()>;
    async fn delete_experiment_tag(&self, actor: &Actor, experiment_id: &str, key: &str) -> Result<()>;

    // Runs.
    async fn create_run(&self, actor: &Actor, new: NewRun) -> Result<Run>;
    async fn get_run(&self, run_id: &str) -> Result<Run>;
    async fn update_run(&self, actor: &Actor, update: RunUpdate) -> Result<RunInfo>;
    async fn delete_run(&self, actor: &Actor, run_id: &str) -> Result<()>;
    async fn restore_run(&self, actor: &Actor, run_id: &str) -> Result<()>;
    /// Logs metrics, params and tags atomically. `log-metric`, `log-parameter` and `set-tag`
    /// are batches of one.
    async fn log_batch(&self, actor: &Actor, run_id: &str, batch: Batch) -> Result<()>;
    async fn delete_tag(&self, actor: &Actor, run_id: &str, key: &str) -> Result<()>;
    async fn search_runs(&self, query: RunQuery) -> Result<Page<Run>>;
    /// How many runs of each of `experiment_ids` are visible under `view`, in the order given;
    /// an experiment without runs counts 0. Unknown ids are an error.
    async fn count_runs(&self, experiment_ids: Vec<String>, view: ViewType) -> Result<Vec<(String, u64)>>;

    // Metrics.
    async fn metric_history(&self, query: HistoryQuery) -> Result<Page<Metric>>;
    async fn metric_history_bulk_interval(&self, query: BulkIntervalQuery) -> Result<Vec<RunMetric>>;
    /// One downsampled series per requested run, in request order, keeping each bucket's
    /// extremes (see [`crate::sampling`]). An unknown run is `NotFound`; a key the run never
    /// logged gives an empty series.
    async fn sampled_metrics(&self, query: SampledQuery) -> Result<Vec<SampledSeries>>;

    // Audit.
    /// Events with `seq > after_seq`, oldest first, at most `limit`.
    async fn audit_events(&self, after_seq: i64, limit: u64) -> Result<Vec<AuditEvent>>;
    /// A page of events matching `query`, in its order, at most `query.limit`.
    async fn query_audit(&self, query: AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Recomputes the hash chain and compares the live tables with the log.
    async fn verify_audit(&self) -> Result<VerifyReport>;
    /// [`Store::verify_audit`], reporting to `progress`; `None` if `progress` asked it to stop
    /// before a verdict.
    async fn verify_audit_with(&self, progress: Arc<dyn crate::progress::Progress>) -> Result<Option<VerifyReport>> {
        let _ = progress;
        self.verify_audit().await.map(Some)
    }
    /// Verifies only the events after the newest verification checkpoint (their chain and
    /// payloads, not the live tables), or everything like [`Store::verify_audit_with`] when
    /// there is no checkpoint. A backend without checkpoints always verifies everything.
    async fn verify_audit_incremental(
        &self,
        progress: Arc<dyn crate::progress::Progress>,
    ) -> Result<Option<VerifyReport>> {
        self.verify_audit_with(progress).await
    }
    /// Records, as an audit event of its own, that the log verified up to event `seq` with
    /// `hash` (the `last` of a clean [`VerifyReport`]).
    async fn record_audit_checkpoint(&self, actor: &Actor, seq: i64, hash: &str) -> Result<()> {
        let _ = (actor, seq, hash);
        Err(crate::Error::invalid("this store does not keep verification checkpoints"))
    }

    /// The artifact manifest kept alongside this store, when the backend has one. A separate
    /// trait keeps `Store` about tracking; this hook lets code holding a `dyn Store` reach it.
    fn artifact_manifest(self: Arc<Self>) -> Option<Arc<dyn ArtifactManifest>> {
        None
    }

    /// The leases kept in this store, when the backend can share them between processes.
    fn leases(self: Arc<Self>) -> Option<Arc<dyn crate::lease::Leases>> {
        None
    }

    /// Flushes pending writes and stops background work. Called once on shutdown.
    async fn close(&self) -> Result<()>;
}
