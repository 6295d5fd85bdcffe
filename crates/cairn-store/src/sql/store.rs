//! [`SqlStore`]: the [`Store`] implementation both backends share. Mutations are validated on
//! the caller's task, then run by the [`Writer`]; reads run on the [`ReadPool`].

use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::artifacts::{ArtifactFile, ArtifactManifest, NewArtifact, PurgeReport, RunArtifact};
use cairn_core::audit::{AuditEvent, AuditQuery, VerifyReport};
use cairn_core::lease::{LeaseState, Leases};
use cairn_core::model::{
    Actor, Batch, Experiment, KeyValue, Metric, Millis, NewExperiment, NewRun, Page, Run, RunInfo, RunMetric, RunUpdate,
};
use cairn_core::progress::Progress;
use cairn_core::sampling::{SampledQuery, SampledSeries};
use cairn_core::store::{BulkIntervalQuery, ExperimentQuery, HistoryQuery, RunQuery, Store};
use cairn_core::{Error, Result};

use crate::StoreConfig;
use crate::sql::common::{parse_experiment_id, read_snapshot};
use crate::sql::db::Db;
use crate::sql::pool::{Connect, ReadPool};
use crate::sql::writer::Writer;
use crate::sql::{artifacts, audit, batch, blob_claims, experiments, leases, metrics, migrate, runs, sampled, search};

/// The store over any [`Db`] backend.
#[derive(Debug)]
pub struct SqlStore {
    pub(crate) writer: Writer,
    reads: Arc<ReadPool>,
    artifact_root: Arc<str>,
}

impl SqlStore {
    /// Migrates the database through `write_db`, starts the writer on it, creates the default
    /// experiment if missing and opens reads with `connect`. Both backends open through here.
    pub async fn start(config: &StoreConfig, write_db: Box<dyn Db>, connect: Connect) -> Result<Arc<Self>> {
        let write_db = tokio::task::spawn_blocking(move || {
            let mut db = write_db;
            migrate::migrate(db.as_mut()).map(|()| db)
        })
        .await
        .map_err(|e| Error::internal(format!("migration task failed: {e}")))??;
        let store = SqlStore {
            writer: Writer::start(write_db, config.max_group_commit)?,
            reads: ReadPool::new(config.read_pool_size, connect),
            artifact_root: Arc::from(config.default_artifact_root.as_str()),
        };
        let root = Arc::clone(&store.artifact_root);
        store.writer.write(move |db, tx| experiments::ensure_default(db, tx, &root)).await?;
        Ok(Arc::new(store))
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T> + Send + 'static,
    {
        self.reads.read(f).await
    }

    /// Reads inside one snapshot (several queries that must agree with each other).
    pub(crate) async fn read_consistent<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T> + Send + 'static,
    {
        self.reads.read(move |db| read_snapshot(db, f)).await
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_experiment(&self, actor: &Actor, new: NewExperiment) -> Result<String> {
        experiments::validate_new(&new)?;
        let (actor, root) = (actor.clone(), Arc::clone(&self.artifact_root));
        self.writer.write(move |db, tx| experiments::create(db, tx, &actor, &new, &root, None)).await
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        self.read_consistent(move |db| experiments::get(db, id)).await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let name = name.to_owned();
        self.read_consistent(move |db| experiments::get_by_name(db, &name)).await
    }

    async fn search_experiments(&self, query: ExperimentQuery) -> Result<Page<Experiment>> {
        self.read_consistent(move |db| {
            let page = search::search_experiments(db, &query)?;
            Ok(Page::new(experiments::hydrate(db, &page.items)?, page.next_offset))
        })
        .await
    }

    async fn rename_experiment(&self, actor: &Actor, experiment_id: &str, new_name: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        cairn_core::validation::validate_experiment_name(new_name)?;
        let (actor, name) = (actor.clone(), new_name.to_owned());
        self.writer.write(move |db, tx| experiments::rename(db, tx, &actor, id, &name)).await
    }

    async fn delete_experiment(&self, actor: &Actor, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| experiments::delete(db, tx, &actor, id)).await
    }

    async fn restore_experiment(&self, actor: &Actor, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| experiments::restore(db, tx, &actor, id)).await
    }

    async fn set_experiment_tag(&self, actor: &Actor, experiment_id: &str, tag: KeyValue) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        cairn_core::validation::validate_experiment_tag(&tag)?;
        let actor = actor.clone();
        self.writer.write(move |db, tx| experiments::set_tag(db, tx, &actor, id, &tag)).await
    }

    async fn delete_experiment_tag(&self, actor: &Actor, experiment_id: &str, key: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let (actor, key) = (actor.clone(), key.to_owned());
        self.writer.write(move |db, tx| experiments::delete_tag(db, tx, &actor, id, &key)).await
    }

    async fn create_run(&self, actor: &Actor, new: NewRun) -> Result<Run> {
        runs::validate_new(&new)?;
        let actor = actor.clone();
        self.writer.write_tracking(move |db, tx| runs::create(db, tx, &actor, &new)).await
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        let run_id = run_id.to_owned();
        self.read_consistent(move |db| runs::get(db, &run_id)).await
    }

    async fn update_run(&self, actor: &Actor, update: RunUpdate) -> Result<RunInfo> {
        let actor = actor.clone();
        self.writer.write_tracking(move |db, tx| runs::update(db, tx, &actor, &update)).await
    }

    async fn delete_run(&self, actor: &Actor, run_id: &str) -> Result<()> {
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write(move |db, tx| runs::delete(db, tx, &actor, &run_id)).await
    }

    async fn restore_run(&self, actor: &Actor, run_id: &str) -> Result<()> {
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write(move |db, tx| runs::restore(db, tx, &actor, &run_id)).await
    }

    async fn log_batch(&self, actor: &Actor, run_id: &str, batch: Batch) -> Result<()> {
        batch::validate(run_id, &batch)?;
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write_tracking(move |db, tx| batch::log_batch(db, tx, &actor, &run_id, &batch)).await
    }

    async fn delete_tag(&self, actor: &Actor, run_id: &str, key: &str) -> Result<()> {
        let (actor, run_id, key) = (actor.clone(), run_id.to_owned(), key.to_owned());
        self.writer.write(move |db, tx| runs::delete_tag(db, tx, &actor, &run_id, &key)).await
    }

    async fn count_runs(
        &self,
        experiment_ids: Vec<String>,
        view: cairn_core::model::ViewType,
    ) -> Result<Vec<(String, u64)>> {
        let ids = experiment_ids.iter().map(|id| parse_experiment_id(id)).collect::<Result<Vec<i64>>>()?;
        let counts = self.read_consistent(move |db| experiments::run_counts(db, &ids, view)).await?;
        Ok(counts.into_iter().map(|(id, n)| (id.to_string(), n)).collect())
    }

    async fn search_runs(&self, query: RunQuery) -> Result<Page<Run>> {
        self.read_consistent(move |db| {
            let page = search::search_runs(db, &query)?;
            let runs = runs::hydrate(db, &page.items)?;
            Ok(page.with_items(runs))
        })
        .await
    }

    async fn metric_history(&self, query: HistoryQuery) -> Result<Page<Metric>> {
        self.read_consistent(move |db| metrics::history(db, &query)).await
    }

    async fn metric_history_bulk_interval(&self, query: BulkIntervalQuery) -> Result<Vec<RunMetric>> {
        self.read_consistent(move |db| metrics::bulk_interval(db, &query)).await
    }

    async fn sampled_metrics(&self, query: SampledQuery) -> Result<Vec<SampledSeries>> {
        self.read_consistent(move |db| sampled::sampled(db, &query)).await
    }

    async fn audit_events(&self, after_seq: i64, limit: u64) -> Result<Vec<AuditEvent>> {
        self.read(move |db| audit::list(db, after_seq, limit)).await
    }

    async fn query_audit(&self, query: AuditQuery) -> Result<Vec<AuditEvent>> {
        self.read(move |db| audit::query(db, &query)).await
    }

    async fn verify_audit(&self) -> Result<VerifyReport> {
        self.read_consistent(audit::verify).await
    }

    async fn verify_audit_with(&self, progress: Arc<dyn Progress>) -> Result<Option<VerifyReport>> {
        self.read_consistent(move |db| audit::verify_with(db, progress.as_ref())).await
    }

    async fn verify_audit_incremental(&self, progress: Arc<dyn Progress>) -> Result<Option<VerifyReport>> {
        self.read_consistent(move |db| audit::verify_from_checkpoint(db, progress.as_ref())).await
    }

    async fn record_audit_checkpoint(&self, actor: &Actor, seq: i64, hash: &str) -> Result<()> {
        let (actor, hash) = (actor.clone(), hash.to_owned());
        self.writer.write(move |db, tx| audit::record_checkpoint(db, tx, &actor.0, seq, &hash)).await
    }

    fn artifact_manifest(self: Arc<Self>) -> Option<Arc<dyn ArtifactManifest>> {
        Some(self)
    }

    fn leases(self: Arc<Self>) -> Option<Arc<dyn Leases>> {
        Some(self)
    }

    async fn close(&self) -> Result<()> {
        self.writer.close().await
    }
}

#[async_trait]
impl Leases for SqlStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Millis) -> Result<Option<LeaseState>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.writer.write(move |db, tx| leases::acquire(db, &name, &holder, tx.now(), ttl)).await
    }

    async fn advance_lease(&self, name: &str, holder: &str, cursor: i64, ttl: Millis) -> Result<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.writer.write(move |db, tx| leases::advance(db, &name, &holder, tx.now(), cursor, ttl)).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.writer.write(move |db, _| leases::release(db, &name, &holder)).await
    }
}

#[async_trait]
impl ArtifactManifest for SqlStore {
    async fn put_artifact(&self, actor: &Actor, run_id: &str, file: NewArtifact) -> Result<ArtifactFile> {
        let (actor, run_id) = (actor.clone(), run_id.to_owned());
        self.writer.write(move |db, tx| artifacts::put(db, tx, &actor, &run_id, &file)).await
    }

    async fn get_artifact(&self, run_id: &str, path: &str) -> Result<Option<ArtifactFile>> {
        let (run_id, path) = (run_id.to_owned(), path.to_owned());
        self.read_consistent(move |db| artifacts::get(db, &run_id, &path)).await
    }

    async fn list_artifacts(&self, run_id: &str, prefix: &str) -> Result<Vec<ArtifactFile>> {
        let (run_id, prefix) = (run_id.to_owned(), prefix.to_owned());
        self.read_consistent(move |db| artifacts::list(db, &run_id, &prefix)).await
    }

    async fn delete_artifacts(&self, actor: &Actor, run_id: &str, path: &str) -> Result<u64> {
        let (actor, run_id, path) = (actor.clone(), run_id.to_owned(), path.to_owned());
        self.writer.write(move |db, tx| artifacts::delete(db, tx, &actor, &run_id, &path)).await
    }

    async fn all_artifacts(&self) -> Result<Vec<RunArtifact>> {
        self.read(artifacts::all).await
    }

    async fn is_referenced(&self, digest: &str) -> Result<bool> {
        let digest = digest.to_owned();
        self.read(move |db| artifacts::is_referenced(db, &digest)).await
    }

    async fn pin_blob(&self, digest: &str, holder: &str, ttl: Millis) -> Result<bool> {
        let (digest, holder) = (digest.to_owned(), holder.to_owned());
        self.writer.write(move |db, tx| blob_claims::pin(db, &digest, &holder, tx.now(), ttl)).await
    }

    async fn unpin_blob(&self, digest: &str, holder: &str) -> Result<()> {
        let (digest, holder) = (digest.to_owned(), holder.to_owned());
        self.writer.write(move |db, _| blob_claims::unpin(db, &digest, &holder)).await
    }

    async fn claim_blob_deletion(&self, digest: &str, holder: &str, ttl: Millis) -> Result<bool> {
        let (digest, holder) = (digest.to_owned(), holder.to_owned());
        self.writer.write(move |db, tx| blob_claims::claim_deletion(db, &digest, &holder, tx.now(), ttl)).await
    }

    async fn release_blob_deletion(&self, digest: &str, holder: &str) -> Result<()> {
        let (digest, holder) = (digest.to_owned(), holder.to_owned());
        self.writer.write(move |db, _| blob_claims::release_deletion(db, &digest, &holder)).await
    }

    async fn purge_deleted_runs(&self, actor: &Actor, deleted_before: Millis) -> Result<PurgeReport> {
        let candidates = self.read(move |db| artifacts::purgeable_runs(db, deleted_before)).await?;
        let mut report = PurgeReport::default();
        // One event per run keeps each purge small and lets a restore that races the purge win:
        // the writer re-checks the run's stage before removing anything.
        for run_id in candidates {
            let actor = actor.clone();
            let id = run_id.clone();
            let purged =
                self.writer.write(move |db, tx| artifacts::purge_run(db, tx, &actor, &id, deleted_before)).await?;
            if let Some(files) = purged {
                artifacts::record_purge(&mut report, run_id, files);
            }
        }
        Ok(report)
    }
}
