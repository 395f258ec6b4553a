//! Real Knot DNS servers on 127.0.0.1, authoritative for a test zone, accepting
//! TSIG-signed RFC 2136 updates.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const ZONE: &str = "qdr.test";
pub const KEY_NAME: &str = "qdr-key";
/// base64 of 32 bytes; only for these throwaway servers.
pub const KEY_SECRET: &str = "cWRyLXRlc3Qta2V5LXRoaXJ0eS10d28tYnl0ZXMhISE=";

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct KnotServer {
    pub addr: SocketAddr,
    pub root: PathBuf,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    let p = std::env::var_os("QDR_KNOTD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/sbin/knotd"));
    assert!(
        p.exists(),
        "knotd is missing at {}: run ./scripts/test (it installs Debian's knot) or set QDR_KNOTD",
        p.display()
    );
    p
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl KnotServer {
    /// Starts Knot serving `records` (zone-file lines relative to the zone, e.g. `app 60 A 203.0.113.10`).
    pub fn start(records: &[&str]) -> KnotServer {
        Self::start_with_key(records, KEY_SECRET)
    }

    /// The same, with `secret` (base64) as the TSIG key's secret.
    pub fn start_with_key(records: &[&str], secret: &str) -> KnotServer {
        let port = free_port();
        let root = std::env::temp_dir().join(format!(
            "qdr-knot-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("db")).unwrap();
        let zone_file = format!(
            "$ORIGIN {ZONE}.\n$TTL 60\n@ SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 900 604800 60\n@ NS ns1.{ZONE}.\nns1 A 127.0.0.1\n{}\n",
            records.join("\n")
        );
        std::fs::write(root.join(format!("{ZONE}.zone")), zone_file).unwrap();
        // Knot rejects YAML flow style: block style only.
        let config = format!(
            r#"server:
    rundir: "{root}"
    listen: 127.0.0.1@{port}

database:
    storage: "{root}/db"

log:
  - target: stderr
    any: info

key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}

acl:
  - id: qdr-update
    key: {KEY_NAME}
    action: update

template:
  - id: default
    storage: "{root}"
    zonefile-sync: -1
    journal-content: changes

zone:
  - domain: {ZONE}
    file: {ZONE}.zone
    acl: qdr-update
"#,
            root = root.display()
        );
        std::fs::write(root.join("knot.conf"), config).unwrap();
        let log = std::fs::File::create(root.join("knot.log")).unwrap();
        let child = Command::new(binary())
            .arg("--config")
            .arg(root.join("knot.conf"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        crate::reaper::kill_when_tests_exit(child.id());
        let s = KnotServer { addr: SocketAddr::from(([127, 0, 0, 1], port)), root, child: Some(child) };
        s.wait_ready();
        s
    }

    /// Waits until the server answers for the zone over TCP (Knot opens UDP and TCP together).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(self.addr).is_ok() && self.log().contains("loaded") {
                return;
            }
            assert!(Instant::now() < deadline, "knotd did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("knot.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
