//! The fresh work folder: a clone of the recorded repository (or of `--repo`), checked out at
//! the recorded commit, with the recorded uncommitted patch applied. Every refusal (the commit is
//! not there, the patch does not apply) happens before anything is created on the server.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Runs git; its standard error becomes the error when it fails.
fn git(cwd: Option<&Path>, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("git");
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let out = command.args(args).stdin(Stdio::null()).output().context("cannot run git")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where to clone from: `--repo`, else the recorded repository (a `file://` URL is a path).
pub fn source(recorded: &str, repo: Option<&Path>) -> String {
    match repo {
        Some(path) => path.display().to_string(),
        None => recorded.strip_prefix("file://").unwrap_or(recorded).to_owned(),
    }
}

/// Clones `source` into `dest` (which must not exist), checks out `commit` and applies `patch`.
pub fn prepare(source: &str, commit: &str, patch: Option<&[u8]>, dest: &Path) -> anyhow::Result<()> {
    let dest_text = dest.display().to_string();
    git(None, &["clone", "--quiet", "--no-checkout", source, &dest_text]).with_context(|| {
        format!("cannot clone the recorded repository from {source} (give a local clone with --repo)")
    })?;
    if git(Some(dest), &["cat-file", "-e", &format!("{commit}^{{commit}}")]).is_err() {
        bail!(
            "commit {commit} is not in {source}: it was rewritten, never pushed, or this is another repository; \
             give a clone that has it with --repo"
        );
    }
    git(Some(dest), &["checkout", "--quiet", "--detach", commit]).context("checking out the recorded commit")?;
    if let Some(patch) = patch {
        // The patch file lives beside the work folder, not in it, so it is not part of the tree.
        let file = tempfile::Builder::new().prefix("cairn-patch-").suffix(".patch").tempfile()?;
        std::fs::write(file.path(), patch)?;
        let path = file.path().display().to_string();
        if let Err(e) = git(Some(dest), &["apply", "--check", "--binary", "--whitespace=nowarn", &path]) {
            bail!("the recorded uncommitted changes do not apply to commit {commit}: {e}");
        }
        git(Some(dest), &["apply", "--binary", "--whitespace=nowarn", &path]).context("applying the recorded diff")?;
    }
    Ok(())
}
