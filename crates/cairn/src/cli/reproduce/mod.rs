//! `cairn reproduce RUN_ID`: re-executes a recorded run from its record alone and says, metric
//! by metric, whether the result came back.
//!
//! In order, each step refusing before anything is created on the server: read the record into a
//! [`plan::Plan`]; build the work folder (`workdir`: the commit, the patch); check every declared
//! input against its digest; build or reuse the environment (`venv`, cached by its digest); then
//! launch the recorded command exactly as `cairn run` does, as a new run tagged
//! `cairn.reproduction_of=RUN_ID`, and compare it with the original (`verdict`). The verdict is
//! printed, stored on the new run (`cairn.reproduction.verdict`, `cairn/reproduction/verdict.json`)
//! and decides the exit code: 0 reproduced, 1 not reproduced, 2 could not reproduce.

pub mod plan;
pub mod venv;
pub mod verdict;
pub mod workdir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::cli::run::capture::is_python;
use crate::cli::run::inputs::{self, Input};
use crate::cli::run::{Launch, launch_run};
use crate::cli::tracking::{ServerArgs, Tracking};
use plan::{PACKAGES_ARTIFACT, Plan, TAG_REPRODUCTION_OF};
use verdict::Tolerances;

/// The run artifact that holds the verdict.
pub const VERDICT_ARTIFACT: &str = "cairn/reproduction/verdict.json";
pub const TAG_VERDICT: &str = "cairn.reproduction.verdict";

/// `cairn reproduce`'s arguments.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The run to reproduce.
    pub run_id: String,
    /// A local clone to take the code from, instead of the recorded repository URL.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// How close a metric must come: `KEY=abs:1e-6`, `KEY=rel:1e-3`, `'*=rel:1e-3'` for every
    /// metric without its own; exact otherwise.
    #[arg(long = "tolerance", value_name = "KEY=abs:X|rel:X|exact")]
    pub tolerances: Vec<String>,
    /// Print the verdict (or the plan, with --dry-run) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the plan (commit, diff digest, packages, inputs, command) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Where environments (by digest) and work folders are kept; default `~/.cache/cairn`.
    #[arg(long, env = "CAIRN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A folder of wheels to install from before the package index (repeatable).
    #[arg(long = "find-links", value_name = "DIR")]
    pub find_links: Vec<PathBuf>,
    /// Install only from --find-links folders.
    #[arg(long)]
    pub no_index: bool,
    /// Keep the work folder after the run (its path is printed).
    #[arg(long)]
    pub keep_workdir: bool,
}

/// Runs `cairn reproduce`; an error is printed here so it gets its own exit code (2).
pub async fn run(args: ReproduceArgs) -> anyhow::Result<ExitCode> {
    let json_out = args.json;
    match reproduce(args).await {
        Ok(code) => Ok(code),
        Err(e) => {
            if json_out {
                println!("{}", json!({"verdict": "error", "error": format!("{e:#}")}));
            } else {
                eprintln!("error: cannot reproduce: {e:#}");
            }
            Ok(ExitCode::from(2))
        }
    }
}

fn cache_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("cairn"));
    }
    let home = std::env::var_os("HOME").context("no HOME: give --cache-dir")?;
    Ok(PathBuf::from(home).join(".cache").join("cairn"))
}

async fn reproduce(args: ReproduceArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let tracking = Tracking::new(&args.server.tracking_uri)?;
    let tolerances = Tolerances::parse(&args.tolerances)?;
    let original = tracking.get_run(&args.run_id).await?;
    let packages = tracking.download_artifact(&original.artifact_uri, PACKAGES_ARTIFACT).await?;
    let inputs_json = match original.tags.get(crate::cli::run::TAG_INPUTS) {
        Some(path) => tracking.download_artifact(&original.artifact_uri, path).await?,
        None => None,
    };
    let plan = plan::plan(original, packages.as_deref(), inputs_json.as_deref())?;
    let cache = cache_dir(args.cache_dir.as_deref())?;
    let installer =
        venv::Installer { cache: cache.clone(), find_links: args.find_links.clone(), no_index: args.no_index };
    if args.dry_run {
        let cached = cache.join("envs").join(&plan.environment.digest).join(".cairn-complete").is_file();
        if args.json {
            let mut v = plan.to_json();
            v["environment"]["cached"] = json!(cached);
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", plan.render());
            println!("  cached env:  {}", if cached { "yes" } else { "no (it will be built)" });
        }
        return Ok(ExitCode::SUCCESS);
    }

    let patch = match &plan.code.diff {
        None => None,
        Some((digest, path)) => {
            let data = tracking.download_artifact(&plan.run.artifact_uri, path).await?;
            let data = data.with_context(|| format!("the run's recorded diff {path} is missing"))?;
            let found = cairn_core::audit::sha256_hex(&data);
            if &found != digest {
                bail!("the run's {path} has digest {found}, not the recorded diff digest {digest}");
            }
            Some(data)
        }
    };
    std::fs::create_dir_all(cache.join("work"))?;
    let work = tempfile::Builder::new().prefix(&format!("{}-", plan.run.run_id)).tempdir_in(cache.join("work"))?;
    let tree = work.path().join("tree");
    let source = workdir::source(&plan.code.repository, args.repo.as_deref());
    workdir::prepare(&source, &plan.code.commit, patch.as_deref(), &tree)?;
    let cwd = tree.join(&plan.cwd);
    check_inputs(&tracking, &plan.inputs, &cwd).await?;
    let env_started = Instant::now();
    let venv = venv::ensure(&plan.environment, &installer).await?;
    let env_secs = env_started.elapsed().as_secs_f64();
    if !args.json {
        let how = if venv.cached { "cached" } else { "built" };
        eprintln!("cairn: environment {} {how} in {env_secs:.1} s ({})", plan.environment.digest, venv.root.display());
    }

    let launch = reproduction_launch(&plan, &venv, cwd, args.json)?;
    let outcome = launch_run(&tracking, launch).await?;
    // The lineage link: the reproduction was informed by the run it re-ran. The run and its
    // verdict matter more than the link, so a server that refuses it (one older than this
    // client knows no `was_informed_by`) gets a warning, not a lost verdict.
    let (new_node, original_node) = (format!("run:{}", outcome.run_id), format!("run:{}", plan.run.run_id));
    if let Err(e) = tracking.add_edge(&new_node, "was_informed_by", &original_node).await {
        eprintln!("cairn: warning: the reproduction is not linked in the lineage graph: {e:#}");
    }
    let reproduction = tracking.get_run(&outcome.run_id).await?;
    let histories = verdict::Histories::read(&tracking, &plan.run, &reproduction).await?;
    let verdict = verdict::compare(&plan.run, &reproduction, &histories, &tolerances);
    let mut stored = verdict.to_json();
    stored["environment_seconds"] = json!(env_secs);
    stored["environment_cached"] = json!(venv.cached);
    stored["seconds"] = json!(started.elapsed().as_secs_f64());
    tracking.upload_artifact(&outcome.artifact_uri, VERDICT_ARTIFACT, serde_json::to_vec_pretty(&stored)?).await?;
    tracking.set_tags(&outcome.run_id, &BTreeMap::from([(TAG_VERDICT.to_owned(), verdict.word().to_owned())])).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stored)?);
    } else {
        print!("{}", verdict.render());
    }
    if args.keep_workdir {
        let kept = work.keep();
        eprintln!("cairn: work folder kept at {}", kept.display());
    }
    Ok(if verdict.reproduced() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The recorded command in the work folder and the new environment: the interpreter is the
/// environment's, its `bin` comes first on `PATH`, the allow-listed variables are set again.
fn reproduction_launch(plan: &Plan, venv: &venv::Venv, cwd: PathBuf, json: bool) -> anyhow::Result<Launch> {
    let mut command = plan.command.clone();
    if is_python(&command[0]) {
        command[0] = venv.python.display().to_string();
    }
    let bin = venv.root.join("bin");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env = vec![
        ("PATH".to_owned(), format!("{}:{path}", bin.display())),
        ("VIRTUAL_ENV".to_owned(), venv.root.display().to_string()),
    ];
    env.extend(plan.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(seed) = plan.run.tags.get("cairn.seed.pythonhashseed").filter(|s| s.as_str() != "unset") {
        env.push(("PYTHONHASHSEED".to_owned(), seed.clone()));
    }
    let name = if plan.run.run_name.is_empty() { None } else { Some(format!("{} (reproduction)", plan.run.run_name)) };
    Ok(Launch {
        experiment_id: plan.run.experiment_id.clone(),
        run_name: name,
        command,
        cwd,
        env,
        tags: BTreeMap::from([(TAG_REPRODUCTION_OF.to_owned(), plan.run.run_id.clone())]),
        inputs: plan.inputs.clone(),
        repository: Some(plan.code.repository.clone()),
        require_clean: false,
        stdout_to_stderr: json,
    })
}

/// Checks every declared input against its recorded digest. A local input is looked for at its
/// recorded path in the work folder, then at its recorded location (and linked into the work
/// folder, so the command finds it where it did).
async fn check_inputs(tracking: &Tracking, declared: &[Input], cwd: &Path) -> anyhow::Result<()> {
    for input in declared {
        let Some(local) = &input.local else {
            let node = tracking.get_node(&input.dataset).await?;
            let digest = node.as_ref().and_then(|n| n["digest"].as_str().map(str::to_owned));
            if digest.as_deref() != Some(input.digest.as_str()) {
                bail!("input {} is no longer registered with digest {}", input.dataset, input.digest);
            }
            continue;
        };
        let in_tree = cwd.join(&local.path);
        let found = if in_tree.exists() { in_tree.clone() } else { local.location.clone() };
        if !found.exists() {
            bail!(
                "input {} ({}) is gone: nothing at {} or {}",
                input.dataset,
                local.path,
                in_tree.display(),
                local.location.display()
            );
        }
        let digest = inputs::digest_path(&found)?;
        if digest != input.digest {
            bail!(
                "input {} changed since the run: recorded digest {}, found {} at {}",
                input.dataset,
                input.digest,
                digest,
                found.display()
            );
        }
        if found != in_tree && Path::new(&local.path).is_relative() {
            if let Some(parent) = in_tree.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(&found, &in_tree)
                .with_context(|| format!("linking input {} into the work folder", found.display()))?;
        }
    }
    Ok(())
}
