//! Browsers answer a 401 carrying `WWW-Authenticate: Basic` with their own sign-in dialog, even
//! for a script's `fetch`. The web UI has its own sign-in page, so its requests say so with
//! `X-Requested-With: XMLHttpRequest` (the usual marker for script requests) and get their 401
//! without the challenge. Every other client (MLflow's, curl) still gets the challenge it needs.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// The header the web UI sends with every request, and its value.
pub const SCRIPT_HEADER: &str = "x-requested-with";
const SCRIPT_VALUE: HeaderValue = HeaderValue::from_static("XMLHttpRequest");

/// The middleware: drops the Basic challenge from 401 answers to the UI's requests.
pub async fn quiet_for_scripts(request: Request, next: Next) -> Response {
    let from_script = request.headers().get(SCRIPT_HEADER) == Some(&SCRIPT_VALUE);
    let mut response = next.run(request).await;
    if from_script && response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}
