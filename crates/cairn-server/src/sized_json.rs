//! A JSON response written into a buffer sized for it up front.
//!
//! axum's `Json` starts from a small buffer and doubles it as the body grows, so a history page
//! of 25,000 points (about 2 MiB) is copied a dozen times on its way out and, at the last
//! doubling, holds 6 MiB for a 2 MiB body. Sizing the buffer keeps the peak at the body's size;
//! the time saved was within the benchmark's noise.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON body, already written (so that it may borrow from the handler's data).
#[derive(Debug)]
pub struct SizedJson(Result<Vec<u8>, String>);

impl SizedJson {
    /// `body` as JSON, written into a buffer of `capacity` bytes (it grows if the guess is short).
    pub fn new(body: &impl Serialize, capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity);
        SizedJson(serde_json::to_writer(&mut buffer, body).map(|()| buffer).map_err(|e| e.to_string()))
    }
}

impl IntoResponse for SizedJson {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(buffer) => {
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], buffer).into_response()
            }
            Err(e) => ApiError::from(cairn_core::Error::internal(format!("writing a response: {e}"))).into_response(),
        }
    }
}
