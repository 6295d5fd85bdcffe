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
}

impl WriteTx {
    fn new() -> Self {
        WriteTx {
            head: AuditHead { seq: 0, hash: String::new() },
            now: 0,
            appended: false,
            keys: HashMap::new(),
            keys_added: Vec::new(),
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

    fn start_request(&mut self) -> AuditHead {
        self.now = now_millis();
        self.appended = false;
        self.keys_added.clear();
        self.head.clone()
    }

    fn undo_request(&mut self, head: AuditHead) {
        self.head = head;
        for key in self.keys_added.drain(..) {
            self.keys.remove(&key);
        }
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
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
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
        let sender = self.sender.lock().map_err(|_| Error::internal("writer lock poisoned"))?.clone();
        let Some(sender) = sender else { return Err(Error::internal("the store is closed")) };
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { work: Some(work), result: None, reply });
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
            // The transaction is gone; so is anything the cache learned inside it.
            tx.keys.clear();
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
    for job in group.iter_mut() {
        // The savepoint travels with the request's first statement, and what the request
        // deferred (see `Db::defer`) is sent with its release at the latest, so that an error
        // a deferred statement raises fails this request and no other.
        db.defer_batch("SAVEPOINT request")?;
        let before = tx.start_request();
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
