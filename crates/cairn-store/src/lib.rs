//! Cairn's metadata store.
//!
//! One implementation of [`cairn_core::store::Store`] written against the small [`sql::db::Db`]
//! connection trait, and two backends that provide it: [`sqlite`] (the embedded default) and
//! [`postgres`]. Writes go through a single writer per process that commits many concurrent
//! requests in one transaction (group commit); reads use a pool of connections.
//! Only this crate knows SQL.

pub mod postgres;
pub mod sql;
pub mod sqlite;

use std::sync::Arc;

use cairn_core::store::Store;
use cairn_core::{Error, Result};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `postgresql://…`.
    pub uri: String,
    /// Artifact location given to experiments created without one; the experiment id is
    /// appended (`mlflow-artifacts:/` gives `mlflow-artifacts:/1`).
    pub default_artifact_root: String,
    /// Read connections kept open.
    pub read_pool_size: usize,
    /// Most write requests committed together in one transaction.
    pub max_group_commit: usize,
}

impl StoreConfig {
    /// A configuration with defaults for everything but the URI.
    pub fn new(uri: impl Into<String>) -> Self {
        StoreConfig {
            uri: uri.into(),
            default_artifact_root: "mlflow-artifacts:/".to_owned(),
            read_pool_size: 4,
            max_group_commit: 256,
        }
    }
}

/// Opens (creating and migrating if needed) the store named by `config.uri`.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    if config.uri.starts_with("sqlite:") {
        sqlite::open(config).await
    } else if config.uri.starts_with("postgresql:") || config.uri.starts_with("postgres:") {
        postgres::open(config).await
    } else {
        Err(Error::invalid(format!(
            "unsupported backend store URI '{}': use sqlite:///path or postgresql://…",
            config.uri
        )))
    }
}
