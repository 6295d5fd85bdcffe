//! The server's configuration: one clap struct, every flag also read from a `CAIRN_*`
//! environment variable. Precedence: flag, then environment, then default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_store::StoreConfig;

use cairn_core::auth::Permission;

use crate::auth::AuthMode;
use crate::connections::{ConnectionLimits, effective_max_connections};
use crate::gc::{PeriodicGc, parse_duration};
use crate::guard::WebGuard;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `cairn server` options.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "cairn server")]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "CAIRN_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CAIRN_PORT", default_value_t = 5000)]
    pub port: u16,

    /// Folder for everything the server keeps locally (the SQLite database, artifacts).
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,

    /// Metadata store: `sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://…`.
    /// Defaults to `cairn.db` inside the data folder.
    #[arg(long, env = "CAIRN_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,

    /// Where proxied artifacts are stored. Defaults to `artifacts` inside the data folder.
    #[arg(long, env = "CAIRN_ARTIFACTS_DESTINATION")]
    pub artifacts_destination: Option<PathBuf>,

    /// Artifact root of experiments created without an artifact location.
    #[arg(long, env = "CAIRN_DEFAULT_ARTIFACT_ROOT", default_value = "mlflow-artifacts:/")]
    pub default_artifact_root: String,

    /// Read connections the store keeps open.
    #[arg(long, env = "CAIRN_READ_POOL_SIZE", default_value_t = 4)]
    pub read_pool_size: usize,

    /// Most write requests the store commits together in one transaction.
    #[arg(long, env = "CAIRN_MAX_GROUP_COMMIT", default_value_t = 256)]
    pub max_group_commit: usize,

    /// Tokio worker threads (default: one per CPU).
    #[arg(long, env = "CAIRN_WORKERS")]
    pub workers: Option<usize>,

    /// Log line format.
    #[arg(long, env = "CAIRN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds to let in-flight requests finish after SIGINT/SIGTERM.
    #[arg(long, env = "CAIRN_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// After SIGTERM, how long to keep serving while `/ready` answers 503, so a load balancer
    /// stops sending new requests before the server stops taking them, e.g. `5s` (a few of the
    /// balancer's health-check intervals). Requests in flight then get `--shutdown-timeout`.
    #[arg(long, env = "CAIRN_DRAIN_DELAY", value_parser = parse_duration, default_value = "0s")]
    pub drain_delay: Duration,

    /// Collect garbage (as `cairn gc` does) this often, e.g. `6h`; off unless given.
    #[arg(long, env = "CAIRN_GC_INTERVAL", value_parser = parse_duration)]
    pub gc_interval: Option<Duration>,

    /// With `--gc-interval`: purge runs deleted longer ago than this.
    #[arg(long, env = "CAIRN_GC_OLDER_THAN", value_parser = parse_duration, default_value = "30d")]
    pub gc_older_than: Duration,

    /// With `--gc-interval`: keep unreferenced blobs written more recently than this. Below `1h`
    /// a blob an upload has just deduplicated against may be removed.
    #[arg(long, env = "CAIRN_GC_GRACE", value_parser = parse_duration, default_value = "1h")]
    pub gc_grace: Duration,

    /// A promotion policy (JSON) that model versions must satisfy before an alias is set or a
    /// stage changes. Read once at start; a malformed file stops the server.
    #[arg(long, env = "CAIRN_POLICY_FILE", value_name = "FILE")]
    pub policy_file: Option<PathBuf>,

    /// Send an OpenLineage run event to this endpoint when a run starts and when it ends (a
    /// base URL gets `/api/v1/lineage` appended). Off by default.
    #[arg(long, env = "CAIRN_OPENLINEAGE_URL", value_name = "URL")]
    pub openlineage_url: Option<String>,

    /// The OpenLineage job namespace of the events Cairn sends.
    #[arg(long, env = "CAIRN_OPENLINEAGE_NAMESPACE", default_value = "cairn")]
    pub openlineage_namespace: String,

    /// `Host` names the server answers to, comma-separated; `*` matches any run of characters
    /// (`*.corp.example`), a `:port` suffix pins the port. Default: `localhost`, `127.0.0.1`,
    /// `[::1]` and the `--host` address (any IP address when that is `0.0.0.0` or `::`). Other
    /// names are refused with 403, which stops DNS-rebinding pages.
    #[arg(long, env = "CAIRN_ALLOWED_HOSTS", value_delimiter = ',', value_name = "HOSTS")]
    pub allowed_hosts: Vec<String>,

    /// Origins whose pages may send state-changing requests (and get CORS headers),
    /// comma-separated, e.g. `https://notebooks.corp.example`; `*` patterns as for
    /// `--allowed-hosts`. Default: none; the server's own origin is always allowed.
    #[arg(long, env = "CAIRN_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGINS")]
    pub cors_allowed_origins: Vec<String>,

    /// Most connections served at once; lowered to fit the open-file limit. When full, the
    /// connection idle longest is closed to make room.
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Time a connection has to send a complete request head, from connect or from its previous
    /// response (so also how long an idle kept-alive connection stays open), e.g. `30s`.
    #[arg(long, env = "CAIRN_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub idle_timeout: Duration,

    /// Longest pause allowed between two pieces of a request body, e.g. `60s`; slow uploads that
    /// keep moving are never cut off.
    #[arg(long, env = "CAIRN_BODY_TIMEOUT", value_parser = parse_duration, default_value = "60s")]
    pub body_timeout: Duration,

    /// `basic`: every request signs in (users with passwords, API tokens) and is checked
    /// against per-experiment and per-model permissions. `none`: nobody signs in and anyone who
    /// can reach the port can do everything, so it is refused on a non-loopback address unless
    /// `--allow-unauthenticated` is given.
    #[arg(long, env = "CAIRN_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,

    /// With `--auth none`, listen on a non-loopback address anyway.
    #[arg(long, env = "CAIRN_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// With `--auth basic`: what a user holds on an experiment or registered model without a
    /// grant there (READ, USE, EDIT, MANAGE or NO_PERMISSIONS).
    #[arg(long, env = "CAIRN_DEFAULT_PERMISSION", value_parser = parse_permission, default_value = "READ")]
    pub default_permission: Permission,
}

fn parse_permission(text: &str) -> Result<Permission, String> {
    match Permission::parse(&text.to_ascii_uppercase()) {
        Ok(Permission::Deny) => Err("DENY cannot be the default; use NO_PERMISSIONS".to_owned()),
        Ok(p) => Ok(p),
        Err(e) => Err(e.to_string()),
    }
}

/// The SQLite URI of the default database inside `data_dir`.
pub fn default_backend_store_uri(data_dir: &Path) -> String {
    // `sqlite:///` followed by a relative path, or by an absolute one (giving four slashes).
    format!("sqlite:///{}", data_dir.join("cairn.db").display())
}

impl ServerConfig {
    /// The store URI in effect.
    pub fn backend_store_uri(&self) -> String {
        self.backend_store_uri.clone().unwrap_or_else(|| default_backend_store_uri(&self.data_dir))
    }

    /// The artifact folder in effect.
    pub fn artifacts_destination(&self) -> PathBuf {
        self.artifacts_destination.clone().unwrap_or_else(|| self.data_dir.join("artifacts"))
    }

    /// How to open the store.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            default_artifact_root: self.default_artifact_root.clone(),
            read_pool_size: self.read_pool_size,
            max_group_commit: self.max_group_commit,
            ..StoreConfig::new(self.backend_store_uri())
        }
    }

    /// The periodic garbage collection asked for, if any.
    pub fn periodic_gc(&self) -> Option<PeriodicGc> {
        self.gc_interval.map(|interval| PeriodicGc { interval, older_than: self.gc_older_than, grace: self.gc_grace })
    }

    /// The browser-request guard for these options.
    pub fn web_guard(&self) -> WebGuard {
        WebGuard::new(&self.host, &self.allowed_hosts, &self.cors_allowed_origins)
    }

    /// The connection limits in effect (the cap lowered to fit the open-file limit).
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: effective_max_connections(self.max_connections),
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
        }
    }

    /// Refuses `--auth none` on an address other machines can reach, unless allowed.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.auth != AuthMode::None || self.allow_unauthenticated || is_loopback(&self.host) {
            return Ok(());
        }
        anyhow::bail!(
            "refusing to listen on {} without authentication: anyone who can reach it could change and delete \
             everything. Use --auth basic, or --allow-unauthenticated if that is really what you want",
            self.host
        )
    }

    /// How long shutdown waits for in-flight requests.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// Whether `host` names only this machine.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let c = ServerConfig::try_parse_from(["cairn"]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 5000));
        assert_eq!(c.backend_store_uri(), "sqlite:///./cairn-data/cairn.db");
        assert_eq!(c.artifacts_destination(), PathBuf::from("./cairn-data/artifacts"));
        assert_eq!(c.default_artifact_root, "mlflow-artifacts:/");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.periodic_gc(), None, "periodic garbage collection is off by default");
    }

    #[test]
    fn unauthenticated_servers_stay_on_loopback() {
        let parse = |args: &[&str]| ServerConfig::try_parse_from([&["cairn"], args].concat()).unwrap();
        assert!(parse(&[]).check_exposure().is_ok());
        assert!(parse(&["--host", "::1"]).check_exposure().is_ok());
        assert!(parse(&["--host", "localhost"]).check_exposure().is_ok());
        let e = parse(&["--host", "0.0.0.0"]).check_exposure().unwrap_err().to_string();
        assert!(e.starts_with("refusing to listen on 0.0.0.0 without authentication"), "{e}");
        assert!(!e.contains('\n'), "one line");
        assert!(parse(&["--host", "0.0.0.0", "--allow-unauthenticated"]).check_exposure().is_ok());
        assert!(parse(&["--host", "0.0.0.0", "--auth", "basic"]).check_exposure().is_ok());
        assert_eq!(parse(&[]).default_permission, Permission::Read);
        assert_eq!(parse(&["--default-permission", "edit"]).default_permission, Permission::Edit);
        assert!(ServerConfig::try_parse_from(["cairn", "--default-permission", "DENY"]).is_err());
    }

    #[test]
    fn periodic_gc_takes_durations() {
        let c = ServerConfig::try_parse_from(["cairn", "--gc-interval", "6h", "--gc-older-than", "7d"]).unwrap();
        let gc = c.periodic_gc().unwrap();
        assert_eq!(gc.interval, Duration::from_secs(6 * 3600));
        assert_eq!(gc.older_than, Duration::from_secs(7 * 86_400));
        assert_eq!(gc.grace, crate::gc::GRACE);
        assert!(ServerConfig::try_parse_from(["cairn", "--gc-interval", "6"]).is_err(), "a unit is required");
    }

    #[test]
    fn flags_override_defaults() {
        let c = ServerConfig::try_parse_from([
            "cairn",
            "--port",
            "0",
            "--data-dir",
            "/srv/cairn",
            "--log-format",
            "json",
            "--workers",
            "3",
        ])
        .unwrap();
        assert_eq!(c.port, 0);
        assert_eq!(c.backend_store_uri(), "sqlite:////srv/cairn/cairn.db");
        assert_eq!(c.store_config().uri, "sqlite:////srv/cairn/cairn.db");
        assert_eq!((c.log_format, c.workers), (LogFormat::Json, Some(3)));
        let c = ServerConfig::try_parse_from(["cairn", "--backend-store-uri", "postgresql://db/x"]).unwrap();
        assert_eq!(c.backend_store_uri(), "postgresql://db/x");
        assert!(ServerConfig::try_parse_from(["cairn", "--port", "http"]).is_err());
    }

    #[test]
    fn every_flag_has_a_cairn_env_variable() {
        let cmd = ServerConfig::command();
        for arg in cmd.get_arguments().filter(|a| a.get_long().is_some_and(|l| l != "help")) {
            let Some(env) = arg.get_env() else { panic!("--{} has no env", arg.get_long().unwrap()) };
            assert!(env.to_string_lossy().starts_with("CAIRN_"), "{env:?}");
        }
    }
}
