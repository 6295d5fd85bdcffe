//! Older audit events sealed into compressed blocks.
//!
//! One event on its own row costs about 200 bytes, most of it what every event repeats (the
//! actor, action and entity type as text, the run id, a 32-byte hash, zstd's per-frame tables).
//! Compressed together, [`BLOCK`] consecutive events take about a quarter of that. So once the
//! log holds two blocks' worth of unsealed events, the writer seals the oldest [`BLOCK`] of them:
//! their actor, action, entity, payload and hash move into one `audit_blocks` row, and their
//! `audit_events` rows keep only `seq` and `time` (what lineage joins on; a checkpoint also keeps
//! its action, which incremental verification looks up).
//!
//! The chain is unchanged: a sealed event's hash is recomputed from its content and the hash
//! before it, and the block keeps the stored hash of its last event as its anchor, so any change
//! to a sealed event, its time or the block breaks the link to the anchor, which verification
//! reports. Only a block whose events still verify against their stored hashes is sealed, so
//! sealing never launders a change made before it: such events stay on their rows for
//! verification to name one by one.

use cairn_core::audit::{AuditEvent, CHECKPOINT_ACTION, GENESIS_HASH, UNREADABLE_DIGEST, chain_hash, sha256_hex};
use cairn_core::{Error, Result};

use crate::sql::audit_codec;
use crate::sql::db::{Db, SqlValue};

/// Events per block.
pub const BLOCK: i64 = 256;

/// Format byte of a block body: zstd of the length-prefixed fields of each event in turn.
const BODY_V1: u8 = 1;

/// zstd level of [`BODY_V1`]. Part of the format: strict reading re-encodes a body and expects
/// the stored bytes back. 3 is within a tenth of level 19's size at a hundredth of its time
/// (0.2 ms per block).
const LEVEL: i32 = 3;

/// The largest body decoding will produce.
const MAX_BODY: usize = 256 << 20;

/// One sealed event's own fields (its `seq` is its place in the block, its time on its row).
#[derive(Debug)]
struct Sealed {
    actor: String,
    action: String,
    entity_type: String,
    entity_id: String,
    payload: String,
}

/// The newest sealed event, 0 if none is.
pub fn sealed_through(db: &mut dyn Db) -> Result<i64> {
    let rows = db.query("SELECT last_seq FROM audit_blocks ORDER BY last_seq DESC LIMIT 1", &[])?;
    rows.into_iter().next().and_then(|r| r.into_iter().next()).map_or(Ok(0), |v| Ok(v.int()?))
}

/// Seals every whole block that leaves at least [`BLOCK`] events unsealed behind `head_seq`.
/// Called inside the write transaction that appended `head_seq` (once per [`BLOCK`] events) and
/// by the migration that introduced blocks. Stops at the first block that must stay on its rows.
pub fn seal_due(db: &mut dyn Db, head_seq: i64) -> Result<()> {
    let mut sealed = sealed_through(db)?;
    while head_seq - sealed >= 2 * BLOCK {
        if !seal(db, sealed + 1, sealed + BLOCK)? {
            break;
        }
        sealed += BLOCK;
    }
    Ok(())
}

/// Migration 0014's backfill: seals the blocks a log written before blocks already has.
pub fn seal_existing(db: &mut dyn Db) -> Result<()> {
    let rows = db.query("SELECT COALESCE(MAX(seq), 0) FROM audit_events", &[])?;
    let head = rows.into_iter().next().and_then(|r| r.into_iter().next()).map_or(Ok(0), |v| v.int())?;
    seal_due(db, head)
}

/// Seals events `first..=last` if every one of them is on its row, decodes strictly and has the
/// hash its content and predecessor give; false (and nothing written) otherwise.
fn seal(db: &mut dyn Db, first: i64, last: i64) -> Result<bool> {
    let Some(mut prev) = stored_hash(db, first - 1)? else { return Ok(false) };
    let rows = db.query(
        "SELECT seq, time, actor, action, entity_type, entity_id, payload, hash FROM audit_events \
         WHERE seq >= $1 AND seq <= $2 AND payload IS NOT NULL ORDER BY seq",
        &[first.into(), last.into()],
    )?;
    if rows.len() as i64 != last - first + 1 {
        return Ok(false);
    }
    let mut events = Vec::with_capacity(rows.len());
    let mut thin = Vec::with_capacity(rows.len());
    for (row, expected_seq) in rows.into_iter().zip(first..) {
        let [seq, time, actor, action, entity_type, entity_id, payload, hash]: [SqlValue; 8] =
            row.try_into().map_err(|_| Error::internal("an audit row has the wrong width"))?;
        let (seq, time) = (seq.int()?, time.int()?);
        let (actor, action, entity_type, entity_id) =
            (actor.into_text()?, action.into_text()?, entity_type.into_text()?, entity_id.into_text()?);
        let Ok(payload) = audit_codec::decode_strict(&payload.into_bytes()?, &entity_id) else { return Ok(false) };
        let hash = hex::encode(hash.into_bytes()?);
        let digest = sha256_hex(payload.as_bytes());
        if seq != expected_seq
            || chain_hash(&prev, seq, time, &actor, &action, &entity_type, &entity_id, &digest) != hash
        {
            return Ok(false);
        }
        prev = hash;
        let kept_action = (action == CHECKPOINT_ACTION).then(|| action.clone());
        thin.push((seq, time, kept_action));
        events.push(Sealed { actor, action, entity_type, entity_id, payload });
    }
    let anchor = hex::decode(&prev).map_err(|_| Error::internal("an audit hash is not hex"))?;
    db.execute(
        "INSERT INTO audit_blocks (last_seq, first_seq, body, hash) VALUES ($1, $2, $3, $4)",
        &[last.into(), first.into(), encode(&events)?.into(), anchor.into()],
    )?;
    // Deleted and inserted again rather than updated: SQLite leaves the pages of shrunken rows
    // as sparse as they were, while a delete lets it merge them, so the thin rows pack densely.
    db.execute("DELETE FROM audit_events WHERE seq >= $1 AND seq <= $2", &[first.into(), last.into()])?;
    for (seq, time, action) in thin {
        db.defer(
            "INSERT INTO audit_events (seq, time, action) VALUES ($1, $2, $3)",
            &[seq.into(), time.into(), action.into()],
        )?;
    }
    Ok(true)
}

/// The stored hash of event `seq` as hex: its row's, or its block's anchor if it ends a block.
/// The genesis hash for 0; `None` if neither holds it.
pub fn stored_hash(db: &mut dyn Db, seq: i64) -> Result<Option<String>> {
    if seq == 0 {
        return Ok(Some(GENESIS_HASH.to_owned()));
    }
    let rows = db.query(
        "SELECT hash FROM audit_events WHERE seq = $1 AND hash IS NOT NULL \
         UNION ALL SELECT hash FROM audit_blocks WHERE last_seq = $1",
        &[seq.into()],
    )?;
    match rows.into_iter().next().and_then(|r| r.into_iter().next()) {
        Some(value) => Ok(Some(hex::encode(value.into_bytes()?))),
        None => Ok(None),
    }
}

/// The sealed events with `seq > after`, oldest first, whole blocks at a time until at least
/// `limit` are read (the caller trims). `strict` also refuses a body that is not exactly what
/// sealing writes. A block that does not decode yields one unreadable event per seq, so that
/// listing still works and verification names the events.
pub fn read_after(db: &mut dyn Db, after: i64, limit: u64, strict: bool) -> Result<Vec<AuditEvent>> {
    let blocks = i64::try_from(limit / BLOCK as u64 + 2).unwrap_or(i64::MAX);
    let rows = db.query(
        "SELECT first_seq, last_seq, body, hash FROM audit_blocks WHERE last_seq > $1 ORDER BY last_seq LIMIT $2",
        &[after.into(), blocks.into()],
    )?;
    let mut out = Vec::new();
    for row in rows {
        if out.len() as u64 >= limit {
            break;
        }
        let events = read_block(db, row, strict)?;
        out.extend(events.into_iter().filter(|e| e.seq > after));
    }
    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(out)
}

/// The sealed events with `seq < before`, newest first, whole blocks at a time, each block
/// handed to `visit` until it returns false.
pub fn visit_before(db: &mut dyn Db, before: i64, mut visit: impl FnMut(Vec<AuditEvent>) -> bool) -> Result<()> {
    let mut before = before;
    loop {
        let rows = db.query(
            "SELECT first_seq, last_seq, body, hash FROM audit_blocks WHERE first_seq < $1 \
             ORDER BY last_seq DESC LIMIT 1",
            &[before.into()],
        )?;
        let Some(row) = rows.into_iter().next() else { return Ok(()) };
        let first = row.first().map(SqlValue::int).transpose()?.unwrap_or(i64::MIN);
        let mut events = read_block(db, row, false)?;
        events.retain(|e| e.seq < before);
        events.reverse();
        if !visit(events) {
            return Ok(());
        }
        before = first;
    }
}

fn read_block(db: &mut dyn Db, row: Vec<SqlValue>, strict: bool) -> Result<Vec<AuditEvent>> {
    let [first, last, body, anchor]: [SqlValue; 4] =
        row.try_into().map_err(|_| Error::internal("an audit block row has the wrong width"))?;
    let (first, last) = (first.int()?, last.int()?);
    let anchor = hex::encode(anchor.into_bytes()?);
    let body = body.into_bytes()?;
    let mut times = std::collections::HashMap::new();
    for row in
        db.query("SELECT seq, time FROM audit_events WHERE seq >= $1 AND seq <= $2", &[first.into(), last.into()])?
    {
        let mut it = row.into_iter();
        let seq = it.next().unwrap_or(SqlValue::Null).int()?;
        times.insert(seq, it.next().unwrap_or(SqlValue::Null).int()?);
    }
    // A link to nothing: the event before the block is gone, which the verifier reports.
    let mut prev = stored_hash(db, first - 1)?.unwrap_or_default();
    let decoded = decode(&body, strict).and_then(|events| {
        if events.len() as i64 == last - first + 1 {
            Ok(events)
        } else {
            Err(format!("the block of events {first} to {last} holds {} events", events.len()))
        }
    });
    let mut out = Vec::new();
    match decoded {
        Ok(events) => {
            for (sealed, seq) in events.into_iter().zip(first..) {
                // An event whose row is gone has no time; the chain then breaks at the anchor.
                let time = times.get(&seq).copied().unwrap_or(i64::MIN);
                let digest = sha256_hex(sealed.payload.as_bytes());
                let hash = if seq == last {
                    anchor.clone()
                } else {
                    chain_hash(
                        &prev,
                        seq,
                        time,
                        &sealed.actor,
                        &sealed.action,
                        &sealed.entity_type,
                        &sealed.entity_id,
                        &digest,
                    )
                };
                let prev_hash = std::mem::replace(&mut prev, hash.clone());
                out.push(AuditEvent {
                    seq,
                    time,
                    actor: sealed.actor,
                    action: sealed.action,
                    entity_type: sealed.entity_type,
                    entity_id: sealed.entity_id,
                    payload: sealed.payload,
                    digest,
                    prev_hash,
                    hash,
                });
            }
        }
        Err(why) => {
            for seq in first..=last {
                let hash = if seq == last { anchor.clone() } else { String::new() };
                out.push(AuditEvent {
                    seq,
                    time: times.get(&seq).copied().unwrap_or(i64::MIN),
                    actor: String::new(),
                    action: String::new(),
                    entity_type: String::new(),
                    entity_id: String::new(),
                    payload: String::new(),
                    digest: format!("{UNREADABLE_DIGEST}{why}"),
                    prev_hash: std::mem::take(&mut prev),
                    hash,
                });
            }
        }
    }
    Ok(out)
}

fn encode(events: &[Sealed]) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    for e in events {
        for field in [&e.actor, &e.action, &e.entity_type, &e.entity_id, &e.payload] {
            put_len(&mut raw, field.len());
            raw.extend_from_slice(field.as_bytes());
        }
    }
    let compressed = zstd::bulk::compress(&raw, LEVEL)
        .map_err(|e| Error::internal(format!("cannot compress an audit block: {e}")))?;
    let mut out = Vec::with_capacity(1 + compressed.len());
    out.push(BODY_V1);
    out.extend_from_slice(&compressed);
    Ok(out)
}

fn decode(stored: &[u8], strict: bool) -> std::result::Result<Vec<Sealed>, String> {
    let (&format, body) = stored.split_first().ok_or("the block is empty")?;
    if format != BODY_V1 {
        return Err(format!("the block has unknown format {format}"));
    }
    let size = zstd::zstd_safe::get_frame_content_size(body)
        .map_err(|_| "the block is not a zstd frame".to_owned())?
        .ok_or("the block does not say its size")?;
    let size = usize::try_from(size).ok().filter(|s| *s <= MAX_BODY).ok_or("the block is too large")?;
    let raw = zstd::bulk::decompress(body, size).map_err(|e| format!("the block does not decompress: {e}"))?;
    let mut fields = Vec::with_capacity(5);
    let mut events = Vec::new();
    let mut rest = raw.as_slice();
    while !rest.is_empty() {
        let (len, after) = take_len(rest).ok_or("a field length in the block is cut off")?;
        if after.len() < len {
            return Err("a field in the block is cut off".to_owned());
        }
        let (field, after) = after.split_at(len);
        fields.push(String::from_utf8(field.to_vec()).map_err(|_| "a field in the block is not UTF-8".to_owned())?);
        rest = after;
        if fields.len() == 5 {
            let mut it = fields.drain(..);
            let mut next = || it.next().unwrap_or_default();
            events.push(Sealed {
                actor: next(),
                action: next(),
                entity_type: next(),
                entity_id: next(),
                payload: next(),
            });
        }
    }
    if !fields.is_empty() {
        return Err("the block ends inside an event".to_owned());
    }
    if strict && encode(&events).map_err(|e| e.to_string())? != stored {
        return Err("the block is not in the form Cairn writes (its bytes were changed)".to_owned());
    }
    Ok(events)
}

/// LEB128, as the fields are mostly short.
fn put_len(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

fn take_len(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut len = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((len, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Sealed> {
        (0..40)
            .map(|i| Sealed {
                actor: "alice".into(),
                action: "log_batch".into(),
                entity_type: "run".into(),
                entity_id: format!("{i:032x}"),
                payload: format!(r#"{{"changes":[],"n":{i},"long":"{}"}}"#, "é".repeat(i * 10)),
            })
            .collect()
    }

    #[test]
    fn a_body_comes_back_field_for_field() {
        let stored = encode(&events()).unwrap();
        let back = decode(&stored, true).unwrap();
        assert_eq!(back.len(), 40);
        for (a, b) in events().iter().zip(&back) {
            assert_eq!(
                (&a.actor, &a.action, &a.entity_type, &a.entity_id, &a.payload),
                (&b.actor, &b.action, &b.entity_type, &b.entity_id, &b.payload)
            );
        }
    }

    #[test]
    fn a_changed_byte_is_refused_or_changes_what_decodes() {
        let stored = encode(&events()).unwrap();
        let fields = |events: Vec<Sealed>| -> Vec<[String; 5]> {
            events.into_iter().map(|e| [e.actor, e.action, e.entity_type, e.entity_id, e.payload]).collect()
        };
        let original = fields(decode(&stored, true).unwrap());
        for i in 0..stored.len() {
            let mut damaged = stored.clone();
            damaged[i] ^= 0x10;
            if let Ok(events) = decode(&damaged, true) {
                assert!(fields(events) != original, "byte {i} changed unnoticed");
            }
        }
        assert!(decode(&[], false).is_err());
        assert!(decode(&[9, 1], false).unwrap_err().contains("unknown format"));
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 300, 1 << 20] {
            let mut out = Vec::new();
            put_len(&mut out, len);
            assert_eq!(take_len(&out), Some((len, &[][..])));
        }
        assert_eq!(take_len(&[0x80]), None);
    }
}
