//! The environment of a launched command, captured by the Python package in the command's own
//! interpreter (`python -m cairn.capture.record`), so that a run started by `cairn run` carries
//! the same environment tags, package list and node as one started with the fluent API.
//!
//! Which interpreter: the command's program when it is a Python interpreter (`python`,
//! `python3.11`, `.venv/bin/python`), else the first `python3` on the command's `PATH`. When
//! the package is not installed there, the run records why (`cairn.capture.error`) and the
//! environment is missing; the run itself goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::Value;

/// What the capture gave: tags, files (artifact path, bytes) and lineage nodes (ref, body).
#[derive(Debug, Default)]
pub struct Captured {
    pub tags: BTreeMap<String, String>,
    pub files: Vec<(String, Vec<u8>)>,
    pub nodes: Vec<(String, Value)>,
}

/// Whether a program name is a Python interpreter.
pub fn is_python(program: &str) -> bool {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == "python" || name.strip_prefix("python").is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The interpreter whose environment the command runs in.
pub fn interpreter(command: &[String], path_var: Option<&str>) -> Option<PathBuf> {
    let program = command.first()?;
    if is_python(program) {
        if program.contains('/') {
            return Some(PathBuf::from(program));
        }
        return find_on_path(program, path_var);
    }
    find_on_path("python3", path_var)
}

/// The first executable called `name` in `path_var`'s folders.
pub fn find_on_path(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path_var?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Runs the capture with `python` in `cwd` with the command's environment.
pub async fn capture(python: &Path, cwd: &Path, env: &[(String, String)]) -> anyhow::Result<Captured> {
    let mut command = tokio::process::Command::new(python);
    command.args(["-m", "cairn.capture.record"]).current_dir(cwd).stdin(Stdio::null());
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let out = command.output().await.with_context(|| format!("starting {}", python.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named") {
            bail!("the cairn Python package (cairn-tracking) is not installed for {}", python.display());
        }
        let last = stderr.lines().last().unwrap_or_default();
        bail!("{} -m cairn.capture.record failed: {last}", python.display());
    }
    parse(&out.stdout)
}

fn parse(stdout: &[u8]) -> anyhow::Result<Captured> {
    let v: Value = serde_json::from_slice(stdout).context("the capture printed no JSON")?;
    let mut captured = Captured::default();
    for (k, t) in v["tags"].as_object().into_iter().flatten() {
        captured.tags.insert(k.clone(), t.as_str().unwrap_or_default().to_owned());
    }
    for f in v["files"].as_array().into_iter().flatten() {
        let path = f["path"].as_str().context("a captured file has no path")?.to_owned();
        let data = base64::engine::general_purpose::STANDARD.decode(f["data_base64"].as_str().unwrap_or_default())?;
        captured.files.push((path, data));
    }
    for n in v["nodes"].as_array().into_iter().flatten() {
        let mut body = n.clone();
        let node = body.as_object_mut().and_then(|o| o.remove("ref")).and_then(|r| r.as_str().map(str::to_owned));
        captured.nodes.push((node.context("a captured node has no ref")?, body));
    }
    Ok(captured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_programs_are_recognised() {
        for p in ["python", "python3", "python3.11", "/x/.venv/bin/python"] {
            assert!(is_python(p), "{p}");
        }
        for p in ["bash", "pythonista", "python3-config", "./train.py"] {
            assert!(!is_python(p), "{p}");
        }
    }

    #[test]
    fn capture_output_is_read() {
        let out = br#"{"tags": {"cairn.environment.digest": "d"}, "files": [{"path": "cairn/environment/packages.txt", "data_base64": "eD09MQo="}], "nodes": [{"ref": "env:d", "label": "l", "digest": "d", "attributes": {}}]}"#;
        let c = parse(out).unwrap();
        assert_eq!(c.tags["cairn.environment.digest"], "d");
        assert_eq!(c.files, [("cairn/environment/packages.txt".to_owned(), b"x==1\n".to_vec())]);
        assert_eq!(c.nodes[0].0, "env:d");
        assert!(c.nodes[0].1.get("ref").is_none());
    }
}
