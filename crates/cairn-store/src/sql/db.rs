//! A small synchronous connection abstraction that SQLite and PostgreSQL both implement, so the
//! store's logic is written once. SQL text uses PostgreSQL's `$1, $2, …` placeholders, always in
//! ascending order of first appearance; the SQLite implementation rewrites them to `?1, ?2, …`.

use std::fmt;

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SqlValue {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    /// Bytes: SQLite `BLOB`, PostgreSQL `bytea`. Only the audit log stores them (compressed
    /// payloads and binary hashes).
    Blob(Vec<u8>),
}

impl SqlValue {
    /// The integer in this value; `Null` and other types are an error.
    pub fn int(&self) -> Result<i64, DbError> {
        match self {
            SqlValue::Int(i) => Ok(*i),
            other => Err(DbError::Other(format!("expected an integer column, got {other:?}"))),
        }
    }
    /// The integer in this value, or `None` for `Null`.
    pub fn opt_int(&self) -> Result<Option<i64>, DbError> {
        match self {
            SqlValue::Null => Ok(None),
            other => other.int().map(Some),
        }
    }
    /// The float in this value (integers widen).
    pub fn real(&self) -> Result<f64, DbError> {
        match self {
            SqlValue::Real(f) => Ok(*f),
            SqlValue::Int(i) => Ok(*i as f64),
            other => Err(DbError::Other(format!("expected a float column, got {other:?}"))),
        }
    }
    /// The text in this value.
    pub fn text(&self) -> Result<&str, DbError> {
        match self {
            SqlValue::Text(s) => Ok(s),
            SqlValue::Blob(b) => std::str::from_utf8(b)
                .map_err(|_| DbError::Other("expected a text column, got bytes that are not UTF-8".into())),
            other => Err(DbError::Other(format!("expected a text column, got {other:?}"))),
        }
    }
    /// Consumes the value as owned text.
    pub fn into_text(self) -> Result<String, DbError> {
        match self {
            SqlValue::Text(s) => Ok(s),
            // The schema keeps no bytes in a text column; bytes put there behind the server's back
            // are read as text so that verification reports the row rather than failing on it.
            SqlValue::Blob(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(DbError::Other(format!("expected a text column, got {other:?}"))),
        }
    }
    /// Consumes the value as bytes; text counts as its UTF-8 bytes, so a text value put in a
    /// bytes column behind the server's back is still read (and then fails its checks).
    pub fn into_bytes(self) -> Result<Vec<u8>, DbError> {
        match self {
            SqlValue::Blob(b) => Ok(b),
            SqlValue::Text(s) => Ok(s.into_bytes()),
            other => Err(DbError::Other(format!("expected a bytes column, got {other:?}"))),
        }
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}
impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Blob(v)
    }
}
impl From<&[u8]> for SqlValue {
    fn from(v: &[u8]) -> Self {
        SqlValue::Blob(v.to_vec())
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// A row: column values in SELECT order.
pub type Row = Vec<SqlValue>;

/// Which SQL dialect a connection speaks, for the few places where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// What a backend reports. Unique-constraint violations are told apart so the store can turn
/// them into the domain's `AlreadyExists`.
#[derive(Debug, Clone, PartialEq)]
pub enum DbError {
    UniqueViolation(String),
    /// The database could not grow: a full disk, or a quota.
    StorageFull(String),
    Other(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::UniqueViolation(m) => write!(f, "unique constraint violated: {m}"),
            DbError::StorageFull(m) => write!(f, "the database is out of space: {m}"),
            DbError::Other(m) => f.write_str(m),
        }
    }
}

impl From<DbError> for cairn_core::Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::StorageFull(detail) => {
                tracing::error!(error = %detail, "the metadata store is out of space");
                cairn_core::Error::StorageFull(STORAGE_FULL.to_owned())
            }
            other => cairn_core::Error::Internal(other.to_string()),
        }
    }
}

/// What a caller is told when the database cannot grow.
pub const STORAGE_FULL: &str = "The server's metadata store is out of disk space; this write was not stored (everything acknowledged before is kept). Free space on the server and retry.";

/// A row of the `metrics` table, ready to insert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricInsert {
    pub run_pk: i64,
    pub key_id: i64,
    pub step: i64,
    pub timestamp: i64,
    /// NaN is stored as `0.0` with `is_nan` set, because SQLite turns NaN into NULL.
    pub value: f64,
    pub is_nan: bool,
    pub seq: i64,
}

/// One open connection. Implementations are used from one thread at a time.
pub trait Db: Send {
    /// The dialect this connection speaks.
    fn dialect(&self) -> Dialect;
    /// Runs a statement and returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError>;
    /// Runs a query and returns all rows.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError>;
    /// Runs a query and hands each row to `each` in order. The row is the callee's to take
    /// values out of; a backend may reuse its allocation for the next row, which is why long
    /// reads (history pages, search pages) use this instead of [`Db::query`].
    fn query_each(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        each: &mut dyn FnMut(&mut Row) -> cairn_core::Result<()>,
    ) -> cairn_core::Result<()> {
        for mut row in self.query(sql, params)? {
            each(&mut row)?;
        }
        Ok(())
    }
    /// Runs several statements with no parameters (migrations, BEGIN/COMMIT).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// Runs a statement whose row count nobody needs and which cannot fail on a condition the
    /// caller would handle (a unique violation, say): audit appends, upserts, inserts of rows
    /// checked beforehand. A backend may hold it back and send it together with the next
    /// statement, so that a request that writes ten rows waits for the server once rather than
    /// ten times (PostgreSQL pipelines them; SQLite, in-process, runs it at once). An error it
    /// raises is then reported by that later call, or by [`Db::flush`], and is never a
    /// [`DbError::UniqueViolation`], so no caller mistakes it for a conflict of its own.
    fn defer(&mut self, sql: &str, params: &[SqlValue]) -> Result<(), DbError> {
        self.execute(sql, params).map(drop)
    }
    /// [`Db::batch`], held back like [`Db::defer`] (savepoints around a request).
    fn defer_batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.batch(sql)
    }
    /// Sends whatever [`Db::defer`] held back and waits for it; the first error wins.
    fn flush(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// Inserts metric rows, skipping exact duplicates; returns, for each input row, whether it
    /// was new. This is the ingest hot path, so each backend may do it its own fastest way.
    fn insert_metrics(&mut self, rows: &[MetricInsert]) -> Result<Vec<bool>, DbError>;
}
