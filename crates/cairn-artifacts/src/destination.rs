//! Where blobs live: parsing `--artifacts-destination` and building the `object_store` backend.
//!
//! Accepted forms:
//! * a local path (`./data/artifacts`, `/var/lib/cairn/artifacts`) or `file:///abs/path`: a
//!   `LocalFileSystem` rooted there, the directory created if missing;
//! * `s3://bucket` or `s3://bucket/prefix`: Amazon S3 or any S3-compatible server, configured from
//!   the usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!   `AWS_REGION`/`AWS_DEFAULT_REGION`, ...). A custom endpoint comes from `MLFLOW_S3_ENDPOINT_URL`
//!   (MLflow's name, which wins) or `AWS_ENDPOINT_URL`; a plain `http://` endpoint is allowed.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use crate::error::{ArtifactError, Result};

/// A parsed artifact destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A directory on the local filesystem.
    Local(PathBuf),
    /// A bucket, and a key prefix inside it (empty for the bucket's root).
    S3 {
        /// The bucket name.
        bucket: String,
        /// Key prefix without leading or trailing slashes.
        prefix: String,
    },
}

/// S3 connection settings: the `AWS_*` variables plus MLflow's endpoint variable. Kept as data
/// rather than read inside the builder so tests and embedders can pass their own without touching
/// the process environment.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    vars: Vec<(String, String)>,
}

impl S3Settings {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Builds settings from `(NAME, value)` pairs, for example
    /// `[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"), ("AWS_ACCESS_KEY_ID", "test")]`.
    /// Names other than `AWS_*` and `MLFLOW_S3_ENDPOINT_URL` are ignored.
    pub fn from_vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with("AWS_") || k == "MLFLOW_S3_ENDPOINT_URL")
            .collect();
        S3Settings { vars }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The custom endpoint, if any: `MLFLOW_S3_ENDPOINT_URL` first, then `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> Option<&str> {
        self.get("MLFLOW_S3_ENDPOINT_URL").or_else(|| self.get("AWS_ENDPOINT_URL")).filter(|e| !e.is_empty())
    }
}

impl Destination {
    /// Parses a destination string (see the module docs for the forms).
    pub fn parse(destination: &str) -> Result<Self> {
        let invalid = |reason: &str| ArtifactError::InvalidDestination {
            destination: destination.to_owned(),
            reason: reason.to_owned(),
        };
        if destination.trim().is_empty() {
            return Err(invalid("empty destination"));
        }
        if let Some(rest) = destination.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            let prefix = prefix.trim_matches('/');
            // Validate the prefix with object_store's own rules now, not at the first request.
            StorePath::parse(prefix).map_err(|e| invalid(&e.to_string()))?;
            return Ok(Destination::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        if let Some(rest) = destination.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(invalid("file URIs must be absolute: file:///path"));
            }
            return Ok(Destination::Local(PathBuf::from(rest)));
        }
        if let Some((scheme, _)) = destination.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?}; use a local path, file:///path or s3://bucket/prefix"
            )));
        }
        Ok(Destination::Local(PathBuf::from(destination)))
    }

    /// Builds the backend and the key prefix blobs live under.
    pub(crate) fn open(&self, s3: &S3Settings, fsync: bool) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
        match self {
            Destination::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true).with_fsync(fsync);
                Ok((Arc::new(store), StorePath::default()))
            }
            Destination::S3 { bucket, prefix } => {
                let store = s3_builder(bucket, s3).build()?;
                let prefix = StorePath::parse(prefix).map_err(object_store::Error::from)?;
                Ok((Arc::new(store), prefix))
            }
        }
    }
}

/// Applies every `AWS_*` setting object_store understands, then the endpoint. Unknown `AWS_*`
/// names (ones meant for other tools) are skipped, as `AmazonS3Builder::from_env` does.
fn s3_builder(bucket: &str, settings: &S3Settings) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
    for (name, value) in &settings.vars {
        if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    if let Some(endpoint) = settings.endpoint() {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            // Self-hosted S3 servers (MinIO, moto, Ceph) rarely have per-bucket DNS names.
            .with_virtual_hosted_style_request(false);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str) -> Destination {
        Destination::Local(PathBuf::from(path))
    }

    fn s3(bucket: &str, prefix: &str) -> Destination {
        Destination::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() }
    }

    #[test]
    fn parses_supported_forms() {
        let table = [
            ("/var/lib/cairn", local("/var/lib/cairn")),
            ("./data/artifacts", local("./data/artifacts")),
            ("relative", local("relative")),
            ("file:///srv/artifacts", local("/srv/artifacts")),
            ("s3://bucket", s3("bucket", "")),
            ("s3://bucket/", s3("bucket", "")),
            ("s3://bucket/a/b/", s3("bucket", "a/b")),
        ];
        for (input, expected) in table {
            assert_eq!(Destination::parse(input).unwrap(), expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_unusable_forms() {
        for input in ["", "  ", "s3://", "s3:///prefix", "file://relative", "gs://bucket", "s3://b/a/../c"] {
            let err = Destination::parse(input).unwrap_err();
            assert!(matches!(err, ArtifactError::InvalidDestination { .. }), "{input:?}: {err}");
        }
    }

    #[test]
    fn mlflow_endpoint_variable_wins() {
        let settings = S3Settings::from_vars([
            ("AWS_ENDPOINT_URL", "http://aws-var"),
            ("MLFLOW_S3_ENDPOINT_URL", "http://mlflow-var"),
            ("HOME", "/root"),
        ]);
        assert_eq!(settings.endpoint(), Some("http://mlflow-var"));
        assert_eq!(settings.vars.len(), 2, "unrelated variables are dropped");
        let settings = S3Settings::from_vars([("AWS_ENDPOINT_URL", "http://aws-var")]);
        assert_eq!(settings.endpoint(), Some("http://aws-var"));
        assert_eq!(S3Settings::default().endpoint(), None);
    }

    #[test]
    fn local_destination_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/artifacts");
        Destination::Local(root.clone()).open(&S3Settings::default(), false).unwrap();
        assert!(root.is_dir());
    }
}
