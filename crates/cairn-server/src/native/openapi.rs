//! `GET /api/cairn/v1/openapi.json`: the OpenAPI 3.1 document of every native route.
//!
//! The document is a committed file (`crates/cairn-server/openapi.json`) compiled into the
//! binary, so what a client downloads is what was reviewed. Two tests keep it honest: every
//! operation it lists must reach a route of [`crate::app`], and every route registered under
//! `native/` must be listed.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// The document, as committed.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::Method;
    use serde_json::Value;

    use super::*;
    use crate::native::lineage::testing::TestApp;

    const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

    fn document() -> Value {
        serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
    }

    /// `(path, method)` of every operation in the document.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((path.clone(), method.to_owned()));
                }
            }
        }
        out
    }

    /// A concrete path for a templated one: every `{param}` becomes a plausible value (keys
    /// with a slash, to exercise catch-all segments).
    fn concrete(path: &str) -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
            let name = &rest[start + 1..end - 1];
            out.push_str(match name {
                "kind" => "dataset",
                "key" => "sales@v1/part",
                _ => "x",
            });
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_operation_is_described() {
        let doc = document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        for (path, method) in documented() {
            let op = &doc["paths"][&path][&method];
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(op["operationId"].is_string(), "{method} {path} has no operationId");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
            // Every `{param}` in the path is declared, at the path or the operation.
            let declared: Vec<&str> = [&doc["paths"][&path]["parameters"], &op["parameters"]]
                .iter()
                .filter_map(|p| p.as_array())
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_start_matches('{').trim_end_matches('}');
                assert!(declared.contains(&name), "{method} {path}: path parameter '{name}' undeclared");
            }
        }
        // Every `$ref` resolves.
        fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }

    /// The document cannot list a route the application does not have.
    #[tokio::test]
    async fn every_documented_operation_reaches_a_route() {
        let app = TestApp::new().await;
        for (path, method) in documented() {
            let uri = concrete(&path);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app.send(method.clone(), &uri, "{}").await;
            assert_ne!(reply.status.as_u16(), 405, "{method} {uri}: {:?}", reply.body);
            assert_ne!(reply.body["error_code"], "ENDPOINT_NOT_FOUND", "{method} {uri}: no such route");
        }
    }

    /// `(path, method)` of every `.route(...)` in the native modules' sources, with axum's
    /// catch-all `{*key}` written as OpenAPI's `{key}`.
    fn registered() -> BTreeSet<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/native");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("src/native") {
            let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
            // Only the code before the tests: test modules do not register routes.
            let source = source.split("#[cfg(test)]").next().unwrap_or_default();
            let mut rest = source;
            while let Some(at) = rest.find(".route(\"") {
                rest = &rest[at + 8..];
                let end = rest.find('"').expect("closing quote");
                let path = rest[..end].replace("{*", "{");
                // The handlers of this route: up to the next route or the end of the function.
                let call_end =
                    [rest.find(".route("), rest.find("\n}")].into_iter().flatten().min().unwrap_or(rest.len());
                let call = &rest[end..call_end];
                for method in METHODS {
                    if call.contains(&format!("{method}(")) {
                        out.insert((path.clone(), method.to_owned()));
                    }
                }
            }
        }
        out
    }

    /// Every native route is documented, with each of its methods.
    #[test]
    fn every_native_route_is_documented() {
        let registered = registered();
        assert!(registered.len() >= 20, "the source scan found too few routes: {registered:?}");
        assert!(registered.contains(&("/api/cairn/v1/lineage/nodes/{kind}/{key}".into(), "put".into())));
        let documented = documented();
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(missing.is_empty(), "routes missing from openapi.json: {missing:?}");
    }

    #[tokio::test]
    async fn the_document_is_served() {
        let app = TestApp::new().await;
        let reply = app.get("/api/cairn/v1/openapi.json").await;
        assert_eq!(reply.status.as_u16(), 200);
        assert!(reply.content_type.starts_with("application/json"));
        assert_eq!(reply.body, document());
    }
}
