//! Cairn's HTTP layer: MLflow's tracking REST API and Cairn's native routes over axum.
//!
//! [`app`] builds the whole [`Router`] from an [`AppState`], so tests drive it in-process;
//! [`serve`] binds a socket, serves until SIGINT/SIGTERM and closes the store. Handlers are thin:
//! parse the wire format into domain types ([`extract`]), call the store, render the result
//! ([`wire`]). Every failure is an [`ApiError`] rendered as MLflow renders errors. This crate is
//! the only one that knows HTTP status codes.

pub mod artifacts;
pub mod auth;
pub mod config;
pub mod connections;
mod early_errors;
pub mod error;
pub mod extract;
pub mod gc;
pub mod governance;
mod graphql;
pub mod guard;
pub mod idempotency;
pub mod local_folder;
mod mlflow;
mod native;
pub mod openlineage_out;
pub mod readiness;
mod serve;
mod sized_json;
mod ui;
mod unread_body;
pub mod wire;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use cairn_artifacts::BlobStore;
use cairn_core::store::Store;

pub use artifacts::Artifacts;
pub use config::{LogFormat, ServerConfig};
pub use error::{ApiError, ErrorCode};
pub use serve::{serve, serve_on, serve_with_limits, shutdown_signal};

/// Largest request body accepted. MLflow's own batch limits keep real requests far below it
/// (100 params of 6,000 characters plus 100 tags of 8,000 is under 2 MB even fully escaped).
pub const BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// What every handler shares. Cheap to clone: one reference count.
#[derive(Clone)]
pub struct AppState {
    /// The metadata store.
    pub store: Arc<dyn Store>,
    /// Artifact storage; `None` disables the proxied artifact routes (they answer with an error).
    pub artifacts: Option<Artifacts>,
    /// The promotion policy checked when aliases are set and stages change; `None` allows all.
    pub policy: Option<Arc<cairn_core::lineage::Policy>>,
    /// Which `Host` names and foreign origins browsers' requests may use.
    pub guard: Arc<guard::WebGuard>,
    /// Whether this server wants new requests (`/ready`); shared with the shutdown sequence.
    pub readiness: Arc<readiness::Readiness>,
    /// Access control; `None` (`--auth none`) lets every request do everything.
    pub auth: Option<Arc<auth::Auth>>,
    /// The default artifact root when it is a local folder, whose `file://` locations the
    /// artifact routes read (see `local_folder`); `None` reads no folder.
    pub local_folder: Option<Arc<local_folder::LocalFolder>>,
}

impl AppState {
    /// State over `store`, without artifact serving.
    pub fn new(store: Arc<dyn Store>) -> Self {
        AppState {
            store,
            artifacts: None,
            policy: None,
            guard: Arc::new(guard::WebGuard::loopback()),
            readiness: Arc::new(readiness::Readiness::default()),
            auth: None,
            local_folder: None,
        }
    }

    /// State over `store` serving artifacts from `blobs`, indexed by the store's manifest.
    pub fn with_artifacts(store: Arc<dyn Store>, blobs: BlobStore) -> anyhow::Result<Self> {
        let manifest = store
            .clone()
            .artifact_manifest()
            .ok_or_else(|| anyhow::anyhow!("this metadata store cannot keep an artifact manifest"))?;
        Ok(AppState { artifacts: Some(Artifacts { blobs, manifest }), ..AppState::new(store) })
    }

    /// The same state, checking promotions against `policy`.
    pub fn with_policy(mut self, policy: cairn_core::lineage::Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// The same state, guarding browser requests with `guard`.
    pub fn with_guard(mut self, guard: guard::WebGuard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    /// The same state, with access control on.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Reloads the access-control snapshot after a change that moved grants as a side effect
    /// (a registered model renamed or deleted), so this server applies the new grants at once
    /// rather than within `auth::RELOAD_AFTER`. The change is committed, so a failed reload is
    /// logged, not answered: the next periodic reload catches up.
    pub async fn access_changed(&self) {
        if let Some(auth) = &self.auth
            && let Err(e) = auth.reload().await
        {
            tracing::warn!(error = %e, "cannot reload access control after a change to grants");
        }
    }

    /// The artifact storage, or the error MLflow gives when artifact serving is off.
    pub fn artifacts(&self) -> Result<&Artifacts, ApiError> {
        self.artifacts.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotImplemented,
                "Artifact serving is not enabled on this server",
            )
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The whole application: MLflow routes, native routes, the web UI for any other `GET` (JSON
/// errors for unknown API routes and methods), the body limit, panic containment and request
/// logging.
pub fn app(state: AppState) -> Router {
    let cors = state.guard.cors_layer();
    let idempotency = axum::middleware::from_fn_with_state(state.clone(), idempotency::check);
    // Authorisation is a route layer: it runs after routing, knows the matched route, and
    // leaves the fallback (the web UI's files, unknown routes) alone. Authentication wraps
    // everything and runs once, before routing.
    let authenticate =
        state.auth.clone().map(|auth| axum::middleware::from_fn_with_state(auth, auth::principal::authenticate));
    Router::new()
        .merge(mlflow::router())
        .merge(graphql::router())
        .merge(native::router())
        .merge(auth::api::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authorize::authorize))
        .fallback(ui::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        // Inside the guard: a refused request is neither answered from nor recorded in it.
        .layer(idempotency)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(tower::util::option_layer(authenticate))
        // Outside authentication, so its 401s lose the challenge too when the UI asked.
        .layer(axum::middleware::from_fn(auth::challenge::quiet_for_scripts))
        // The guard runs before routing, so a refused request reaches no handler; CORS wraps it
        // so that preflights for allowed origins are answered and refusals still carry headers.
        .layer(axum::middleware::from_fn_with_state(state.guard.clone(), guard::check))
        .layer(tower::util::option_layer(cors))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN")))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    // The matched route keeps span cardinality low: ids stay out of it.
                    let path = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
                    tracing::info_span!("request", method = %req.method(), path = %path)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .with_state(state)
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        format!("The method {method} is not allowed for the path '{}'", uri.path()),
    )
}

/// A handler panic is a bug; answer like any other internal error and log it once.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::from(cairn_core::Error::internal(format!("handler panicked: {detail}"))).into_response()
}
