//! etcd members on 127.0.0.1 for the tests: one alone, or a three-member
//! cluster. Each member is killed when its handle drops or the test process exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::reaper::kill_when_tests_exit;

fn binary() -> PathBuf {
    let p = std::env::var_os("QDR_ETCD").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    assert!(
        p.exists(),
        "etcd is missing at {}: run ./scripts/test (it installs Debian's etcd-server) or set QDR_ETCD",
        p.display()
    );
    p
}

/// `n` distinct free ports (the listeners are held until all are chosen, so none repeats).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Member {
    child: Option<Child>,
    client_url: String,
    log: PathBuf,
}

/// Running etcd members.
pub struct Etcd {
    members: Vec<Member>,
    dir: PathBuf,
}

impl Etcd {
    /// One member.
    pub fn single() -> Etcd {
        Self::start(1)
    }

    /// A cluster of `n` members on loopback ports.
    pub fn cluster(n: usize) -> Etcd {
        Self::start(n)
    }

    fn start(n: usize) -> Etcd {
        let all = free_ports(3 * n);
        let dir = std::env::temp_dir().join(format!("qdr-etcd-{}-{}", std::process::id(), all[0]));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<(u16, u16, u16)> = all.chunks(3).map(|p| (p[0], p[1], p[2])).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, peer, _))| format!("dr{i}=http://127.0.0.1:{peer}")).collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer, metrics))| {
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let log = dir.join(format!("dr{i}.log"));
                let child = Command::new(binary())
                    .args(["--name", &format!("dr{i}")])
                    .args(["--data-dir", dir.join(format!("dr{i}.data")).to_str().unwrap()])
                    .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &initial.join(",")])
                    .args(["--initial-cluster-state", "new", "--initial-cluster-token", "qdr-test"])
                    .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{metrics}")])
                    .args(["--heartbeat-interval=10", "--election-timeout=100"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting etcd: {e}"));
                kill_when_tests_exit(child.id());
                Member { child: Some(child), client_url, log }
            })
            .collect();
        let etcd = Etcd { members, dir };
        for i in 0..n {
            etcd.wait_healthy(i);
        }
        etcd
    }

    fn wait_healthy(&self, i: usize) {
        let m = &self.members[i];
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
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} not healthy after 20 s:\n{}",
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Stops member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
