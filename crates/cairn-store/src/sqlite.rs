//! The SQLite backend: [`SqliteDb`] implements [`Db`] over rusqlite, and [`open`] starts a
//! [`SqlStore`] on a database file.
//!
//! The file is in WAL mode with `synchronous=NORMAL`: readers never block the writer, and a
//! committed transaction survives the death of the process (it could be lost only to a power
//! failure or OS crash before the next checkpoint). `synchronous=FULL` is available through
//! `?synchronous=full` in the URI for those who need that too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::store::Store;
use cairn_core::{Error, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::StoreConfig;
use crate::sql::SqlStore;
use crate::sql::db::{Db, DbError, Dialect, MetricInsert, Row, SqlValue};

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache of the write connection, in KiB (negative `cache_size` means KiB).
const WRITE_CACHE_KIB: i64 = 24 * 1024;
/// Page cache of each read connection, in KiB. Small on purpose: the pool's connections would
/// each cache the same hot pages, which the operating system's page cache already holds once, and
/// at 8 MiB each they were a third of the server's resident memory after a full benchmark run.
const READ_CACHE_KIB: i64 = 2 * 1024;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;
/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages past which the writer checkpoints itself after all, if the checkpointer has fallen
/// that far behind (SQLite's default of 1,000 pages, about 4 MiB, is what it did before).
const WRITER_CHECKPOINT_PAGES: i64 = 16 * 1024;

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn map_err(e: rusqlite::Error) -> DbError {
    // rusqlite's message for a statement SQLite cannot prepare quotes the whole statement, which
    // may be hundreds of kilobytes of generated SQL; the log gets its size and the error instead.
    if let rusqlite::Error::SqlInputError { error, msg, sql, offset } = &e {
        return DbError::Other(format!("{msg} ({error}; at offset {offset} of a {}-byte statement)", sql.len()));
    }
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        // Both a UNIQUE index and a PRIMARY KEY report a uniqueness conflict.
        if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        {
            return DbError::UniqueViolation(e.to_string());
        }
        if code.code == rusqlite::ErrorCode::DiskFull {
            return DbError::StorageFull(e.to_string());
        }
    }
    DbError::Other(e.to_string())
}

fn from_ref(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Int(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        // Only the audit log keeps bytes; a blob put in a text column behind our back is still
        // read as text by `into_text`, so verification reports it rather than fails on it.
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

/// Rewrites PostgreSQL-style `$N` placeholders to SQLite's `?N`. Cairn's SQL has no `$` in
/// string literals, so a plain scan is exact.
fn rewrite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// One SQLite connection.
pub struct SqliteDb {
    conn: Connection,
    /// Rewritten SQL per original text; statements themselves are cached by rusqlite.
    rewritten: HashMap<String, Arc<str>>,
    /// The store's writer connection has the WAL checkpointed beside it; stopped with it.
    _checkpointer: Option<Checkpointer>,
}

/// Checkpoints the WAL from its own thread and connection. SQLite otherwise checkpoints inside
/// the commit that crosses 1,000 WAL pages, on the writer's thread: a profile of ingest put that
/// at 9% of the writer's time (copying pages and an `fsync`), time in which no request commits.
/// A `PASSIVE` checkpoint runs beside the writer and readers without blocking either, and copies
/// only frames that every reader is past, so what a reader sees and what a commit made durable
/// are the same as before; the writer keeps a far-off automatic checkpoint
/// ([`WRITER_CHECKPOINT_PAGES`]) in case this thread cannot keep up.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &std::path::Path) -> Result<Self, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cairn-checkpoint".into())
            .spawn(move || {
                // Until the writer's connection is dropped (its end of the channel with it). A
                // failure is logged when it starts and when it ends, not ten times a second.
                let mut failing = false;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0)) {
                        Err(e) if !failing => {
                            tracing::warn!(error = %e, "WAL checkpoints are failing; the writer will checkpoint itself");
                            failing = true;
                        }
                        Ok(_) if failing => {
                            tracing::info!("WAL checkpoints work again");
                            failing = false;
                        }
                        _ => {}
                    }
                }
            })
            .map_err(|e| DbError::Other(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb").field("path", &self.conn.path()).finish_non_exhaustive()
    }
}

/// How a connection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writer's connection.
    Write,
    /// A pooled read connection; it refuses writes.
    Read,
}

/// Connection settings from the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// `synchronous=FULL` instead of `NORMAL`.
    pub full_sync: bool,
}

impl SqliteOptions {
    /// Parses `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, optionally followed
    /// by `?synchronous=full`.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("sqlite:///")
            .ok_or_else(|| Error::invalid(format!("invalid SQLite URI '{uri}': expected sqlite:///path")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" {
            return Err(Error::invalid(format!(
                "invalid SQLite URI '{uri}': a file path is required (readers and the writer share it)"
            )));
        }
        let full_sync = query.split('&').any(|kv| kv.eq_ignore_ascii_case("synchronous=full"));
        Ok(SqliteOptions { path: PathBuf::from(path), full_sync })
    }
}

impl SqliteDb {
    /// Opens a connection and applies Cairn's pragmas for its role.
    pub fn open(options: &SqliteOptions, role: Role) -> Result<Self, DbError> {
        let flags = match role {
            Role::Write => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Role::Read => OpenFlags::SQLITE_OPEN_READ_WRITE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&options.path, flags).map_err(map_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let sync = if options.full_sync { "FULL" } else { "NORMAL" };
        let cache = if role == Role::Write { WRITE_CACHE_KIB } else { READ_CACHE_KIB };
        // Integrity between tables is checked in code (and by audit verification), so foreign
        // keys are off; WAL lets readers run while the writer commits.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; \
             PRAGMA cache_size = -{cache}; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(map_err)?;
        if role == Role::Read {
            conn.execute_batch("PRAGMA query_only = ON;").map_err(map_err)?;
        }
        Ok(SqliteDb { conn, rewritten: HashMap::new(), _checkpointer: None })
    }

    /// The store's writer: [`Self::open`] as [`Role::Write`], with the WAL checkpointed by a
    /// [`Checkpointer`] instead of inside its commits.
    fn open_writer(options: &SqliteOptions) -> Result<Self, DbError> {
        let mut db = SqliteDb::open(options, Role::Write)?;
        db.conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES};")).map_err(map_err)?;
        db._checkpointer = Some(Checkpointer::start(&options.path)?);
        Ok(db)
    }

    fn sql(&mut self, sql: &str) -> Arc<str> {
        if let Some(s) = self.rewritten.get(sql) {
            return Arc::clone(s);
        }
        let s: Arc<str> = Arc::from(rewrite_placeholders(sql));
        self.rewritten.insert(sql.to_owned(), Arc::clone(&s));
        s
    }
}

impl Db for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let sql = self.sql(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(map_err)?;
        let changed = stmt.execute(rusqlite::params_from_iter(params)).map_err(map_err)?;
        Ok(changed as u64)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let sql = self.sql(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(map_err)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(map_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(from_ref(row.get_ref(i).map_err(map_err)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        each: &mut dyn FnMut(&mut Row) -> cairn_core::Result<()>,
    ) -> cairn_core::Result<()> {
        let sql = self.sql(sql);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(map_err)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(map_err)?;
        let mut values = Vec::with_capacity(width);
        while let Some(row) = rows.next().map_err(map_err)? {
            values.clear();
            for i in 0..width {
                values.push(from_ref(row.get_ref(i).map_err(map_err)?));
            }
            each(&mut values)?;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn.execute_batch(sql).map_err(map_err)
    }

    fn insert_metrics(&mut self, rows: &[MetricInsert]) -> Result<Vec<bool>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO metrics (run_pk, key_id, step, timestamp, value, is_nan, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let changed = stmt
                    .execute(rusqlite::params![r.run_pk, r.key_id, r.step, r.timestamp, r.value, r.is_nan, r.seq])
                    .map_err(map_err)?;
                Ok(changed == 1)
            })
            .collect()
    }
}

/// Checks an existing file for MLflow's schema on a read-only connection, before Cairn's own
/// connections switch it to WAL mode (which rewrites the file's header) or migrate it.
fn refuse_mlflow_file(options: &SqliteOptions) -> Result<()> {
    if !options.path.is_file() {
        return Ok(());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&options.path, flags)
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", options.path.display())))?;
    let mut db = SqliteDb { conn, rewritten: HashMap::new(), _checkpointer: None };
    crate::sql::migrate::refuse_mlflow_schema(&mut db, &options.path.display().to_string())
}

/// Opens (creating and migrating if needed) a SQLite store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    let options = SqliteOptions::from_uri(&config.uri)?;
    if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create the directory {}: {e}", dir.display())))?;
    }
    refuse_mlflow_file(&options)?;
    let write_options = options.clone();
    let write_db = tokio::task::spawn_blocking(move || SqliteDb::open_writer(&write_options))
        .await
        .map_err(|e| Error::internal(format!("opening the database failed: {e}")))?
        .map_err(|e| Error::internal(format!("cannot open {}: {e}", options.path.display())))?;
    let connect = Box::new(move || SqliteDb::open(&options, Role::Read).map(|db| Box::new(db) as Box<dyn Db>));
    let store: Arc<dyn Store> = SqlStore::start(config, Box::new(write_db), connect).await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten() {
        assert_eq!(rewrite_placeholders("a = $1 AND b IN ($2, $10)"), "a = ?1 AND b IN (?2, ?10)");
        assert_eq!(rewrite_placeholders("SELECT '$' || x"), "SELECT '$' || x");
    }

    #[test]
    fn uris_name_a_file() {
        assert_eq!(SqliteOptions::from_uri("sqlite:///data/x.db").unwrap().path, PathBuf::from("data/x.db"));
        assert_eq!(SqliteOptions::from_uri("sqlite:////abs/x.db").unwrap().path, PathBuf::from("/abs/x.db"));
        assert!(SqliteOptions::from_uri("sqlite:///x.db?synchronous=full").unwrap().full_sync);
        assert!(SqliteOptions::from_uri("sqlite:///:memory:").is_err());
        assert!(SqliteOptions::from_uri("sqlite://x.db").is_err());
    }

    #[test]
    fn unique_violations_are_told_apart() {
        let mut db =
            SqliteDb { conn: Connection::open_in_memory().unwrap(), rewritten: HashMap::new(), _checkpointer: None };
        db.batch("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT UNIQUE)").unwrap();
        db.execute("INSERT INTO t VALUES ($1, $2)", &[1.into(), "x".into()]).unwrap();
        let dup = db.execute("INSERT INTO t VALUES ($1, $2)", &[2.into(), "x".into()]);
        assert!(matches!(dup, Err(DbError::UniqueViolation(_))), "{dup:?}");
        let rows = db.query("SELECT a, b FROM t WHERE a = $1", &[1.into()]).unwrap();
        assert_eq!(rows, vec![vec![SqlValue::Int(1), SqlValue::Text("x".into())]]);
    }
}
