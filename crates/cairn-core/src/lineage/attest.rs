//! Attestations: signed, portable statements of a model version's lineage.
//!
//! The statement follows in-toto's Statement v1: its subject is the model version, identified
//! by the digest of its pinned files (the manifest digest), and its predicate is the lineage
//! Cairn knows — every upstream node with its digest, the edges, and which required facts are
//! missing. It is wrapped in a DSSE envelope signed with an ed25519 key, so anyone holding the
//! public key can check that nothing in it was changed, and anyone holding the model's files
//! can check that they are the ones attested.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};

use super::{Completeness, NodeRef, Subgraph};
use crate::audit::sha256_hex;
use crate::model::Millis;
use crate::{Error, Result};

/// in-toto's statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of Cairn's lineage attestations.
pub const PREDICATE_TYPE: &str = "https://cairn.dev/attestation/lineage/v1";
/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const SECRET_PREFIX: &str = "cairn-ed25519-secret:";
const PUBLIC_PREFIX: &str = "cairn-ed25519-public:";

/// What an attestation states.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationSubject {
    pub model_version: NodeRef,
    /// The manifest digest of the version's pinned files.
    pub artifact_digest: String,
    pub lineage: Subgraph,
    pub completeness: Completeness,
    pub issued_at: Millis,
}

/// The in-toto statement for `subject`.
pub fn statement(subject: &AttestationSubject) -> Value {
    let nodes: Vec<Value> = subject
        .lineage
        .nodes
        .iter()
        .map(|n| json!({ "id": n.node.to_string(), "label": n.label, "digest": n.digest }))
        .collect();
    let edges: Vec<Value> = subject
        .lineage
        .edges
        .iter()
        .map(|e| json!({ "source": e.source.to_string(), "kind": e.kind.as_str(), "target": e.target.to_string() }))
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": format!("models:/{}", subject.model_version.key),
            "digest": { "sha256": subject.artifact_digest },
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "model_version": subject.model_version.to_string(),
            "issued_at": subject.issued_at,
            "lineage_complete": subject.completeness.complete,
            "missing": subject.completeness.missing,
            "nodes": nodes,
            "edges": edges,
        },
    })
}

/// DSSE's pre-authentication encoding, which is what is signed.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key id Cairn gives a public key: the SHA-256 of its bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())
}

/// Signs `statement` into a DSSE envelope.
pub fn sign(statement: &Value, key: &SigningKey) -> Value {
    let payload = statement.to_string().into_bytes();
    let signature = key.sign(&pae(PAYLOAD_TYPE, &payload));
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": BASE64.encode(&payload),
        "signatures": [{ "keyid": key_id(&key.verifying_key()), "sig": BASE64.encode(signature.to_bytes()) }],
    })
}

/// Checks the envelope's signature with `key` and returns the statement it carries.
pub fn verify_envelope(envelope: &Value, key: &VerifyingKey) -> Result<Value> {
    let bad = |why: &str| Error::invalid(format!("Attestation rejected: {why}"));
    if envelope.get("payloadType").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(bad("not a DSSE envelope of an in-toto statement"));
    }
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| BASE64.decode(p).ok())
        .ok_or_else(|| bad("the payload is missing or not base64"))?;
    let signatures = envelope.get("signatures").and_then(Value::as_array).ok_or_else(|| bad("no signatures"))?;
    let wanted = key_id(key);
    let signed = pae(PAYLOAD_TYPE, &payload);
    let mut matched = false;
    for entry in signatures {
        if entry.get("keyid").and_then(Value::as_str).is_some_and(|id| id != wanted) {
            continue;
        }
        let Some(sig) = entry.get("sig").and_then(Value::as_str).and_then(|s| BASE64.decode(s).ok()) else {
            continue;
        };
        let Ok(sig) = Signature::from_slice(&sig) else { continue };
        if key.verify(&signed, &sig).is_ok() {
            matched = true;
            break;
        }
    }
    if !matched {
        return Err(bad("no signature by this key verifies; the statement was altered or signed by another key"));
    }
    let statement: Value = serde_json::from_slice(&payload).map_err(|_| bad("the payload is not JSON"))?;
    if statement.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE)
        || statement.get("predicateType").and_then(Value::as_str) != Some(PREDICATE_TYPE)
    {
        return Err(bad("not a Cairn lineage statement"));
    }
    Ok(statement)
}

/// The subject digest a verified statement names.
pub fn subject_digest(statement: &Value) -> Option<&str> {
    statement.pointer("/subject/0/digest/sha256").and_then(Value::as_str)
}

/// Writes a key as text (`cairn-ed25519-secret:<hex>` / `cairn-ed25519-public:<hex>`).
pub fn encode_secret_key(key: &SigningKey) -> String {
    format!("{SECRET_PREFIX}{}", hex::encode(key.to_bytes()))
}

/// See [`encode_secret_key`].
pub fn encode_public_key(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", hex::encode(key.as_bytes()))
}

fn key_bytes(text: &str, prefix: &str, what: &str) -> Result<[u8; 32]> {
    let hex_part = text
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| Error::invalid(format!("not a Cairn {what} key (expected {prefix}<64 hex digits>)")))?;
    let bytes = hex::decode(hex_part).map_err(|_| Error::invalid(format!("the {what} key is not hex")))?;
    bytes.try_into().map_err(|_| Error::invalid(format!("the {what} key is not 32 bytes")))
}

/// Reads a secret key written by [`encode_secret_key`].
pub fn decode_secret_key(text: &str) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&key_bytes(text, SECRET_PREFIX, "secret")?))
}

/// Reads a public key written by [`encode_public_key`].
pub fn decode_public_key(text: &str) -> Result<VerifyingKey> {
    VerifyingKey::from_bytes(&key_bytes(text, PUBLIC_PREFIX, "public")?)
        .map_err(|_| Error::invalid("the public key is not a valid ed25519 point"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> AttestationSubject {
        AttestationSubject {
            model_version: NodeRef::model_version("churn", 3).unwrap(),
            artifact_digest: "ab".repeat(32),
            lineage: Subgraph::default(),
            completeness: Completeness { complete: true, missing: vec![] },
            issued_at: 1,
        }
    }

    #[test]
    fn a_signed_statement_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let envelope = sign(&statement(&subject()), &key);
        let verified = verify_envelope(&envelope, &key.verifying_key()).unwrap();
        assert_eq!(subject_digest(&verified), Some("ab".repeat(32).as_str()));
        assert_eq!(verified["subject"][0]["name"], "models:/churn/3");

        let mut forged = statement(&subject());
        forged["subject"][0]["digest"]["sha256"] = json!("cd".repeat(32));
        let mut tampered = envelope.clone();
        tampered["payload"] = json!(BASE64.encode(forged.to_string()));
        assert!(verify_envelope(&tampered, &key.verifying_key()).is_err());

        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(verify_envelope(&envelope, &other.verifying_key()).is_err());
    }

    #[test]
    fn keys_round_trip_through_text() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let secret = encode_secret_key(&key);
        let public = encode_public_key(&key.verifying_key());
        assert_eq!(decode_secret_key(&secret).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(decode_public_key(&public).unwrap(), key.verifying_key());
        assert!(decode_public_key(&secret).is_err());
        assert!(decode_secret_key("cairn-ed25519-secret:zz").is_err());
    }
}
