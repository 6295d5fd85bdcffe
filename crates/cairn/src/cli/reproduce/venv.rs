//! The reproduction's virtual environment: the recorded interpreter version and exactly the
//! recorded packages, built once per environment digest under the cache folder
//! (`<cache>/envs/<digest>`), so a second reproduction of the same environment starts at once.
//!
//! `uv` is used when it is on `PATH`, else the interpreter's own `venv` and `pip`. Packages are
//! installed with `--no-deps` from the recorded list, which is already the resolved set, so no
//! resolver runs and nothing newer sneaks in; packages the new venv has that the record does not
//! (the installer's own, when the original had none) are removed. `--find-links` folders (wheels
//! of the project itself, or a wheel cache) are searched first; `--no-index` uses them alone.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};

use crate::cli::run::capture::find_on_path;

use super::plan::Environment;

/// Marks a finished environment; a folder without it is a build that was interrupted.
const COMPLETE: &str = ".cairn-complete";

/// How environments are built.
#[derive(Debug, Clone)]
pub struct Installer {
    pub cache: PathBuf,
    pub find_links: Vec<PathBuf>,
    pub no_index: bool,
}

/// A ready environment.
#[derive(Debug, Clone)]
pub struct Venv {
    pub root: PathBuf,
    pub python: PathBuf,
    /// Whether it came from the cache.
    pub cached: bool,
}

async fn run(program: &Path, args: &[String], what: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("{what}: cannot start {}", program.display()))?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim().to_owned() + &String::from_utf8_lossy(&out.stdout));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first interpreter on `PATH` with the recorded version: exactly, else the same minor
/// version (the patch level rarely changes what a package computes, and the digest comparison
/// reports it anyway).
async fn interpreter(version: Option<&str>) -> anyhow::Result<PathBuf> {
    let path = std::env::var("PATH").ok();
    let Some(version) = version else {
        return find_on_path("python3", path.as_deref()).context("no python3 on PATH");
    };
    let minor: Vec<&str> = version.split('.').take(2).collect();
    let names = [format!("python{}", minor.join(".")), "python3".to_owned(), "python".to_owned()];
    let mut same_minor = None;
    let mut seen = Vec::new();
    for name in &names {
        let Some(candidate) = find_on_path(name, path.as_deref()) else { continue };
        let Ok(out) = run(&candidate, &["--version".into()], "asking its version").await else { continue };
        let found = out.split_whitespace().last().unwrap_or_default().to_owned();
        if found == version {
            return Ok(candidate);
        }
        if found.split('.').take(2).eq(minor.iter().copied()) && same_minor.is_none() {
            same_minor = Some(candidate.clone());
        }
        seen.push(format!("{} is {found}", candidate.display()));
    }
    same_minor.with_context(|| {
        format!("the run used Python {version}, which is not on PATH ({}); install it, or install uv", seen.join(", "))
    })
}

/// The environment for `env`, from the cache or built now.
pub async fn ensure(env: &Environment, installer: &Installer) -> anyhow::Result<Venv> {
    let root = installer.cache.join("envs").join(&env.digest);
    let python = root.join("bin").join("python");
    if root.join(COMPLETE).is_file() && python.exists() {
        return Ok(Venv { root, python, cached: true });
    }
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("removing the unfinished {}", root.display()))?;
    }
    std::fs::create_dir_all(root.parent().context("cache folder")?)?;
    match build(env, installer, &root).await {
        Ok(()) => {
            std::fs::write(root.join(COMPLETE), &env.digest)?;
            Ok(Venv { root, python, cached: false })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&root);
            Err(e)
        }
    }
}

async fn build(env: &Environment, installer: &Installer, root: &Path) -> anyhow::Result<()> {
    let root_text = root.display().to_string();
    let python = root.join("bin").join("python");
    let uv = find_on_path("uv", std::env::var("PATH").ok().as_deref());
    match &uv {
        Some(uv) => {
            let mut args = vec!["venv".to_owned(), "--quiet".to_owned()];
            if let Some(version) = &env.python {
                args.extend(["--python".to_owned(), version.clone()]);
            }
            args.push(root_text.clone());
            run(uv, &args, "creating the environment").await.context("uv venv failed")?;
        }
        None => {
            let base = interpreter(env.python.as_deref()).await?;
            run(&base, &["-m".into(), "venv".into(), root_text.clone()], "creating the environment")
                .await
                .context("python -m venv failed")?;
        }
    }
    let requirements = root.join(".cairn-requirements.txt");
    let pins: String = env.packages.iter().map(|(n, v)| format!("{n}=={v}\n")).collect();
    std::fs::write(&requirements, &pins)?;
    let mut args = match &uv {
        Some(_) => {
            vec!["pip".into(), "install".into(), "--quiet".into(), "--python".into(), python.display().to_string()]
        }
        None => ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"].map(String::from).to_vec(),
    };
    args.extend(["--no-deps".into(), "-r".into(), requirements.display().to_string()]);
    for dir in &installer.find_links {
        args.extend(["--find-links".into(), dir.display().to_string()]);
    }
    if installer.no_index {
        args.push("--no-index".into());
    }
    let program = uv.clone().unwrap_or_else(|| python.clone());
    if let Err(e) = run(&program, &args, "installing the recorded packages").await {
        let missing = unavailable(&e.to_string());
        if !missing.is_empty() {
            bail!(
                "packages that cannot be had: {} (the package index has no such version; give wheels with --find-links)",
                missing.join(", ")
            );
        }
        bail!("installing the recorded packages failed: {e}");
    }
    remove_extras(env, &python, uv.as_deref()).await
}

/// Uninstalls what the new environment has beyond the record (the installer's own packages
/// when the original environment had none), so the two package lists can be equal.
async fn remove_extras(env: &Environment, python: &Path, uv: Option<&Path>) -> anyhow::Result<()> {
    let listed = run(
        python,
        &[
            "-c".into(),
            "import importlib.metadata as m; print('\\n'.join(d.name for d in m.distributions() if d.name))".into(),
        ],
        "listing packages",
    )
    .await?;
    let wanted: Vec<String> = env.packages.iter().map(|(n, _)| normalize(n)).collect();
    let extras: Vec<String> = listed.lines().map(normalize).filter(|n| !n.is_empty() && !wanted.contains(n)).collect();
    if extras.is_empty() {
        return Ok(());
    }
    let (program, mut args) = match uv {
        Some(uv) => {
            (uv.to_path_buf(), vec!["pip".into(), "uninstall".into(), "--python".into(), python.display().to_string()])
        }
        None => (python.to_path_buf(), ["-m", "pip", "uninstall", "--yes", "--quiet"].map(String::from).to_vec()),
    };
    args.extend(extras);
    run(&program, &args, "removing packages the record does not have").await.map(drop)
}

/// A distribution name in its canonical form (PEP 503), as the package list writes it.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The requirements an installer said it could not find.
fn unavailable(output: &str) -> Vec<String> {
    let mut found: Vec<String> = output
        .lines()
        .filter_map(|l| {
            l.split_once("No matching distribution found for ")
                .or_else(|| l.split_once("Could not find a version that satisfies the requirement "))
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default().to_owned())
        })
        .filter(|s| !s.is_empty())
        .collect();
    // uv: "Because foo==1.0 was not found in the package registry ..."
    for l in output.lines() {
        if let Some((_, rest)) = l.split_once("Because ")
            && let Some((name, _)) = rest.split_once(" was not found")
        {
            found.push(name.trim().to_owned());
        }
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installer_errors_name_the_missing_packages() {
        let pip = "ERROR: Could not find a version that satisfies the requirement ghost-pkg==0.0.1 (from versions: none)\n\
                   ERROR: No matching distribution found for ghost-pkg==0.0.1\n";
        assert_eq!(unavailable(pip), ["ghost-pkg==0.0.1"]);
        assert!(unavailable("ERROR: something else").is_empty());
    }

    #[test]
    fn names_are_canonical() {
        assert_eq!(normalize("Flask_WTF"), "flask-wtf");
        assert_eq!(normalize("zope.interface"), "zope-interface");
    }
}
