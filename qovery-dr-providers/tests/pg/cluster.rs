//! Real PostgreSQL 15 servers for the tests, on 127.0.0.1, each in its own
//! directory, stopped (immediately) and removed when dropped.
//!
//! `initdb` refuses to run as root: as root, every server command runs as the
//! `postgres` user. The binaries come from `QDR_PG_BIN` or
//! `/usr/lib/postgresql/15/bin`; a missing binary fails the test loudly.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use qovery_dr_providers::postgres::PgEndpoint;
use qovery_dr_testkit::pg_server;

pub fn bin(name: &str) -> PathBuf {
    pg_server::bin(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a server tool, as `postgres` when we are root.
pub fn run(tool: &str, args: &[&str]) -> Output {
    pg_server::run(tool, args).unwrap_or_else(|e| panic!("{e}"))
}

fn free_port() -> u16 {
    pg_server::free_port().unwrap()
}

fn scratch() -> PathBuf {
    pg_server::scratch_dir().unwrap()
}

#[derive(Debug)]
pub struct PgServer {
    pub root: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    stopped: AtomicBool,
}

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

impl PgServer {
    /// A new primary.
    pub fn primary() -> PgServer {
        let root = scratch();
        let data = root.join("data");
        pg_server::initdb(&data, CONF).unwrap();
        let s = PgServer { root, data, port: free_port(), stopped: AtomicBool::new(true) };
        s.start();
        s
    }

    /// A primary that accepts TLS connections only (certificate signed by a
    /// test CA); returns the server and the CA file.
    #[allow(dead_code)] // used by the TLS test (feature postgres-tls)
    pub fn primary_tls_only() -> (PgServer, PathBuf) {
        let s = PgServer::primary();
        let dir = s.root.join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let sh = |cmd: &str| {
            let out = Command::new("sh").arg("-c").arg(cmd).current_dir(&dir).output().unwrap();
            assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
        };
        sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=qdr-test-ca 2>/dev/null",
        );
        sh("openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null");
        sh("printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf");
        sh(
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null",
        );
        sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.crt -days 2 -subj /CN=another-ca 2>/dev/null",
        );
        for f in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(f), s.data.join(f)).unwrap();
        }
        if pg_server::is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(s.data.join("server.crt"))
                .arg(s.data.join("server.key"))
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let ok = Command::new("chmod").arg("600").arg(s.data.join("server.key")).status().unwrap().success();
        assert!(ok);
        let conf = s.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        // Only TLS connections are accepted over TCP.
        std::fs::write(
            s.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl replication all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        s.crash();
        s.start();
        (s, dir.join("ca.crt"))
    }

    /// A streaming standby of `primary` through a new physical slot.
    pub fn standby_of(primary: &PgServer, slot: &str) -> PgServer {
        primary.sql(&format!("SELECT pg_create_physical_replication_slot('{slot}')"));
        let root = scratch();
        let data = root.join("data");
        let port = primary.port.to_string();
        run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-S",
                slot,
                "-c",
                "fast",
            ],
        );
        let s = PgServer { root, data, port: free_port(), stopped: AtomicBool::new(true) };
        s.start();
        s
    }

    pub fn start(&self) {
        let opts = format!("-p {} -k {}", self.port, self.root.display());
        let log = self.root.join("server.log");
        run("pg_ctl", &["-D", self.data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"]);
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// A clean shutdown.
    pub fn stop_fast(&self) {
        run("pg_ctl", &["-D", self.data.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// `pg_ctl stop -m immediate`: a crash, as far as the data is concerned.
    pub fn crash(&self) {
        run("pg_ctl", &["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> PgEndpoint {
        PgEndpoint::new("127.0.0.1", self.port, "postgres", "postgres")
    }

    /// Runs SQL with psql, returning the unaligned output.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("postgres", sql)
    }

    pub fn sql_in(&self, db: &str, sql: &str) -> String {
        let out = self.psql(db, sql);
        assert!(out.status.success(), "psql {sql:?} on port {}: {}", self.port, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Runs SQL expecting an error; returns its message.
    pub fn sql_err(&self, sql: &str) -> String {
        let out = self.psql("postgres", sql);
        assert!(!out.status.success(), "{sql:?} unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// One psql invocation against this server, stopping at the first error.
    fn psql(&self, db: &str, sql: &str) -> std::process::Output {
        Command::new(bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
            .output()
            .unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if !self.stopped.load(Ordering::SeqCst) {
            let Ok(mut cmd) = pg_server::command("pg_ctl") else { return };
            let _ = cmd
                .args(["-D", self.data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A pgbench write load against `server` until the returned guard is dropped.
pub struct Load {
    child: std::process::Child,
}

impl Load {
    pub fn start(server: &PgServer, seconds: u32) -> Load {
        let child = Command::new(bin("pgbench"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                "postgres",
                "-c",
                "4",
                "-j",
                "2",
                "-T",
                &seconds.to_string(),
                "-n",
                "postgres",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Load { child }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn pgbench_init(server: &PgServer) {
    pgbench_init_scale(server, 1);
}

pub fn pgbench_init_scale(server: &PgServer, scale: u32) {
    let out = Command::new(bin("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "-i",
            "-s",
            &scale.to_string(),
            "-q",
            "postgres",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&out.stderr));
}
