//! The single writer: one OS thread that owns the write connection and commits many concurrent
//! requests in one transaction (group commit).
//!
//! A request is a closure over `(&mut dyn Db, &mut WriteTx)`. The thread takes one request,
//! drains up to `max_group_commit - 1` more that are already waiting, and runs them all inside
//! one `BEGIN … COMMIT`, each in its own `SAVEPOINT` so that a failing request is rolled back
//! alone and gets its own error. Replies are sent only after `COMMIT` returns, so an
//! acknowledged write is durable; if `COMMIT` fails, every request in the group gets an error.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::thread::JoinHandle;

use cairn_core::model::Millis;
use cairn_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use crate::sql::audit::{self, AuditHead, NewEvent};
use crate::sql::common::now_millis;
use crate::sql::db::{Db, DbError, Dialect};
use crate::sql::rows::{ExperimentRow, RunRow};

/// How many requests may wait for the writer before submitters are made to wait in turn.
const QUEUE_PER_GROUP: usize = 4;

/// The state a request sees besides the connection: the audit chain head and the writer's
/// caches. Everything here is restored when a request's savepoint is rolled back.
#[derive(Debug)]
pub struct WriteTx {
    head: AuditHead,
    now: Millis,
    appended: bool,
    /// Interned metric keys. Entries are only ever added; the ones a request added are
    /// forgotten again if that request (or its whole group) is rolled back.
    keys: HashMap<String, i64>,
    keys_added: Vec<String>,
    /// Rows the tracking hot path (create run, log batch, update run) read or wrote, so that a
    /// run's next request does not read them back over the network. See `RowCache`.
    rows: RowCache,
}

/// The rows of the tracking hot path as this writer last wrote or read them.
///
/// The cache is correct only while nothing else changed those rows, which three rules ensure:
/// only requests submitted with `Writer::write_tracking` use it (they keep it up to date with
/// what they write); any other request empties it before it runs, and a request that fails
/// empties it; and a transaction starting on an audit head this writer did not leave behind
/// empties it, since another writer (another replica, `cairn gc`) has written since. Every
/// write appends to the audit chain under its head's lock, so an unchanged head proves that no
/// other writer changed anything.
#[derive(Debug, Default)]
struct RowCache {
    /// Whether the current request may use the cache.
    enabled: bool,
    /// The audit head (sequence number) this writer committed last; `None` after a failure.
    valid_at: Option<i64>,
    next_run_pk: Option<i64>,
    experiments: HashMap<i64, ExperimentRow>,
    runs: HashMap<String, RunRow>,
    /// Every param of a run (by `run_pk`), for the immutability check of the next batch.
    params: HashMap<i64, HashMap<String, String>>,
}

/// Beyond this many runs the cache starts again empty: it serves runs being written now.
const CACHED_RUNS: usize = 4096;

impl RowCache {
    fn clear(&mut self) {
        self.next_run_pk = None;
        self.experiments.clear();
        self.runs.clear();
        self.params.clear();
    }
}

impl WriteTx {
    fn new() -> Self {
        WriteTx {
            head: AuditHead { seq: 0, hash: String::new() },
            now: 0,
            appended: false,
            keys: HashMap::new(),
            keys_added: Vec::new(),
            rows: RowCache::default(),
        }
    }

    /// The sequence number the current request's audit event will get; data rows it writes
    /// carry this value in their `seq` column.
    pub fn seq(&self) -> i64 {
        self.head.seq + 1
    }

    /// The time of the current request, used for timestamps it writes and for its event.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Appends the current request's audit event. Each mutating request calls this exactly once,
    /// after writing its rows.
    pub fn append(&mut self, db: &mut dyn Db, event: NewEvent<'_>) -> Result<()> {
        if self.appended {
            return Err(Error::internal("a write request appended two audit events"));
        }
        audit::append(db, &mut self.head, self.now, event)?;
        self.appended = true;
        Ok(())
    }

    /// The cached id of an interned metric key.
    pub fn cached_key(&self, key: &str) -> Option<i64> {
        self.keys.get(key).copied()
    }

    /// Remembers an interned metric key written or read in this transaction.
    pub fn cache_key(&mut self, key: &str, id: i64) {
        if self.keys.insert(key.to_owned(), id).is_none() {
            self.keys_added.push(key.to_owned());
        }
    }

    /// An experiment row the hot path saw in this writer, if the request may use the cache.
    pub fn cached_experiment(&self, experiment_id: i64) -> Option<ExperimentRow> {
        self.rows.enabled.then(|| self.rows.experiments.get(&experiment_id).cloned()).flatten()
    }

    pub fn cache_experiment(&mut self, row: &ExperimentRow) {
        if self.rows.enabled {
            self.rows.experiments.insert(row.experiment_id, row.clone());
        }
    }

    /// A run row as this writer last wrote or read it, if the request may use the cache.
    pub fn cached_run(&self, run_id: &str) -> Option<RunRow> {
        self.rows.enabled.then(|| self.rows.runs.get(run_id).cloned()).flatten()
    }

    pub fn cache_run(&mut self, row: &RunRow) {
        if !self.rows.enabled {
            return;
        }
        if self.rows.runs.len() >= CACHED_RUNS && !self.rows.runs.contains_key(&row.run_id) {
            self.rows.runs.clear();
            self.rows.params.clear();
        }
        self.rows.runs.insert(row.run_id.clone(), row.clone());
    }

    /// Every param of a run, if the cache knows them.
    pub fn cached_params(&self, run_pk: i64) -> Option<&HashMap<String, String>> {
        self.rows.enabled.then(|| self.rows.params.get(&run_pk)).flatten()
    }

    /// Remembers every param of a run (only for a run whose row is cached, which bounds it).
    pub fn cache_params(&mut self, run: &RunRow, params: HashMap<String, String>) {
        if self.rows.enabled && self.rows.runs.contains_key(&run.run_id) {
            self.rows.params.insert(run.run_pk, params);
        }
    }

    /// The key for a new run: read once (`read_max`), then counted on while the cache holds.
    pub fn next_run_pk(&mut self, read_max: impl FnOnce() -> Result<i64>) -> Result<i64> {
        let next = match self.rows.next_run_pk.filter(|_| self.rows.enabled) {
            Some(next) => next,
            None => read_max()?,
        };
        if self.rows.enabled {
            self.rows.next_run_pk = Some(next + 1);
        }
        Ok(next)
    }

    fn start_request(&mut self, tracking: bool) -> AuditHead {
        self.now = now_millis();
        self.appended = false;
        self.keys_added.clear();
        if !tracking {
            self.rows.clear();
        }
        self.rows.enabled = tracking;
        self.head.clone()
    }

    fn undo_request(&mut self, head: AuditHead) {
        self.head = head;
        for key in self.keys_added.drain(..) {
            self.keys.remove(&key);
        }
        self.rows.clear();
    }
}

/// A queued request, type-erased so requests with different result types share one channel.
trait Job: Send {
    /// Runs the request; returns whether it succeeded.
    fn run(&mut self, db: &mut dyn Db, tx: &mut WriteTx) -> bool;
    /// Marks a request that succeeded as failed after all: a statement it deferred was refused.
    fn fail(&mut self, error: Error);
    /// Sends the reply once the group's fate is known.
    fn finish(self: Box<Self>, group: Result<()>);
    /// Whether the request is one of the tracking hot path's, which may use the row cache.
    fn tracking(&self) -> bool;
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    tracking: bool,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Db, &mut WriteTx) -> Result<T> + Send + 'static,
{
    fn run(&mut self, db: &mut dyn Db, tx: &mut WriteTx) -> bool {
        let Some(work) = self.work.take() else { return false };
        // A panic in one request must not take the writer (and every later request) down.
        let result = catch_unwind(AssertUnwindSafe(|| work(db, tx)))
            .unwrap_or_else(|_| Err(Error::internal("a write request panicked")));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn fail(&mut self, error: Error) {
        self.result = Some(Err(error));
    }

    fn finish(self: Box<Self>, group: Result<()>) {
        let reply = match (self.result, group) {
            // The request's own error wins: it explains why it wrote nothing.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(e)) | (None, Err(e)) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(Error::internal("write request was not run")),
        };
        // The submitter may have given up (its future was dropped); nothing to do then.
        let _ = self.reply.send(reply);
    }

    fn tracking(&self) -> bool {
        self.tracking
    }
}

/// Handle to the writer thread.
pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread on `db`.
    pub fn start(db: Box<dyn Db>, max_group_commit: usize) -> Result<Self> {
        let max_group = max_group_commit.max(1);
        let (sender, receiver) = mpsc::channel(max_group * QUEUE_PER_GROUP);
        let thread = std::thread::Builder::new()
            .name("cairn-writer".to_owned())
            .spawn(move || run_loop(db, receiver, max_group))
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { sender: Mutex::new(Some(sender)), thread: Mutex::new(Some(thread)) })
    }

    /// Runs `work` in the next write transaction and returns its result once committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db, &mut WriteTx) -> Result<T> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// `write` for the tracking hot path (create run, log batch, update run), whose work may
    /// use the writer's row cache and keeps it up to date with what it writes. Nothing else may
    /// be submitted this way.
    pub async fn write_tracking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db, &mut WriteTx) -> Result<T> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<T, F>(&self, work: F, tracking: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db, &mut WriteTx) -> Result<T> + Send + 'static,
    {
        let sender = self.sender.lock().map_err(|_| Error::internal("writer lock poisoned"))?.clone();
        let Some(sender) = sender else { return Err(Error::internal("the store is closed")) };
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { work: Some(work), result: None, reply, tracking });
        sender.send(job).await.map_err(|_| Error::internal("the store is closed"))?;
        answer.await.map_err(|_| Error::internal("the writer stopped before answering"))?
    }

    /// Stops accepting requests, lets the thread commit what is queued, and waits for it.
    pub async fn close(&self) -> Result<()> {
        drop(self.sender.lock().map_err(|_| Error::internal("writer lock poisoned"))?.take());
        let thread = self.thread.lock().map_err(|_| Error::internal("writer lock poisoned"))?.take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| Error::internal(format!("joining the writer: {e}")))?
                .map_err(|_| Error::internal("the writer thread panicked"))?;
        }
        Ok(())
    }
}

fn run_loop(mut db: Box<dyn Db>, mut receiver: mpsc::Receiver<Box<dyn Job>>, max_group: usize) {
    let mut tx = WriteTx::new();
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(max_group);
    // `blocking_recv` returns `None` once every sender is gone and the queue is empty, which is
    // how `close()` (or dropping the store) ends the loop after the last request is committed.
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < max_group {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_group(db.as_mut(), &mut tx, &mut group);
        if outcome.is_err() {
            // The transaction is gone; so is anything the caches learned inside it.
            tx.keys.clear();
            tx.rows.clear();
            tx.rows.valid_at = None;
            let _ = db.batch("ROLLBACK");
        }
        for job in group.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

/// Runs one group in one transaction. An `Err` means nothing in the group was committed.
fn commit_group(db: &mut dyn Db, tx: &mut WriteTx, group: &mut [Box<dyn Job>]) -> Result<()> {
    let begin = match db.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    db.batch(begin).map_err(|e| failed("cannot begin a write transaction", e))?;
    tx.head = AuditHead::load(db)?;
    if tx.rows.valid_at != Some(tx.head.seq) {
        // Another writer appended since this one committed: what it cached may be stale.
        tx.rows.clear();
    }
    for job in group.iter_mut() {
        // The savepoint travels with the request's first statement, and what the request
        // deferred (see `Db::defer`) is sent with its release at the latest, so that an error
        // a deferred statement raises fails this request and no other.
        db.defer_batch("SAVEPOINT request")?;
        let before = tx.start_request(job.tracking());
        let mut ok = job.run(db, tx);
        if ok {
            db.defer_batch("RELEASE SAVEPOINT request")?;
            if let Err(e) = db.flush() {
                job.fail(Error::from(e));
                ok = false;
            }
        } else {
            // The request failed on its own; whatever it deferred is undone with it below.
            let _ = db.flush();
        }
        if !ok {
            tx.undo_request(before);
            db.batch("ROLLBACK TO SAVEPOINT request")?;
            db.batch("RELEASE SAVEPOINT request")?;
        }
    }
    // The head's update travels with the COMMIT.
    tx.head.save(db)?;
    db.batch("COMMIT").map_err(|e| failed("commit failed", e))?;
    tx.rows.valid_at = Some(tx.head.seq);
    Ok(())
}

/// A failed transaction statement as the domain error: a full disk keeps its own kind so the
/// caller is told what happened; anything else is internal, with `what` for the log.
fn failed(what: &str, e: DbError) -> Error {
    match e {
        DbError::StorageFull(_) => Error::from(e),
        other => Error::internal(format!("{what}: {other}")),
    }
}
