//! Every route the application registers has an entry in the access-rule table
//! (`cairn_server::auth::routes`). The routes are found by reading the sources for `.route("`
//! calls (axum cannot list its routes), and each is then requested, with credentials of nobody,
//! on an application with access control on: a route with an entry answers 401 (or, if public,
//! its own answer), a route without one answers "No access rule covers ...".

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use cairn_core::auth::Permission;
use cairn_server::auth::Auth;
use cairn_server::{AppState, app};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Prefixes a module's routes may be nested under.
const PREFIXES: [&str; 7] = [
    "",
    "/api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/ajax-api/3.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/ajax-api/2.0/mlflow-artifacts",
];

/// `(file, path, method)` of every `.route(...)` in the server's sources.
fn registered() -> Vec<(String, String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root];
    let mut out = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).expect("dir").map(|e| e.expect("entry").path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source");
        let source = source.split("#[cfg(test)]").next().unwrap_or_default();
        let mut rest = source;
        while let Some(at) = rest.find(".route(\"") {
            rest = &rest[at + 8..];
            let end = rest.find('"').expect("closing quote");
            let route = rest[..end].to_owned();
            let call_end = [rest.find(".route("), rest.find("\n}")].into_iter().flatten().min().unwrap_or(rest.len());
            let call = &rest[end..call_end];
            // `files` in the artifacts module is a method router built on the line above.
            let call = if call.starts_with("\", files)") { "get( put( delete(" } else { call };
            for method in METHODS {
                if call.contains(&format!("{method}(")) {
                    let file = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&path).display().to_string();
                    out.push((file, route.clone(), method.to_uppercase()));
                }
            }
        }
    }
    out
}

fn concrete(route: &str) -> String {
    route
        .split('/')
        .map(|segment| match segment {
            s if s.starts_with("{*") => "1/run/artifacts/x".to_owned(),
            s if s.starts_with('{') => "1".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_has_an_access_rule() {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
    let store = cairn_store::open(&cairn_store::StoreConfig::new(uri)).await.unwrap();
    let auth = Auth::new(store.clone(), Permission::Read).await.unwrap();
    let router = app(AppState::new(store).with_auth(auth));
    let routes = registered();
    assert!(routes.len() >= 100, "the source scan found too few routes: {}", routes.len());
    let mut missing = Vec::new();
    let mut unreachable = Vec::new();
    for (file, route, method) in &routes {
        let mut reached = false;
        for prefix in PREFIXES {
            let uri = format!("{prefix}{}", concrete(route));
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let message = body["message"].as_str().unwrap_or_default();
            if message.starts_with("No access rule covers") {
                missing.push(format!("{method} {prefix}{route} (registered in {file})"));
                reached = true;
                break;
            }
            if status != 404 && status != 405 && body["error_code"] != "ENDPOINT_NOT_FOUND" {
                reached = true;
                break;
            }
        }
        if !reached {
            unreachable.push(format!("{method} {route} (in {file})"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an entry in crates/cairn-server/src/auth/routes.rs (add one line each to ROUTES):\n  {}",
        missing.join("\n  ")
    );
    assert!(
        unreachable.is_empty(),
        "routes found in the sources that no known prefix reaches (add the prefix to PREFIXES in this test):\n  {}",
        unreachable.join("\n  ")
    );
}
