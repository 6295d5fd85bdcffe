//! Numbered schema migrations, embedded in the binary and applied at open.
//!
//! Files live in `migrations/<dialect>/NNNN_name.sql` and are never edited once landed; a change
//! is a new file. `schema_migrations` records what was applied. Each migration runs in its own
//! transaction together with its bookkeeping row, so a crash leaves it either applied or not.

use cairn_core::{Error, Result};

use crate::sql::common::now_millis;
use crate::sql::db::{Db, Dialect};

/// One migration: its number, name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// Work SQL cannot do (such as compressing), run after `sql` in the same transaction.
    pub backfill: Option<fn(&mut dyn Db) -> Result<()>>,
}

const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../../migrations/sqlite/0001_init.sql"), backfill: None },
    Migration {
        version: 2,
        name: "artifacts",
        sql: include_str!("../../migrations/sqlite/0002_artifacts.sql"),
        backfill: None,
    },
    Migration {
        version: 3,
        name: "logged_models",
        sql: include_str!("../../migrations/sqlite/0003_logged_models.sql"),
        backfill: None,
    },
    Migration {
        version: 4,
        name: "registry",
        sql: include_str!("../../migrations/sqlite/0004_registry.sql"),
        backfill: None,
    },
    Migration {
        version: 5,
        name: "lineage",
        sql: include_str!("../../migrations/sqlite/0005_lineage.sql"),
        backfill: None,
    },
    Migration {
        version: 6,
        name: "history_order",
        sql: include_str!("../../migrations/sqlite/0006_history_order.sql"),
        backfill: None,
    },
    Migration { version: 7, name: "auth", sql: include_str!("../../migrations/sqlite/0007_auth.sql"), backfill: None },
    Migration {
        version: 8,
        name: "coordination",
        sql: include_str!("../../migrations/sqlite/0008_coordination.sql"),
        backfill: None,
    },
    Migration {
        version: 9,
        name: "idempotency",
        sql: include_str!("../../migrations/sqlite/0009_idempotency.sql"),
        backfill: None,
    },
    Migration {
        version: 10,
        name: "root_artifacts",
        sql: include_str!("../../migrations/sqlite/0010_root_artifacts.sql"),
        backfill: None,
    },
    Migration {
        version: 11,
        name: "metric_blocks",
        sql: include_str!("../../migrations/sqlite/0011_metric_blocks.sql"),
        backfill: None,
    },
    Migration {
        version: 12,
        name: "compact_audit",
        sql: include_str!("../../migrations/sqlite/0012_compact_audit.sql"),
        backfill: Some(crate::sql::audit::compact_v1_log),
    },
    Migration {
        version: 13,
        name: "metric_value_index",
        sql: include_str!("../../migrations/sqlite/0013_metric_value_index.sql"),
        backfill: None,
    },
    Migration {
        version: 14,
        name: "audit_blocks",
        sql: include_str!("../../migrations/sqlite/0014_audit_blocks.sql"),
        backfill: Some(crate::sql::audit_blocks::seal_existing),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
        backfill: None,
    },
    Migration {
        version: 2,
        name: "artifacts",
        sql: include_str!("../../migrations/postgres/0002_artifacts.sql"),
        backfill: None,
    },
    Migration {
        version: 3,
        name: "logged_models",
        sql: include_str!("../../migrations/postgres/0003_logged_models.sql"),
        backfill: None,
    },
    Migration {
        version: 4,
        name: "registry",
        sql: include_str!("../../migrations/postgres/0004_registry.sql"),
        backfill: None,
    },
    Migration {
        version: 5,
        name: "lineage",
        sql: include_str!("../../migrations/postgres/0005_lineage.sql"),
        backfill: None,
    },
    Migration {
        version: 6,
        name: "history_order",
        sql: include_str!("../../migrations/postgres/0006_history_order.sql"),
        backfill: None,
    },
    Migration {
        version: 7,
        name: "auth",
        sql: include_str!("../../migrations/postgres/0007_auth.sql"),
        backfill: None,
    },
    Migration {
        version: 8,
        name: "coordination",
        sql: include_str!("../../migrations/postgres/0008_coordination.sql"),
        backfill: None,
    },
    Migration {
        version: 9,
        name: "idempotency",
        sql: include_str!("../../migrations/postgres/0009_idempotency.sql"),
        backfill: None,
    },
    Migration {
        version: 10,
        name: "root_artifacts",
        sql: include_str!("../../migrations/postgres/0010_root_artifacts.sql"),
        backfill: None,
    },
    Migration {
        version: 11,
        name: "metric_blocks",
        sql: include_str!("../../migrations/postgres/0011_metric_blocks.sql"),
        backfill: None,
    },
    Migration {
        version: 12,
        name: "compact_audit",
        sql: include_str!("../../migrations/postgres/0012_compact_audit.sql"),
        backfill: Some(crate::sql::audit::compact_v1_log),
    },
    Migration {
        version: 13,
        name: "metric_value_index",
        sql: include_str!("../../migrations/postgres/0013_metric_value_index.sql"),
        backfill: None,
    },
    Migration {
        version: 14,
        name: "audit_blocks",
        sql: include_str!("../../migrations/postgres/0014_audit_blocks.sql"),
        backfill: Some(crate::sql::audit_blocks::seal_existing),
    },
];

/// The migrations of a dialect, in order.
pub fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// An arbitrary constant naming Cairn's migration lock among PostgreSQL advisory locks.
const PG_LOCK_KEY: i64 = 0x6361_6972_6e00;

/// Starts a transaction that excludes other processes migrating the same database.
fn begin_exclusive(db: &mut dyn Db) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => db.batch("BEGIN IMMEDIATE")?,
        Dialect::Postgres => {
            db.batch("BEGIN")?;
            // The lock function returns `void`; selecting a constant keeps the row type simple.
            db.query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l", &[PG_LOCK_KEY.into()])?;
        }
    }
    Ok(())
}

fn in_transaction(db: &mut dyn Db, f: impl FnOnce(&mut dyn Db) -> Result<()>) -> Result<()> {
    begin_exclusive(db)?;
    match f(db) {
        Ok(()) => Ok(db.batch("COMMIT")?),
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn applied(db: &mut dyn Db) -> Result<Vec<i64>> {
    db.query("SELECT version FROM schema_migrations ORDER BY version", &[])?
        .into_iter()
        .map(|row| Ok(row.first().ok_or_else(|| Error::internal("empty schema_migrations row"))?.int()?))
        .collect()
}

/// Refuses a database that MLflow created. MLflow manages its schema with Alembic, whose
/// bookkeeping table no Cairn schema has; migrating such a database would fail half-way on
/// MLflow's own `experiments` table, or worse, succeed beside it. Only reads, so the database is
/// left exactly as it was; `what` names it in the message.
pub fn refuse_mlflow_schema(db: &mut dyn Db, what: &str) -> Result<()> {
    let find = match db.dialect() {
        Dialect::Sqlite => "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Dialect::Postgres => {
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
        }
    };
    let exists = |db: &mut dyn Db, table: &str| -> Result<bool> {
        let rows = db.query(find, &[table.into()])?;
        Ok(rows.first().and_then(|r| r.first()).map(|v| v.int()).transpose()?.unwrap_or(0) > 0)
    };
    if !exists(db, "alembic_version")? || !exists(db, "experiments")? {
        return Ok(());
    }
    let revision = db
        .query("SELECT version_num FROM alembic_version", &[])?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .and_then(|v| v.into_text().ok())
        .unwrap_or_else(|| "unknown".to_owned());
    Err(Error::invalid(format!(
        "{what} is an MLflow tracking database (Alembic revision {revision}), not a Cairn one; Cairn will not \
         modify it. Start Cairn on a new, empty database; MLflow's data can be brought over with an importer \
         once Cairn has one (it does not yet)"
    )))
}

/// Applies every migration of the connection's dialect that has not been applied yet, and
/// refuses a database that was migrated by a newer Cairn or created by MLflow.
pub fn migrate(db: &mut dyn Db) -> Result<()> {
    let known = migrations(db.dialect());
    // Before anything is created, so that a foreign database is not touched at all.
    refuse_mlflow_schema(db, "the database")?;
    in_transaction(db, |db| Ok(db.batch(CREATE_TABLE)?))?;
    let newest_known = known.last().map_or(0, |m| m.version);
    if let Some(newest) = applied(db)?.last().filter(|v| **v > newest_known) {
        return Err(Error::internal(format!(
            "the database schema is at version {newest}, newer than this Cairn knows ({newest_known}); upgrade Cairn"
        )));
    }
    for migration in known {
        in_transaction(db, |db| {
            // Checked again under the lock: another process may have applied it meanwhile.
            if applied(db)?.contains(&migration.version) {
                return Ok(());
            }
            db.batch(migration.sql).map_err(|e| {
                Error::internal(format!("migration {:04}_{} failed: {e}", migration.version, migration.name))
            })?;
            if let Some(backfill) = migration.backfill {
                backfill(db).map_err(|e| {
                    Error::internal(format!("migration {:04}_{} failed: {e}", migration.version, migration.name))
                })?;
            }
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[migration.version.into(), migration.name.into(), now_millis().into()],
            )?;
            tracing::info!(version = migration.version, name = migration.name, "applied schema migration");
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::db::SqlValue;
    use crate::sqlite::{Role, SqliteDb, SqliteOptions};

    fn fresh(dir: &tempfile::TempDir) -> SqliteDb {
        SqliteDb::open(&SqliteOptions { path: dir.path().join("x.db"), full_sync: false }, Role::Write).unwrap()
    }

    #[test]
    fn an_mlflow_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = fresh(&dir);
        db.batch(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL); \
             INSERT INTO alembic_version VALUES ('1b5f0d9ad7c1'); CREATE TABLE experiments (experiment_id INTEGER)",
        )
        .unwrap();
        let err = migrate(&mut db).unwrap_err().to_string();
        assert!(err.contains("MLflow tracking database") && err.contains("1b5f0d9ad7c1"), "{err}");
        assert!(err.contains("will not modify"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", &[]).unwrap();
        let names: Vec<SqlValue> = tables.into_iter().flatten().collect();
        assert_eq!(names, vec![SqlValue::Text("alembic_version".into()), SqlValue::Text("experiments".into())]);
    }

    #[test]
    fn an_alembic_table_alone_does_not_make_an_mlflow_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = fresh(&dir);
        db.batch("CREATE TABLE alembic_version (version_num TEXT)").unwrap();
        migrate(&mut db).unwrap();
    }

    #[test]
    fn migrations_are_numbered_consecutively_from_one() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for (expected, m) in (1..).zip(migrations(dialect)) {
                assert_eq!(m.version, expected, "{dialect:?} migration {}", m.name);
            }
        }
    }
}
