//! PostgreSQL 15 servers for the stack: a primary and a physical streaming
//! standby (through a replication slot), or a publisher and a logical
//! subscriber; `psql` and `pgbench` to act on them as an application would.
//!
//! These calls run processes and wait for them: they block. From async code, call
//! them from `tokio::task::spawn_blocking` (or accept a short block in a test).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::LocalStackError;
use crate::pg_server;

const CONF: &str = "
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 512MB
wal_log_hints = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 60
";

fn pg(e: String) -> LocalStackError {
    LocalStackError::failed("PostgreSQL", &e)
}

/// One PostgreSQL server on 127.0.0.1 (user `postgres`, trust authentication).
#[derive(Debug)]
pub struct PgNode {
    /// Its port.
    pub port: u16,
    root: PathBuf,
    data: PathBuf,
    stopped: AtomicBool,
}

impl PgNode {
    /// A new primary (also a logical publisher or subscriber).
    pub fn primary() -> Result<PgNode, LocalStackError> {
        let root = pg_server::scratch_dir().map_err(pg)?;
        let data = root.join("data");
        pg_server::initdb(&data, CONF).map_err(pg)?;
        let node = PgNode { port: pg_server::free_port().map_err(pg)?, root, data, stopped: AtomicBool::new(true) };
        node.start()?;
        Ok(node)
    }

    /// A physical streaming standby of `primary` through a new replication slot `slot`.
    pub fn standby_of(primary: &PgNode, slot: &str) -> Result<PgNode, LocalStackError> {
        primary.sql(&format!("SELECT pg_create_physical_replication_slot('{slot}')"))?;
        let root = pg_server::scratch_dir().map_err(pg)?;
        let data = root.join("data");
        let (port, dir) = (primary.port.to_string(), data.to_string_lossy().into_owned());
        pg_server::run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &dir,
                "-R",
                "-X",
                "stream",
                "-S",
                slot,
                "-c",
                "fast",
            ],
        )
        .map_err(pg)?;
        let node = PgNode { port: pg_server::free_port().map_err(pg)?, root, data, stopped: AtomicBool::new(true) };
        node.start()?;
        Ok(node)
    }

    /// Makes `subscriber` a logical replica of `publisher`: publication `qdr_pub` for all
    /// tables, subscription `qdr_sub`. Tables must exist on both sides first (logical
    /// replication carries no DDL); waits for the initial copy.
    pub fn subscribe(publisher: &PgNode, subscriber: &PgNode) -> Result<(), LocalStackError> {
        publisher.sql("CREATE PUBLICATION qdr_pub FOR ALL TABLES")?;
        subscriber.sql(&format!(
            "CREATE SUBSCRIPTION qdr_sub CONNECTION 'host=127.0.0.1 port={} user=postgres dbname=postgres' PUBLICATION qdr_pub",
            publisher.port
        ))?;
        for _ in 0..400 {
            if subscriber.sql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")? == "0" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LocalStackError::failed("the logical subscription's initial copy", "not done after 20 s"))
    }

    /// The plan's `server = { … }` for this node: how the orchestrator stops, rewinds and
    /// starts it (as `postgres` when the tests run as root).
    pub fn server_plan_line(&self) -> Result<String, LocalStackError> {
        let bin = pg_server::bin("pg_ctl").map_err(pg)?;
        let bin_dir = bin.parent().map(|p| p.display().to_string()).unwrap_or_default();
        let user = if pg_server::is_root() { ", os_user = \"postgres\"" } else { "" };
        Ok(format!(
            "server = {{ data_dir = \"{}\", bin_dir = \"{bin_dir}\", start_options = \"-p {} -k {}\", log_file = \"{}\"{user} }}\n",
            self.data.display(),
            self.port,
            self.root.display(),
            self.root.join("server.log").display()
        ))
    }

    /// Starts it (again).
    pub fn start(&self) -> Result<(), LocalStackError> {
        let opts = format!("-p {} -k {}", self.port, self.root.display());
        let log = self.root.join("server.log");
        let (data, log) = (self.data.to_string_lossy(), log.to_string_lossy());
        pg_server::run("pg_ctl", &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"]).map_err(pg)?;
        self.stopped.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Re-protection after a switchover or failover: this old primary becomes a physical
    /// standby of `new_primary`, as `PostgresReplicationManager::physical_reprotect_steps`
    /// tells an operator to do: a clean stop, `pg_rewind` from the new primary (with `-R`:
    /// `standby.signal` and its `primary_conninfo`), a new slot `slot` on the new primary,
    /// a start, and a wait until it streams.
    pub fn reprotect_as_standby_of(&self, new_primary: &PgNode, slot: &str) -> Result<(), LocalStackError> {
        if !self.stopped.load(Ordering::SeqCst) {
            pg_server::run("pg_ctl", &["-D", &self.data.to_string_lossy(), "-m", "fast", "-w", "stop"]).map_err(pg)?;
            self.stopped.store(true, Ordering::SeqCst);
        }
        let source = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", new_primary.port);
        let target = format!("--target-pgdata={}", self.data.display());
        pg_server::run("pg_rewind", &[&target, &format!("--source-server={source}"), "-R"]).map_err(pg)?;
        new_primary.sql(&format!("SELECT pg_create_physical_replication_slot('{slot}')"))?;
        let auto = self.data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).map_err(|e| LocalStackError::io(&auto, e))?;
        text.push_str(&format!("primary_slot_name = '{slot}'\n"));
        std::fs::write(&auto, text).map_err(|e| LocalStackError::io(&auto, e))?;
        self.start()?;
        for _ in 0..400 {
            if self.sql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")? == "1" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(LocalStackError::failed("re-protection", "the old primary does not stream from the new one after 20 s"))
    }

    /// `pg_ctl stop -m immediate`: a crash, as far as the data is concerned.
    pub fn crash(&self) -> Result<(), LocalStackError> {
        pg_server::run("pg_ctl", &["-D", &self.data.to_string_lossy(), "-m", "immediate", "-w", "stop"]).map_err(pg)?;
        self.stopped.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Runs SQL with `psql` (stopping at the first error); returns the unaligned output.
    pub fn sql(&self, sql: &str) -> Result<String, LocalStackError> {
        let psql = pg_server::bin("psql").map_err(pg)?;
        let out = Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
            .output()
            .map_err(|e| LocalStackError::failed("running psql", &e.to_string()))?;
        if !out.status.success() {
            return Err(LocalStackError::failed(
                &format!("psql {sql:?} on port {}", self.port),
                &String::from_utf8_lossy(&out.stderr),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `pgbench -i -s scale`: the pgbench tables, filled.
    pub fn pgbench_init(&self, scale: u32) -> Result<(), LocalStackError> {
        let pgbench = pg_server::bin("pgbench").map_err(pg)?;
        let out = Command::new(pgbench)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-i", "-s", &scale.to_string(), "-q", "postgres"])
            .output()
            .map_err(|e| LocalStackError::failed("running pgbench", &e.to_string()))?;
        if !out.status.success() {
            return Err(LocalStackError::failed("pgbench -i", &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// Its directory (data and server log).
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::SeqCst) {
            let Ok(mut cmd) = pg_server::command("pg_ctl") else { return };
            let _ = cmd
                .args(["-D", &self.data.to_string_lossy(), "-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A pgbench write load (4 clients) against a server until dropped.
#[derive(Debug)]
pub struct Load {
    child: Child,
}

impl Load {
    /// Starts `pgbench -c 4 -j 2 -T seconds` against `node` (its tables must exist).
    pub fn start(node: &PgNode, seconds: u32) -> Result<Load, LocalStackError> {
        let pgbench = pg_server::bin("pgbench").map_err(pg)?;
        let child = Command::new(pgbench)
            .args(["-h", "127.0.0.1", "-p", &node.port.to_string(), "-U", "postgres"])
            .args(["-c", "4", "-j", "2", "-T", &seconds.to_string(), "-n", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LocalStackError::failed("starting pgbench", &e.to_string()))?;
        Ok(Load { child })
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
