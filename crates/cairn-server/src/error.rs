//! The one HTTP error type. Every failure a handler can meet becomes an [`ApiError`], rendered as
//! MLflow renders errors: `{"error_code": "...", "message": "..."}` with MLflow's status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// MLflow error codes Cairn emits (a subset of `databricks_pb2.ErrorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    PermissionDenied,
    ResourceExhausted,
    InternalError,
    EndpointNotFound,
    BadRequest,
    TemporarilyUnavailable,
    NotImplemented,
    Unauthenticated,
    RequestLimitExceeded,
}

impl ErrorCode {
    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
        }
    }
}

/// An error response: an MLflow code, an HTTP status and a message safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// More than MLflow's message says, where clients match MLflow's exact words: sent beside
    /// the message as `details`, which MLflow's clients ignore.
    pub details: Option<String>,
}

impl ApiError {
    /// Builds an error from its parts.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None }
    }

    /// The same error with [`ApiError::details`].
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// `INVALID_PARAMETER_VALUE`, 400: the request itself is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidParameterValue, message)
    }

    /// `RESOURCE_EXHAUSTED`, 507: the server's storage is full and nothing was stored.
    pub fn storage_full(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INSUFFICIENT_STORAGE, ErrorCode::ResourceExhausted, message)
    }

    /// `ENDPOINT_NOT_FOUND`, 404: no such route.
    pub fn endpoint_not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::EndpointNotFound,
            format!("No endpoint matches the path '{path}'"),
        )
    }
}

impl From<cairn_core::Error> for ApiError {
    fn from(e: cairn_core::Error) -> Self {
        use cairn_core::Error as E;
        match e {
            E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::ResourceDoesNotExist, m),
            E::AlreadyExists(m) => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::ResourceAlreadyExists, m),
            E::InvalidParameter(m) => ApiError::invalid(m),
            // MLflow maps INVALID_STATE to 500, which its client retries for minutes; the state
            // of a resource is the caller's business, so Cairn answers 400 at once.
            E::InvalidState(m) => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidState, m),
            E::PermissionDenied(m) => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, m),
            E::StorageFull(m) => ApiError::storage_full(m),
            E::Internal(detail) => {
                // The detail may name files, SQL or hosts: log it here, once, and keep it out of
                // the response.
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "Internal error; the server log has the details",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error_code": self.code.as_str(), "message": self.message });
        if let Some(details) = self.details {
            body["details"] = json!(details);
        }
        (self.status, Json(body)).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_mlflow_codes() {
        use cairn_core::Error as E;
        let check = |e: E, status: u16, code: &str| {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code.as_str()), (status, code));
        };
        check(E::NotFound("x".into()), 404, "RESOURCE_DOES_NOT_EXIST");
        check(E::AlreadyExists("x".into()), 400, "RESOURCE_ALREADY_EXISTS");
        check(E::InvalidParameter("x".into()), 400, "INVALID_PARAMETER_VALUE");
        check(E::InvalidState("x".into()), 400, "INVALID_STATE");
        check(E::PermissionDenied("x".into()), 403, "PERMISSION_DENIED");
        check(E::StorageFull("x".into()), 507, "RESOURCE_EXHAUSTED");
        check(E::Internal("x".into()), 500, "INTERNAL_ERROR");
    }

    #[test]
    fn internal_details_are_not_leaked() {
        let api = ApiError::from(cairn_core::Error::Internal("disk /secret/path is full".into()));
        assert!(!api.message.contains("/secret/path"));
    }
}
