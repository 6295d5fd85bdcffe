//! Compares the registry's live tables with the state the audit log implies (called from
//! `sql::audit::verify`). Each row is imaged with the same function its writer used.

use cairn_core::Result;
use cairn_core::audit::Verifier;

use super::rows::{Cols, HistoryRow, KeyedRow, ModelRow, PinnedFileRow, VersionRow};
use crate::sql::db::Db;

/// Feeds every registry row to `verifier`.
pub fn verify_live(db: &mut dyn Db, verifier: &mut Verifier) -> Result<()> {
    for row in db.query(&format!("SELECT {} FROM registered_models", ModelRow::COLUMNS), &[])? {
        let row = ModelRow::from_row(row)?;
        let change = row.change();
        verifier.live_entity(change.entity, &change.id, &row.image());
    }
    for row in db.query(&format!("SELECT {} FROM model_versions", VersionRow::COLUMNS), &[])? {
        let row = VersionRow::from_row(row)?;
        let change = row.change();
        verifier.live_entity(change.entity, &change.id, &row.image());
    }
    for row in db.query("SELECT model_pk, key, value FROM registered_model_tags", &[])? {
        let mut c = Cols::new(row);
        let keyed = KeyedRow::model_tag(c.int()?, &c.text()?, &c.text()?);
        verifier.live_entity(keyed.entity, &keyed.audit_id(), &keyed.image());
    }
    for row in db.query("SELECT model_pk, version, key, value FROM model_version_tags", &[])? {
        let mut c = Cols::new(row);
        let keyed = KeyedRow::version_tag(c.int()?, c.int()?, &c.text()?, &c.text()?);
        verifier.live_entity(keyed.entity, &keyed.audit_id(), &keyed.image());
    }
    for row in db.query("SELECT model_pk, alias, version FROM registered_model_aliases", &[])? {
        let mut c = Cols::new(row);
        let keyed = KeyedRow::alias(c.int()?, &c.text()?, c.int()?);
        verifier.live_entity(keyed.entity, &keyed.audit_id(), &keyed.image());
    }
    for row in db.query(&format!("SELECT {} FROM model_version_files", PinnedFileRow::COLUMNS), &[])? {
        let row = PinnedFileRow::from_row(row)?;
        let change = row.change();
        verifier.live_entity(change.entity, &change.id, &row.image());
    }
    for row in db.query(&format!("SELECT {} FROM model_history", HistoryRow::COLUMNS), &[])? {
        let row = HistoryRow::from_row(row)?;
        verifier.live_entity(cairn_core::audit::entity::MODEL_HISTORY, &row.audit_id(), &row.image());
    }
    Ok(())
}
