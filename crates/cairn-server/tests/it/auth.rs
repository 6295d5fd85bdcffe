//! Access control in-process: sign-in, the permission rules, creators' MANAGE, DENY, search
//! filtering, token scopes, the audit actor and the sign-in limit.

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

const API: &str = "/api/2.0/mlflow";

struct Secured {
    router: Router,
    store: Arc<dyn Store>,
    _dir: TempDir,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: bool,
    body: Value,
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl Secured {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("cairn.db").display());
        let store = cairn_store::open(&cairn_store::StoreConfig::new(uri)).await.unwrap();
        let actor = Actor("cairn".into());
        for (name, admin) in [("admin", true), ("alice", false), ("bob", false)] {
            let user = NewUser {
                username: name.into(),
                password_hash: hash_password(&format!("{name}-password")).unwrap(),
                is_admin: admin,
            };
            store.create_user(&actor, user).await.unwrap();
        }
        let auth = Auth::new(store.clone(), Permission::Read).await.unwrap();
        Secured { router: app(AppState::new(store.clone()).with_auth(auth)), store, _dir: dir }
    }

    /// As `new`, with the application state adjusted by `adjust` (a promotion policy).
    async fn with(adjust: impl FnOnce(AppState) -> AppState) -> Self {
        let s = Self::new().await;
        let auth = Auth::new(s.store.clone(), Permission::Read).await.unwrap();
        Secured { router: app(adjust(AppState::new(s.store.clone()).with_auth(auth))), ..s }
    }

    async fn call(&self, method: Method, path: &str, authorization: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(a) = authorization {
            request = request.header(header::AUTHORIZATION, a);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let www_authenticate = response.headers().contains_key(header::WWW_AUTHENTICATE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, www_authenticate, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// A POST with a body sent exactly as given, for bodies a `Value` cannot spell.
    async fn post_raw(&self, user: &str, path: &str, body: &str) -> Reply {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{API}{path}"))
            .header(header::AUTHORIZATION, basic(user, &format!("{user}-password")))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, www_authenticate: false, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn as_user(&self, user: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(&basic(user, &format!("{user}-password"))), body).await
    }

    async fn post(&self, user: &str, path: &str, body: Value) -> Reply {
        self.as_user(user, Method::POST, &format!("{API}{path}"), Some(body)).await
    }

    async fn get(&self, user: &str, path: &str) -> Reply {
        self.as_user(user, Method::GET, &format!("{API}{path}"), None).await
    }
}

#[tokio::test]
async fn sign_in_is_required_except_on_public_routes() {
    let s = Secured::new().await;
    let r = s.call(Method::GET, &format!("{API}/experiments/search"), None, None).await;
    assert_eq!((r.status, r.www_authenticate), (401, true), "{r:?}");
    assert_eq!(r.body["error_code"], "UNAUTHENTICATED");
    let r = s.call(Method::GET, &format!("{API}/experiments/search"), Some(&basic("alice", "wrong-pass")), None).await;
    assert_eq!((r.status, r.www_authenticate), (401, true));
    let r = s.call(Method::GET, &format!("{API}/experiments/search"), Some(&basic("carol", "whatever1")), None).await;
    assert_eq!(r.status, 401, "an unknown user is refused like a wrong password");
    assert_eq!(s.call(Method::GET, "/health", None, None).await.status, 200);
    assert_eq!(s.get("alice", "/experiments/search").await.status, 200);
}

#[tokio::test]
async fn permissions_follow_grants_creators_and_deny() {
    let s = Secured::new().await;
    let created = s.post("alice", "/experiments/create", json!({"name": "alice-exp"})).await;
    assert_eq!(created.status, 200, "{created:?}");
    let exp = created.body["experiment_id"].as_str().unwrap().to_owned();
    // The creator manages it; bob holds the default, READ.
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await;
    assert_eq!(run.status, 200, "{run:?}");
    let run_id = run.body["run"]["info"]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(s.get("bob", &format!("/runs/get?run_id={run_id}")).await.status, 200);
    let refused =
        s.post("bob", "/runs/log-metric", json!({"run_id": run_id, "key": "m", "value": 1, "timestamp": 1})).await;
    assert_eq!((refused.status, refused.body["error_code"].as_str()), (403, Some("PERMISSION_DENIED")));
    assert_eq!(s.post("bob", "/runs/create", json!({"experiment_id": exp})).await.status, 403);
    // alice manages the experiment, so she may grant bob EDIT on it.
    let grant = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "EDIT"});
    let r = s.as_user("alice", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(grant)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let logged =
        s.post("bob", "/runs/log-metric", json!({"run_id": run_id, "key": "m", "value": 1, "timestamp": 1})).await;
    assert_eq!(logged.status, 200, "{logged:?}");
    assert_eq!(s.post("bob", "/runs/delete", json!({"run_id": run_id})).await.status, 403, "deletes need MANAGE");
    // bob does not manage it, so he may not grant.
    let grant = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "MANAGE"});
    assert_eq!(
        s.as_user("bob", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(grant)).await.status,
        403
    );
    // DENY vetoes, and the search leaves the experiment out.
    let deny = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"});
    assert_eq!(
        s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await.status,
        200
    );
    assert_eq!(s.get("bob", &format!("/runs/get?run_id={run_id}")).await.status, 403);
    let names = |r: Reply| -> Vec<String> {
        r.body["experiments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
    };
    assert!(!names(s.get("bob", "/experiments/search").await).contains(&"alice-exp".to_owned()));
    assert!(names(s.get("alice", "/experiments/search").await).contains(&"alice-exp".to_owned()));
    let runs = s.post("bob", "/runs/search", json!({"experiment_ids": [exp]})).await;
    assert_eq!((runs.status, runs.body.get("runs")), (200, None), "no runs from an unreadable experiment");
    // The audit log names who signed in.
    let events = s.store.audit_events(0, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.actor == "alice" && e.action.contains("experiment")), "{events:?}");
    assert!(events.iter().any(|e| e.actor == "bob"));
    // Reading the audit log is for admins.
    assert_eq!(s.as_user("alice", Method::GET, "/api/cairn/v1/audit/events", None).await.status, 403);
    assert_eq!(s.as_user("admin", Method::GET, "/api/cairn/v1/audit/events", None).await.status, 200);
}

#[tokio::test]
async fn registered_models_belong_to_their_creator() {
    let s = Secured::new().await;
    assert_eq!(s.post("alice", "/registered-models/create", json!({"name": "churn"})).await.status, 200);
    let r = s
        .as_user(
            "bob",
            Method::PATCH,
            &format!("{API}/registered-models/update"),
            Some(json!({"name": "churn", "description": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = s
        .as_user(
            "alice",
            Method::PATCH,
            &format!("{API}/registered-models/update"),
            Some(json!({"name": "churn", "description": "x"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s
        .as_user("bob", Method::DELETE, &format!("{API}/registered-models/delete"), Some(json!({"name": "churn"})))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn tokens_act_within_their_scope_until_revoked() {
    let s = Secured::new().await;
    let mut tokens = Vec::new();
    for scope in [TokenScope::Read, TokenScope::Write] {
        let t = generate_token().unwrap();
        let new = NewToken {
            id: t.id.clone(),
            username: "alice".into(),
            scope,
            secret_digest: t.digest.clone(),
            expires_at: None,
        };
        s.store.create_token(&Actor("admin".into()), new).await.unwrap();
        tokens.push(t);
    }
    let bearer = |t: &cairn_server::auth::secrets::GeneratedToken| format!("Bearer {}", t.token);
    let create = |name: &str| Some(json!({"name": name}));
    let path = format!("{API}/experiments/create");
    assert_eq!(
        s.call(Method::GET, &format!("{API}/experiments/search"), Some(&bearer(&tokens[0])), None).await.status,
        200
    );
    assert_eq!(s.call(Method::POST, &path, Some(&bearer(&tokens[0])), create("r")).await.status, 403, "read scope");
    assert_eq!(s.call(Method::POST, &path, Some(&bearer(&tokens[1])), create("w")).await.status, 200, "write scope");
    let events = s.store.audit_events(0, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.actor == format!("token:{}", tokens[1].id)), "the token is the actor");
    s.store.revoke_token(&Actor("admin".into()), &tokens[1].id).await.unwrap();
    // The snapshot is reloaded within two seconds of a change made elsewhere.
    tokio::time::sleep(cairn_server::auth::RELOAD_AFTER + std::time::Duration::from_millis(100)).await;
    let r = s.call(Method::POST, &path, Some(&bearer(&tokens[1])), create("w2")).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("revoked"));
    let forged = format!("Bearer {}.{}", tokens[0].id, "0".repeat(64));
    assert_eq!(s.call(Method::GET, &format!("{API}/experiments/search"), Some(&forged), None).await.status, 401);
}

/// The command line creates a token and the caller uses it at once, again and again, each
/// time right after the previous token's miss reloaded the server's snapshot: every one is
/// accepted on first use (a floor on how often a miss may reload once refused the second).
#[tokio::test]
async fn a_token_created_elsewhere_works_at_once_even_right_after_another_miss() {
    let s = Secured::new().await;
    let path = format!("{API}/experiments/search");
    for round in 0..5 {
        let t = generate_token().unwrap();
        let new = NewToken {
            id: t.id.clone(),
            username: "alice".into(),
            scope: TokenScope::Read,
            secret_digest: t.digest.clone(),
            expires_at: None,
        };
        s.store.create_token(&Actor("admin".into()), new).await.unwrap();
        let r = s.call(Method::GET, &path, Some(&format!("Bearer {}", t.token)), None).await;
        assert_eq!(r.status, 200, "token {round}: {r:?}");
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_are_limited() {
    let s = Secured::new().await;
    let path = format!("{API}/experiments/search");
    for _ in 0..cairn_server::auth::limiter::MAX_FAILURES {
        assert_eq!(s.call(Method::GET, &path, Some(&basic("alice", "not-her-password")), None).await.status, 401);
    }
    let r = s.get("alice", "/experiments/search").await;
    assert_eq!(r.status, 429, "even the right password waits: {r:?}");
    assert_eq!(s.get("bob", "/experiments/search").await.status, 200, "other users are not locked out");
}

#[tokio::test]
async fn lineage_answers_redact_what_the_caller_may_not_read() {
    let s = Secured::new().await;
    let exp = s.post("alice", "/experiments/create", json!({"name": "secret"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1 = "/api/cairn/v1";
    let r = s
        .as_user("alice", Method::PUT, &format!("{v1}/lineage/nodes/dataset/d@1"), Some(json!({"digest": "aa"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let edge = json!({"source": format!("run:{run}"), "kind": "used", "target": "dataset:d@1"});
    let r = s.as_user("alice", Method::POST, &format!("{v1}/lineage/edges"), Some(edge)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let deny = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"});
    s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
    let path = format!("{v1}/lineage/downstream?node=dataset:d@1");
    let alice = s.as_user("alice", Method::GET, &path, None).await;
    let bob = s.as_user("bob", Method::GET, &path, None).await;
    assert_eq!((alice.status, bob.status), (200, 200), "{bob:?}");
    let ids = |r: &Reply| -> Vec<String> {
        r.body["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
    };
    assert!(ids(&alice).contains(&format!("run:{run}")));
    assert!(!bob.body.to_string().contains(&run), "the run id leaks nowhere: {}", bob.body);
    assert!(ids(&bob).contains(&"redacted:1".to_owned()) && ids(&bob).contains(&"dataset:d@1".to_owned()));
    assert_eq!(bob.body["edges"][0]["source"], "redacted:1", "edges point at the placeholder");
    let node = s.as_user("bob", Method::GET, &format!("{v1}/lineage/nodes/run/{run}"), None).await;
    assert_eq!(node.body["node"]["redacted"], true, "{node:?}");
}

#[tokio::test]
async fn artifact_paths_are_checked_against_the_run_they_name() {
    let s = Secured::new().await;
    let body = json!({"name": "elsewhere", "artifact_location": "mlflow-artifacts:/shared-bucket"});
    let exp = s.post("alice", "/experiments/create", body).await.body["experiment_id"].as_str().unwrap().to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deny = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"});
    s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
    // The first segment is no experiment id here; the run id decides.
    let path = format!("/api/2.0/mlflow-artifacts/artifacts/shared-bucket/{run}/artifacts/model.pkl");
    assert_eq!(s.as_user("bob", Method::GET, &path, None).await.status, 403);
    assert_ne!(s.as_user("alice", Method::GET, &path, None).await.status, 403);
    let forged = format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/model.pkl");
    assert_eq!(s.as_user("bob", Method::GET, &forged, None).await.status, 403, "naming another experiment first");
}

#[tokio::test]
async fn the_resource_checked_is_the_resource_the_handler_acts_on() {
    let s = Secured::new().await;
    let exp = s.post("alice", "/experiments/create", json!({"name": "a"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_exp = s.post("bob", "/experiments/create", json!({"name": "b"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_run = s.post("bob", "/runs/create", json!({"experiment_id": bob_exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tag = |id: &str| json!({"run_id": id, "key": "k", "value": "v"});
    // A body that is a JSON string holding the object, as MLflow's server also accepts.
    let wrapped = Value::String(tag(&run).to_string());
    assert_eq!(s.post("bob", "/runs/set-tag", wrapped).await.status, 403);
    // An empty run_id falls back to run_uuid in the handler, and so here.
    let aliased = json!({"run_id": "", "run_uuid": run, "key": "k", "value": "v"});
    assert_eq!(s.post("bob", "/runs/set-tag", aliased).await.status, 403);
    // A query string on a POST is not where the handler looks.
    let path = format!("{API}/runs/set-tag?run_id={bob_run}");
    assert_eq!(s.as_user("bob", Method::POST, &path, Some(tag(&run))).await.status, 403);
    // A repeated key: the last one is what both read.
    let raw = format!(r#"{{"run_id": "{bob_run}", "run_id": "{run}", "key": "k", "value": "v"}}"#);
    let request = Request::post(format!("{API}/runs/set-tag"))
        .header(header::AUTHORIZATION, basic("bob", "bob-password"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(raw))
        .unwrap();
    assert_eq!(s.router.clone().oneshot(request).await.unwrap().status().as_u16(), 403);
    assert_eq!(s.post("bob", "/runs/set-tag", tag(&bob_run)).await.status, 200);
    let tags = s.get("alice", &format!("/runs/get?run_id={run}")).await.body["run"]["data"]["tags"].clone();
    assert!(!tags.to_string().contains("\"k\""), "nothing reached alice's run: {tags}");
}

#[tokio::test]
async fn every_run_of_a_sampled_history_is_checked() {
    let s = Secured::new().await;
    let mut runs = Vec::new();
    for user in ["alice", "bob"] {
        let exp = s.post(user, "/experiments/create", json!({"name": user})).await.body["experiment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let run = s.post(user, "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deny = json!({"username": if user == "alice" { "bob" } else { "alice" }, "resource_type": "experiment", "resource_id": exp, "permission": "DENY"});
        s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
        runs.push(run);
    }
    let path = format!("/api/cairn/v1/metrics/sampled?run_id={}&run_id={}&key=m", runs[1], runs[0]);
    assert_eq!(s.as_user("bob", Method::GET, &path, None).await.status, 403, "alice's run hides behind bob's");
}

#[tokio::test]
async fn a_model_version_cannot_take_files_its_creator_may_not_read() {
    let s = Secured::new().await;
    let exp = s.post("alice", "/experiments/create", json!({"name": "a"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.post("alice", "/registered-models/create", json!({"name": "secret-model"})).await.status, 200);
    assert_eq!(s.post("bob", "/registered-models/create", json!({"name": "bobs"})).await.status, 200);
    for (kind, id) in [("experiment", exp.as_str()), ("registered_model", "secret-model")] {
        let deny = json!({"username": "bob", "resource_type": kind, "resource_id": id, "permission": "DENY"});
        s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
    }
    let from_run = json!({"name": "bobs", "source": format!("runs:/{run}/model"), "run_id": run});
    assert_eq!(s.post("bob", "/model-versions/create", from_run.clone()).await.status, 403);
    let from_model = json!({"name": "bobs", "source": "models:/secret-model/1"});
    assert_eq!(s.post("bob", "/model-versions/create", from_model).await.status, 403);
    let from_run = json!({"name": "secret-model", "source": format!("runs:/{run}/model"), "run_id": run});
    assert_eq!(s.post("alice", "/model-versions/create", from_run).await.status, 200);
}

/// A chain alice owns: dataset `d@1` used by a run in her experiment `secret`, version 1 of her
/// model `secret-model` made from the run, deployment `prod` serving it and prediction `p1`.
/// Returns the run id.
async fn secret_chain(s: &Secured) -> String {
    let v1 = "/api/cairn/v1";
    let exp = s.post("alice", "/experiments/create", json!({"name": "secret"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let steps = [
        (Method::PUT, format!("{v1}/lineage/nodes/dataset/d@1"), json!({"digest": "aa"})),
        (
            Method::POST,
            format!("{v1}/lineage/edges"),
            json!({"source": format!("run:{run}"), "kind": "used", "target": "dataset:d@1"}),
        ),
        (Method::POST, format!("{API}/registered-models/create"), json!({"name": "secret-model"})),
        (
            Method::POST,
            format!("{API}/model-versions/create"),
            json!({"name": "secret-model", "source": format!("runs:/{run}/model"), "run_id": run}),
        ),
        (Method::POST, format!("{v1}/deployments/prod"), json!({"model_version": "secret-model/1"})),
        (
            Method::POST,
            format!("{v1}/predictions"),
            json!({"predictions": [{"prediction_id": "p1", "deployment": "prod", "input_digest": "ab"}]}),
        ),
    ];
    for (method, path, body) in steps {
        let r = s.as_user("alice", method, &path, Some(body)).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    for (kind, id) in [("experiment", exp.as_str()), ("registered_model", "secret-model")] {
        let deny = json!({"username": "bob", "resource_type": kind, "resource_id": id, "permission": "DENY"});
        let r = s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    run
}

/// The answer's text, JSON or not (a DOT export is text).
async fn text_of(s: &Secured, user: &str, path: &str) -> (u16, String) {
    let request = Request::get(path).header(header::AUTHORIZATION, basic(user, &format!("{user}-password")));
    let response = s.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn diffs_exports_completeness_and_traces_are_redacted_for_readers() {
    let s = Secured::new().await;
    let run = secret_chain(&s).await;
    let v1 = "/api/cairn/v1";
    let paths = [
        format!("{v1}/lineage/diff?left=prediction:p1&right=deployment:prod"),
        format!("{v1}/lineage/export?node=prediction:p1&format=json"),
        format!("{v1}/lineage/export?node=prediction:p1&format=dot"),
        format!("{v1}/lineage/export?node=prediction:p1&format=prov-json"),
        format!("{v1}/lineage/completeness?node=secret-model/1"),
        format!("{v1}/predictions/p1/trace"),
    ];
    for path in &paths {
        let (status, alice) = text_of(&s, "alice", path).await;
        assert_eq!(status, 200, "{path}: {alice}");
        assert!(alice.contains("secret-model") && !alice.contains("redacted"), "{path}: alice sees it all: {alice}");
        let (status, bob) = text_of(&s, "bob", path).await;
        assert_eq!(status, 200, "{path}: {bob}");
        for secret in [run.as_str(), "secret-model", "runs:/"] {
            assert!(!bob.contains(secret), "{path} leaks {secret} to bob: {bob}");
        }
        assert!(bob.contains("redacted"), "{path}: {bob}");
        assert!(bob.contains("d@1") || path.contains("completeness"), "{path}: readable nodes stay: {bob}");
    }
    // A hidden node keeps one placeholder throughout an answer: on both sides of a diff.
    let diff = s.as_user("bob", Method::GET, &paths[0], None).await.body;
    let shared: Vec<&str> = diff["shared"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(shared, ["dataset:d@1", "redacted:1", "redacted:2"], "{diff}");
    assert_eq!(diff["same_data"], true);
    let trace = s.as_user("bob", Method::GET, &paths[5], None).await.body;
    let placeholder = trace["prediction"]["model_version"].as_str().unwrap();
    let hidden = trace["lineage"]["nodes"].as_array().unwrap().iter().find(|n| n["id"] == placeholder);
    assert_eq!(hidden.map(|n| n["kind"].clone()), Some(json!("model-version")), "{trace}");
    let (_, dot) = text_of(&s, "bob", &paths[2]).await;
    assert!(dot.contains(r#""model-version:redacted:"#) && dot.contains(r#""run:redacted:"#), "{dot}");
    // Lineage health and the deployments' history name model versions: each reader sees the
    // ones they may read, the others as placeholders, with the counts and deployments intact.
    for path in [format!("{v1}/lineage/health"), format!("{v1}/deployments")] {
        let alice = s.as_user("alice", Method::GET, &path, None).await;
        assert_eq!(alice.status, 200, "{alice:?}");
        assert!(alice.body.to_string().contains("model-version:secret-model/1"), "{path}: {alice:?}");
        let bob = s.as_user("bob", Method::GET, &path, None).await;
        assert_eq!(bob.status, 200, "{bob:?}");
        assert!(!bob.body.to_string().contains("secret-model"), "{path} leaks the model to bob: {bob:?}");
        assert!(bob.body.to_string().contains("redacted:1"), "{path}: {bob:?}");
    }
    let health = s.as_user("bob", Method::GET, &format!("{v1}/lineage/health"), None).await.body;
    assert_eq!((health["model_versions"].as_u64(), health["predictions"].as_u64()), (Some(1), Some(1)), "{health}");
    let deployments = s.as_user("bob", Method::GET, &format!("{v1}/deployments"), None).await.body;
    assert_eq!(deployments["intervals"][0]["deployment"], "prod", "{deployments}");
    // Reading the audit log and verifying it stay for admins.
    assert_eq!(s.as_user("bob", Method::GET, &format!("{v1}/audit/events"), None).await.status, 403);
    assert_eq!(s.as_user("bob", Method::POST, &format!("{v1}/audit/verify"), Some(json!({}))).await.status, 403);
    assert_eq!(s.as_user("admin", Method::GET, &format!("{v1}/audit/events"), None).await.status, 200);
}

#[tokio::test]
async fn a_policy_verdict_hides_the_values_of_a_source_run_the_reader_may_not_read() {
    let policy = cairn_core::lineage::parse_policy(
        r#"{"rules": [{"name": "prod", "applies_to": {"stages": ["Production"]},
            "require": {"tags": ["validated_by", "owner"], "metrics": [{"key": "auc", "min": 0.8}, {"key": "p99", "max": 5}]}}]}"#,
    )
    .unwrap();
    let s = Secured::with(|state| state.with_policy(policy)).await;
    let exp = s.post("alice", "/experiments/create", json!({"name": "hidden"})).await.body["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.post("alice", "/runs/create", json!({"experiment_id": exp})).await.body["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let batch = json!({"run_id": run, "metrics": [{"key": "auc", "value": 0.9137, "timestamp": 1, "step": 0}],
        "tags": [{"key": "validated_by", "value": "ana-the-reviewer"}]});
    assert_eq!(s.post("alice", "/runs/log-batch", batch).await.status, 200);
    assert_eq!(s.post("alice", "/registered-models/create", json!({"name": "shared-model"})).await.status, 200);
    let version = json!({"name": "shared-model", "source": format!("runs:/{run}/model"), "run_id": run,
        "tags": [{"key": "owner", "value": "team-a"}]});
    assert_eq!(s.post("alice", "/model-versions/create", version).await.status, 200);
    let deny = json!({"username": "bob", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"});
    assert_eq!(
        s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await.status,
        200
    );
    let path = "/api/cairn/v1/models/shared-model/versions/1/policy";
    let checks = |reply: &Reply| -> Vec<(String, bool, String, bool)> {
        reply.body["rules"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let text = |k: &str| c[k].as_str().unwrap().to_owned();
                (text("fact"), c["met"] == true, text("message"), c["redacted"] == true)
            })
            .collect()
    };
    let alice = s.as_user("alice", Method::GET, path, None).await;
    assert_eq!(alice.status, 200, "{alice:?}");
    assert!(alice.body.to_string().contains("0.9137") && alice.body.to_string().contains("ana-the-reviewer"));
    let bob = s.as_user("bob", Method::GET, path, None).await;
    assert_eq!(bob.status, 200, "{bob:?}");
    let text = bob.body.to_string();
    assert!(!text.contains("0.9137") && !text.contains("ana-the-reviewer"), "the run's values leak: {text}");
    // The same verdict: which checks are met does not depend on who asks.
    let met = |c: &[(String, bool, String, bool)]| c.iter().map(|(f, m, ..)| (f.clone(), *m)).collect::<Vec<_>>();
    assert_eq!(met(&checks(&alice)), met(&checks(&bob)));
    assert_eq!(alice.body["rules"][0]["passes"], bob.body["rules"][0]["passes"]);
    let bob = checks(&bob);
    let by_fact = |f: &str| bob.iter().find(|c| c.0 == f).unwrap().clone();
    assert!(by_fact("metric:auc").3 && by_fact("metric:auc").1, "{bob:?}");
    assert!(by_fact("tag:validated_by").3, "{bob:?}");
    // The version's own tag is the model's, and a fact the run lacks names nothing of it.
    assert_eq!(by_fact("tag:owner"), ("tag:owner".into(), true, "tag 'owner' is 'team-a'".into(), false));
    assert_eq!(by_fact("metric:p99"), ("metric:p99".into(), false, "metric 'p99' is not recorded".into(), false));
    // A model the reader may not read gets no verdict at all.
    let deny = json!({"username": "bob", "resource_type": "registered_model", "resource_id": "shared-model", "permission": "DENY"});
    assert_eq!(
        s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await.status,
        200
    );
    assert_eq!(s.as_user("bob", Method::GET, path, None).await.status, 403);
}

#[tokio::test]
async fn a_predictions_token_posts_for_its_own_deployment_only() {
    let s = Secured::new().await;
    secret_chain(&s).await;
    let mut bearers = Vec::new();
    for scope in [TokenScope::Predictions("prod".into()), TokenScope::Read] {
        let t = generate_token().unwrap();
        let new =
            NewToken { id: t.id.clone(), username: "bob".into(), scope, secret_digest: t.digest, expires_at: None };
        s.store.create_token(&Actor("admin".into()), new).await.unwrap();
        bearers.push(format!("Bearer {}", t.token));
    }
    let path = "/api/cairn/v1/predictions";
    let one = |id: &str, deployment: &str| json!({"prediction_id": id, "deployment": deployment, "input_digest": "ab"});
    let secured = &s;
    let post = |bearer: &str, items: Vec<Value>| {
        let body = json!({ "predictions": items });
        let bearer = bearer.to_owned();
        async move { secured.call(Method::POST, path, Some(&bearer), Some(body)).await }
    };
    let serving = &bearers[0];
    assert_eq!(post(serving, vec![one("p2", "prod")]).await.status, 200);
    assert_eq!(post(serving, vec![one("p3", "deployment:prod")]).await.status, 200, "the node form names it too");
    let refused = post(serving, vec![one("p4", "staging")]).await;
    assert_eq!((refused.status, refused.body["error_code"].as_str()), (403, Some("PERMISSION_DENIED")));
    assert_eq!(post(serving, vec![one("p5", "prod"), one("p6", "staging")]).await.status, 403, "one stray item");
    let by_version = json!({"prediction_id": "p7", "model_version": "secret-model/1", "input_digest": "ab"});
    assert_eq!(post(serving, vec![by_version]).await.status, 403, "a version, not the deployment");
    assert_eq!(post(serving, vec![]).await.status, 403);
    // Nothing else: not reading, not other writes.
    let trace = s.call(Method::GET, "/api/cairn/v1/predictions/p2/trace", Some(serving), None).await;
    assert_eq!(trace.status, 403, "{trace:?}");
    let deploy = json!({"model_version": "secret-model/1"});
    assert_eq!(s.call(Method::POST, "/api/cairn/v1/deployments/prod", Some(serving), Some(deploy)).await.status, 403);
    assert_eq!(s.call(Method::GET, &format!("{API}/experiments/search"), Some(serving), None).await.status, 403);
    // A read token posts no predictions.
    assert_eq!(post(&bearers[1], vec![one("p8", "prod")]).await.status, 403);
    let stored = s.as_user("admin", Method::GET, "/api/cairn/v1/predictions/p3/trace", None).await;
    assert_eq!(stored.body["prediction"]["deployment"], "prod", "{stored:?}");
    for id in ["p4", "p5", "p6", "p7", "p8"] {
        let r = s.as_user("admin", Method::GET, &format!("/api/cairn/v1/predictions/{id}/trace"), None).await;
        assert_eq!(r.status, 404, "{id} was not stored");
    }
}

#[tokio::test]
async fn grants_follow_a_renamed_model_at_once() {
    let s = Secured::new().await;
    assert_eq!(s.post("alice", "/registered-models/create", json!({"name": "churn"})).await.status, 200);
    let grant =
        json!({"username": "bob", "resource_type": "registered_model", "resource_id": "churn", "permission": "EDIT"});
    assert_eq!(
        s.as_user("alice", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(grant)).await.status,
        200
    );
    let rename = s.post("alice", "/registered-models/rename", json!({"name": "churn", "new_name": "churn-2"})).await;
    assert_eq!(rename.status, 200, "{rename:?}");
    let describe = |name: &str| Some(json!({"name": name, "description": "by bob"}));
    let update = format!("{API}/registered-models/update");
    // No wait: this server reloaded its grants with the rename.
    assert_eq!(s.as_user("bob", Method::PATCH, &update, describe("churn-2")).await.status, 200, "bob's EDIT moved");
    let r = s.as_user("alice", Method::DELETE, &format!("{API}/registered-models/delete"), describe("churn-2")).await;
    assert_eq!(r.status, 200, "alice's MANAGE moved: {r:?}");
    // A new model under the old name owes nothing to the grants of the renamed one.
    assert_eq!(s.post("admin", "/registered-models/create", json!({"name": "churn"})).await.status, 200);
    assert_eq!(s.as_user("bob", Method::PATCH, &update, describe("churn")).await.status, 403);
    assert_eq!(s.as_user("alice", Method::PATCH, &update, describe("churn")).await.status, 403);
    let path = "/api/3.0/mlflow/users/permissions/get?username=bob&resource_type=registered_model&resource_id=churn-2";
    let left = s.as_user("admin", Method::GET, path, None).await;
    assert_eq!(left.body["permission"], "READ", "deleting the model dropped bob's EDIT: {left:?}");
}

/// Narrowing to readable experiments works for a GET, whose experiments are in the query: run
/// counts of an experiment the caller may not read are neither counted nor named.
#[tokio::test]
async fn run_counts_leave_out_experiments_the_caller_may_not_read() {
    let s = Secured::new().await;
    let mut ids = Vec::new();
    for name in ["open-exp", "closed-exp"] {
        let created = s.post("alice", "/experiments/create", json!({"name": name})).await;
        let id = created.body["experiment_id"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            assert_eq!(s.post("alice", "/runs/create", json!({"experiment_id": id})).await.status, 200);
        }
        ids.push(id);
    }
    let deny = json!({"username": "bob", "resource_type": "experiment", "resource_id": ids[1], "permission": "DENY"});
    let r = s.as_user("admin", Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(deny)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let path = format!("/api/cairn/v1/experiments/run-counts?experiment_ids={}&experiment_ids={}", ids[0], ids[1]);
    let counted = |r: Reply| -> Vec<(String, i64)> {
        r.body["counts"]
            .as_array()
            .map(|counts| {
                counts
                    .iter()
                    .map(|c| (c["experiment_id"].as_str().unwrap().to_owned(), c["runs"].as_i64().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let bob = s.as_user("bob", Method::GET, &path, None).await;
    assert_eq!(bob.status, 200, "{bob:?}");
    assert_eq!(counted(bob), vec![(ids[0].clone(), 2)]);
    let alice = s.as_user("alice", Method::GET, &path, None).await;
    assert_eq!(counted(alice), vec![(ids[0].clone(), 2), (ids[1].clone(), 2)]);
    let only_closed = format!("/api/cairn/v1/experiments/run-counts?experiment_ids={}", ids[1]);
    assert_eq!(counted(s.as_user("bob", Method::GET, &only_closed, None).await), vec![]);
}

/// A log-batch's run is found by the handler's own typed reader when it takes the body, and the
/// general way otherwise; either way the run checked is the run written, even when a body names
/// two (the last one counts, as for the handler).
#[tokio::test]
async fn a_log_batch_is_checked_against_the_run_it_writes() {
    let s = Secured::new().await;
    let run_in = |user: &'static str, name: &'static str| {
        let s = &s;
        async move {
            let exp = s.post(user, "/experiments/create", json!({"name": name})).await;
            let exp = exp.body["experiment_id"].as_str().unwrap().to_owned();
            let run = s.post(user, "/runs/create", json!({"experiment_id": exp})).await;
            run.body["run"]["info"]["run_id"].as_str().unwrap().to_owned()
        }
    };
    let (alices, bobs) = (run_in("alice", "alice-batch").await, run_in("bob", "bob-batch").await);
    let metric = |key: &str| json!([{"key": key, "value": 1.0, "timestamp": 1, "step": 0}]);
    let metrics_of = |run_id: String| {
        let s = &s;
        async move {
            let run = s.get("admin", &format!("/runs/get?run_id={run_id}")).await;
            let keys = run.body["run"]["data"]["metrics"].as_array().cloned().unwrap_or_default();
            keys.iter().map(|m| m["key"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };

    // The typed reader takes a plain batch.
    let refused = s.post("bob", "/runs/log-batch", json!({"run_id": alices, "metrics": metric("typed")})).await;
    assert_eq!((refused.status, refused.body["error_code"].as_str()), (403, Some("PERMISSION_DENIED")), "{refused:?}");
    // A JSON string holding the object is read the general way.
    let wrapped = json!({"run_id": alices, "metrics": metric("wrapped")}).to_string();
    let refused = s.post_raw("bob", "/runs/log-batch", &serde_json::to_string(&wrapped).unwrap()).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    // Two run ids: the typed reader refuses duplicates, and the last one is the one written.
    let twice = |first: &str, last: &str, key: &str| {
        format!(r#"{{"run_id": "{first}", "metrics": {}, "run_id": "{last}"}}"#, metric(key))
    };
    assert_eq!(s.post_raw("bob", "/runs/log-batch", &twice(&bobs, &alices, "smuggled")).await.status, 403);
    let own = s.post_raw("bob", "/runs/log-batch", &twice(&alices, &bobs, "own")).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(metrics_of(bobs.clone()).await, vec!["own".to_owned()]);
    assert!(metrics_of(alices.clone()).await.is_empty(), "nothing refused reached alice's run");

    let logged = s.post("alice", "/runs/log-batch", json!({"run_id": alices, "metrics": metric("typed")})).await;
    assert_eq!(logged.status, 200, "{logged:?}");
    assert_eq!(metrics_of(alices).await, vec!["typed".to_owned()]);
    // An unknown run is the handler's 404, not a refusal.
    let unknown = s.post("bob", "/runs/log-batch", json!({"run_id": "0".repeat(32), "metrics": metric("x")})).await;
    assert_eq!((unknown.status, unknown.body["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")));
}
