//! The web UI as `app()` serves it: app routes fall back to index.html, reserved API prefixes
//! keep their JSON 404s, hashed files are cached forever, encodings are negotiated, and every
//! UI response carries the security headers.

use axum::body::Body;
use axum::http::{Request, Response, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::TestApp;

async fn fetch(app: &TestApp, method: &str, path: &str, accept_encoding: Option<&str>) -> (Response<()>, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(accept) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    let response = app.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, ()), bytes)
}

fn header(response: &Response<()>, name: header::HeaderName) -> &str {
    response.headers().get(&name).map_or("", |v| v.to_str().unwrap())
}

/// The path of the script index.html loads.
fn script_path(index: &str) -> String {
    let start = index.find("src=\"/assets/").expect("index.html loads a script") + 5;
    let end = start + index[start..].find('"').unwrap();
    index[start..end].to_owned()
}

#[tokio::test]
async fn app_routes_get_index_html_revalidated_with_security_headers() {
    let app = TestApp::new().await;
    for path in ["/", "/experiments/1", "/some/deep/app/route"] {
        let (response, body) = fetch(&app, "GET", path, None).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, header::CONTENT_TYPE), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&response, header::CACHE_CONTROL), "no-cache", "{path}");
        assert_eq!(header(&response, header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let csp = header(&response, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(String::from_utf8(body).unwrap().contains("<div id=\"app\">"), "{path}");
    }
}

#[tokio::test]
async fn reserved_prefixes_keep_json_errors() {
    let app = TestApp::new().await;
    for path in [
        "/api/2.0/mlflow/nothing",
        "/ajax-api/2.0/mlflow/nothing",
        "/api/cairn/v1/nothing",
        "/graphql/nothing",
        "/get-artifact/nothing",
        "/model-versions/nothing",
    ] {
        app.get(path).await.error(404, "ENDPOINT_NOT_FOUND");
    }
    // Other methods on app routes are not the UI's business either.
    app.post("/experiments/1", serde_json::json!({})).await.error(404, "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_compressed_as_the_client_accepts() {
    let app = TestApp::new().await;
    let (_, index) = fetch(&app, "GET", "/", None).await;
    let script = script_path(&String::from_utf8(index).unwrap());

    let (plain, identity) = fetch(&app, "GET", &script, None).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, header::CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(header(&plain, header::CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert_eq!(header(&plain, header::CONTENT_ENCODING), "");
    assert_eq!(header(&plain, header::VARY), "Accept-Encoding");

    let (br, br_body) = fetch(&app, "GET", &script, Some("gzip, deflate, br")).await;
    assert_eq!(header(&br, header::CONTENT_ENCODING), "br");
    assert!(br_body.len() < identity.len());
    let (gz, gz_body) = fetch(&app, "GET", &script, Some("br;q=0, gzip")).await;
    assert_eq!(header(&gz, header::CONTENT_ENCODING), "gzip");
    assert_eq!(&gz_body[..2], &[0x1f, 0x8b]);
    assert_eq!(header(&gz, header::CONTENT_LENGTH), gz_body.len().to_string());

    let (head, head_body) = fetch(&app, "HEAD", &script, Some("gzip")).await;
    assert_eq!(head.status(), 200);
    assert!(head_body.is_empty());
    assert_eq!(header(&head, header::CONTENT_LENGTH), gz_body.len().to_string());
}

#[tokio::test]
async fn missing_files_are_plain_404s_not_the_app_page() {
    let app = TestApp::new().await;
    for path in ["/assets/main-00000000.js", "/favicon.ico", "/robots.txt"] {
        let (response, body) = fetch(&app, "GET", path, None).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(!String::from_utf8(body).unwrap().contains("<div id=\"app\">"), "{path}");
        assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    }
}

#[tokio::test]
async fn repeated_slashes_redirect_to_the_merged_path_on_this_server() {
    let app = TestApp::new().await;
    for (method, path, location) in [
        ("GET", "//model-versions/get-artifact?name=m&version=1", "/model-versions/get-artifact?name=m&version=1"),
        ("POST", "/api/2.0//mlflow///runs/create", "/api/2.0/mlflow/runs/create"),
        ("GET", "//evil.example/x", "/evil.example/x"),
    ] {
        let (response, _) = fetch(&app, method, path, None).await;
        assert_eq!(response.status(), 308, "{method} {path}");
        assert_eq!(header(&response, header::LOCATION), location, "{method} {path}");
    }
}
