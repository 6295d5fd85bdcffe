//! Leases (`cairn_core::lease`) in the `leases` table. Each function runs inside a write
//! transaction; the conditional `UPDATE` is what decides between two processes taking a lease at
//! once, since the database applies one of them and re-checks the other's condition after it.

use cairn_core::Result;
use cairn_core::lease::LeaseState;
use cairn_core::model::Millis;

use crate::sql::db::{Db, SqlValue};

pub fn acquire(db: &mut dyn Db, name: &str, holder: &str, now: Millis, ttl: Millis) -> Result<Option<LeaseState>> {
    let expires = now.saturating_add(ttl);
    db.execute(
        "INSERT INTO leases (name, holder, expires_at, cursor) VALUES ($1, NULL, 0, NULL) ON CONFLICT (name) DO NOTHING",
        &[name.into()],
    )?;
    let taken = db.execute(
        "UPDATE leases SET holder = $2, expires_at = $3 \
         WHERE name = $1 AND (holder = $2 OR holder IS NULL OR expires_at <= $4)",
        &[name.into(), holder.into(), expires.into(), now.into()],
    )?;
    if taken == 0 {
        return Ok(None);
    }
    let rows = db.query("SELECT cursor FROM leases WHERE name = $1", &[name.into()])?;
    let cursor = match rows.into_iter().next().and_then(|row| row.into_iter().next()) {
        None | Some(SqlValue::Null) => None,
        Some(value) => Some(value.int()?),
    };
    Ok(Some(LeaseState { cursor }))
}

pub fn advance(db: &mut dyn Db, name: &str, holder: &str, now: Millis, cursor: i64, ttl: Millis) -> Result<bool> {
    let advanced = db.execute(
        "UPDATE leases SET cursor = $3, expires_at = $5 WHERE name = $1 AND holder = $2 AND expires_at > $4",
        &[name.into(), holder.into(), cursor.into(), now.into(), now.saturating_add(ttl).into()],
    )?;
    Ok(advanced == 1)
}

pub fn release(db: &mut dyn Db, name: &str, holder: &str) -> Result<()> {
    db.execute(
        "UPDATE leases SET holder = NULL, expires_at = 0 WHERE name = $1 AND holder = $2",
        &[name.into(), holder.into()],
    )?;
    Ok(())
}
