//! What a reproduction will do, read from the original run's record alone: the code (repository,
//! commit, the uncommitted patch and its digest), the environment (interpreter version and the
//! resolved package list, whose SHA-256 is the environment's digest), the declared inputs with
//! their digests, the command, its working directory and its allow-listed variables.
//!
//! Reading is strict: a record that cannot be replayed faithfully (no commit, a truncated
//! patch, a masked command line, a package list that does not match its digest) is refused here,
//! before anything is created or run.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use cairn_core::audit::sha256_hex;

use crate::cli::run::inputs::Input;
use crate::cli::run::{MASK, PATCH_ARTIFACT, TAG_COMMAND, TAG_CWD, TAG_ENTRY_POINT, TAG_INPUTS};
use crate::cli::tracking::RunRecord;

/// The package list among a run's artifacts.
pub const PACKAGES_ARTIFACT: &str = "cairn/environment/packages.txt";
/// The tag naming the run a reproduction reproduces.
pub const TAG_REPRODUCTION_OF: &str = "cairn.reproduction_of";

/// The recorded code.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub repository: String,
    pub commit: String,
    /// The uncommitted patch's digest and artifact path, for a dirty tree.
    pub diff: Option<(String, String)>,
}

/// The recorded environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub digest: String,
    /// `3.11.7`, from `CPython 3.11.7`.
    pub python: Option<String>,
    /// `name==version` pins, in the recorded order.
    pub packages: Vec<(String, String)>,
}

/// Everything a reproduction needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub run: RunRecord,
    pub code: Code,
    pub environment: Environment,
    pub inputs: Vec<Input>,
    pub command: Vec<String>,
    /// The working directory, relative to the repository root.
    pub cwd: String,
    /// Allow-listed variables the original run had (`cairn.env.*`).
    pub variables: BTreeMap<String, String>,
}

/// The code part of a record.
pub fn code(run: &RunRecord) -> anyhow::Result<Code> {
    let tag = |k: &str| run.tags.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(commit) = tag("mlflow.source.git.commit") else {
        bail!("run {} recorded no git commit, so there is no code to reproduce it from", run.run_id);
    };
    let repository = tag("mlflow.source.git.repoURL").context("the run recorded a commit but no repository")?;
    if tag("cairn.source.git.diff_truncated") == Some("true") {
        let skipped = tag("cairn.source.git.diff_skipped").unwrap_or("[]");
        bail!(
            "run {}'s uncommitted changes were recorded incompletely (files left out of the patch: {skipped}), \
             so its code cannot be restored",
            run.run_id
        );
    }
    let diff = tag("cairn.source.git.diff_digest")
        .map(|d| (d.to_owned(), tag("cairn.source.git.diff_artifact").unwrap_or(PATCH_ARTIFACT).to_owned()));
    Ok(Code { repository: repository.to_owned(), commit: commit.to_owned(), diff })
}

/// The command the run executed: what `cairn run` recorded, else the interpreter's `sys.argv`
/// that the Python package records for fluent runs.
pub fn command(run: &RunRecord) -> anyhow::Result<Vec<String>> {
    let parse = |tag: &str| -> anyhow::Result<Option<Vec<String>>> {
        match run.tags.get(tag) {
            None => Ok(None),
            Some(text) => {
                Ok(Some(serde_json::from_str(text).with_context(|| format!("tag {tag} is not a JSON list"))?))
            }
        }
    };
    let command = match parse(TAG_COMMAND)? {
        Some(argv) => argv,
        None => match parse(TAG_ENTRY_POINT)? {
            Some(argv) if argv.first().is_some_and(|a| !a.is_empty() && a != "-c" && a != "-") => {
                std::iter::once("python".to_owned()).chain(argv).collect()
            }
            Some(_) => {
                bail!("run {} ran interactively or from `python -c`: there is no script to run again", run.run_id)
            }
            None => bail!("run {} recorded no command (tag {TAG_COMMAND} or {TAG_ENTRY_POINT})", run.run_id),
        },
    };
    if command.is_empty() {
        bail!("run {} recorded an empty command", run.run_id);
    }
    if command.iter().any(|a| a == MASK || a.ends_with(&format!("={MASK}"))) {
        bail!(
            "run {}'s command line had secret-looking values, which were masked when it was recorded: {}; \
             it cannot be run again as recorded",
            run.run_id,
            command.join(" ")
        );
    }
    Ok(command)
}

/// The environment part of a record, with the package list downloaded from the run.
pub fn environment(run: &RunRecord, packages_txt: Option<&[u8]>) -> anyhow::Result<Environment> {
    let Some(digest) = run.tags.get("cairn.environment.digest") else {
        let why = run.tags.get("cairn.capture.error").map(|e| format!(" ({e})")).unwrap_or_default();
        bail!("run {} recorded no environment{why}: install cairn-tracking where it runs", run.run_id);
    };
    let Some(text) = packages_txt else {
        bail!("run {} has no {PACKAGES_ARTIFACT}, the package list its environment digest names", run.run_id);
    };
    let found = sha256_hex(text);
    if &found != digest {
        bail!(
            "run {}'s {PACKAGES_ARTIFACT} has digest {found}, not the recorded environment digest {digest}",
            run.run_id
        );
    }
    let python = run.tags.get("cairn.environment.python").and_then(|v| v.split_whitespace().last()).map(str::to_owned);
    Ok(Environment { digest: digest.clone(), python, packages: parse_packages(&String::from_utf8_lossy(text)) })
}

/// The `name==version` lines of a `packages.txt` (comments name the interpreter and lock files).
pub fn parse_packages(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once("==").map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect()
}

/// The declared inputs, from `inputs.json` when the run has one.
pub fn inputs(run: &RunRecord, inputs_json: Option<&[u8]>) -> anyhow::Result<Vec<Input>> {
    if !run.tags.contains_key(TAG_INPUTS) {
        return Ok(Vec::new());
    }
    let Some(bytes) = inputs_json else {
        bail!("run {} declared inputs but its {} is missing", run.run_id, run.tags[TAG_INPUTS]);
    };
    let list: Vec<Value> = serde_json::from_slice(bytes).context("the run's inputs.json is not a JSON list")?;
    list.iter().map(Input::from_json).collect()
}

/// The whole plan.
pub fn plan(run: RunRecord, packages_txt: Option<&[u8]>, inputs_json: Option<&[u8]>) -> anyhow::Result<Plan> {
    let code = code(&run)?;
    let command = command(&run)?;
    let environment = environment(&run, packages_txt)?;
    let inputs = inputs(&run, inputs_json)?;
    let cwd = run.tags.get(TAG_CWD).cloned().unwrap_or_else(|| ".".into());
    if cwd.starts_with('/') {
        bail!("run {} ran outside its repository ({cwd}), so its working directory cannot be restored", run.run_id);
    }
    let variables = run
        .tags
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("cairn.env.").map(|name| (name.to_owned(), v.clone())))
        .collect();
    Ok(Plan { run, code, environment, inputs, command, cwd, variables })
}

impl Plan {
    /// The plan as `--dry-run --json` prints it.
    pub fn to_json(&self) -> Value {
        json!({
            "run_id": self.run.run_id,
            "experiment_id": self.run.experiment_id,
            "code": {
                "repository": self.code.repository,
                "commit": self.code.commit,
                "diff_digest": self.code.diff.as_ref().map(|d| &d.0),
            },
            "environment": {
                "digest": self.environment.digest,
                "python": self.environment.python,
                "packages": self.environment.packages.iter().map(|(n, v)| format!("{n}=={v}")).collect::<Vec<_>>(),
            },
            "inputs": self.inputs.iter().map(Input::to_json).collect::<Vec<_>>(),
            "command": self.command,
            "cwd": self.cwd,
            "variables": self.variables,
        })
    }

    /// The plan for people.
    pub fn render(&self) -> String {
        let mut out = format!("reproduction plan for run {}\n", self.run.run_id);
        out += &format!("  code:        {} @ {}\n", self.code.repository, self.code.commit);
        match &self.code.diff {
            Some((digest, _)) => out += &format!("  diff:        sha256:{digest}\n"),
            None => out += "  diff:        none (clean tree)\n",
        }
        let python = self.environment.python.as_deref().unwrap_or("unknown");
        out += &format!("  environment: sha256:{} (Python {python})\n", self.environment.digest);
        out += &format!("  packages:    {}\n", self.environment.packages.len());
        for (name, version) in &self.environment.packages {
            out += &format!("    {name}=={version}\n");
        }
        out += &format!("  inputs:      {}\n", self.inputs.len());
        for input in &self.inputs {
            let place = input.local.as_ref().map(|l| format!(" ({})", l.path)).unwrap_or_default();
            out += &format!("    {}{place} sha256:{}\n", input.dataset, input.digest);
        }
        out += &format!("  cwd:         {}\n", self.cwd);
        out += &format!("  command:     {}\n", self.command.join(" "));
        for (name, value) in &self.variables {
            out += &format!("  env:         {name}={value}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tags: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            run_id: "r1".into(),
            experiment_id: "1".into(),
            run_name: "n".into(),
            status: "FINISHED".into(),
            artifact_uri: "mlflow-artifacts:/1/r1/artifacts".into(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
        }
    }

    #[test]
    fn package_lists_skip_comments() {
        let text = "# python: CPython 3.11.7\n# platform: Linux x86_64\nmlflow-skinny==3.17.2\nnumpy==2.4.6\n";
        assert_eq!(parse_packages(text), [("mlflow-skinny".into(), "3.17.2".into()), ("numpy".into(), "2.4.6".into())]);
    }

    #[test]
    fn commands_come_from_the_launcher_or_the_entry_point() {
        let launched = record(&[(TAG_COMMAND, r#"["python", "train.py"]"#)]);
        assert_eq!(command(&launched).unwrap(), ["python", "train.py"]);
        let fluent = record(&[(TAG_ENTRY_POINT, r#"["train.py", "--lr", "0.1"]"#)]);
        assert_eq!(command(&fluent).unwrap(), ["python", "train.py", "--lr", "0.1"]);
        let notebook = record(&[(TAG_ENTRY_POINT, r#"["-c"]"#)]);
        assert!(command(&notebook).unwrap_err().to_string().contains("interactively"));
        let masked = record(&[(TAG_COMMAND, r#"["python", "t.py", "--token=***"]"#)]);
        assert!(command(&masked).unwrap_err().to_string().contains("masked"));
    }

    #[test]
    fn environments_must_match_their_digest() {
        let text = b"# python: CPython 3.11.7\nnumpy==2.4.6\n";
        let digest = sha256_hex(text);
        let run = record(&[("cairn.environment.digest", &digest), ("cairn.environment.python", "CPython 3.11.7")]);
        let env = environment(&run, Some(text)).unwrap();
        assert_eq!(env.python.as_deref(), Some("3.11.7"));
        assert!(environment(&run, Some(b"numpy==2.4.7\n")).unwrap_err().to_string().contains("not the recorded"));
        assert!(environment(&record(&[]), None).unwrap_err().to_string().contains("no environment"));
    }

    #[test]
    fn incomplete_code_records_are_refused() {
        assert!(code(&record(&[])).unwrap_err().to_string().contains("no git commit"));
        let cut = record(&[
            ("mlflow.source.git.commit", "abc"),
            ("mlflow.source.git.repoURL", "file:///r"),
            ("cairn.source.git.diff_truncated", "true"),
        ]);
        assert!(code(&cut).unwrap_err().to_string().contains("incompletely"));
    }
}
