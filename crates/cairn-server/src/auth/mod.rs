//! Access control in the server: who a request comes from ([`principal`]), what each route
//! needs ([`routes`]), the check between the two ([`authorize`]), MLflow's auth API ([`api`]),
//! and keeping browsers' own sign-in dialog away from the web UI ([`challenge`]). Users, roles,
//! grants and tokens live in the store (`cairn_core::auth`); the server keeps a snapshot of them
//! in memory, reloaded after each change it makes and at most [`RELOAD_AFTER`] after a change
//! made elsewhere (the command line, another server on the same database). That is the
//! staleness bound of a scale-out deployment: a revoked token, a changed password, a deleted user
//! or a changed grant is honoured by every server within it, because remembered sign-ins are
//! checked against the snapshot's password hash and token rows.

pub mod api;
pub mod authorize;
pub mod challenge;
pub mod limiter;
pub mod principal;
pub mod redact;
pub mod routes;
pub mod secrets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cairn_core::auth::{AuthData, NewUser, Permission, ResourceType};
use cairn_core::model::Actor;
use cairn_core::store::Store;

pub use principal::Principal;

/// How long a change made outside this server (by `cairn users` on the same store) may take to
/// be seen. Reading the access-control tables is cheap: they hold people, not runs.
pub const RELOAD_AFTER: Duration = Duration::from_secs(2);

/// `--auth`: whether requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Nobody signs in and everything is allowed (loopback only, unless allowed explicitly).
    None,
    /// Users with passwords (HTTP basic) and API tokens (bearer), permissions per resource.
    Basic,
}

/// The access-control state a server shares between requests.
pub struct Auth {
    pub(crate) store: Arc<dyn Store>,
    /// What a user holds on a resource without any grant there.
    pub default_permission: Permission,
    snapshot: RwLock<(Instant, Arc<AuthData>)>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    pub(crate) verified: principal::VerifiedCache,
    pub(crate) failures: limiter::FailedLogins,
    /// Runs never move between experiments, so their experiment is remembered.
    run_experiments: Mutex<HashMap<String, String>>,
    /// When each token's last use was written, so it is written at most once a minute.
    token_touched: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("default_permission", &self.default_permission).finish_non_exhaustive()
    }
}

/// Most runs whose experiment is remembered; past it the memory starts afresh.
const RUN_CACHE_LIMIT: usize = 100_000;

impl Auth {
    /// Access control over `store`'s users and grants.
    pub async fn new(store: Arc<dyn Store>, default_permission: Permission) -> cairn_core::Result<Self> {
        let data = store.auth_data().await?;
        Ok(Auth {
            store,
            default_permission,
            snapshot: RwLock::new((Instant::now(), Arc::new(data))),
            reloading: tokio::sync::Mutex::new(()),
            verified: principal::VerifiedCache::default(),
            failures: limiter::FailedLogins::default(),
            run_experiments: Mutex::new(HashMap::new()),
            token_touched: Mutex::new(HashMap::new()),
        })
    }

    /// The current snapshot, reloaded first when it is older than [`RELOAD_AFTER`].
    pub async fn data(&self) -> cairn_core::Result<Arc<AuthData>> {
        let (loaded, data) = self.snapshot.read().expect("auth snapshot lock").clone();
        if loaded.elapsed() < RELOAD_AFTER {
            return Ok(data);
        }
        let _one_at_a_time = self.reloading.lock().await;
        let (loaded, data) = self.snapshot.read().expect("auth snapshot lock").clone();
        if loaded.elapsed() < RELOAD_AFTER {
            return Ok(data);
        }
        self.reload().await
    }

    /// The snapshot as of no earlier than `missed_at`: for when a user or token is not in the
    /// current one, and may have just been created by the command line. A reload that started
    /// after the miss already holds everything committed before it, so concurrent misses share
    /// one read of the tables instead of each making its own; reloads run one at a time.
    /// (A floor on how often a miss may reload, tried before, refused a token created a moment
    /// after someone else's miss.) A stream of made-up names or tokens is bounded by the
    /// sign-in limiter, which is consulted before this.
    pub async fn data_after_miss(&self, missed_at: Instant) -> cairn_core::Result<Arc<AuthData>> {
        let _one_at_a_time = self.reloading.lock().await;
        let (loaded, data) = self.snapshot.read().expect("auth snapshot lock").clone();
        if loaded >= missed_at {
            return Ok(data);
        }
        self.reload().await
    }

    /// Reads the snapshot again (after a change this server made).
    pub async fn reload(&self) -> cairn_core::Result<Arc<AuthData>> {
        // Dated from before the read, so a snapshot is never older than its age says: a change
        // committed anywhere is applied by every request that starts [`RELOAD_AFTER`] later.
        let started = Instant::now();
        let data = Arc::new(self.store.auth_data().await?);
        // A reload after a change may run beside a periodic one; the read that started last
        // holds the most, so an older read finishing later does not replace it.
        let mut snapshot = self.snapshot.write().expect("auth snapshot lock");
        if started >= snapshot.0 {
            *snapshot = (started, data);
        }
        Ok(snapshot.1.clone())
    }

    /// The experiment of a run, `None` if there is no such run.
    pub async fn run_experiment(&self, run_id: &str) -> cairn_core::Result<Option<String>> {
        if let Some(id) = self.run_experiments.lock().expect("run cache lock").get(run_id) {
            return Ok(Some(id.clone()));
        }
        let found = self.store.run_experiment(run_id).await?;
        if let Some(id) = &found {
            let mut cache = self.run_experiments.lock().expect("run cache lock");
            if cache.len() >= RUN_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(run_id.to_owned(), id.clone());
        }
        Ok(found)
    }

    /// Records a token's use, at most once a minute per token; a failure is logged, not fatal.
    pub(crate) fn touch_token(&self, token_id: &str) {
        {
            let mut touched = self.token_touched.lock().expect("token touch lock");
            if touched.get(token_id).is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
                return;
            }
            touched.insert(token_id.to_owned(), Instant::now());
        }
        let (store, id) = (self.store.clone(), token_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id, now_millis()).await {
                tracing::warn!(token = %id, error = %e, "cannot record a token's last use");
            }
        });
    }

    /// The level `principal` holds on a resource.
    pub fn permission(&self, data: &AuthData, principal: &Principal, kind: ResourceType, id: &str) -> Permission {
        match data.user_by_id(principal.user_id) {
            Some(user) => data.permission(user, kind, id, self.default_permission),
            None => Permission::NoPermissions,
        }
    }

    /// Creates the first admin when there is no user at all: from `CAIRN_ADMIN_USERNAME` and
    /// `CAIRN_ADMIN_PASSWORD` when given, else `admin` with a generated password, printed once.
    pub async fn bootstrap_admin(&self, username: Option<String>, password: Option<String>) -> anyhow::Result<()> {
        if !self.data().await?.users.is_empty() {
            return Ok(());
        }
        let username = username.unwrap_or_else(|| "admin".to_owned());
        cairn_core::auth::validate_username(&username)?;
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (secrets::generate_password()?, true),
        };
        let hash =
            tokio::task::spawn_blocking(move || secrets::hash_password(&password).map(|h| (h, password))).await??;
        let (hash, password) = hash;
        let actor = Actor("cairn".to_owned());
        self.store
            .create_user(&actor, NewUser { username: username.clone(), password_hash: hash, is_admin: true })
            .await?;
        self.reload().await?;
        if generated {
            // Printed, not logged: log files are kept and shipped, this must be seen once.
            println!("cairn: created the first admin '{username}' with password {password} (shown only now)");
        } else {
            tracing::info!(username = %username, "created the first admin from CAIRN_ADMIN_USERNAME/CAIRN_ADMIN_PASSWORD");
        }
        Ok(())
    }
}

/// The wall clock in milliseconds since the epoch.
pub fn now_millis() -> cairn_core::model::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as cairn_core::model::Millis)
}
