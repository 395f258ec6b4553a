//! [`LocalPgServer`]: a PostgreSQL server whose data directory this machine reaches, for
//! the one operation that needs more than SQL: a physical re-protection (stop, `pg_rewind`,
//! start as a standby).

use std::path::PathBuf;
use std::process::Stdio;

use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, SecretString};
use tokio::process::Command;

use super::endpoint::{PROVIDER, PgEndpoint};

fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

/// A PostgreSQL server the orchestrator can stop, rewind and start: its data directory is
/// on this machine (or a volume mounted here), with `pg_ctl` and `pg_rewind` of the same
/// major version on the `PATH` or in [`with_bin_dir`](Self::with_bin_dir).
///
/// Given to [`PostgresReplicationManager::with_standby_server`](super::PostgresReplicationManager::with_standby_server)
/// on the failback manager, it lets [`reprotect`](qovery_dr_core::provider::ReplicationManager::reprotect)
/// make the original primary a standby of the current one.
///
/// ```
/// use qovery_dr_providers::postgres::LocalPgServer;
/// let s = LocalPgServer::new("/var/lib/postgresql/15/main").with_start_options("-p 5432");
/// assert_eq!(s.data_dir().to_str(), Some("/var/lib/postgresql/15/main"));
/// ```
#[derive(Debug, Clone)]
pub struct LocalPgServer {
    data_dir: PathBuf,
    bin_dir: Option<PathBuf>,
    start_options: Option<String>,
    log_file: Option<PathBuf>,
    os_user: Option<String>,
}

impl LocalPgServer {
    /// The server of data directory `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), bin_dir: None, start_options: None, log_file: None, os_user: None }
    }

    /// Where `pg_ctl` and `pg_rewind` are (default: the `PATH`).
    pub fn with_bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Options given to the server at start (`pg_ctl start -o`), e.g. `-p 5433 -k /run/pg`.
    pub fn with_start_options(mut self, options: impl Into<String>) -> Self {
        self.start_options = Some(options.into());
        self
    }

    /// The server's log file at start (`pg_ctl start -l`).
    pub fn with_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Runs the tools as this operating-system user (through `runuser -u USER --`): the
    /// owner of the data directory, when the orchestrator runs as root (PostgreSQL's
    /// tools refuse to run as root).
    pub fn with_os_user(mut self, user: impl Into<String>) -> Self {
        self.os_user = Some(user.into());
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.as_ref().map_or_else(|| PathBuf::from(name), |d| d.join(name))
    }

    /// Runs a tool to its end; its exit code, and the last lines it wrote.
    async fn run(
        &self,
        op: &str,
        tool: &str,
        args: &[String],
        password: Option<&SecretString>,
    ) -> ProviderResult<(Option<i32>, String)> {
        let mut cmd = match &self.os_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user.as_str(), "--"]).arg(self.tool(tool));
                c
            }
            None => Command::new(self.tool(tool)),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        if let Some(p) = password {
            // Through the environment, never on the command line (`ps` shows arguments).
            cmd.env("PGPASSWORD", p.expose());
        }
        let out = cmd.output().await.map_err(|e| {
            err(
                ErrorKind::InvalidConfig,
                op,
                format!("cannot run {tool}: {e} (set bin_dir to the PostgreSQL server tools)"),
            )
        })?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
        Ok((out.status.code(), tail.join(" | ")))
    }

    /// Whether the server runs (`pg_ctl status`).
    pub async fn is_running(&self) -> ProviderResult<bool> {
        const OP: &str = "pg_ctl status";
        let data = self.data_dir.display().to_string();
        match self.run(OP, "pg_ctl", &["-D".into(), data, "status".into()], None).await? {
            (Some(0), _) => Ok(true),
            (Some(3), _) => Ok(false),
            (code, out) => Err(err(ErrorKind::InvalidConfig, OP, format!("pg_ctl status exited with {code:?}: {out}"))),
        }
    }

    /// Stops it (fast shutdown: sessions are ended, the shutdown is clean); a server that is
    /// not running is left as it is.
    pub async fn stop(&self) -> ProviderResult<()> {
        const OP: &str = "pg_ctl stop";
        if !self.is_running().await? {
            return Ok(());
        }
        let args = [
            "-D".to_owned(),
            self.data_dir.display().to_string(),
            "-m".into(),
            "fast".into(),
            "-w".into(),
            "stop".into(),
        ];
        match self.run(OP, "pg_ctl", &args, None).await? {
            (Some(0), _) => Ok(()),
            (code, out) => Err(err(ErrorKind::Transient, OP, format!("pg_ctl stop exited with {code:?}: {out}"))),
        }
    }

    /// Starts it and waits until it accepts connections.
    pub async fn start(&self) -> ProviderResult<()> {
        const OP: &str = "pg_ctl start";
        let mut args = vec!["-D".to_owned(), self.data_dir.display().to_string(), "-w".into()];
        if let Some(log) = &self.log_file {
            args.extend(["-l".to_owned(), log.display().to_string()]);
        }
        if let Some(o) = &self.start_options {
            args.extend(["-o".to_owned(), o.clone()]);
        }
        args.push("start".into());
        match self.run(OP, "pg_ctl", &args, None).await? {
            (Some(0), _) => Ok(()),
            (code, out) => Err(err(ErrorKind::Transient, OP, format!("pg_ctl start exited with {code:?}: {out}"))),
        }
    }

    /// `pg_rewind` this (stopped) server onto `source`'s timeline, with `-R`: it restarts as
    /// a standby of `source` (`standby.signal` and `primary_conninfo` written). What it wrote
    /// after the fork is discarded.
    pub async fn rewind_from(&self, source: &PgEndpoint) -> ProviderResult<String> {
        const OP: &str = "pg_rewind";
        // The password goes through PGPASSWORD; the connection string names the rest.
        let conninfo =
            format!("host={} port={} user={} dbname={}", source.host, source.port, source.user, source.dbname);
        let args = [
            format!("--target-pgdata={}", self.data_dir.display()),
            format!("--source-server={conninfo}"),
            "-R".to_owned(),
            "--progress".to_owned(),
        ];
        match self.run(OP, "pg_rewind", &args, source.password.as_ref()).await? {
            (Some(0), out) => Ok(out),
            (code, out) => Err(err(
                ErrorKind::Conflict,
                OP,
                format!(
                    "pg_rewind exited with {code:?}: {out} (it needs wal_log_hints = on or data checksums on the \
                     original primary, and the WAL since the fork on the source)"
                ),
            )),
        }
    }

    /// Appends `line` to the data directory's `postgresql.auto.conf` (read at start).
    pub async fn append_auto_conf(&self, line: &str) -> ProviderResult<()> {
        const OP: &str = "postgresql.auto.conf";
        let path = self.data_dir.join("postgresql.auto.conf");
        let mut text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{}: {e}", path.display())))?;
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        tokio::fs::write(&path, text)
            .await
            .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{}: {e}", path.display())))
    }
}
