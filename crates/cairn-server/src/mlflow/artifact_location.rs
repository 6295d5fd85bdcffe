//! A relative `artifact_location` given at experiment creation, resolved as MLflow's server
//! resolves it (`resolve_uri_if_local`): against the server's working directory, so that
//! `my_location` becomes `<cwd>/my_location` and `file:my_location` `file://<cwd>/my_location`.
//! Anything with another scheme, or already absolute, is kept as given.

use std::path::Path;

/// `location` made absolute against `cwd` when it is a relative local path.
pub fn resolve(location: &str, cwd: &Path) -> String {
    let cwd = cwd.to_string_lossy();
    if let Some(path) = location.strip_prefix("file:") {
        if path.starts_with('/') {
            return location.to_owned();
        }
        return format!("file://{}", join(&cwd, path));
    }
    if has_scheme(location) || location.starts_with('/') {
        return location.to_owned();
    }
    join(&cwd, location)
}

/// Whether `uri` starts with an RFC 3986 scheme (`s3:`, `mlflow-artifacts:`), as Python's
/// `urlparse` reads one (so `C:/data` has the scheme `c` on a Unix server, as in MLflow).
fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else { return false };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `base/rel` with empty and `.` segments of `rel` dropped, as `pathlib` joins them.
fn join(base: &str, rel: &str) -> String {
    let mut out = base.trim_end_matches('/').to_owned();
    for segment in rel.split('/').filter(|s| !s.is_empty() && *s != ".") {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_working_directory() {
        let cwd = Path::new("/srv/cairn");
        let cases = [
            ("my_location", "/srv/cairn/my_location"),
            ("./a//b/", "/srv/cairn/a/b"),
            ("../up", "/srv/cairn/../up"),
            ("file:rel/dir", "file:///srv/cairn/rel/dir"),
            ("file:///abs", "file:///abs"),
            ("/abs/dir", "/abs/dir"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("mlflow-artifacts:/x", "mlflow-artifacts:/x"),
            ("C:/data", "C:/data"),
        ];
        for (given, expected) in cases {
            assert_eq!(resolve(given, cwd), expected, "{given}");
        }
    }
}
