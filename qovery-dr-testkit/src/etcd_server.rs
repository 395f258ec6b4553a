//! etcd members on 127.0.0.1 for tests that need a real etcd (the distributed
//! lock and journal): one alone or a cluster, with the flags tuned for fast
//! elections. Each member is killed when the handle drops, and by a watchdog
//! when the process that started it exits (fixtures leaked on purpose included).
//!
//! The binary is `$QDR_ETCD`, else `/usr/bin/etcd` (Debian's `etcd-server`).
//!
//! ```no_run
//! use qovery_dr_testkit::etcd_server::EtcdServer;
//!
//! let mut etcd = EtcdServer::cluster(3).expect("etcd starts");
//! let endpoints = etcd.endpoints(); // http://127.0.0.1:<port>, one per member
//! etcd.kill(0); // SIGKILL one member
//! # let _ = endpoints;
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary the tests use.
pub fn binary() -> Result<PathBuf, String> {
    let p = std::env::var_os("QDR_ETCD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "etcd is missing at {}: run ./scripts/test (it installs Debian's etcd-server) or set QDR_ETCD",
            p.display()
        ))
    }
}

/// What etcd logs when another process took its port.
const PORT_TAKEN: &str = "address already in use";

/// `n` distinct free ports on 127.0.0.1 (the listeners are held until all are chosen, so
/// none repeats).
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let held = (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>();
    let held = held.map_err(|e| format!("no free port: {e}"))?;
    held.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

#[derive(Debug)]
struct Member {
    child: Option<Child>,
    client_url: String,
    log: PathBuf,
}

/// Running etcd members.
#[derive(Debug)]
pub struct EtcdServer {
    members: Vec<Member>,
    dir: PathBuf,
}

impl EtcdServer {
    /// One member.
    pub fn single() -> Result<EtcdServer, String> {
        Self::cluster(1)
    }

    /// A cluster of `n` members on loopback ports, each healthy when this returns.
    ///
    /// A port is free when chosen and taken by etcd a moment later: another process can
    /// bind it in between. A start that fails that way is made again on fresh ports
    /// (three times at most); any other failure is reported at once.
    pub fn cluster(n: usize) -> Result<EtcdServer, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_cluster(n) {
                Err(e) if e.contains(PORT_TAKEN) => last = e,
                other => return other,
            }
        }
        Err(format!("{last}\n(three starts on fresh ports all lost a port to another process)"))
    }

    fn start_cluster(n: usize) -> Result<EtcdServer, String> {
        let etcd = binary()?;
        let all = free_ports(3 * n)?;
        let first = all.first().copied().unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("qdr-etcd-{}-{first}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ports: Vec<&[u16]> = all.chunks(3).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, p)| format!("dr{i}=http://127.0.0.1:{}", p[1])).collect();
        let mut server = EtcdServer { members: Vec::new(), dir: dir.clone() };
        for (i, p) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{}", p[0]);
            let peer_url = format!("http://127.0.0.1:{}", p[1]);
            let log = dir.join(format!("dr{i}.log"));
            let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let child = Command::new(&etcd)
                .args(["--name", &format!("dr{i}")])
                .arg("--data-dir")
                .arg(dir.join(format!("dr{i}.data")))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new", "--initial-cluster-token", "qdr-test"])
                .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", p[2])])
                .args(["--heartbeat-interval=10", "--election-timeout=100"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", etcd.display()))?;
            crate::reaper::kill_when_tests_exit(child.id());
            server.members.push(Member { child: Some(child), client_url, log });
        }
        for i in 0..n {
            server.wait_healthy(i)?;
        }
        Ok(server)
    }

    fn wait_healthy(&self, i: usize) -> Result<(), String> {
        let Some(m) = self.members.get(i) else { return Err(format!("no member {i}")) };
        let addr = m.client_url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let healthy = TcpStream::connect(&addr).ok().and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
                let mut body = String::new();
                s.read_to_string(&mut body).ok()?;
                Some(body.contains("\"health\":\"true\""))
            });
            if healthy == Some(true) {
                return Ok(());
            }
            let log = std::fs::read_to_string(&m.log).unwrap_or_default();
            if log.contains(PORT_TAKEN) {
                return Err(format!("etcd member {i} could not listen:\n{log}"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcd member {i} not healthy after 20 s:\n{}",
                    std::fs::read_to_string(&m.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Stops member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
