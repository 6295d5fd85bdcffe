//! Reading `file://` artifact locations that lie inside the operator's local
//! `--default-artifact-root`.
//!
//! When the default artifact root is a local folder, MLflow's clients write a run's or logged
//! model's files straight into `<root>/<experiment>/…`, never through the server, and MLflow's
//! server later lists and serves them from there. Cairn does the same, but only inside that one
//! folder, which the operator chose: an experiment's `artifact_location` is chosen by whoever
//! creates the experiment, and honouring any path would let them read any directory on the
//! server's disk. So a location is read only when it names a path lexically inside the root, and
//! every path actually opened is canonicalised first and must still be inside the root's
//! canonical form, which stops `..` segments and symbolic links that point out of it.
//! Everything else is `Outside`, and callers keep to the files the server holds itself.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use cairn_artifacts::RelativePath;

/// The operator's local artifact root, in its canonical form.
#[derive(Debug, Clone)]
pub struct LocalFolder {
    /// The root as configured, made absolute lexically (a location names it this way).
    configured: PathBuf,
    /// The root with symbolic links resolved (what opened paths must stay inside).
    canonical: PathBuf,
}

/// What a location and a path inside it come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The location is not a local folder inside the root: nothing is read from disk.
    Outside,
    /// Inside the root, but nothing exists there (yet).
    Missing,
    /// An existing path inside the root (canonical).
    Found(PathBuf),
}

/// One entry of a listed directory.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
}

/// Why a path inside the root was refused.
#[derive(Debug)]
pub enum Refused {
    /// After resolving links, the path leaves the root.
    Escapes(String),
    Io(std::io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Escapes(path) => {
                write!(f, "The artifact path '{path}' resolves outside the server's artifact root")
            }
            Refused::Io(e) => write!(f, "Cannot read the artifact folder: {e}"),
        }
    }
}

impl LocalFolder {
    /// The folder a default artifact root names, if it is a local one (`file:///…` or an absolute
    /// path); created if missing, as MLflow creates it on first write.
    pub fn from_root_uri(uri: &str) -> std::io::Result<Option<LocalFolder>> {
        let Some(configured) = local_path(uri) else { return Ok(None) };
        std::fs::create_dir_all(&configured)?;
        let canonical = std::fs::canonicalize(&configured)?;
        Ok(Some(LocalFolder { configured, canonical }))
    }

    /// Where `rel` inside `location` is, if `location` lies inside the root.
    pub fn resolve(&self, location: &str, rel: &RelativePath) -> Result<Resolved, Refused> {
        let Some(base) = local_path(location) else { return Ok(Resolved::Outside) };
        if !base.starts_with(&self.configured) && !base.starts_with(&self.canonical) {
            return Ok(Resolved::Outside);
        }
        let target = if rel.is_root() { base } else { base.join(rel.as_str()) };
        match std::fs::canonicalize(&target) {
            Ok(real) if real.starts_with(&self.canonical) => Ok(Resolved::Found(real)),
            Ok(_) => Err(Refused::Escapes(rel.as_str().to_owned())),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(Resolved::Missing),
            Err(e) => Err(Refused::Io(e)),
        }
    }

    /// The entries of directory `dir` (found by `resolve`), sorted by name. Entries that are links
    /// leading out of the root are left out rather than listed.
    pub fn list(&self, dir: &Path) -> Result<Vec<Entry>, Refused> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir).map_err(Refused::Io)? {
            let item = item.map_err(Refused::Io)?;
            let Ok(real) = std::fs::canonicalize(item.path()) else { continue };
            if !real.starts_with(&self.canonical) {
                continue;
            }
            let meta = std::fs::metadata(&real).map_err(Refused::Io)?;
            let Ok(name) = item.file_name().into_string() else { continue };
            entries.push(Entry { name, is_dir: meta.is_dir(), size: if meta.is_dir() { 0 } else { meta.len() } });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

/// The absolute local path a URI names (`file:///p`, `file://localhost/p`, `file:/p`, `/p`),
/// percent-decoded and with `.` and `..` applied lexically; `None` for anything else.
fn local_path(uri: &str) -> Option<PathBuf> {
    let raw = if let Some(rest) = uri.strip_prefix("file://") {
        // Only this machine: an empty host or `localhost`.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        if !rest.starts_with('/') {
            return None;
        }
        percent_decode(rest)?
    } else if let Some(rest) = uri.strip_prefix("file:") {
        percent_decode(rest)?
    } else {
        uri.to_owned()
    };
    if !raw.starts_with('/') || raw.contains('\0') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(&raw).components() {
        match component {
            Component::Normal(segment) => out.push(segment),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// `%XX` escapes decoded; `None` if malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(p: &str) -> RelativePath {
        cairn_artifacts::sanitize_artifact_path(p).unwrap()
    }

    fn setup() -> (tempfile::TempDir, LocalFolder, String) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let run = root.join("1/run/artifacts");
        std::fs::create_dir_all(run.join("dir")).unwrap();
        std::fs::write(run.join("a.txt"), "hello").unwrap();
        std::fs::write(run.join("dir/b.txt"), "bb").unwrap();
        std::fs::create_dir_all(tmp.path().join("secret")).unwrap();
        std::fs::write(tmp.path().join("secret/key"), "private").unwrap();
        let folder = LocalFolder::from_root_uri(&format!("file://{}", root.display())).unwrap().unwrap();
        let location = format!("file://{}", run.display());
        (tmp, folder, location)
    }

    #[test]
    fn only_local_uris_name_folders() {
        assert_eq!(local_path("file:///a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(local_path("file://localhost/a"), Some(PathBuf::from("/a")));
        assert_eq!(local_path("file:/a/./b/../c"), Some(PathBuf::from("/a/c")));
        assert_eq!(local_path("file:///a%20b"), Some(PathBuf::from("/a b")));
        assert_eq!(local_path("/x/../../y"), Some(PathBuf::from("/y")));
        assert_eq!(local_path("file://otherhost/a"), None);
        assert_eq!(local_path("file:///a%2"), None);
        assert_eq!(local_path("file:relative"), None);
        assert_eq!(local_path("s3://bucket/a"), None);
        assert_eq!(local_path("mlflow-artifacts:/a"), None);
        assert_eq!(local_path("relative/dir"), None);
        assert!(LocalFolder::from_root_uri("mlflow-artifacts:/").unwrap().is_none());
    }

    #[test]
    fn files_inside_the_root_are_found_and_listed() {
        let (_tmp, folder, location) = setup();
        let Resolved::Found(dir) = folder.resolve(&location, &rel("")).unwrap() else { panic!() };
        let names: Vec<_> = folder.list(&dir).unwrap().into_iter().map(|e| (e.name, e.is_dir, e.size)).collect();
        assert_eq!(names, [("a.txt".into(), false, 5), ("dir".into(), true, 0)]);
        assert!(matches!(folder.resolve(&location, &rel("dir/b.txt")).unwrap(), Resolved::Found(_)));
        assert_eq!(folder.resolve(&location, &rel("nope.txt")).unwrap(), Resolved::Missing);
        assert_eq!(folder.resolve(&location, &rel("a.txt/x")).unwrap(), Resolved::Missing);
    }

    #[test]
    fn locations_outside_the_root_are_not_read() {
        let (tmp, folder, location) = setup();
        let secret = format!("file://{}", tmp.path().join("secret").display());
        assert_eq!(folder.resolve(&secret, &rel("key")).unwrap(), Resolved::Outside);
        // `..` in the location is applied before the check, so it cannot climb out.
        let climbing = format!("{location}/../../../../secret");
        assert_eq!(folder.resolve(&climbing, &rel("key")).unwrap(), Resolved::Outside);
        let encoded = format!("{location}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret");
        assert_eq!(folder.resolve(&encoded, &rel("key")).unwrap(), Resolved::Outside);
        assert_eq!(folder.resolve("file:///etc", &rel("passwd")).unwrap(), Resolved::Outside);
        // A sibling folder whose name merely starts with the root's is not inside it.
        let sibling = tmp.path().join("root-other");
        std::fs::create_dir_all(&sibling).unwrap();
        assert_eq!(folder.resolve(&format!("file://{}", sibling.display()), &rel("")).unwrap(), Resolved::Outside);
    }

    #[test]
    fn links_out_of_the_root_are_refused() {
        let (tmp, folder, location) = setup();
        let run = local_path(&location).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), run.join("escape")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret/key"), run.join("key")).unwrap();
        assert!(matches!(folder.resolve(&location, &rel("escape/key")), Err(Refused::Escapes(_))));
        assert!(matches!(folder.resolve(&location, &rel("key")), Err(Refused::Escapes(_))));
        let Resolved::Found(dir) = folder.resolve(&location, &rel("")).unwrap() else { panic!() };
        let names: Vec<_> = folder.list(&dir).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a.txt", "dir"], "links leading out are not listed");
        // A link that stays inside the root is followed.
        std::os::unix::fs::symlink(run.join("dir"), run.join("inside")).unwrap();
        assert!(matches!(folder.resolve(&location, &rel("inside/b.txt")).unwrap(), Resolved::Found(_)));
    }
}
