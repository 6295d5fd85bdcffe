//! [`PgDb`]: one PostgreSQL connection implementing the store's [`Db`] trait, with a cache of
//! prepared statements.

use std::collections::HashMap;

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

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

/// One PostgreSQL connection.
pub struct PgDb {
    /// `None` only while being dropped (see the `Drop` impl).
    client: Option<Client>,
    config: Config,
    role: Role,
    statements: HashMap<String, Vec<Prepared>>,
    prepared: usize,
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
pub fn map_err(e: postgres::Error) -> DbError {
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

impl PgDb {
    /// Connects and prepares the session for `role`. Blocking: call it off the async runtime.
    pub fn connect(config: &Config, role: Role) -> Result<Self, DbError> {
        let client = open_client(config, role)?;
        Ok(PgDb { client: Some(client), config: config.clone(), role, statements: HashMap::new(), prepared: 0 })
    }

    fn client(&mut self) -> Result<&mut Client, DbError> {
        self.client.as_mut().ok_or_else(|| DbError::Other("the connection is closed".to_owned()))
    }

    /// Whether the session is gone (closed by the server, the network, or never opened).
    fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    fn reconnect(&mut self) -> Result<(), DbError> {
        tracing::warn!(role = ?self.role, "PostgreSQL connection was closed; reconnecting");
        self.statements.clear();
        self.prepared = 0;
        self.client = Some(open_client(&self.config, self.role)?);
        Ok(())
    }

    /// Starts a transaction, replacing a connection the server or network closed.
    ///
    /// Reconnecting happens only here: at any other statement the lost session might have held
    /// an open transaction, and running the rest of it (a `COMMIT` above all) on a fresh session
    /// would report work as done that never was. A closed socket is often noticed only when
    /// used, so a `BEGIN` that fails on a connection that turns out to be closed is retried once
    /// on a new one.
    fn begin(&mut self, sql: &str) -> Result<(), DbError> {
        if self.is_closed() {
            self.reconnect()?;
        }
        match self.client()?.batch_execute(sql) {
            Err(_) if self.is_closed() => {
                self.reconnect()?;
                self.client()?.batch_execute(sql).map_err(map_err)
            }
            result => result.map_err(map_err),
        }
    }

    /// The prepared statement for `sql` with parameters shaped like `params`.
    fn statement(&mut self, sql: &str, params: &[SqlValue]) -> Result<Statement, DbError> {
        let fits = |p: &Prepared| p.kinds.iter().copied().eq(params.iter().map(Kind::of));
        if let Some(found) = self.statements.get(sql).and_then(|list| list.iter().find(|p| fits(p))) {
            return Ok(found.statement.clone());
        }
        let types: Vec<Type> = params.iter().map(value::param_type).collect();
        let statement = self.client()?.prepare_typed(sql, &types).map_err(map_err)?;
        if self.prepared >= STATEMENT_CACHE {
            self.statements.clear();
            self.prepared = 0;
        }
        let kinds = params.iter().map(Kind::of).collect();
        self.statements.entry(sql.to_owned()).or_default().push(Prepared { kinds, statement: statement.clone() });
        self.prepared += 1;
        Ok(statement)
    }

    /// Prepares `sql` and pairs each parameter with the Rust value that encodes it.
    fn bound<'p>(
        &mut self,
        sql: &str,
        params: &'p [SqlValue],
    ) -> Result<(Statement, Vec<&'p (dyn ToSql + Sync)>), DbError> {
        let statement = self.statement(sql, params)?;
        let values = params
            .iter()
            .zip(statement.params())
            .map(|(p, ty)| value::bind(p, ty))
            .collect::<Result<Vec<_>, String>>()
            .map_err(DbError::Other)?;
        Ok((statement, values))
    }

    /// The cached statement for `sql`, whose parameter types the SQL itself declares with
    /// casts. For the metric insert path, which binds arrays rather than `SqlValue`s.
    pub(super) fn prepared(&mut self, sql: &str) -> Result<Statement, DbError> {
        self.statement(sql, &[])
    }

    /// The client, for the metric insert path.
    pub(super) fn raw_client(&mut self) -> Result<&mut Client, DbError> {
        self.client()
    }
}

fn open_client(config: &Config, role: Role) -> Result<Client, DbError> {
    let mut client = config.connect(NoTls).map_err(|e| DbError::Other(format!("cannot connect: {}", map_err(e))))?;
    // A read connection refusing writes catches a store bug that would otherwise write outside
    // the writer's transaction (and outside the audit chain).
    if role == Role::Read {
        client.batch_execute("SET default_transaction_read_only = on").map_err(map_err)?;
    }
    Ok(client)
}

impl Db for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let (statement, values) = self.bound(sql, params)?;
        self.client()?.execute(&statement, &values).map_err(map_err)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let (statement, values) = self.bound(sql, params)?;
        let rows = self.client()?.query(&statement, &values).map_err(map_err)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Cell>(i).map(|c| c.0).map_err(map_err))
                    .collect::<Result<Row, DbError>>()
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        let begins = sql.trim_start().get(..5).is_some_and(|w| w.eq_ignore_ascii_case("BEGIN"));
        if begins {
            return self.begin(sql);
        }
        self.client()?.batch_execute(sql).map_err(map_err)
    }

    fn insert_metrics(&mut self, rows: &[MetricInsert]) -> Result<Vec<bool>, DbError> {
        metrics::insert(self, rows)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // The synchronous client closes its session by blocking on its own small runtime, which
        // panics on a thread that is already running async tasks (the store, and with it its
        // idle read connections, is often dropped there). Such a client is closed on a
        // short-lived thread of its own instead.
        let Some(client) = self.client.take() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("cairn-pg-close".to_owned()).spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}
