//! `cairn run [--experiment NAME] [--name RUN] [--input ...]... -- COMMAND...`: starts a run
//! through the server's public API, then the command with `MLFLOW_TRACKING_URI` and
//! `MLFLOW_RUN_ID` set, so that the script's own `mlflow` calls land in that run.
//!
//! Where each part of the record comes from:
//! - the command line, working directory, git state (commit, branch, dirty, the uncommitted
//!   patch as `cairn/code/uncommitted.patch` with its digest) and the declared inputs: from here,
//!   before the command starts, whatever the command is (`git`, `inputs`);
//! - the environment (interpreter, packages, hardware, allow-listed variables): from the Python
//!   package in the command's interpreter (`capture`), because only that interpreter knows what
//!   it would import; MLflow calls no context provider for the resumed run, so the plugin alone
//!   would record nothing;
//! - standard output and error: streamed to the terminal and to run artifacts (`output`);
//! - the end: the exit code or signal becomes the run's status (0 `FINISHED`, other codes
//!   `FAILED`, a signal `KILLED`), whatever the script itself reported.
//!
//! Tag names and artifact paths are the Python package's (`cairn.source.*`, `mlflow.source.git.*`,
//! `cairn.environment.*`), plus `cairn.run.*` for what only a launcher knows, so `cairn
//! reproduce` reads one format for runs started either way.

pub mod capture;
pub mod git;
pub mod inputs;
pub mod output;
pub mod terminal;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::tracking::{ServerArgs, Tracking};
use inputs::Input;

/// MLflow's limit on a tag value.
pub const MAX_TAG_VALUE: usize = 8000;
/// The command, as a JSON array of arguments (secret-looking values masked).
pub const TAG_COMMAND: &str = "cairn.run.command";
pub const TAG_ENTRY_POINT: &str = "cairn.source.entry_point";
pub const TAG_CWD: &str = "cairn.source.cwd";
pub const TAG_INPUTS: &str = "cairn.run.inputs";
pub const TAG_CAPTURE_ERROR: &str = "cairn.capture.error";
pub const PATCH_ARTIFACT: &str = "cairn/code/uncommitted.patch";

/// `cairn run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The experiment to run in (created if missing); the server's default experiment otherwise.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME")]
    pub experiment: Option<String>,
    /// The run's name.
    #[arg(long)]
    pub name: Option<String>,
    /// An input the command reads: a file or folder (digested and recorded as a dataset version
    /// with its location), or `dataset:NAME@VERSION[#SLICE]` already in the lineage graph.
    #[arg(long = "input", value_name = "PATH | dataset:NAME@VERSION[#SLICE]")]
    pub inputs: Vec<String>,
    /// Refuse to start when the git tree has uncommitted changes.
    #[arg(long)]
    pub require_clean: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Everything a launch needs; `cairn run` and `cairn reproduce` both fill one.
#[derive(Debug, Clone)]
pub struct Launch {
    pub experiment_id: String,
    pub run_name: Option<String>,
    pub command: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set for the command on top of this process's environment.
    pub env: Vec<(String, String)>,
    /// Tags beyond the ones the launch records itself.
    pub tags: BTreeMap<String, String>,
    pub inputs: Vec<Input>,
    /// The repository to record instead of the work tree's remote (a reproduction runs in a
    /// fresh clone of the code the original run recorded).
    pub repository: Option<String>,
    pub require_clean: bool,
    /// Show the command's standard output on standard error (the caller prints JSON).
    pub stdout_to_stderr: bool,
}

/// How a launched command ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub artifact_uri: String,
    /// The run's final status.
    pub status: &'static str,
    /// What `cairn run` exits with: the command's code, or 128 + its signal.
    pub exit_code: u8,
}

/// Runs `cairn run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let tracking = Tracking::new(&args.server.tracking_uri)?;
    let cwd = std::env::current_dir()?;
    let experiment_id = match &args.experiment {
        Some(name) => tracking.experiment_id(name).await?,
        None => "0".to_owned(),
    };
    let mut declared = Vec::new();
    for spec in &args.inputs {
        declared.push(inputs::declare(&tracking, spec, &cwd).await?);
    }
    let launch = Launch {
        experiment_id,
        run_name: args.name,
        command: args.command,
        cwd,
        env: Vec::new(),
        tags: BTreeMap::new(),
        inputs: declared,
        repository: None,
        require_clean: args.require_clean,
        stdout_to_stderr: false,
    };
    let outcome = launch_run(&tracking, launch).await?;
    eprintln!("cairn: run {} {}", outcome.run_id, outcome.status);
    Ok(ExitCode::from(outcome.exit_code))
}

/// Starts the run, runs the command in it and ends it. Nothing is created on the server when the
/// launch is refused (dirty tree with `require_clean`, no command).
pub async fn launch_run(tracking: &Tracking, launch: Launch) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!launch.command.is_empty(), "no command to run: give it after `--`");
    let git = git::state(&launch.cwd)?;
    if launch.require_clean {
        git::require_clean(git.as_ref())?;
    }
    let mut tags = launch.tags.clone();
    let masked = mask_secrets(&launch.command);
    let argv = serde_json::to_string(&masked)?;
    tags.insert(TAG_COMMAND.into(), argv.clone());
    tags.insert(TAG_ENTRY_POINT.into(), argv);
    tags.insert("cairn.run.launcher".into(), format!("cairn run {}", env!("CARGO_PKG_VERSION")));
    let mut code_node = None;
    match &git {
        None => {
            tags.insert("cairn.source.git".into(), "none".into());
            tags.insert(TAG_CWD.into(), launch.cwd.display().to_string());
        }
        Some(state) => {
            let state = match &launch.repository {
                Some(repository) => git::GitState { repository: repository.clone(), ..state.clone() },
                None => state.clone(),
            };
            let rel = launch.cwd.canonicalize()?.strip_prefix(state.root.canonicalize()?).map(|p| p.to_path_buf());
            let rel = rel.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            tags.insert(TAG_CWD.into(), if rel.is_empty() { ".".into() } else { rel });
            tags.insert("mlflow.source.git.commit".into(), state.commit.clone());
            tags.insert("mlflow.source.git.repoURL".into(), state.repository.clone());
            if let Some(branch) = &state.branch {
                tags.insert("mlflow.source.git.branch".into(), branch.clone());
            }
            tags.insert("cairn.source.git.dirty".into(), state.dirty().to_string());
            tags.insert("cairn.code.node".into(), format!("code:{}", state.node_key()));
            if let Some(digest) = state.diff_digest() {
                tags.insert("cairn.source.git.diff_digest".into(), digest);
                tags.insert("cairn.source.git.diff_artifact".into(), PATCH_ARTIFACT.into());
            }
            if state.truncated {
                tags.insert("cairn.source.git.diff_truncated".into(), "true".into());
            }
            if !state.skipped.is_empty() {
                tags.insert("cairn.source.git.diff_skipped".into(), serde_json::to_string(&state.skipped)?);
            }
            code_node = Some(state);
        }
    }
    if !launch.inputs.is_empty() {
        tags.insert(TAG_INPUTS.into(), inputs::INPUTS_ARTIFACT.into());
    }
    for value in tags.values_mut() {
        truncate(value, MAX_TAG_VALUE);
    }
    let (run_id, artifact_uri) = tracking.create_run(&launch.experiment_id, launch.run_name.as_deref(), &tags).await?;
    match execute(tracking, &launch, &run_id, &artifact_uri, code_node.as_ref()).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // The run exists: say on it why it stopped, rather than leave it running forever.
            let mut why = BTreeMap::from([("cairn.run.error".to_owned(), format!("{e:#}"))]);
            truncate(why.get_mut("cairn.run.error").unwrap(), MAX_TAG_VALUE);
            let _ = tracking.set_tags(&run_id, &why).await;
            let _ = tracking.end_run(&run_id, "FAILED").await;
            Err(e.context(format!("run {run_id} ended FAILED")))
        }
    }
}

/// Everything after the run exists: its files and edges, the command, its end.
async fn execute(
    tracking: &Tracking,
    launch: &Launch,
    run_id: &str,
    artifact_uri: &str,
    code: Option<&git::GitState>,
) -> anyhow::Result<Outcome> {
    let run_node = format!("run:{run_id}");
    if let Some(state) = code {
        if state.dirty() {
            tracking.upload_artifact(artifact_uri, PATCH_ARTIFACT, state.patch.clone()).await?;
        }
        let short = &state.commit[..state.commit.len().min(12)];
        let body = json!({
            "label": format!("{}@{short}{}", state.repository, if state.dirty() { " (dirty)" } else { "" }),
            "digest": state.commit,
            "attributes": {"repository": state.repository, "commit": state.commit, "diff_digest": state.diff_digest()},
        });
        tracking.register_node(&format!("code:{}", state.node_key()), body).await?;
    }
    if !launch.inputs.is_empty() {
        let list: Vec<Value> = launch.inputs.iter().map(Input::to_json).collect();
        let data = serde_json::to_vec_pretty(&list)?;
        tracking.upload_artifact(artifact_uri, inputs::INPUTS_ARTIFACT, data).await?;
        for input in &launch.inputs {
            tracking.add_edge(&run_node, "used", &input.used).await?;
        }
    }

    let mut env: Vec<(String, String)> = launch.env.clone();
    env.push(("MLFLOW_TRACKING_URI".into(), tracking.uri().to_owned()));
    env.push(("MLFLOW_RUN_ID".into(), run_id.to_owned()));
    env.push(("MLFLOW_EXPERIMENT_ID".into(), launch.experiment_id.clone()));
    let path_var =
        env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).or_else(|| std::env::var("PATH").ok());
    let capture = capture::interpreter(&launch.command, path_var.as_deref()).map(|python| {
        let (cwd, env) = (launch.cwd.clone(), env.clone());
        tokio::spawn(async move { capture::capture(&python, &cwd, &env).await })
    });

    let mut command = tokio::process::Command::new(&launch.command[0]);
    command.args(&launch.command[1..]).current_dir(&launch.cwd).envs(env.iter().map(|(k, v)| (k, v)));
    // Its own process group, so that a signal reaches it once: from the terminal when it holds
    // the terminal's foreground (`terminal::Lent`), else forwarded by `cairn run`.
    command.process_group(0).stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| format!("cannot start '{}'", launch.command[0]))?;
    let pid = child.id().map(|id| Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX)));
    let logs = output::Logs::start(
        tracking.clone(),
        artifact_uri.to_owned(),
        child.stdout.take().context("no stdout pipe")?,
        child.stderr.take().context("no stderr pipe")?,
        launch.stdout_to_stderr,
    )?;
    let mut interrupts = signal(SignalKind::interrupt())?;
    let mut terminations = signal(SignalKind::terminate())?;
    let mut children = signal(SignalKind::child())?;
    let terminal = pid.and_then(terminal::Lent::to);
    let status = loop {
        let forward = tokio::select! {
            status = child.wait() => break status?,
            _ = interrupts.recv() => Signal::SIGINT,
            _ = terminations.recv() => Signal::SIGTERM,
            _ = children.recv() => {
                if let Some(terminal) = &terminal {
                    terminal.follow_stop();
                }
                continue;
            }
        };
        if let Some(pid) = pid {
            let _ = kill(pid, forward);
        }
    };
    drop(terminal);

    let mut end_tags = BTreeMap::new();
    match capture {
        None => {
            end_tags.insert(
                TAG_CAPTURE_ERROR.to_owned(),
                "environment: no Python interpreter on the command's PATH".into(),
            );
        }
        Some(task) => match task.await? {
            Ok(found) => {
                for (path, data) in found.files {
                    tracking.upload_artifact(artifact_uri, &path, data).await?;
                }
                for (node, body) in found.nodes {
                    tracking.register_node(&node, body).await?;
                }
                end_tags.extend(found.tags);
            }
            Err(e) => {
                eprintln!("cairn: environment not recorded: {e:#}");
                end_tags.insert(TAG_CAPTURE_ERROR.to_owned(), format!("environment: {e:#}"));
            }
        },
    }
    logs.finish().await?;
    let (run_status, exit_code) = match (status.code(), status.signal()) {
        (Some(0), _) => ("FINISHED", 0),
        (Some(code), _) => ("FAILED", u8::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.as_str().to_owned()).unwrap_or_else(|_| sig.to_string());
            end_tags.insert("cairn.run.signal".into(), name);
            ("KILLED", u8::try_from(128 + sig).unwrap_or(255))
        }
        (None, None) => ("FAILED", 1),
    };
    if let Some(code) = status.code() {
        end_tags.insert("cairn.run.exit_code".into(), code.to_string());
    }
    tracking.set_tags(run_id, &end_tags).await?;
    tracking.end_run(run_id, run_status).await?;
    Ok(Outcome { run_id: run_id.to_owned(), artifact_uri: artifact_uri.to_owned(), status: run_status, exit_code })
}

/// Cuts a tag value to MLflow's limit, at a character boundary.
fn truncate(value: &mut String, max: usize) {
    if value.len() > max {
        let mut end = max;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
}

/// The mask that replaces a secret-looking value in a recorded command line.
pub const MASK: &str = "***";

/// The command line with the values of secret-looking options masked, as the Python package
/// masks `sys.argv`: `--token=x` and `API_KEY:x` become `--token=***`, and the argument after
/// `--password` or `--api-key` becomes `***`.
pub fn mask_secrets(argv: &[String]) -> Vec<String> {
    const WORDS: [&str; 6] = ["token", "secret", "password", "passwd", "credential", "api_key"];
    let secretish = |s: &str| {
        let lower = s.to_ascii_lowercase().replace("api-key", "api_key").replace("apikey", "api_key");
        WORDS.iter().find_map(|w| lower.find(w).map(|i| (i, w.len())))
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut mask_next = false;
    for arg in argv {
        if std::mem::take(&mut mask_next) {
            out.push(MASK.to_owned());
            continue;
        }
        let found = secretish(arg);
        let assigned = found.and_then(|(i, n)| arg.get(i + n..)).is_some_and(|rest| rest.starts_with(['=', ':']));
        if found.is_some() && assigned {
            out.push(match arg.split_once('=') {
                Some((name, _)) => format!("{name}={MASK}"),
                None => MASK.to_owned(),
            });
        } else if found.is_some() && arg.starts_with('-') && !arg.contains('=') {
            out.push(arg.clone());
            mask_next = true;
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn secret_looking_values_are_masked() {
        let check = |given: &[&str], want: &[&str]| assert_eq!(mask_secrets(&argv(given)), argv(want));
        check(&["python", "train.py", "--lr", "0.1"], &["python", "train.py", "--lr", "0.1"]);
        check(&["train.py", "--token=abc"], &["train.py", "--token=***"]);
        check(&["train.py", "--api-key", "abc", "--x"], &["train.py", "--api-key", "***", "--x"]);
        check(&["train.py", "PASSWORD:abc"], &["train.py", "***"]);
        check(&["train.py", "tokens.txt"], &["train.py", "tokens.txt"]);
    }

    #[test]
    fn tags_are_cut_at_character_boundaries() {
        let mut s = "é".repeat(5);
        truncate(&mut s, 5);
        assert_eq!(s, "éé");
    }
}
