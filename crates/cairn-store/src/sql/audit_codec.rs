//! How an audit payload is kept on disk.
//!
//! The hash chain covers the canonical JSON of a payload (see `cairn_core::audit`), so the
//! stored form only has to give those exact bytes back. It is one format byte followed by the
//! body:
//!
//! - `0`: the canonical JSON itself, for payloads that do not get smaller compressed;
//! - `1`: the canonical JSON compressed with zstd, using as dictionary [`DICTIONARY_V1`] followed
//!   by the event's entity id. A payload spells its entity id many times (a log-batch names its
//!   run in every param's id and image), and the dictionary holds the field names and shapes
//!   every payload repeats, so a typical payload shrinks to a tenth.
//!
//! The chain covers the decoded JSON, and zstd can decode slightly different frames to the same
//! text (a flipped bit in an unused field, say). So that no stored byte can change unnoticed,
//! [`decode_strict`], which verification uses, also encodes the text again and requires the stored
//! bytes back: the encoding is a function of the text and the entity id (the level and the
//! dictionary are fixed per format byte, and zstd's output at a given version is deterministic;
//! the test `the_encoding_of_a_payload_is_fixed` fails if a zstd upgrade changes it).

use cairn_core::{Error, Result};

/// Format byte: the body is the canonical JSON.
const RAW: u8 = 0;
/// Format byte: the body is zstd with [`DICTIONARY_V1`] and the entity id as dictionary.
const ZSTD_V1: u8 = 1;

/// zstd level. Part of format [`ZSTD_V1`] like the dictionary: verification re-encodes every
/// payload and expects the stored bytes back, so changing it needs a new format byte. 6 gives
/// payloads within a byte or two of 19 at a sixth of the time (about 25 µs for a log-batch).
const LEVEL: i32 = 6;

/// The largest payload decoding will produce (a frame claiming more is corrupt, not big).
const MAX_PAYLOAD: usize = 64 << 20;

/// Text the payloads repeat, as zstd "raw content" dictionary. Stored payloads depend on every
/// byte of it: never edit it. A better dictionary is a new format byte beside this one. The most
/// common shapes come last, where zstd reaches them with the shortest offsets.
const DICTIONARY_V1: &str = concat!(
    r#"{"changes":[{"after":{"creation_time":"#,
    r#","experiment_id":"","last_update_time":,"lifecycle_stage":"active","name":""},"entity":"experiment","id":""#,
    r#"{"after":{"digest":"","path":"","run_id":"","size":},"entity":"artifact_file","id":""#,
    r#"{"after":{"experiment_id":"","key":"","value":""},"entity":"experiment_tag","id":""#,
    r#"{"after":null,"entity":"#,
    r#"{"after":{"key":"","model_id":"","value":""},"entity":"logged_model_tag","id":""#,
    r#"{"after":{"creation_timestamp":,"description":"","last_updated_timestamp":,"name":""},"entity":"registered_model","id":""#,
    r#""lineage_node","lineage_edge","model_version","registered_model_alias","dataset","run_dataset_input","#,
    r#"{"after":{"key":"mlflow.user","run_id":"","value":""},"entity":"run_tag","id":"/mlflow.user"},"#,
    r#"{"after":{"key":"mlflow.source.name","run_id":"","value":""},"entity":"run_tag","id":"/mlflow.source.name"},"#,
    r#"{"after":{"key":"mlflow.runName","run_id":"","value":""},"entity":"run_tag","id":"/mlflow.runName"}"#,
    r#"],"metrics":{"count":1,"digest":""#,
    r#""status":"FINISHED","user_id":"","status":"FAILED","status":"KILLED","lifecycle_stage":"deleted","deleted_time":"#,
    r#"{"changes":[{"after":{"artifact_uri":"mlflow-artifacts:/","deleted_time":null,"end_time":null,"experiment_id":""#,
    r#"/artifacts","deleted_time":null,"end_time":,"experiment_id":"0","lifecycle_stage":"active","name":""#,
    r#"","run_id":"","start_time":,"status":"RUNNING","user_id":""},"entity":"run","id":""}"#,
    r#"]}"#,
    r#"],"metrics":{"count":3,"digest":""#,
    r#"{"after":{"key":"","run_id":"","value":""},"entity":"param","id":"/"},"#,
);

thread_local! {
    /// A compression context per thread (the writer's, in practice), given each event's
    /// dictionary in turn: making a context per event was half of what compressing cost.
    static COMPRESSOR: std::cell::RefCell<zstd::bulk::Compressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(LEVEL).expect("a zstd compression context"));
}

/// Encodes canonical JSON `payload` of an event about `entity_id` for storage.
pub fn encode(payload: &str, entity_id: &str) -> Result<Vec<u8>> {
    let dictionary = dictionary(entity_id);
    let compressed = COMPRESSOR.with_borrow_mut(|compressor| {
        compressor
            .set_dictionary(LEVEL, &dictionary)
            .map_err(|e| Error::internal(format!("cannot start compressing an audit payload: {e}")))?;
        compressor
            .compress(payload.as_bytes())
            .map_err(|e| Error::internal(format!("cannot compress an audit payload: {e}")))
    })?;
    let mut out = Vec::with_capacity(1 + compressed.len().min(payload.len()));
    if compressed.len() < payload.len() {
        out.push(ZSTD_V1);
        out.extend_from_slice(&compressed);
    } else {
        out.push(RAW);
        out.extend_from_slice(payload.as_bytes());
    }
    Ok(out)
}

/// Decodes a stored payload back to its canonical JSON. The error says what is wrong with the
/// stored bytes; verification reports it against the event.
pub fn decode(stored: &[u8], entity_id: &str) -> std::result::Result<String, String> {
    let (&format, body) = stored.split_first().ok_or("the stored payload is empty")?;
    let bytes = match format {
        RAW => body.to_vec(),
        ZSTD_V1 => {
            let size = zstd::zstd_safe::get_frame_content_size(body)
                .map_err(|_| "the stored payload is not a zstd frame".to_owned())?
                .ok_or("the stored payload does not say its size")?;
            let size =
                usize::try_from(size).ok().filter(|s| *s <= MAX_PAYLOAD).ok_or("the stored payload is too large")?;
            let dictionary = dictionary(entity_id);
            let mut decompressor = zstd::bulk::Decompressor::with_dictionary(&dictionary)
                .map_err(|e| format!("cannot start decompressing the payload: {e}"))?;
            decompressor.decompress(body, size).map_err(|e| format!("the stored payload does not decompress: {e}"))?
        }
        other => return Err(format!("the stored payload has unknown format {other}")),
    };
    String::from_utf8(bytes).map_err(|_| "the stored payload is not UTF-8".to_owned())
}

/// [`decode`], and also refuses stored bytes that are not exactly what [`encode`] makes of the
/// decoded text, so that any changed byte is reported even when it decodes to the same text.
pub fn decode_strict(stored: &[u8], entity_id: &str) -> std::result::Result<String, String> {
    let payload = decode(stored, entity_id)?;
    let again = encode(&payload, entity_id).map_err(|e| e.to_string())?;
    if again != stored {
        return Err("the stored payload is not in the form Cairn writes (its bytes were changed)".to_owned());
    }
    Ok(payload)
}

fn dictionary(entity_id: &str) -> Vec<u8> {
    // The entity id goes last, closest to the payload, because it is what the payload repeats most.
    let mut dictionary = Vec::with_capacity(DICTIONARY_V1.len() + 2 * entity_id.len() + 8);
    dictionary.extend_from_slice(DICTIONARY_V1.as_bytes());
    dictionary.extend_from_slice(entity_id.as_bytes());
    dictionary.extend_from_slice(b"\",\"value\":\"");
    dictionary.extend_from_slice(entity_id.as_bytes());
    dictionary.push(b'/');
    dictionary
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "6e8997f905694a238b7501f19fd16b6a";

    fn log_batch() -> String {
        let params = [("optimizer", "adam"), ("lr", "0.001"), ("batch_size", "128"), ("layers", "8"), ("seed", "0")];
        let changes: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!(
                    r#"{{"after":{{"key":"{k}","run_id":"{RUN}","value":"{v}"}},"entity":"param","id":"{RUN}/{k}"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"changes":[{}],"metrics":{{"count":3,"digest":"5645092977e870c6d9635c5026ba6236a860d0987a2d83f8b8b9b7c34379228f"}}}}"#,
            changes.join(",")
        )
    }

    #[test]
    fn payloads_come_back_byte_for_byte_and_much_smaller() {
        let payload = log_batch();
        let stored = encode(&payload, RUN).unwrap();
        assert_eq!(stored[0], ZSTD_V1);
        assert!(stored.len() * 4 < payload.len(), "{} bytes stored for {}", stored.len(), payload.len());
        assert_eq!(decode(&stored, RUN).unwrap(), payload);
    }

    #[test]
    fn a_payload_that_does_not_shrink_is_kept_as_it_is() {
        let stored = encode("{}", "1").unwrap();
        assert_eq!(stored, b"\0{}");
        assert_eq!(decode(&stored, "1").unwrap(), "{}");
    }

    #[test]
    fn damaged_bytes_are_refused_or_decode_to_something_else() {
        let payload = log_batch();
        let stored = encode(&payload, RUN).unwrap();
        assert!(decode(&[], RUN).is_err());
        assert!(decode(&[7, 1, 2], RUN).unwrap_err().contains("unknown format"));
        assert!(decode(&stored[..stored.len() / 2], RUN).is_err(), "a truncated frame is refused");
        for i in 0..stored.len() {
            for bit in 0..8 {
                let mut damaged = stored.clone();
                damaged[i] ^= 1 << bit;
                assert_ne!(
                    decode_strict(&damaged, RUN).ok().as_deref(),
                    Some(payload.as_str()),
                    "bit {bit} of byte {i} changed unnoticed"
                );
            }
        }
        // The entity id is part of the dictionary: the same bytes under another id do not
        // decode to the same payload, so moving a payload between events is noticed too.
        assert_ne!(decode(&stored, "0123456789abcdef0123456789abcdef").ok().as_deref(), Some(payload.as_str()));
    }

    #[test]
    fn a_raw_payload_with_a_compressed_twin_is_refused() {
        // Stored raw although it compresses: not what `encode` writes, so strictly refused.
        let payload = log_batch();
        let mut raw = vec![RAW];
        raw.extend_from_slice(payload.as_bytes());
        assert_eq!(decode(&raw, RUN).unwrap(), payload);
        assert!(decode_strict(&raw, RUN).is_err());
    }

    #[test]
    fn the_encoding_of_a_payload_is_fixed() {
        // Stored logs depend on these exact bytes (verification re-encodes): if this fails after
        // a zstd upgrade, the upgrade changed format 1 and must not ship as it is.
        let stored = encode(&log_batch(), RUN).unwrap();
        let digest = cairn_core::audit::sha256_hex(&stored);
        assert_eq!(
            (stored.len(), digest.as_str()),
            (165, "8b0a8f96e4ecffae368ea69f48fb5c778632ae229afaf13c2c0e46ec7aa92066")
        );
    }
}
