//! [`PgDb`]: one PostgreSQL connection implementing the store's [`Db`] trait, with a cache of
//! prepared statements and a queue of deferred statements that are pipelined.
//!
//! Each connection drives the async client on a small runtime of its own, blocking on it for
//! every call, as the synchronous `postgres` crate does. Driving it directly lets a call send
//! everything [`Db::defer`] held back *and* its own statement before waiting for any answer: the
//! writer's single connection otherwise spends most of a small request waiting for one round trip
//! per statement (a run with ten params took over thirty).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures::future::{MaybeDone, maybe_done};
use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::postgres::metrics;
use crate::postgres::value::{self, Cell, Kind};
use crate::sql::db::{Db, DbError, Dialect, MetricInsert, Row, SqlValue};

/// Prepared statements kept per connection. Search builds SQL text from the filter's shape, so
/// the number of distinct statements is unbounded; past this many the cache starts over.
const STATEMENT_CACHE: usize = 256;

/// How a connection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writer's connection.
    Write,
    /// A pooled read connection; its transactions are read-only.
    Read,
}

/// A statement prepared for one parameter shape: the same SQL text with a NULL in a different
/// place is declared differently (see [`value::param_type`]) and so is another statement.
struct Prepared {
    kinds: Vec<Kind>,
    statement: Statement,
}

/// A statement held back by [`Db::defer`] until the next call that talks to the server.
enum Deferred {
    Statement { statement: Statement, params: Vec<SqlValue> },
    Batch(String),
}

/// The client and the runtime its connection task runs on. The task makes progress only while
/// a call blocks on the runtime, which is all this connection needs: it is used by one thread,
/// one call at a time.
struct Session {
    runtime: Runtime,
    client: Client,
}

/// A deferred statement with its parameters encoded, ready to send.
enum Request<'a> {
    Statement(&'a Statement, Vec<&'a (dyn ToSql + Sync)>),
    Batch(&'a str),
}

/// A pending answer, polled once when its request was sent and awaited after the last one.
type Answer<'a> = Pin<Box<MaybeDone<Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + 'a>>>>>;

/// One PostgreSQL connection.
pub struct PgDb {
    /// `None` only while being dropped (see the `Drop` impl) or after a failed reconnect.
    session: Option<Session>,
    config: Config,
    role: Role,
    statements: HashMap<String, Vec<Prepared>>,
    prepared: usize,
    deferred: Vec<Deferred>,
    /// Whether a transaction is open, as far as this connection's own BEGIN, COMMIT and
    /// ROLLBACK statements say.
    in_transaction: bool,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDb")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Turns a driver error into the store's, telling unique violations apart.
pub fn map_err(e: tokio_postgres::Error) -> DbError {
    let message = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({}): {} ({detail})", db.severity(), db.code().code(), db.message()),
            None => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        },
        None => e.to_string(),
    };
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        DbError::UniqueViolation(message)
    } else if e.code() == Some(&SqlState::DISK_FULL) {
        DbError::StorageFull(message)
    } else {
        DbError::Other(message)
    }
}

/// A deferred statement's error as [`Db::defer`] promises it: never a unique violation, which a
/// later caller could take for its own and handle as a conflict.
fn deferred_err(e: tokio_postgres::Error) -> DbError {
    match map_err(e) {
        DbError::UniqueViolation(m) => DbError::Other(format!("a deferred statement failed: {m}")),
        other => other,
    }
}

impl PgDb {
    /// Connects and prepares the session for `role`. Blocking: call it off the async runtime.
    pub fn connect(config: &Config, role: Role) -> Result<Self, DbError> {
        let session = open_session(config, role)?;
        Ok(PgDb {
            session: Some(session),
            config: config.clone(),
            role,
            statements: HashMap::new(),
            prepared: 0,
            deferred: Vec::new(),
            in_transaction: false,
        })
    }

    /// Whether the session is gone (closed by the server, the network, or never opened).
    fn is_closed(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.client.is_closed())
    }

    fn reconnect(&mut self) -> Result<(), DbError> {
        tracing::warn!(role = ?self.role, "PostgreSQL connection was closed; reconnecting");
        self.statements.clear();
        self.prepared = 0;
        self.deferred.clear();
        self.in_transaction = false;
        self.session = None;
        self.session = Some(open_session(&self.config, self.role)?);
        Ok(())
    }

    /// Sends every deferred statement and then `last`, all before waiting for an answer, and
    /// returns `last`'s answer, or the first deferred statement's error if one failed (the
    /// server then refused `last` anyway, the transaction being aborted).
    fn send<T>(&mut self, last: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>) -> Result<T, DbError> {
        let deferred = std::mem::take(&mut self.deferred);
        let mut requests = Vec::with_capacity(deferred.len());
        for item in &deferred {
            requests.push(match item {
                Deferred::Statement { statement, params } => Request::Statement(statement, bind(statement, params)?),
                Deferred::Batch(sql) => Request::Batch(sql),
            });
        }
        let session = self.session.as_ref().ok_or_else(|| DbError::Other("the connection is closed".to_owned()))?;
        let client = &session.client;
        session.runtime.block_on(async {
            let mut answers: Vec<Answer<'_>> = Vec::with_capacity(requests.len());
            for request in &requests {
                let future: Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + '_>> = match request {
                    Request::Statement(statement, values) => {
                        Box::pin(async move { client.execute(*statement, values).await.map(drop) })
                    }
                    Request::Batch(sql) => Box::pin(client.batch_execute(sql)),
                };
                let mut answer = Box::pin(maybe_done(future));
                // The first poll encodes the request and queues it on the connection; the answer
                // is awaited below, once everything is sent.
                let _ = futures::poll!(answer.as_mut());
                answers.push(answer);
            }
            let result = last(client).await;
            let mut first_error = None;
            for mut answer in answers {
                answer.as_mut().await;
                if let Some(Err(e)) = answer.as_mut().take_output() {
                    first_error.get_or_insert(e);
                }
            }
            match first_error {
                Some(e) => Err(deferred_err(e)),
                None => result.map_err(map_err),
            }
        })
    }

    /// Starts a transaction, replacing a connection the server or network closed.
    ///
    /// Reconnecting happens only here: at any other statement the lost session might have held
    /// an open transaction, and running the rest of it (a `COMMIT` above all) on a fresh session
    /// would report work as done that never was. A closed socket is often noticed only when
    /// used, so a `BEGIN` that fails on a connection that turns out to be closed is retried once
    /// on a new one. Nothing is deferred between transactions, so a fresh session loses nothing.
    fn begin(&mut self, sql: &str) -> Result<(), DbError> {
        if self.is_closed() {
            self.reconnect()?;
        }
        match self.send(async |c| c.batch_execute(sql).await) {
            Err(_) if self.is_closed() => {
                self.reconnect()?;
                self.send(async |c| c.batch_execute(sql).await)
            }
            result => result,
        }
    }

    /// The prepared statement for `sql` with parameters shaped like `params`.
    fn statement(&mut self, sql: &str, params: &[SqlValue]) -> Result<Statement, DbError> {
        let fits = |p: &Prepared| p.kinds.iter().copied().eq(params.iter().map(Kind::of));
        if let Some(found) = self.statements.get(sql).and_then(|list| list.iter().find(|p| fits(p))) {
            return Ok(found.statement.clone());
        }
        let types: Vec<Type> = params.iter().map(value::param_type).collect();
        let statement = self.send(async |c| c.prepare_typed(sql, &types).await)?;
        if self.prepared >= STATEMENT_CACHE {
            self.statements.clear();
            self.prepared = 0;
        }
        let kinds = params.iter().map(Kind::of).collect();
        self.statements.entry(sql.to_owned()).or_default().push(Prepared { kinds, statement: statement.clone() });
        self.prepared += 1;
        Ok(statement)
    }

    /// Whether a transaction is open on this connection.
    pub(super) fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// The cached statement for `sql`, whose parameter types the SQL itself declares with
    /// casts. For the metric insert path, which binds arrays rather than `SqlValue`s.
    pub(super) fn prepared(&mut self, sql: &str) -> Result<Statement, DbError> {
        self.statement(sql, &[])
    }

    /// Runs `statement` with values the caller encodes itself (the metric insert path binds
    /// arrays), after anything deferred.
    pub(super) fn execute_raw(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DbError> {
        self.send(async |c| c.execute(statement, params).await)
    }

    /// [`PgDb::execute_raw`] for a statement that returns rows.
    pub(super) fn query_raw(
        &mut self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, DbError> {
        self.send(async |c| c.query(statement, params).await)
    }
}

/// Pairs each parameter with the Rust value that encodes it for `statement`.
fn bind<'p>(statement: &Statement, params: &'p [SqlValue]) -> Result<Vec<&'p (dyn ToSql + Sync)>, DbError> {
    params
        .iter()
        .zip(statement.params())
        .map(|(p, ty)| value::bind(p, ty))
        .collect::<Result<Vec<_>, String>>()
        .map_err(DbError::Other)
}

/// Whether `sql` opens (`Some(true)`) or ends (`Some(false)`) a transaction.
fn transaction_change(sql: &str) -> Option<bool> {
    let mut words = sql.split_whitespace().map(|w| w.trim_end_matches(';').to_ascii_uppercase());
    match (words.next()?.as_str(), words.next()) {
        ("BEGIN" | "START", _) => Some(true),
        ("COMMIT" | "END", _) => Some(false),
        ("ROLLBACK", next) if next.as_deref() != Some("TO") => Some(false),
        _ => None,
    }
}

fn open_session(config: &Config, role: Role) -> Result<Session, DbError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::Other(format!("cannot start the PostgreSQL connection's runtime: {e}")))?;
    let (client, connection) = runtime
        .block_on(config.connect(NoTls))
        .map_err(|e| DbError::Other(format!("cannot connect: {}", map_err(e))))?;
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    let session = Session { runtime, client };
    // A read connection refusing writes catches a store bug that would otherwise write outside
    // the writer's transaction (and outside the audit chain).
    if role == Role::Read {
        session
            .runtime
            .block_on(session.client.batch_execute("SET default_transaction_read_only = on"))
            .map_err(map_err)?;
    }
    Ok(session)
}

impl Db for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let statement = self.statement(sql, params)?;
        let values = bind(&statement, params)?;
        self.send(async |c| c.execute(&statement, &values).await)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql, params)?;
        let values = bind(&statement, params)?;
        let rows = self.send(async |c| c.query(&statement, &values).await)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Cell>(i).map(|c| c.0).map_err(map_err))
                    .collect::<Result<Row, DbError>>()
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match transaction_change(sql) {
            Some(true) => {
                let begun = self.begin(sql);
                self.in_transaction = begun.is_ok();
                begun
            }
            Some(false) => {
                // Whatever the answer, no transaction is left open: a failed COMMIT rolls back.
                self.in_transaction = false;
                self.send(async |c| c.batch_execute(sql).await)
            }
            None => self.send(async |c| c.batch_execute(sql).await),
        }
    }

    fn defer(&mut self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        let statement = self.statement(sql, params)?;
        self.deferred.push(Deferred::Statement { statement, params: params.to_vec() });
        Ok(())
    }

    fn defer_batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.deferred.push(Deferred::Batch(sql.to_owned()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DbError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        self.send(async |_| Ok(()))
    }

    fn insert_metrics(&mut self, rows: &[MetricInsert]) -> Result<Vec<bool>, DbError> {
        metrics::insert(self, rows)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics on a thread that is
        // already running async tasks (the store, and with it its idle read connections, is
        // often dropped there). Such a session is closed on a short-lived thread of its own.
        let Some(session) = self.session.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("cairn-pg-close".to_owned()).spawn(move || drop(session));
        } else {
            drop(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transaction_change;

    #[test]
    fn transaction_statements_are_told_from_savepoint_ones() {
        assert_eq!(transaction_change("BEGIN"), Some(true));
        assert_eq!(transaction_change("  begin isolation level repeatable read read only"), Some(true));
        assert_eq!(transaction_change("COMMIT"), Some(false));
        assert_eq!(transaction_change("ROLLBACK"), Some(false));
        assert_eq!(transaction_change("ROLLBACK;"), Some(false));
        assert_eq!(transaction_change("ROLLBACK TO SAVEPOINT request"), None);
        assert_eq!(transaction_change("SAVEPOINT request"), None);
        assert_eq!(transaction_change("RELEASE SAVEPOINT request"), None);
        assert_eq!(transaction_change(""), None);
    }
}
