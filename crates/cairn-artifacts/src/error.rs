//! The artifact store's error. Like the domain error in `cairn-core` it knows nothing of HTTP:
//! the server maps each variant to a status with an exhaustive `match`.

/// A boxed error from the caller's byte stream (for example a client that disconnected).
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong storing or reading blobs.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No blob has this digest.
    #[error("no blob with digest {0}")]
    NotFound(String),
    /// A digest string that is not 64 hex characters.
    #[error("invalid digest {0:?}: expected 64 hexadecimal characters (sha256)")]
    InvalidDigest(String),
    /// The requested byte range lies outside the blob (HTTP's 416).
    #[error("byte range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable {
        /// The blob's full size, which a `Content-Range: bytes */size` reply needs.
        size: u64,
    },
    /// The artifact destination string could not be understood (a configuration error).
    #[error("invalid artifact destination {destination:?}: {reason}")]
    InvalidDestination {
        /// The destination as given.
        destination: String,
        /// Why it was refused.
        reason: String,
    },
    /// The caller's byte stream failed mid-upload. Nothing was stored.
    #[error("upload stream failed: {0}")]
    Source(#[source] SourceError),
    /// The storage backend failed.
    #[error("artifact storage error: {0}")]
    Storage(#[from] object_store::Error),
    /// A local filesystem operation outside `object_store` failed (creating the root directory).
    #[error("artifact storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result with [`ArtifactError`].
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

impl ArtifactError {
    /// Whether the caller caused this error (bad digest, bad range, broken upload stream), as
    /// opposed to a configuration or backend failure.
    pub fn is_client_error(&self) -> bool {
        match self {
            ArtifactError::NotFound(_)
            | ArtifactError::InvalidDigest(_)
            | ArtifactError::RangeNotSatisfiable { .. }
            | ArtifactError::Source(_) => true,
            ArtifactError::InvalidDestination { .. } | ArtifactError::Storage(_) | ArtifactError::Io(_) => false,
        }
    }
}
