//! Prism, the spec-validating mock, started on 127.0.0.1 for one spec.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn prism_bin() -> PathBuf {
    let p = std::env::var_os("QDR_PRISM").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/prism/node_modules/.bin/prism"))
    });
    assert!(
        p.exists(),
        "Prism is not installed at {}: run ./scripts/test (it installs @stoplight/prism-cli into .tools/prism) or set QDR_PRISM",
        p.display()
    );
    p
}

pub struct Prism {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prism {
    /// Serves `spec` until dropped (or until the test process exits).
    pub fn start(spec: &Path) -> Prism {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("qdr-prism-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(prism_bin())
            .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        crate::reaper::kill_when_tests_exit(child.id());
        let prism = Prism { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Prism did not start: {}", prism.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        prism
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Validator errors Prism logged: requests that break the spec.
    pub fn violations(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("[VALIDATOR]") && l.contains("error"))
            .map(str::to_owned)
            .collect()
    }
}
