//! The domain error. It knows what went wrong, never how a transport reports it: the HTTP layer
//! maps each variant to a status code and an MLflow error code with an exhaustive `match`.

/// What can go wrong in a domain operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The caller named something that does not exist (or is not visible).
    #[error("{0}")]
    NotFound(String),
    /// The caller tried to create something whose identity is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller's input is malformed, out of range or contradicts stored state.
    #[error("{0}")]
    InvalidParameter(String),
    /// The request is well-formed but the target is in a state that forbids it.
    #[error("{0}")]
    InvalidState(String),
    /// The caller is not allowed to do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The server ran out of storage (a full disk or database quota); nothing of the request was
    /// stored, and everything acknowledged before is kept.
    #[error("{0}")]
    StorageFull(String),
    /// Something failed on our side; details are logged, never shown to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for an [`Error::InvalidParameter`] with a formatted message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidParameter(msg.into())
    }
    /// Shorthand for an [`Error::NotFound`] with a formatted message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    /// Shorthand for an [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
}
