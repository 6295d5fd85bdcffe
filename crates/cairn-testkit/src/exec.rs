//! Running PostgreSQL's programs: finding them, and running them as the `postgres` user when
//! the tests run as root (PostgreSQL refuses to run as root, and CI runs tests as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{Result, error};

/// The unprivileged account that owns clusters when we are root.
const SERVICE_USER: &str = "postgres";

/// Where distributions install PostgreSQL's programs, newest version chosen.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// How to run `initdb` and `pg_ctl` on this machine.
#[derive(Debug, Clone)]
pub struct Exec {
    bin_dir: PathBuf,
    /// Set when we are root: commands run as [`SERVICE_USER`] and files are given to it.
    as_service_user: bool,
    runuser: Option<PathBuf>,
}

impl Exec {
    /// Finds the programs (`CAIRN_PG_BIN`, else next to `pg_ctl` on `PATH`, else the newest
    /// `/usr/lib/postgresql/*/bin`) and whether we are root.
    pub fn detect() -> Result<Self> {
        let bin_dir = find_bin_dir().ok_or_else(|| {
            error("cannot find PostgreSQL's initdb and pg_ctl: install PostgreSQL, set CAIRN_PG_BIN to their directory, or set CAIRN_TEST_POSTGRES_URL to a running server")
        })?;
        let as_service_user = is_root()?;
        if as_service_user && !run(Command::new("id").arg("-u").arg(SERVICE_USER))?.status.success() {
            return Err(error(format!(
                "running as root, and PostgreSQL refuses root, but there is no '{SERVICE_USER}' user to run it as"
            )));
        }
        Ok(Exec {
            bin_dir,
            as_service_user,
            runuser: find_in_path("runuser").or_else(|| existing("/usr/sbin/runuser")),
        })
    }

    /// A command running PostgreSQL's `program` with `args`, as the service user if needed.
    pub fn command(&self, program: &str, args: &[String]) -> Command {
        let path = self.bin_dir.join(program);
        let mut command = match (&self.as_service_user, &self.runuser) {
            (false, _) => {
                let mut c = Command::new(&path);
                c.args(args);
                c
            }
            (true, Some(runuser)) => {
                let mut c = Command::new(runuser);
                c.args(["-u", SERVICE_USER, "--"]).arg(&path).args(args);
                c
            }
            (true, None) => {
                let mut c = Command::new("su");
                c.args([SERVICE_USER, "-s", "/bin/sh", "-c"]).arg(self.shell_line(program, args));
                c
            }
        };
        // The service user may not be able to enter our working directory, and inherited PG*
        // variables would point the programs at some other cluster.
        command.current_dir("/").env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST");
        command.stdin(Stdio::null());
        command
    }

    /// The same command as one `sh` line, for scripts that run after this process is gone.
    pub fn shell_line(&self, program: &str, args: &[String]) -> String {
        let path = self.bin_dir.join(program).display().to_string();
        let plain = std::iter::once(path).chain(args.iter().cloned()).map(|a| quote(&a)).collect::<Vec<_>>().join(" ");
        match (&self.as_service_user, &self.runuser) {
            (false, _) => plain,
            (true, Some(runuser)) => format!("{} -u {SERVICE_USER} -- {plain}", quote(&runuser.display().to_string())),
            (true, None) => format!("su {SERVICE_USER} -s /bin/sh -c {}", quote(&plain)),
        }
    }

    /// Makes `path` (recursively) the service user's, when commands run as it.
    pub fn hand_over(&self, path: &Path) -> Result<()> {
        if !self.as_service_user {
            return Ok(());
        }
        let owner = format!("{SERVICE_USER}:");
        let out = run(Command::new("chown").arg("-R").arg(owner).arg(path))?;
        if !out.status.success() {
            return Err(error(format!("chown of {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr))));
        }
        Ok(())
    }
}

/// Runs `command` to completion, capturing its output.
pub fn run(command: &mut Command) -> Result<Output> {
    command.output().map_err(|e| error(format!("cannot run {:?}: {e}", command.get_program())))
}

/// Quotes `s` for `sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_root() -> Result<bool> {
    let out = run(Command::new("id").arg("-u"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn existing(path: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.is_file().then_some(path)
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn has_programs(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CAIRN_PG_BIN").map(PathBuf::from) {
        return Some(dir);
    }
    // `pg_ctl` is often a symlink into the versioned directory where `initdb` also lives.
    let beside_pg_ctl = find_in_path("pg_ctl")
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|dir| has_programs(dir));
    if beside_pg_ctl.is_some() {
        return beside_pg_ctl;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(VERSIONED_ROOT)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.split('.').next()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_programs(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        let out = Command::new("sh").arg("-c").arg(format!("printf %s {}", quote("a'b $HOME"))).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b $HOME");
    }
}
