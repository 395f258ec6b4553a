//! PostgreSQL 15 servers on 127.0.0.1 for tests that need a real one (the
//! PostgreSQL failover lock and journal, the replication manager): `initdb`
//! with trust authentication in a scratch directory, `pg_ctl start` on a free
//! port, stopped immediately when dropped.
//!
//! `initdb` refuses to run as root, so as root every server command runs as
//! the `postgres` user (through `runuser`). The binaries come from
//! `$QDR_PG_BIN`, else `/usr/lib/postgresql/15/bin`.
//!
//! ```no_run
//! use qovery_dr_testkit::pg_server::PgInstance;
//!
//! let pg = PgInstance::start("").expect("postgres starts");
//! println!("postgres on 127.0.0.1:{}", pg.port());
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A PostgreSQL server binary (`initdb`, `pg_ctl`, `psql`...).
pub fn bin(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::var_os("QDR_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    let path = dir.join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "PostgreSQL 15 binary {} is missing: run ./scripts/test (it installs postgresql-15) or set QDR_PG_BIN",
            path.display()
        ))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A command for a server tool, run as `postgres` when we are root.
pub fn command(tool: &str) -> Result<Command, String> {
    let path = bin(tool)?;
    Ok(if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    })
}

/// Runs a server tool to completion; an error carries its output.
pub fn run(tool: &str, args: &[&str]) -> Result<Output, String> {
    let out = command(tool)?.args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    crate::etcd_server::free_ports(1)?.pop().ok_or_else(|| "no free port".to_owned())
}

/// An empty scratch directory owned by the user the server runs as.
pub fn scratch_dir() -> Result<PathBuf, String> {
    let dir =
        std::env::temp_dir().join(format!("qdr-pg-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if is_root() {
        let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err(format!("chown postgres {}", dir.display()));
        }
    }
    Ok(dir)
}

/// `initdb` in `data` (user `postgres`, trust authentication), with `conf` appended to its
/// `postgresql.conf`.
pub fn initdb(data: &Path, conf: &str) -> Result<(), String> {
    let d = data.to_str().ok_or("non-UTF-8 path")?;
    run("initdb", &["-D", d, "-U", "postgres", "--auth=trust", "--data-checksums", "-E", "UTF8", "--no-sync"])?;
    let path = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.push_str(conf);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One running server; stopped (immediately) and removed when dropped.
#[derive(Debug)]
pub struct PgInstance {
    root: PathBuf,
    port: u16,
}

impl PgInstance {
    /// A new server listening on 127.0.0.1, with `conf` added to its configuration.
    pub fn start(conf: &str) -> Result<PgInstance, String> {
        Self::start_on_ports(conf, free_port)
    }

    /// [`start`](Self::start) on the ports `pick` gives (a test hands it a taken one).
    #[doc(hidden)]
    pub fn start_on_ports(conf: &str, mut pick: impl FnMut() -> Result<u16, String>) -> Result<PgInstance, String> {
        let root = scratch_dir()?;
        initdb(&root.join("data"), &format!("listen_addresses = '127.0.0.1'\nfsync = off\n{conf}"))?;
        // Dropped on failure: stopped (if it ever started) and its directory removed.
        let mut pg = PgInstance { root, port: 0 };
        let (data, log) = (pg.root.join("data"), pg.root.join("server.log"));
        // A port is free when chosen and bound by the server a moment later: another
        // process can take it in between. A start that lost its port is made again on a
        // fresh one (three times at most); any other failure is reported at once.
        let mut last = String::new();
        for _ in 0..3 {
            let port = pick()?;
            let opts = format!("-p {port} -k {}", pg.root.display());
            let started = run(
                "pg_ctl",
                &["-D", data.to_str().unwrap_or(""), "-l", log.to_str().unwrap_or(""), "-o", &opts, "-w", "start"],
            );
            match started {
                Ok(_) => {
                    pg.port = port;
                    return Ok(pg);
                }
                Err(e) if std::fs::read_to_string(&log).unwrap_or_default().contains("Address already in use") => {
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(format!("{last}\n(three starts on fresh ports all lost their port to another process)"))
    }

    /// Its port on 127.0.0.1 (user `postgres`, database `postgres`, no password).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        let data = self.root.join("data");
        let _ = run("pg_ctl", &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
