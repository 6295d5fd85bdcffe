//! Test helpers for Cairn.
//!
//! [`PgCluster`] gives tests a PostgreSQL server: a throw-away cluster made with `initdb` and
//! run with `pg_ctl` in a temporary directory, or the server named by `CAIRN_TEST_POSTGRES_URL`
//! when that is set. Tests share one cluster per process ([`PgCluster::shared`]) and each takes a
//! fresh database of its own ([`PgCluster::create_database`]), so they can run in parallel.
//!
//! The `cairn-testkit` binary starts and stops the same kind of cluster for shell and Python
//! end-to-end tests (`cairn-testkit pg-start <dir>` prints the URL; `pg-stop <dir>`).

mod cluster;
mod exec;
mod local;

use std::fmt;

pub use cluster::{ENV_URL, PgCluster};
pub use local::LocalCluster;

/// What went wrong setting up PostgreSQL, with enough context to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Result with the testkit's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for building an [`Error`].
pub(crate) fn error(msg: impl Into<String>) -> Error {
    Error(msg.into())
}
