//! The git state of the tree a command is launched in: repository, commit, branch, and the
//! uncommitted changes as one patch, recorded the way the Python package records them
//! (`cairn.capture.code`), so that `cairn reproduce` reads one format whoever launched the run.
//!
//! The patch is `git diff HEAD --binary` of tracked files followed by untracked, non-ignored
//! source files (by suffix, text, under [`MAX_UNTRACKED_FILE_BYTES`]) as new-file hunks;
//! `git apply` on a clean checkout of the commit restores the tree. Beyond [`MAX_PATCH_BYTES`]
//! the patch is cut and the run says so, and `cairn reproduce` refuses such a run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use cairn_core::audit::sha256_hex;

/// Untracked files larger than this are left out of the patch (and named).
pub const MAX_UNTRACKED_FILE_BYTES: u64 = 256 * 1024;
/// The largest patch kept whole.
pub const MAX_PATCH_BYTES: usize = 8 * 1024 * 1024;
const SOURCE_SUFFIXES: &[&str] = &[
    "py", "pyi", "pyx", "ipynb", "r", "jl", "scala", "java", "kt", "js", "ts", "c", "h", "cc", "cpp", "hpp", "cu",
    "rs", "go", "sh", "sql", "yaml", "yml", "toml", "json", "cfg", "ini", "txt", "md", "proto", "conf",
];

/// What git says about the working tree.
#[derive(Debug, Clone)]
pub struct GitState {
    pub root: PathBuf,
    /// The `origin` remote without credentials, or the root as a `file://` URL.
    pub repository: String,
    pub commit: String,
    pub branch: Option<String>,
    pub patch: Vec<u8>,
    pub truncated: bool,
    pub skipped: Vec<String>,
}

impl GitState {
    /// Whether anything is uncommitted.
    pub fn dirty(&self) -> bool {
        !self.patch.is_empty()
    }

    /// The SHA-256 of the patch, when there is one.
    pub fn diff_digest(&self) -> Option<String> {
        self.dirty().then(|| sha256_hex(&self.patch))
    }

    /// The code-version key the server derives from the run's tags.
    pub fn node_key(&self) -> String {
        match self.diff_digest() {
            Some(d) => format!("{}@{}+{d}", self.repository, self.commit),
            None => format!("{}@{}", self.repository, self.commit),
        }
    }
}

/// Runs git in `cwd`; its standard output, or `None` when git is missing or fails.
fn git(cwd: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git").args(args).current_dir(cwd).stdin(Stdio::null()).stderr(Stdio::null()).output();
    out.ok().filter(|o| o.status.success()).map(|o| o.stdout)
}

/// The state of the repository containing `cwd`, or `None` outside any repository (or when the
/// repository has no commit yet, so there is no version to name).
pub fn state(cwd: &Path) -> anyhow::Result<Option<GitState>> {
    let Some(root) = git(cwd, &["rev-parse", "--show-toplevel"]) else { return Ok(None) };
    let root = PathBuf::from(String::from_utf8_lossy(&root).trim());
    let repository = match git(&root, &["remote", "get-url", "origin"]) {
        Some(url) => redact_url(String::from_utf8_lossy(&url).trim()),
        None => format!("file://{}", root.canonicalize().unwrap_or_else(|_| root.clone()).display()),
    };
    let status = git(&root, &["status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all"])
        .context("git status failed")?;
    let (commit, branch, untracked) = parse_status(&status);
    let Some(commit) = commit else { return Ok(None) };
    let tracked = git(&root, &["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"]).unwrap_or_default();
    let (patch, truncated, skipped) = uncommitted_patch(&root, tracked, &untracked)?;
    Ok(Some(GitState { root, repository, commit, branch, patch, truncated, skipped }))
}

/// A remote URL without credentials (`https://user:token@host/x` → `https://host/x`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned(); // scp-like `git@host:org/repo.git` names a user, not a secret
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// Commit, branch and untracked paths from `git status --porcelain=v2 -z --branch`.
fn parse_status(status: &[u8]) -> (Option<String>, Option<String>, Vec<String>) {
    let (mut commit, mut branch, mut untracked) = (None, None, Vec::new());
    for entry in status.split(|b| *b == 0) {
        let text = String::from_utf8_lossy(entry);
        if let Some(oid) = text.strip_prefix("# branch.oid ") {
            commit = (oid != "(initial)").then(|| oid.to_owned());
        } else if let Some(head) = text.strip_prefix("# branch.head ") {
            branch = (head != "(detached)").then(|| head.to_owned());
        } else if let Some(path) = text.strip_prefix("? ") {
            untracked.push(path.to_owned());
        }
    }
    untracked.sort();
    (commit, branch, untracked)
}

/// The tracked diff plus untracked source files; whether it was cut; files left out.
fn uncommitted_patch(
    root: &Path,
    tracked: Vec<u8>,
    untracked: &[String],
) -> anyhow::Result<(Vec<u8>, bool, Vec<String>)> {
    let mut patch = tracked;
    let mut skipped = Vec::new();
    for rel in untracked {
        let path = root.join(rel);
        let suffix = path.extension().and_then(|s| s.to_str()).map(str::to_ascii_lowercase);
        if !suffix.is_some_and(|s| SOURCE_SUFFIXES.contains(&s.as_str())) || !path.is_file() {
            continue;
        }
        if path.metadata()?.len() > MAX_UNTRACKED_FILE_BYTES {
            skipped.push(rel.clone());
            continue;
        }
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if data[..data.len().min(8192)].contains(&0) {
            skipped.push(rel.clone());
            continue;
        }
        let hunk = new_file_hunk(rel, &data);
        if patch.len() + hunk.len() > MAX_PATCH_BYTES {
            skipped.push(rel.clone());
            continue;
        }
        patch.extend_from_slice(&hunk);
    }
    let truncated = patch.len() > MAX_PATCH_BYTES;
    patch.truncate(MAX_PATCH_BYTES);
    Ok((patch, truncated || !skipped.is_empty(), skipped))
}

/// An untracked file as a git new-file patch, so `git apply` recreates it.
fn new_file_hunk(rel: &str, data: &[u8]) -> Vec<u8> {
    let no_newline = !data.ends_with(b"\n");
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if !no_newline {
        lines.pop();
    }
    if data.is_empty() {
        return format!("diff --git a/{rel} b/{rel}\nnew file mode 100644\n").into_bytes();
    }
    let mut out = format!(
        "diff --git a/{rel} b/{rel}\nnew file mode 100644\n--- /dev/null\n+++ b/{rel}\n@@ -0,0 +1,{} @@\n",
        lines.len()
    )
    .into_bytes();
    for line in lines {
        out.push(b'+');
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    if no_newline {
        out.extend_from_slice(b"\\ No newline at end of file\n");
    }
    out
}

/// Refuses a dirty tree, for `--require-clean`.
pub fn require_clean(state: Option<&GitState>) -> anyhow::Result<()> {
    match state {
        None => bail!("--require-clean: the working directory is not in a git repository with a commit"),
        Some(s) if s.dirty() => bail!(
            "--require-clean: {} has uncommitted changes; commit them or drop --require-clean \
             (a dirty tree is recorded as a patch and can still be reproduced)",
            s.root.display()
        ),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_remote_urls() {
        assert_eq!(redact_url("https://user:tok@github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(redact_url("https://github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(redact_url("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(redact_url("ssh://git@host:22/o/r"), "ssh://host:22/o/r");
    }

    #[test]
    fn status_gives_commit_branch_and_untracked_files() {
        // `\x31` is `1`, the start of a changed tracked file's entry (written so because `\0`
        // followed by a digit would read as an octal escape).
        let status = b"# branch.oid abc\0# branch.head main\0? b.py\0? a.py\0\x31 .M N... x\0";
        let (commit, branch, untracked) = parse_status(status);
        assert_eq!(commit.as_deref(), Some("abc"));
        assert_eq!(branch.as_deref(), Some("main"));
        assert_eq!(untracked, ["a.py", "b.py"]);
        let (commit, branch, _) = parse_status(b"# branch.oid (initial)\0# branch.head (detached)\0");
        assert_eq!((commit, branch), (None, None));
    }

    #[test]
    fn new_file_hunks_match_the_python_package() {
        // The same bytes `cairn.capture.code.new_file_hunk` writes.
        assert_eq!(
            new_file_hunk("a.py", b"x = 1\ny = 2\n"),
            b"diff --git a/a.py b/a.py\nnew file mode 100644\n--- /dev/null\n+++ b/a.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n"
        );
        assert!(new_file_hunk("a.py", b"x").ends_with(b"+x\n\\ No newline at end of file\n"));
    }
}
