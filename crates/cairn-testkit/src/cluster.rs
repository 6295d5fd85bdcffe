//! [`PgCluster`]: the PostgreSQL server a test process uses.
//!
//! One cluster per test process: [`PgCluster::shared`] starts it on first use and every test
//! takes its own database from it. A `static` is never dropped, so the shared cluster cannot be
//! stopped by a destructor; instead each cluster gets a *reaper*, a tiny `sh` loop in its own
//! process group that waits for the test process to exit (however it exits: normally, on a
//! panic, or killed) and then stops the server and deletes its directory. As a second line of
//! defence, starting a cluster first removes clusters whose owning process is gone (in case a
//! reaper was killed too), and every cluster has its own directory and a port that was free, so
//! a leftover can never collide with a new one.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::exec::quote;
use crate::local::LocalCluster;
use crate::{Result, error};

/// When set to a server URL (`postgresql://postgres@127.0.0.1:5432/postgres`), tests use that
/// server instead of starting a cluster. Its user must be allowed to create databases.
pub const ENV_URL: &str = "CAIRN_TEST_POSTGRES_URL";

/// Temporary cluster directories are named `cairn-pg-<owner pid>-<random>`.
const DIR_PREFIX: &str = "cairn-pg-";

/// A PostgreSQL server for tests: a throw-away local cluster, or an external server.
#[derive(Debug)]
pub struct PgCluster {
    server: Server,
}

#[derive(Debug)]
enum Server {
    External { url: String },
    Local { cluster: LocalCluster, reaper: Option<Child> },
}

impl PgCluster {
    /// The cluster shared by every test in this process, started on first use. It is stopped
    /// by its reaper once the process exits.
    ///
    /// # Panics
    /// If no server can be started (the message says why).
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(PgCluster::start)
    }

    /// Starts a cluster of one's own (or connects to [`ENV_URL`]); it stops when dropped.
    ///
    /// # Panics
    /// If no server can be started (the message says why). Use [`PgCluster::try_start`] to
    /// handle that instead.
    pub fn start() -> PgCluster {
        PgCluster::try_start().unwrap_or_else(|e| panic!("cannot get a PostgreSQL server for tests: {e}"))
    }

    /// Starts a cluster of one's own (or connects to [`ENV_URL`]); it stops when dropped.
    pub fn try_start() -> Result<PgCluster> {
        if let Some(url) = std::env::var(ENV_URL).ok().filter(|u| !u.trim().is_empty()) {
            return Ok(PgCluster { server: Server::External { url } });
        }
        remove_abandoned(&std::env::temp_dir());
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{}", std::process::id(), short_id()));
        let cluster = match LocalCluster::start(&dir) {
            Ok(cluster) => cluster,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let reaper = spawn_reaper(&cluster);
        Ok(PgCluster { server: Server::Local { cluster, reaper: Some(reaper?) } })
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        match &self.server {
            Server::External { url } => with_database(url, database),
            Server::Local { cluster, .. } => cluster.url(database),
        }
    }

    /// Creates a fresh, uniquely named, empty database and returns its URL.
    ///
    /// # Panics
    /// If the database cannot be created.
    pub fn create_database(&self) -> String {
        self.try_create_database().unwrap_or_else(|e| panic!("cannot create a test database: {e}"))
    }

    /// Creates a fresh, uniquely named, empty database and returns its URL.
    pub fn try_create_database(&self) -> Result<String> {
        let name = format!("cairn_test_{}", uuid::Uuid::new_v4().simple());
        let admin = match &self.server {
            Server::External { url } => url.clone(),
            Server::Local { cluster, .. } => cluster.url("postgres"),
        };
        // `name` is made of hex digits and underscores, so it needs no quoting. The synchronous
        // client must not run on a thread that drives async tasks, and tests calling this are
        // usually on one, so it runs on a thread of its own.
        let sql = format!("CREATE DATABASE {name}");
        let created = std::thread::spawn(move || -> Result<()> {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)
                .map_err(|e| error(format!("cannot connect to the test server: {e}")))?;
            client.batch_execute(&sql).map_err(|e| error(format!("{sql} failed: {e}")))
        })
        .join()
        .map_err(|_| error("the thread creating a database panicked"))?;
        created?;
        Ok(self.url(&name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let Server::Local { cluster, reaper } = &mut self.server else {
            return;
        };
        if let Some(mut reaper) = reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        if let Err(e) = cluster.stop() {
            eprintln!("cairn-testkit: {e}");
        }
        let _ = std::fs::remove_dir_all(cluster.dir());
    }
}

/// Replaces the database in a `postgresql://…/db?options` URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Starts the process that stops `cluster` and deletes its directory once we have exited.
fn spawn_reaper(cluster: &LocalCluster) -> Result<Child> {
    let script = format!(
        "while kill -0 \"$1\" 2>/dev/null; do sleep 0.5; done; {} >/dev/null 2>&1; rm -rf {}",
        cluster.stop_line(),
        quote(&cluster.dir().display().to_string())
    );
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("cairn-pg-reaper")
        .arg(std::process::id().to_string())
        // Its own process group, so that a Ctrl-C or a harness killing our group spares it,
        // and no inherited output pipe, so that nobody reading our output waits for it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| error(format!("cannot start the cluster's reaper: {e}")))
}

/// Stops and deletes clusters in `tmp` whose owning process no longer exists.
fn remove_abandoned(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if Path::new("/proc").join(owner.to_string()).exists() {
            continue;
        }
        let dir: PathBuf = entry.path();
        let _ = LocalCluster::stop_dir(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The owner pid in a cluster directory's name.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(DIR_PREFIX)?.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_database_replaced() {
        let cases = [
            ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/x"),
            ("postgresql://u:p@h:1/postgres?sslmode=disable", "postgresql://u:p@h:1/x?sslmode=disable"),
            ("postgres://h", "postgres://h/x"),
            ("postgresql:///postgres?host=/tmp", "postgresql:///x?host=/tmp"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "x"), expected, "{url}");
        }
    }

    #[test]
    fn owners_are_read_from_directory_names() {
        assert_eq!(owner_pid("cairn-pg-1234-abcd1234"), Some(1234));
        assert_eq!(owner_pid("cairn-pg-x-abcd"), None);
        assert_eq!(owner_pid("other-1234"), None);
    }

    #[test]
    fn shared_cluster_serves_fresh_databases() {
        let cluster = PgCluster::shared();
        let (a, b) = (cluster.create_database(), cluster.create_database());
        assert_ne!(a, b);
        let url = a.clone();
        let answer = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.query_one("SELECT current_database()", &[]).unwrap().get::<_, String>(0)
        })
        .join()
        .unwrap();
        assert!(answer.starts_with("cairn_test_"), "{answer}");
        assert!(a.ends_with(&format!("/{answer}")), "{a} is the URL of {answer}");
    }
}
