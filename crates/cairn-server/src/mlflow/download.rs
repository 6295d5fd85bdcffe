//! How artifact files are sent: always as attachments, with the content type MLflow gives a
//! file by its name, so that a browser never renders an artifact as a page of this origin.
//!
//! MLflow's rule (`mlflow.utils.mime_type_utils`): a list of text extensions (and the names
//! `MLmodel`, `mlproject`; Cairn adds `MLproject`) is `text/plain`, anything else what Python's `mimetypes` guesses,
//! else `application/octet-stream`. Cairn departs from it in one place: types a browser would
//! run as a document (HTML, XHTML) are sent as `text/plain`, because an artifact is whatever a
//! client uploaded and must not become script running on the tracking server's origin.

use axum::http::{HeaderValue, header};
use axum::response::Response;

use cairn_core::artifacts::ArtifactFile;

use crate::artifacts::Artifacts;
use crate::error::ApiResult;
use crate::mlflow::artifacts::stream_file;

/// Extensions (and extension-less names) MLflow sends as `text/plain`.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "log",
    "err",
    "cfg",
    "conf",
    "cnf",
    "cf",
    "ini",
    "properties",
    "prop",
    "hocon",
    "toml",
    "yaml",
    "yml",
    "xml",
    "json",
    "js",
    "py",
    "py3",
    "csv",
    "tsv",
    "md",
    "rst",
    "ipynb",
    "MLmodel",
    "mlproject",
    "MLproject",
];

/// What Python's `mimetypes` answers for the extensions artifacts commonly have.
const KNOWN_TYPES: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("bmp", "image/bmp"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("ico", "image/vnd.microsoft.icon"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("tar", "application/x-tar"),
    ("bin", "application/octet-stream"),
    ("wasm", "application/wasm"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("wav", "audio/x-wav"),
    ("css", "text/css"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("shtml", "text/html"),
    ("xhtml", "application/xhtml+xml"),
];

/// Types a browser would render as an active document; sent as plain text instead.
const DOCUMENT_TYPES: &[&str] = &["text/html", "application/xhtml+xml"];

/// The `Content-Type` for a file named `name` (its last path segment is what counts).
pub fn content_type(name: &str) -> &'static str {
    let file = name.rsplit('/').next().unwrap_or(name);
    let extension = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => file,
    };
    if TEXT_EXTENSIONS.contains(&extension) {
        return "text/plain";
    }
    let lower = extension.to_ascii_lowercase();
    let guessed = KNOWN_TYPES.iter().find(|(ext, _)| *ext == lower).map_or("application/octet-stream", |(_, t)| t);
    if DOCUMENT_TYPES.contains(&guessed) { "text/plain" } else { guessed }
}

/// `attachment; filename=…` for `name`'s last segment, with an RFC 5987 `filename*` when it is
/// not plain ASCII.
pub fn content_disposition(name: &str) -> HeaderValue {
    let file = name.rsplit('/').next().unwrap_or(name);
    let token = !file.is_empty() && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b));
    let value = if token {
        format!("attachment; filename={file}")
    } else if file.is_ascii() && !file.bytes().any(|b| b.is_ascii_control()) {
        format!("attachment; filename=\"{}\"", file.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        let fallback: String =
            file.chars().filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\').collect();
        let fallback = if fallback.is_empty() { "download".to_owned() } else { fallback };
        let encoded: String = file
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Streams `file` (whole or the requested range) as an attachment named after `name`.
pub async fn attachment(
    artifacts: &Artifacts,
    file: &ArtifactFile,
    name: &str,
    range: Option<&HeaderValue>,
) -> ApiResult<Response> {
    let mut response = stream_file(artifacts, file, range).await?;
    as_attachment(&mut response, name);
    Ok(response)
}

/// Marks `response` as the file `name`, sent as an attachment of MLflow's type for it.
pub fn as_attachment(response: &mut Response, name: &str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Even if a browser were made to render the file, it would run in an opaque origin.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_mlflow_except_for_documents() {
        let cases = [
            ("a.txt", "text/plain"),
            ("dir/b.pkl", "application/octet-stream"),
            ("c.png", "image/png"),
            ("d.PDF", "application/pdf"),
            ("model/MLmodel", "text/plain"),
            ("MLproject", "text/plain"),
            ("mlproject", "text/plain"),
            ("metrics.json", "text/plain"),
            ("page.html", "text/plain"),
            ("page.xhtml", "text/plain"),
            ("noextension", "application/octet-stream"),
            (".hidden", "application/octet-stream"),
        ];
        for (name, expected) in cases {
            assert_eq!(content_type(name), expected, "{name}");
        }
    }

    #[test]
    fn dispositions_name_the_file() {
        assert_eq!(content_disposition("dir/a.txt"), "attachment; filename=a.txt");
        assert_eq!(content_disposition("my file.txt"), "attachment; filename=\"my file.txt\"");
        assert_eq!(content_disposition("é.txt"), "attachment; filename=\".txt\"; filename*=UTF-8''%C3%A9.txt");
    }
}
