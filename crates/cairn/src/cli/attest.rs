//! `cairn attest`: signed lineage statements for model versions, and their verification.
//!
//! `cairn attest --generate-key PATH` writes a key pair (`PATH` secret, `PATH.pub` public).
//! `cairn attest NAME@VERSION --key PATH` writes an in-toto statement, in a DSSE envelope
//! signed with that key, whose subject is the digest of the version's pinned files and whose
//! predicate is its upstream lineage. `cairn attest --verify FILE --public-key PATH.pub`
//! checks the signature, then compares the subject digest and every node digest in the
//! statement with what the store holds now, and exits 1 on any difference.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use cairn_core::lineage::attest::{
    self, AttestationSubject, decode_public_key, decode_secret_key, encode_public_key, encode_secret_key,
};
use cairn_core::lineage::{Direction, MAX_TRAVERSAL_DEPTH, NodeKind, NodeRef, TraversalQuery};
use cairn_core::store::Store;

use super::StoreArgs;

/// Arguments of `cairn attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The model version to attest, as NAME@VERSION.
    #[arg(required_unless_present_any = ["verify", "generate_key"])]
    pub model_version: Option<String>,
    /// The secret key to sign with (made by --generate-key).
    #[arg(long, env = "CAIRN_ATTEST_KEY", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Write the attestation to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Verify the attestation in FILE instead of writing one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model_version", "generate_key"])]
    pub verify: Option<PathBuf>,
    /// The public key to verify with.
    #[arg(long, value_name = "PATH", requires = "verify")]
    pub public_key: Option<PathBuf>,
    /// Create a key pair: PATH (secret, keep it safe) and PATH.pub (public).
    #[arg(long, value_name = "PATH", conflicts_with = "model_version")]
    pub generate_key: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Reads `NAME@VERSION` (the name may itself contain `@`; the version is after the last one).
fn parse_model_version(text: &str) -> anyhow::Result<NodeRef> {
    let (name, version) = text.rsplit_once('@').context("give the model version as NAME@VERSION, e.g. churn@3")?;
    let version: i64 = version.parse().with_context(|| format!("'{version}' is not a version number"))?;
    Ok(NodeRef::model_version(name, version)?)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn generate_key(path: &Path) -> anyhow::Result<ExitCode> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("the system has no source of randomness: {e}"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = path.with_extension("pub");
    if path.exists() {
        bail!("{} exists; refusing to overwrite a key", path.display());
    }
    std::fs::write(path, encode_secret_key(&key) + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::write(&public, encode_public_key(&key.verifying_key()) + "\n")
        .with_context(|| format!("cannot write {}", public.display()))?;
    println!("secret key: {}\npublic key: {}", path.display(), public.display());
    Ok(ExitCode::SUCCESS)
}

async fn subject(store: &Arc<dyn Store>, version: &NodeRef) -> anyhow::Result<AttestationSubject> {
    let node = store.get_node(version, None).await.with_context(|| format!("cannot find {version}"))?;
    let artifact_digest = node
        .digest
        .with_context(|| format!("{version} has no pinned files in Cairn, so there is no artifact digest to attest"))?;
    let query = TraversalQuery {
        start: version.clone(),
        direction: Direction::Upstream,
        max_depth: MAX_TRAVERSAL_DEPTH,
        as_of: None,
    };
    let lineage = store.traverse(query).await.context("cannot read the lineage")?;
    let completeness = store.completeness(version, None).await.context("cannot check completeness")?;
    let issued_at = now_millis();
    Ok(AttestationSubject { model_version: version.clone(), artifact_digest, lineage, completeness, issued_at })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Compares a verified statement with the store: the subject digest and every node digest.
async fn compare_with_store(store: &Arc<dyn Store>, statement: &Value) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let version = statement
        .pointer("/predicate/model_version")
        .and_then(Value::as_str)
        .context("the statement names no model version")?;
    let version = NodeRef::parse(version)?;
    if version.kind != NodeKind::ModelVersion {
        bail!("the statement's subject is {version}, not a model version");
    }
    match store.get_node(&version, None).await {
        Ok(node) => {
            if node.digest.as_deref() != attest::subject_digest(statement) {
                problems.push(format!(
                    "{version}: its files now digest to {}, the attestation says {}",
                    node.digest.as_deref().unwrap_or("nothing"),
                    attest::subject_digest(statement).unwrap_or("nothing")
                ));
            }
        }
        Err(e) => problems.push(format!("{version}: {e}")),
    }
    for entry in statement.pointer("/predicate/nodes").and_then(Value::as_array).into_iter().flatten() {
        let (Some(id), Some(digest)) = (entry["id"].as_str(), entry["digest"].as_str()) else { continue };
        let Ok(node) = NodeRef::parse(id) else {
            problems.push(format!("unreadable node reference '{id}'"));
            continue;
        };
        if node == version {
            continue;
        }
        match store.get_node(&node, None).await {
            Ok(found) if found.digest.as_deref() == Some(digest) => {}
            Ok(found) => problems.push(format!(
                "{node}: digest is now {}, the attestation says {digest}",
                found.digest.as_deref().unwrap_or("nothing")
            )),
            Err(e) => problems.push(format!("{node}: {e}")),
        }
    }
    Ok(problems)
}

/// Runs `cairn attest`.
pub async fn run(args: AttestArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.generate_key {
        return generate_key(path);
    }
    if let Some(file) = &args.verify {
        let public = args.public_key.as_deref().context("--verify needs --public-key")?;
        let key = decode_public_key(&read_text(public)?)?;
        let envelope: Value =
            serde_json::from_str(&read_text(file)?).with_context(|| format!("{} is not JSON", file.display()))?;
        let statement = match attest::verify_envelope(&envelope, &key) {
            Ok(statement) => statement,
            Err(e) => {
                println!("FAILED: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        let store = cairn_store::open(&args.store.store_config()).await.context("cannot open the store")?;
        let problems = compare_with_store(&store, &statement).await;
        store.close().await.context("closing the store")?;
        let problems = problems?;
        if problems.is_empty() {
            println!("OK: signature valid; the model's files and every digest in its lineage match the store");
            return Ok(ExitCode::SUCCESS);
        }
        for problem in &problems {
            println!("{problem}");
        }
        println!("FAILED: signature valid, but {} digest(s) differ from the store", problems.len());
        return Ok(ExitCode::FAILURE);
    }
    let version = parse_model_version(args.model_version.as_deref().unwrap_or_default())?;
    let key_path = args.key.as_deref().context("signing needs --key (make one with --generate-key)")?;
    let key = decode_secret_key(&read_text(key_path)?)?;
    let store = cairn_store::open(&args.store.store_config()).await.context("cannot open the store")?;
    let subject = subject(&store, &version).await;
    store.close().await.context("closing the store")?;
    let envelope = attest::sign(&attest::statement(&subject?), &key);
    let text = serde_json::to_string_pretty(&envelope)?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_versions_are_written_name_at_version() {
        assert_eq!(parse_model_version("churn@3").unwrap().to_string(), "model-version:churn/3");
        assert_eq!(parse_model_version("team@churn@12").unwrap().key, "team@churn/12");
        assert!(parse_model_version("churn").is_err());
        assert!(parse_model_version("churn@x").is_err());
    }
}
