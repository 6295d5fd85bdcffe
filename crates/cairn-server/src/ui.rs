//! The web UI: the embedded files of `cairn-web`, served at `/`.
//!
//! Any `GET`/`HEAD` that no API route matched lands here. A path naming an embedded file gets
//! that file; any other path that is not reserved for the API gets `index.html`, so the app's
//! own addresses survive a reload. Reserved prefixes (`/api/`, `/ajax-api/`, `/health`, ...)
//! keep MLflow's JSON `ENDPOINT_NOT_FOUND`, and a missing `/assets/...` file is a plain 404
//! rather than an HTML page a script tag would choke on.
//!
//! Content-hashed files are cached for a year; `index.html` is revalidated on every load, so a
//! new build reaches browsers at once. The body is the precompressed variant the client
//! accepts (brotli, then gzip). Every UI response carries a Content-Security-Policy that
//! allows only this origin's scripts and no inline ones, and refuses framing.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cairn_web::{Asset, Encoding};

use crate::error::ApiError;

/// Paths under which an unknown route is an API error, never the app's page.
const RESERVED: [&str; 8] =
    ["/api", "/ajax-api", "/health", "/ready", "/version", "/graphql", "/get-artifact", "/model-versions"];

/// Only this origin's scripts, styles, images and fetches; images may also be `blob:` (artifact
/// previews are fetched, then shown from a blob URL) and `data:` (uPlot's and the browser's own).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The fallback of [`crate::app`]: the UI for `GET`/`HEAD`, MLflow's JSON 404 otherwise; a path
/// with repeated slashes is redirected to its merged spelling first.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path.contains("//") {
        return merge_slashes(&uri);
    }
    if !(method == Method::GET || method == Method::HEAD) || is_reserved(path) {
        return ApiError::endpoint_not_found(path).into_response();
    }
    let relative = path.trim_start_matches('/');
    let asset = match cairn_web::get(relative) {
        Some(asset) => asset,
        None if relative.starts_with("assets/") || looks_like_file(relative) => {
            return with_security_headers((StatusCode::NOT_FOUND, "Not found").into_response());
        }
        None => cairn_web::index(),
    };
    serve(asset, &method, &headers)
}

/// `//model-versions/get-artifact` names the route `/model-versions/get-artifact`, as MLflow's
/// server (werkzeug merges slashes) and clients that join URLs carelessly expect: a permanent
/// redirect, which keeps the method and body, to the path with each run of slashes merged. The
/// target is always a path on this server (it starts with one slash), never another host.
fn merge_slashes(uri: &Uri) -> Response {
    let mut merged = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    if let Some(query) = uri.query() {
        merged.push('?');
        merged.push_str(query);
    }
    match HeaderValue::try_from(merged) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => ApiError::endpoint_not_found(uri.path()).into_response(),
    }
}

fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|prefix| path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

/// `favicon.ico`, `robots.txt`: a request for a file the UI does not have is not an app route.
fn looks_like_file(relative: &str) -> bool {
    relative.rsplit('/').next().is_some_and(|name| name.contains('.'))
}

fn serve(asset: &'static Asset, method: &Method, headers: &HeaderMap) -> Response {
    let accepted = accept_encoding(headers);
    let (encoding, bytes) = [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .filter(|e| accepted.contains(e))
        .find_map(|e| asset.variant(e).map(|b| (e, b)))
        .unwrap_or((Encoding::Identity, asset.identity));
    let mut response =
        if *method == Method::HEAD { Response::new(Body::empty()) } else { Response::new(Body::from(bytes)) };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.hashed { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    match encoding {
        Encoding::Brotli => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br")),
        Encoding::Gzip => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        Encoding::Identity => None,
    };
    with_security_headers(response)
}

fn with_security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// The codings the client accepts with a non-zero quality (`br;q=0` refuses brotli).
fn accept_encoding(headers: &HeaderMap) -> Vec<Encoding> {
    let mut out = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if refused {
                continue;
            }
            match name.as_str() {
                "br" => out.push(Encoding::Brotli),
                "gzip" | "x-gzip" => out.push(Encoding::Gzip),
                "*" => out.extend([Encoding::Brotli, Encoding::Gzip]),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn accept_encoding_honours_quality_zero_and_wildcards() {
        assert_eq!(accept_encoding(&headers("gzip, deflate, br")), vec![Encoding::Gzip, Encoding::Brotli]);
        assert_eq!(accept_encoding(&headers("br;q=0, gzip;q=0.5")), vec![Encoding::Gzip]);
        assert_eq!(accept_encoding(&headers("identity")), vec![]);
        assert_eq!(accept_encoding(&headers("*")), vec![Encoding::Brotli, Encoding::Gzip]);
        assert_eq!(accept_encoding(&HeaderMap::new()), vec![]);
    }

    #[test]
    fn reserved_prefixes_match_whole_segments() {
        assert!(is_reserved("/api/2.0/mlflow/nope"));
        assert!(is_reserved("/health"));
        assert!(is_reserved("/ajax-api/2.0/x"));
        assert!(is_reserved("/model-versions/get-artifact"));
        assert!(!is_reserved("/apis"));
        assert!(!is_reserved("/healthy"));
        assert!(!is_reserved("/"));
        assert!(!is_reserved("/experiments/1"));
    }
}
