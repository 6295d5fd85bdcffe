//! Running the server: open the store, bind, serve until a signal, drain, close the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::connections::ConnectionLimits;
use crate::{AppState, app};

/// Serves `config` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    config.check_exposure()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data folder {}", config.data_dir.display()))?;
    let store_config = config.store_config();
    let store = cairn_store::open(&store_config)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(&store_config.uri)))?;
    let destination = config.artifacts_destination().to_string_lossy().into_owned();
    let blobs = cairn_artifacts::BlobStore::open(&destination)
        .with_context(|| format!("cannot open the artifact destination {destination}"))?;
    // Staging objects this old can only be leftovers of a crash: no upload takes a day.
    match blobs.clean_staging(Duration::from_secs(24 * 3600)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed abandoned artifact uploads"),
        Err(e) => tracing::warn!(error = %e, "cannot clean abandoned artifact uploads"),
    }
    let mut state = AppState::with_artifacts(store, blobs)?;
    state.local_folder = crate::local_folder::LocalFolder::from_root_uri(&config.default_artifact_root)
        .with_context(|| format!("cannot open the default artifact root {}", config.default_artifact_root))?
        .map(Arc::new);
    if let Some(path) = &config.policy_file {
        let policy = crate::governance::load_policy(path)?;
        tracing::info!(path = %path.display(), rules = policy.rules.len(), "promotion policy on");
        state = state.with_policy(policy);
    }
    // Aborted when this function returns, whether serving ended normally or not.
    let _gc = match (config.periodic_gc(), &state.artifacts) {
        (Some(settings), Some(artifacts)) => {
            tracing::info!(
                interval_secs = settings.interval.as_secs(),
                older_than_secs = settings.older_than.as_secs(),
                "periodic garbage collection on"
            );
            Some(AbortOnDrop(crate::gc::spawn_periodic(artifacts.clone(), settings)))
        }
        _ => None,
    };
    let _openlineage = config.openlineage_url.as_ref().map(|url| {
        let settings = crate::openlineage_out::EmitterConfig {
            url: url.clone(),
            namespace: config.openlineage_namespace.clone(),
            poll: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(10),
        };
        AbortOnDrop(crate::openlineage_out::spawn(state.store.clone(), settings))
    });
    state = state.with_guard(config.web_guard());
    if config.auth == crate::auth::AuthMode::Basic {
        let auth = crate::auth::Auth::new(state.store.clone(), config.default_permission).await?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        auth.bootstrap_admin(env("CAIRN_ADMIN_USERNAME"), env("CAIRN_ADMIN_PASSWORD")).await?;
        tracing::info!(default_permission = config.default_permission.as_str(), "access control on (basic)");
        state = state.with_auth(auth);
    }
    let limits = config.connection_limits();
    let address = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&address).await.with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        url = %format!("http://{local}"),
        store = %redact(&store_config.uri),
        max_connections = limits.max_connections,
        "cairn server listening"
    );
    let readiness = state.readiness.clone();
    let drain_delay = config.drain_delay;
    let shutdown = async move {
        shutdown_signal().await;
        readiness.start_draining();
        if !drain_delay.is_zero() {
            tracing::info!(drain_delay_ms = drain_delay.as_millis() as u64, "shutting down: not ready, still serving");
            tokio::time::sleep(drain_delay).await;
        }
    };
    serve_with_limits(listener, state, limits, shutdown, config.shutdown_timeout()).await
}

/// Serves on an already bound `listener` until `shutdown` completes, lets in-flight requests
/// finish for at most `drain_timeout`, then closes the store so its writer flushes.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    serve_with_limits(listener, state, ConnectionLimits::default(), shutdown, drain_timeout).await
}

/// [`serve_on`] with explicit connection limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    let store = state.store.clone();
    crate::connections::serve(listener, app(state), limits, shutdown, drain_timeout).await;
    let closed = store.close().await.context("closing the store");
    tracing::info!("cairn server stopped");
    closed
}

/// Aborts a background task when dropped, so it cannot outlive the server. Every step of a
/// collection is safe to interrupt: an abort between two deletes just leaves the rest for later.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A store URI with any password removed, for logs.
fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_owned() };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(redact("postgresql://u:pw@db:5432/x"), "postgresql://u:***@db:5432/x");
        assert_eq!(redact("sqlite:///./cairn-data/cairn.db"), "sqlite:///./cairn-data/cairn.db");
    }
}
