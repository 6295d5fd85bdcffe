//! [`LocalCluster`]: a PostgreSQL cluster kept in one directory and driven with `initdb` and
//! `pg_ctl`.
//!
//! Layout of the directory: `data/` (the cluster), `postgres.log` (the server's log), and the
//! server's unix socket. The server listens on 127.0.0.1 on a port that was free when it
//! started, trusts every local connection, and trades durability for speed (`fsync = off`): it
//! exists to be thrown away.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::exec::{Exec, run};
use crate::{Result, error};

/// The superuser `initdb` creates, and the user in every URL.
pub const SUPERUSER: &str = "postgres";

/// Attempts at finding a port no one else takes between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// Server settings appended to `postgresql.conf` when the cluster is made. `{socket_dir}` is
/// replaced with the cluster's directory.
const SETTINGS: &str = "
# Added by cairn-testkit: a throw-away cluster for tests, fast rather than durable.
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 32MB
log_min_messages = warning
";

/// A running cluster in a directory. Dropping the handle leaves the server running: use
/// [`LocalCluster::stop`] (or `crate::PgCluster`, which stops its cluster when dropped).
#[derive(Debug)]
pub struct LocalCluster {
    dir: PathBuf,
    port: u16,
    exec: Exec,
}

impl LocalCluster {
    /// Starts the cluster in `dir`, making it first if `dir` holds none. `dir` is created if
    /// missing; when running as root it is handed to the `postgres` user. A cluster that is
    /// already running there is returned as it is.
    pub fn start(dir: &Path) -> Result<Self> {
        let exec = Exec::detect()?;
        std::fs::create_dir_all(dir).map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        let dir = dir.canonicalize().map_err(|e| error(format!("cannot resolve {}: {e}", dir.display())))?;
        exec.hand_over(&dir)?;
        let cluster = LocalCluster { dir, port: 0, exec };
        if !cluster.data_dir().join("PG_VERSION").is_file() {
            cluster.init()?;
        } else if let Some(port) = cluster.running_port()? {
            return Ok(LocalCluster { port, ..cluster });
        }
        cluster.start_on_free_port()
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of `database` on this cluster, as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server at once (no checkpoint: the data is disposable).
    pub fn stop(&self) -> Result<()> {
        stop_dir_with(&self.exec, &self.dir)
    }

    /// Stops a server started in `dir` by this or another process. Stopping one that is not
    /// running succeeds.
    pub fn stop_dir(dir: &Path) -> Result<()> {
        stop_dir_with(&Exec::detect()?, dir)
    }

    /// A shell line that stops this cluster, for a script that outlives this process.
    pub(crate) fn stop_line(&self) -> String {
        self.exec.shell_line("pg_ctl", &stop_args(&self.dir))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> Result<()> {
        let data = self.data_dir().display().to_string();
        let args: Vec<String> = ["-D", &data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = run(&mut self.exec.command("initdb", &args))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let hint = if stderr.contains("Permission denied") {
                " (PostgreSQL runs as the 'postgres' user when we are root: every parent of the directory must let it pass)"
            } else {
                ""
            };
            return Err(error(format!("initdb failed: {}{hint}", stderr.trim())));
        }
        let socket_dir = self.dir.display().to_string().replace('\'', "''");
        self.append_conf(&SETTINGS.replace("{socket_dir}", &socket_dir))
    }

    /// The port of the server running in this directory, if one is.
    fn running_port(&self) -> Result<Option<u16>> {
        let status = ["status".to_owned(), "-D".to_owned(), self.data_dir().display().to_string()];
        if !run(&mut self.exec.command("pg_ctl", &status))?.status.success() {
            return Ok(None);
        }
        // The fourth line of `postmaster.pid` is the port the server listens on.
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| error(format!("cannot read {}: {e}", pid_file.display())))?;
        let port = text.lines().nth(3).and_then(|l| l.trim().parse().ok());
        port.map(Some).ok_or_else(|| error(format!("{} names no port", pid_file.display())))
    }

    fn append_conf(&self, text: &str) -> Result<()> {
        let path = self.data_dir().join("postgresql.conf");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
        file.write_all(text.as_bytes()).map_err(|e| error(format!("cannot write {}: {e}", path.display())))
    }

    fn start_on_free_port(mut self) -> Result<Self> {
        let log = self.dir.join("postgres.log");
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            // A later `port` line overrides earlier ones, so each attempt simply appends.
            self.append_conf(&format!("port = {port}\n"))?;
            let args: Vec<String> = vec![
                "start".into(),
                "-D".into(),
                self.data_dir().display().to_string(),
                "-l".into(),
                log.display().to_string(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-s".into(),
            ];
            let out = run(&mut self.exec.command("pg_ctl", &args))?;
            if out.status.success() {
                self.port = port;
                return Ok(self);
            }
            let log_tail = tail(&log);
            last_error = format!("{}\n{log_tail}", String::from_utf8_lossy(&out.stderr).trim());
            // Someone took the port between our probe and the server's bind: try another.
            if !log_tail.contains("could not bind") && !log_tail.contains("already in use") {
                break;
            }
        }
        Err(error(format!("pg_ctl start in {} failed: {last_error}", self.dir.display())))
    }
}

fn stop_args(dir: &Path) -> Vec<String> {
    let data = dir.join("data").display().to_string();
    vec!["stop".into(), "-D".into(), data, "-m".into(), "immediate".into(), "-w".into(), "-s".into()]
}

fn stop_dir_with(exec: &Exec, dir: &Path) -> Result<()> {
    let out = run(&mut exec.command("pg_ctl", &stop_args(dir)))?;
    // pg_ctl fails when there is no server to stop; that is the state we wanted.
    if out.status.success() || !dir.join("data").join("postmaster.pid").exists() {
        return Ok(());
    }
    Err(error(format!("pg_ctl stop in {} failed: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim())))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| error(format!("cannot probe for a free port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| error(format!("cannot probe for a free port: {e}")))
}

/// The last lines of the server log, to explain a failed start.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
