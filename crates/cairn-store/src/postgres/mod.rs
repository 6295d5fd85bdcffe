//! The PostgreSQL backend: [`PgDb`] implements [`Db`] over the `tokio-postgres` client, and
//! [`open`] starts a [`SqlStore`] on a database named by a `postgresql://` URI.
//!
//! Each connection blocks on a small runtime of its own and must never be called on a thread
//! that is running async tasks; the store only calls it from its writer thread and from
//! `spawn_blocking`, and [`PgDb`] takes care to be closed safely wherever it is dropped.
//!
//! Several server processes may share one database. Migrations are applied under an advisory
//! lock (see `sql::migrate`), and each write transaction begins by locking the audit chain's
//! head row, so writers in different processes commit one after another and the chain stays
//! linear.

mod db;
mod metrics;
mod value;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::store::Store;
use cairn_core::{Error, Result};
use tokio_postgres::Config;

pub use self::db::{PgDb, Role};
use crate::StoreConfig;
use crate::sql::SqlStore;
use crate::sql::db::Db;

/// How long connecting may take when the URI does not say (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses a `postgresql://user:password@host:port/database?options` (or `postgres://`) URI.
/// Errors never repeat the URI, which may hold a password.
pub fn config_from_uri(uri: &str) -> Result<Config> {
    if !(uri.starts_with("postgresql://") || uri.starts_with("postgres://")) {
        return Err(Error::invalid("invalid PostgreSQL URI: expected postgresql://user@host:port/database"));
    }
    let mut config = Config::from_str(uri).map_err(|e| Error::invalid(format!("invalid PostgreSQL URI: {e}")))?;
    if config.get_dbname().is_none() {
        return Err(Error::invalid("invalid PostgreSQL URI: it names no database (postgresql://host/database)"));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("cairn");
    }
    Ok(config)
}

/// Where `config` points, for messages: hosts, port and database, never the password.
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{}:{port}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

/// Opens (migrating if needed) a PostgreSQL store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    let pg = config_from_uri(&config.uri)?;
    let write_config = pg.clone();
    let write_db = tokio::task::spawn_blocking(move || PgDb::connect(&write_config, Role::Write))
        .await
        .map_err(|e| Error::internal(format!("connecting to PostgreSQL failed: {e}")))?
        .map_err(|e| Error::internal(format!("cannot open PostgreSQL database {}: {e}", describe(&pg))))?;
    let connect = Box::new(move || PgDb::connect(&pg, Role::Read).map(|db| Box::new(db) as Box<dyn Db>));
    let store: Arc<dyn Store> = SqlStore::start(config, Box::new(write_db), connect).await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_database() {
        let config = config_from_uri("postgresql://u:secret@127.0.0.1:5433/cairn").unwrap();
        assert_eq!(config.get_dbname(), Some("cairn"));
        assert_eq!(config.get_user(), Some("u"));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(describe(&config), "127.0.0.1:5433/cairn");
        assert!(config_from_uri("postgres://h/db").is_ok());
        assert!(config_from_uri("postgresql://h").is_err(), "no database");
        assert!(config_from_uri("mysql://h/db").is_err());
    }

    #[test]
    fn uri_errors_do_not_repeat_the_password() {
        let err = config_from_uri("postgresql://u:hunter2@h:notaport/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
