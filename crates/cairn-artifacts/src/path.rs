//! Artifact paths supplied by clients, checked before they touch storage.
//!
//! Blobs are addressed by digest, so a client path never becomes a storage key by itself; it is a
//! key in a run's manifest. It must still be impossible for a path to name something outside the
//! run's root once any layer (a local directory listing, a download into a folder, a future
//! path-addressed backend) interprets it, so the rules here are those of MLflow's
//! `validate_path_is_safe`, made stricter where MLflow depends on the host OS:
//!
//! * `..` segments, absolute paths (`/x`, `//host/x`, `C:/x`, `C:x`), URIs (`file:///x`), backslashes,
//!   control characters (NUL included) and `#` are rejected;
//! * empty and `.` segments are dropped, the way a filesystem would resolve them, so `a//b`, `./a/b`
//!   and `a/b/` all name the manifest entry `a/b` (MLflow accepts these too);
//! * the checks are repeated on every percent-decoding of the input (as MLflow does), so `%2e%2e`
//!   cannot smuggle a `..` past a layer that decodes again. The path kept is the input as given:
//!   decoding is for validation only, so a file literally named `a%20b` keeps its name.

use std::fmt;

/// How many rounds of percent-decoding are checked before the input is declared unreasonable.
/// MLflow uses the same bound.
const MAX_DECODE_ROUNDS: usize = 10;

/// A normalised, validated artifact path relative to some root: `/`-separated, no empty, `.` or
/// `..` segments, no leading or trailing slash. The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RelativePath(String);

/// Why a client-supplied artifact path was refused. Every variant is the caller's fault.
///
/// Every message starts with MLflow's words for this error, "Invalid path", because clients and
/// MLflow's own tests look for them; what follows says which rule the path broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path starts at a filesystem root, a network share or a drive.
    #[error("Invalid path {0:?}: must be relative, not absolute")]
    Absolute(String),
    /// The path names a URI such as `file:///etc/passwd` instead of a relative path.
    #[error("Invalid path {0:?}: must be a relative path, not a URI")]
    Uri(String),
    /// A segment is `..`, which would climb out of the root.
    #[error("Invalid path {0:?}: '..' segments are not allowed")]
    ParentSegment(String),
    /// A backslash, which some platforms treat as a separator.
    #[error("Invalid path {0:?}: backslashes are not allowed; use '/' as the separator")]
    Backslash(String),
    /// A NUL byte or another control character.
    #[error("Invalid path {0:?}: control characters (including NUL) are not allowed")]
    ControlCharacter(String),
    /// A `#`, which MLflow rejects because it would be read as a URL fragment.
    #[error("Invalid path {0:?}: '#' is not allowed")]
    Fragment(String),
    /// Percent-decoding the path kept changing it after many rounds.
    #[error("Invalid path {0:?}: too many levels of percent-encoding")]
    TooManyEncodings(String),
}

/// Validates and normalises a client-supplied artifact path (see the module docs for the rules).
///
/// `""` and `"."` yield the root, which is fine for listing; callers that need a file name check
/// [`RelativePath::is_root`].
pub fn sanitize_artifact_path(input: &str) -> Result<RelativePath, PathError> {
    let mut current = input.to_owned();
    for _ in 0..MAX_DECODE_ROUNDS {
        check_raw(input, &current)?;
        let decoded = percent_decode(&current);
        if decoded == current {
            return Ok(RelativePath::from_checked(input));
        }
        current = decoded;
    }
    Err(PathError::TooManyEncodings(input.to_owned()))
}

/// Applies every rule to `candidate` (one decoding of `input`), reporting errors against `input`.
fn check_raw(input: &str, candidate: &str) -> Result<(), PathError> {
    let err = |make: fn(String) -> PathError| Err(make(input.to_owned()));
    if candidate.chars().any(|c| c.is_control()) {
        return err(PathError::ControlCharacter);
    }
    if candidate.contains('\\') {
        return err(PathError::Backslash);
    }
    if candidate.contains('#') {
        return err(PathError::Fragment);
    }
    if candidate.contains("://") {
        return err(PathError::Uri);
    }
    if candidate.starts_with('/') || has_drive_prefix(candidate) {
        return err(PathError::Absolute);
    }
    if candidate.split('/').any(|segment| segment == "..") {
        return err(PathError::ParentSegment);
    }
    Ok(())
}

/// True for `C:`, `c:/x`, `C:x`: a Windows drive, absolute or drive-relative. Either way the path
/// would leave the root on a Windows client that downloads it.
fn has_drive_prefix(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// One round of `%XX` decoding. Malformed escapes are left as they are; bytes that do not form
/// UTF-8 are replaced, which is enough for validation (the decoded text is never stored).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(byte) = escape_at(bytes, i) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte a well-formed `%XX` escape starting at `i` stands for.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let [b'%', hi, lo] = *bytes.get(i..i + 3)? else {
        return None;
    };
    let hex = |b: u8| (b as char).to_digit(16);
    Some((hex(hi)? << 4 | hex(lo)?) as u8)
}

impl RelativePath {
    /// The root: the empty path.
    pub fn root() -> Self {
        RelativePath(String::new())
    }

    /// Normalises a path that already passed [`check_raw`]: drops empty and `.` segments.
    fn from_checked(path: &str) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        RelativePath(segments.join("/"))
    }

    /// The normalised path, without leading or trailing slash; `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root (the empty path), which cannot name a file.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path's segments, in order; none for the root.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The last segment, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments().last()
    }

    /// The path without its last segment; the root's parent is `None`.
    pub fn parent(&self) -> Option<RelativePath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((parent, _)) => RelativePath(parent.to_owned()),
            None => RelativePath::root(),
        })
    }

    /// Appends another validated path: `a/b` joined with `c/d` is `a/b/c/d`.
    pub fn join(&self, other: &RelativePath) -> RelativePath {
        match (self.is_root(), other.is_root()) {
            (true, _) => other.clone(),
            (_, true) => self.clone(),
            _ => RelativePath(format!("{}/{}", self.0, other.0)),
        }
    }

    /// Whether `self` is `ancestor` or lies beneath it, segment-wise (`ab` is not under `a`).
    pub fn starts_with(&self, ancestor: &RelativePath) -> bool {
        ancestor.is_root()
            || self.0 == ancestor.0
            || (self.0.starts_with(&ancestor.0) && self.0.as_bytes()[ancestor.0.len()] == b'/')
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RelativePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rejected input and the constructor of the error it must produce.
    type Rejection = (&'static str, fn(String) -> PathError);

    /// Runs one table row: `Ok(normalised)` or the error variant's constructor.
    fn check(input: &str, expected: Result<&str, fn(String) -> PathError>) {
        let got = sanitize_artifact_path(input);
        match expected {
            Ok(normalised) => assert_eq!(got.as_ref().map(RelativePath::as_str), Ok(normalised), "input {input:?}"),
            Err(make) => assert_eq!(got, Err(make(input.to_owned())), "input {input:?}"),
        }
    }

    #[test]
    fn accepts_and_normalises_relative_paths() {
        let table: &[(&str, &str)] = &[
            ("model.pkl", "model.pkl"),
            ("a/b/c.txt", "a/b/c.txt"),
            ("a//b", "a/b"),
            ("./a/b", "a/b"),
            ("a/./b", "a/b"),
            ("a/b/", "a/b"),
            ("a/.", "a"),
            ("", ""),
            (".", ""),
            ("./", ""),
            ("...", "..."),
            ("..a", "..a"),
            ("a..", "a.."),
            ("a/..b/c", "a/..b/c"),
            ("dir with space/ünïcødé.txt", "dir with space/ünïcødé.txt"),
            // Decoding is for validation only: a harmless escape is kept literally.
            ("a%20b", "a%20b"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("ab:c", "ab:c"),
            ("ab:c/d", "ab:c/d"),
        ];
        for (input, normalised) in table {
            check(input, Ok(normalised));
        }
    }

    #[test]
    fn rejects_traversal_and_absolute_paths() {
        let table: &[Rejection] = &[
            ("..", PathError::ParentSegment),
            ("../x", PathError::ParentSegment),
            ("a/../b", PathError::ParentSegment),
            ("a/b/..", PathError::ParentSegment),
            ("a/../../etc/passwd", PathError::ParentSegment),
            ("/etc/passwd", PathError::Absolute),
            ("/", PathError::Absolute),
            ("//server/share/x", PathError::Absolute),
            ("C:/Windows", PathError::Absolute),
            ("c:x", PathError::Absolute),
            ("C:", PathError::Absolute),
            ("a:b", PathError::Absolute),
            ("file:///etc/passwd", PathError::Uri),
            ("s3://bucket/key", PathError::Uri),
        ];
        for (input, make) in table {
            check(input, Err(*make));
        }
    }

    #[test]
    fn rejects_encoded_traversal() {
        let table: &[Rejection] = &[
            ("%2e%2e/x", PathError::ParentSegment),
            ("%2E%2E", PathError::ParentSegment),
            ("a/%2e%2e/b", PathError::ParentSegment),
            ("%252e%252e/x", PathError::ParentSegment),
            ("a%2f..%2fb", PathError::ParentSegment),
            ("%2fetc%2fpasswd", PathError::Absolute),
            ("%5c..%5cx", PathError::Backslash),
            ("a%00b", PathError::ControlCharacter),
            ("a%23b", PathError::Fragment),
        ];
        for (input, make) in table {
            check(input, Err(*make));
        }
    }

    #[test]
    fn rejects_backslashes_control_characters_and_fragments() {
        let table: &[Rejection] = &[
            ("a\\b", PathError::Backslash),
            ("..\\x", PathError::Backslash),
            ("\\\\server\\share", PathError::Backslash),
            ("a\0b", PathError::ControlCharacter),
            ("\0", PathError::ControlCharacter),
            ("a\nb", PathError::ControlCharacter),
            ("a\u{7f}", PathError::ControlCharacter),
            ("a#b", PathError::Fragment),
        ];
        for (input, make) in table {
            check(input, Err(*make));
        }
    }

    #[test]
    fn rejects_endless_encoding() {
        // Eleven layers of encoding of '%': each round peels one and still changes the text.
        let mut input = "%25".to_owned();
        for _ in 0..MAX_DECODE_ROUNDS {
            input = input.replace('%', "%25");
        }
        check(&input, Err(PathError::TooManyEncodings));
    }

    #[test]
    fn error_messages_name_the_input_and_the_rule() {
        let message = sanitize_artifact_path("../x").unwrap_err().to_string();
        assert!(message.contains("\"../x\"") && message.contains("'..'"), "{message}");
    }

    #[test]
    fn navigation_helpers_work_segment_wise() {
        let path = sanitize_artifact_path("a/b/c.txt").unwrap();
        assert_eq!(path.file_name(), Some("c.txt"));
        assert_eq!(path.parent().unwrap().as_str(), "a/b");
        assert_eq!(path.segments().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
        assert_eq!(RelativePath::root().parent(), None);
        assert_eq!(sanitize_artifact_path("a").unwrap().parent(), Some(RelativePath::root()));

        let dir = sanitize_artifact_path("a").unwrap();
        assert!(path.starts_with(&dir));
        assert!(path.starts_with(&RelativePath::root()));
        assert!(!sanitize_artifact_path("ab/c").unwrap().starts_with(&dir));
        assert_eq!(dir.join(&sanitize_artifact_path("x/y").unwrap()).as_str(), "a/x/y");
        assert_eq!(RelativePath::root().join(&dir), dir);
    }
}
