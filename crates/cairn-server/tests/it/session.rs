//! `GET /api/cairn/v1/session`, the web UI's sign-in and permission question: answered without
//! credentials, refused with wrong ones, permissions as the caller's requests will be allowed
//! (grants, creators' MANAGE, admins, token scopes), and no Basic challenge for the UI's
//! script requests.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

use cairn_core::auth::{NewToken, NewUser, Permission, TokenScope};
use cairn_core::model::Actor;
use cairn_core::store::Store;
use cairn_server::auth::Auth;
use cairn_server::auth::secrets::{generate_token, hash_password};
use cairn_server::{AppState, app};

const SESSION: &str = "/api/cairn/v1/session";

struct Server {
    router: Router,
    store: Arc<dyn Store>,
    _dir: TempDir,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    challenge: bool,
    body: Value,
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn password(user: &str) -> String {
    format!("{user}-password")
}

impl Server {
    async fn new(auth: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&cairn_store::StoreConfig::new(uri)).await.unwrap();
        let mut state = AppState::new(store.clone());
        if auth {
            for (name, admin) in [("admin", true), ("alice", false), ("bob", false)] {
                let user = NewUser {
                    username: name.into(),
                    password_hash: hash_password(&password(name)).unwrap(),
                    is_admin: admin,
                };
                store.create_user(&Actor("cairn".into()), user).await.unwrap();
            }
            state = state.with_auth(Auth::new(store.clone(), Permission::Read).await.unwrap());
        }
        Server { router: app(state), store, _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers().contains_key(header::WWW_AUTHENTICATE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, challenge, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn session_of(&self, user: &str, query: &str) -> Reply {
        let credentials = basic(user, &password(user));
        self.call(Method::GET, &format!("{SESSION}{query}"), &[("authorization", &credentials)], None).await
    }

    async fn create_experiment(&self, user: &str, name: &str) -> String {
        let credentials = basic(user, &password(user));
        let r = self
            .call(
                Method::POST,
                "/api/2.0/mlflow/experiments/create",
                &[("authorization", &credentials)],
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["experiment_id"].as_str().unwrap().to_owned()
    }
}

fn levels(body: &Value) -> Vec<(String, String)> {
    body["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["experiment_id"].as_str().unwrap().to_owned(), e["permission"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn without_credentials_the_session_says_who_is_needed() {
    let s = Server::new(true).await;
    let r = s.call(Method::GET, &format!("{SESSION}?experiment_id=0"), &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["auth"], "basic");
    assert_eq!(r.body["user"], Value::Null);
    assert_eq!(r.body["may_write"], false);
    assert_eq!(levels(&r.body), pairs(&[("0", "NO_PERMISSIONS")]));
}

#[tokio::test]
async fn permissions_are_the_callers_own() {
    let s = Server::new(true).await;
    let mine = s.create_experiment("alice", "alice-exp").await;
    let query = format!("?experiment_id={mine}&experiment_id=0&registered_model=m1");
    let alice = s.session_of("alice", &query).await;
    assert_eq!(alice.status, 200, "{alice:?}");
    assert_eq!(alice.body["user"], json!({"username": "alice", "is_admin": false, "token": null}));
    assert_eq!(alice.body["may_write"], true);
    // The creator manages hers; the default experiment has the server's default, READ.
    assert_eq!(levels(&alice.body), pairs(&[(&mine, "MANAGE"), ("0", "READ")]));
    assert_eq!(alice.body["registered_models"], json!([{"name": "m1", "permission": "READ"}]));
    let bob = s.session_of("bob", &query).await;
    assert_eq!(levels(&bob.body), pairs(&[(&mine, "READ"), ("0", "READ")]));
    let admin = s.session_of("admin", &query).await;
    assert_eq!(admin.body["user"]["is_admin"], true);
    assert_eq!(levels(&admin.body), pairs(&[(&mine, "MANAGE"), ("0", "MANAGE")]));
    // A DENY grant, made through the API (which reloads the snapshot), is reported as such.
    let grant = json!({"username": "bob", "resource_type": "experiment", "resource_id": mine, "permission": "DENY"});
    let credentials = basic("alice", &password("alice"));
    let r = s
        .call(Method::POST, "/api/3.0/mlflow/users/permissions/grant", &[("authorization", &credentials)], Some(grant))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let bob = s.session_of("bob", &query).await;
    assert_eq!(levels(&bob.body), pairs(&[(&mine, "DENY"), ("0", "READ")]));
}

#[tokio::test]
async fn a_read_token_is_reported_as_reading_only() {
    let s = Server::new(true).await;
    let mine = s.create_experiment("alice", "alice-exp").await;
    let mut bearers = Vec::new();
    for scope in [TokenScope::Read, TokenScope::Write, TokenScope::Predictions("web".into())] {
        let t = generate_token().unwrap();
        let new = NewToken {
            id: t.id.clone(),
            username: "alice".into(),
            scope,
            secret_digest: t.digest.clone(),
            expires_at: None,
        };
        s.store.create_token(&Actor("admin".into()), new).await.unwrap();
        bearers.push((t.id.clone(), format!("Bearer {}", t.token)));
    }
    let query = format!("{SESSION}?experiment_id={mine}");
    let read = s.call(Method::GET, &query, &[("authorization", &bearers[0].1)], None).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["user"]["token"], json!({"id": bearers[0].0, "scope": "read"}));
    assert_eq!(read.body["may_write"], false);
    assert_eq!(levels(&read.body), pairs(&[(&mine, "READ")]));
    let write = s.call(Method::GET, &query, &[("authorization", &bearers[1].1)], None).await;
    assert_eq!((write.body["may_write"].clone(), levels(&write.body)), (json!(true), pairs(&[(&mine, "MANAGE")])));
    let predictions = s.call(Method::GET, &query, &[("authorization", &bearers[2].1)], None).await;
    assert_eq!(levels(&predictions.body), pairs(&[(&mine, "NO_PERMISSIONS")]));
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_the_ui_gets_no_challenge() {
    let s = Server::new(true).await;
    let wrong = basic("alice", "not-her-password");
    let r = s.call(Method::GET, SESSION, &[("authorization", &wrong)], None).await;
    assert_eq!((r.status, r.challenge), (401, true), "{r:?}");
    assert_eq!(r.body["error_code"], "UNAUTHENTICATED");
    let from_ui = [("authorization", wrong.as_str()), ("x-requested-with", "XMLHttpRequest")];
    let r = s.call(Method::GET, SESSION, &from_ui, None).await;
    assert_eq!((r.status, r.challenge), (401, false), "{r:?}");
    // The authorisation layer's own 401 (no credentials on a route that needs them) too.
    let r = s
        .call(Method::GET, "/api/2.0/mlflow/experiments/search", &[("x-requested-with", "XMLHttpRequest")], None)
        .await;
    assert_eq!((r.status, r.challenge), (401, false), "{r:?}");
    let r = s.call(Method::GET, "/api/2.0/mlflow/experiments/search", &[], None).await;
    assert_eq!((r.status, r.challenge), (401, true), "{r:?}");
}

#[tokio::test]
async fn failed_sign_ins_through_the_session_are_rate_limited() {
    let s = Server::new(true).await;
    let wrong = basic("bob", "guess-guess");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(s.call(Method::GET, SESSION, &[("authorization", &wrong)], None).await.status);
    }
    assert!(statuses.contains(&429), "no failed sign-in was limited: {statuses:?}");
    // Once limited, even the right password waits.
    assert_eq!(s.session_of("bob", "").await.status, 429);
}

#[tokio::test]
async fn without_access_control_everyone_manages_everything() {
    let s = Server::new(false).await;
    let r = s.call(Method::GET, &format!("{SESSION}?experiment_id=0&registered_model=m"), &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["auth"], "none");
    assert_eq!(r.body["may_write"], true);
    assert_eq!(levels(&r.body), pairs(&[("0", "MANAGE")]));
    assert_eq!(r.body["registered_models"], json!([{"name": "m", "permission": "MANAGE"}]));
    let many: String = (0..101).map(|i| format!("experiment_id={i}&")).collect();
    let r = s.call(Method::GET, &format!("{SESSION}?{many}"), &[], None).await;
    assert_eq!((r.status, r.body["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{r:?}");
}
