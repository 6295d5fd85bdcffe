//! The inputs a launched command declares (`--input`): a local file or folder, digested here
//! and recorded as a dataset version with its location, or a dataset version (or one of its
//! slices) already in the lineage graph. Each becomes a *used* edge of the run, and the list is
//! kept with the run (`cairn/run/inputs.json`) so that `cairn reproduce` can check every input
//! against its digest before it runs anything.
//!
//! Digests are the ones the Python package and the server compute: a file is the SHA-256 of its
//! bytes; a folder is the SHA-256 of the canonical JSON of its `[path, digest, size]` rows in path
//! order.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use cairn_core::audit::{canonical_json, sha256_hex};

use crate::cli::tracking::Tracking;

/// The run artifact that lists the declared inputs.
pub const INPUTS_ARTIFACT: &str = "cairn/run/inputs.json";

/// One declared input, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// What was given on the command line.
    pub spec: String,
    /// The dataset version node (`dataset:<name>@<version>`).
    pub dataset: String,
    /// The node the run used: the dataset version, or its slice.
    pub used: String,
    /// The content digest of the dataset version.
    pub digest: String,
    /// For a local input: the path as given (relative to the working directory, or absolute)
    /// and where it was (absolute).
    pub local: Option<LocalInput>,
}

/// Where a local input was found.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalInput {
    pub path: String,
    pub location: PathBuf,
    pub folder: bool,
}

impl Input {
    /// The JSON form kept in the run's `inputs.json`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"spec": self.spec, "dataset": self.dataset, "used": self.used, "digest": self.digest});
        if let Some(local) = &self.local {
            v["path"] = json!(local.path);
            v["location"] = json!(local.location.display().to_string());
            v["kind"] = json!(if local.folder { "folder" } else { "file" });
        }
        v
    }

    /// Reads one entry of `inputs.json`.
    pub fn from_json(v: &Value) -> anyhow::Result<Input> {
        let text = |k: &str| -> anyhow::Result<String> {
            v[k].as_str().map(str::to_owned).with_context(|| format!("an input record has no '{k}': {v}"))
        };
        let local = match (v["path"].as_str(), v["location"].as_str()) {
            (Some(path), Some(location)) => Some(LocalInput {
                path: path.to_owned(),
                location: PathBuf::from(location),
                folder: v["kind"].as_str() == Some("folder"),
            }),
            _ => None,
        };
        Ok(Input {
            spec: text("spec")?,
            dataset: text("dataset")?,
            used: text("used")?,
            digest: text("digest")?,
            local,
        })
    }
}

/// The content digest of a file or folder.
pub fn digest_path(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("input {}", path.display()))?;
    if meta.is_file() {
        return Ok(file_digest(path)?.0);
    }
    let mut rows = Vec::new();
    walk(path, path, &mut rows)?;
    if rows.is_empty() {
        bail!("input {} is a folder with no files, so it has no content to digest", path.display());
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<Value> = rows.into_iter().map(|(p, d, s)| json!([p, d, s])).collect();
    Ok(sha256_hex(canonical_json(&Value::Array(rows)).as_bytes()))
}

fn file_digest(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn walk(base: &Path, dir: &Path, rows: &mut Vec<(String, String, u64)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(base, &path, rows)?;
        } else if meta.is_file() {
            let (digest, size) = file_digest(&path)?;
            let rel =
                path.strip_prefix(base)?.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
            rows.push((rel.join("/"), digest, size));
        }
    }
    Ok(())
}

/// Resolves and records one `--input`: digests a local path and registers its dataset version,
/// or checks that the named dataset version (and slice) exists.
pub async fn declare(tracking: &Tracking, spec: &str, cwd: &Path) -> anyhow::Result<Input> {
    if let Some(named) = spec.strip_prefix("dataset:") {
        return named_dataset(tracking, spec, named).await;
    }
    let given = PathBuf::from(spec);
    let location = cwd.join(&given);
    let location = location.canonicalize().with_context(|| format!("--input {spec}: no such file or folder"))?;
    let folder = location.is_dir();
    let digest = digest_path(&location)?;
    let name = location.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
    let dataset = format!("dataset:{name}@{digest}");
    let body = json!({"label": name, "digest": digest, "attributes": {"source": location.display().to_string()}});
    if let Err(e) = tracking.register_node(&dataset, body).await {
        // The same bytes seen at another place are the same dataset version: keep the one
        // recorded first (registered nodes never change) and record this location on the run.
        let known = tracking.get_node(&dataset).await?;
        if known.as_ref().and_then(|n| n["digest"].as_str()) != Some(digest.as_str()) {
            return Err(e);
        }
    }
    let local = LocalInput { path: spec.to_owned(), location, folder };
    Ok(Input { spec: spec.to_owned(), used: dataset.clone(), dataset, digest, local: Some(local) })
}

/// `dataset:NAME@VERSION[#SLICE]`, where SLICE is the digest of a registered slice.
async fn named_dataset(tracking: &Tracking, spec: &str, named: &str) -> anyhow::Result<Input> {
    let (version, slice) = match named.split_once('#') {
        Some((v, s)) => (v, Some(s)),
        None => (named, None),
    };
    if !version.contains('@') {
        bail!("--input {spec}: a dataset input is dataset:NAME@VERSION or dataset:NAME@VERSION#SLICE");
    }
    let dataset = format!("dataset:{version}");
    let node =
        tracking.get_node(&dataset).await?.with_context(|| format!("--input {spec}: {dataset} is not registered"))?;
    let digest =
        node["digest"].as_str().with_context(|| format!("--input {spec}: {dataset} has no digest"))?.to_owned();
    let used = match slice {
        None => dataset.clone(),
        Some(s) => {
            let slice = format!("slice:{}", s.strip_prefix("slice:").unwrap_or(s));
            tracking.get_node(&slice).await?.with_context(|| format!("--input {spec}: {slice} is not registered"))?;
            slice
        }
    };
    Ok(Input { spec: spec.to_owned(), dataset, used, digest, local: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_digests_are_the_manifest_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("part=1")).unwrap();
        std::fs::write(dir.path().join("part=1/a.csv"), b"x,y\n").unwrap();
        std::fs::write(dir.path().join("b.csv"), b"1\n").unwrap();
        let rows = json!([["b.csv", sha256_hex(b"1\n"), 2], ["part=1/a.csv", sha256_hex(b"x,y\n"), 4],]);
        assert_eq!(digest_path(dir.path()).unwrap(), sha256_hex(canonical_json(&rows).as_bytes()));
        assert_eq!(digest_path(&dir.path().join("b.csv")).unwrap(), sha256_hex(b"1\n"));
        let empty = tempfile::tempdir().unwrap();
        assert!(digest_path(empty.path()).unwrap_err().to_string().contains("no files"));
    }

    #[test]
    fn input_records_round_trip() {
        let input = Input {
            spec: "data/train.csv".into(),
            dataset: "dataset:train.csv@ab".into(),
            used: "dataset:train.csv@ab".into(),
            digest: "ab".into(),
            local: Some(LocalInput {
                path: "data/train.csv".into(),
                location: "/w/data/train.csv".into(),
                folder: false,
            }),
        };
        assert_eq!(Input::from_json(&input.to_json()).unwrap(), input);
    }
}
