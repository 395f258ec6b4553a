//! A server process the stack started: its scratch directory, its log, and the
//! process itself, killed when the handle drops (and by a watchdog when the
//! process that started it exits, so a leaked handle leaks no server).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::LocalStackError;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty scratch directory named after `kind`.
pub(crate) fn scratch(kind: &str) -> Result<PathBuf, LocalStackError> {
    let dir =
        std::env::temp_dir().join(format!("qdr-{kind}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| LocalStackError::io(&dir, e))?;
    Ok(dir)
}

/// Writes `text` to `path`.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), LocalStackError> {
    std::fs::write(path, text).map_err(|e| LocalStackError::io(path, e))
}

/// A binary from an environment variable, else its Debian path; `MissingTool` names the package.
pub(crate) fn tool(var: &str, default: &str, package: &str) -> Result<PathBuf, LocalStackError> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default));
    if path.exists() {
        Ok(path)
    } else {
        Err(LocalStackError::MissingTool { path, package: package.to_owned(), variable: var.to_owned() })
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (DNS servers listen on both).
pub(crate) fn free_port_tcp_udp() -> Result<u16, LocalStackError> {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| LocalStackError::io("127.0.0.1:0", e))?;
        let port = tcp.local_addr().map_err(|e| LocalStackError::io("127.0.0.1:0", e))?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(LocalStackError::failed("finding a free port", "no port free for both TCP and UDP in 100 tries"))
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Daemon {
    what: String,
    child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Daemon {
    /// Spawns `command` with its output in `log`.
    pub(crate) fn spawn(what: &str, mut command: Command, log: PathBuf) -> Result<Daemon, LocalStackError> {
        let out = std::fs::File::create(&log).map_err(|e| LocalStackError::io(&log, e))?;
        let err = out.try_clone().map_err(|e| LocalStackError::io(&log, e))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| LocalStackError::failed(&format!("starting {what}"), &e.to_string()))?;
        crate::reaper::kill_when_tests_exit(child.id());
        Ok(Daemon { what: what.to_owned(), child: Some(child), log })
    }

    /// The log so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` every 20 ms for up to `within`; fails with the log if the process exits or time runs out.
    pub(crate) fn wait_until(
        &mut self,
        within: Duration,
        mut ready: impl FnMut(&Daemon) -> bool,
    ) -> Result<(), LocalStackError> {
        let deadline = Instant::now() + within;
        loop {
            if ready(self) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(LocalStackError::failed(
                    &format!("starting {}", self.what),
                    &format!("it exited ({status}):\n{}", self.log_text()),
                ));
            }
            if Instant::now() >= deadline {
                return Err(LocalStackError::failed(
                    &format!("starting {}", self.what),
                    &format!("not ready after {within:?}:\n{}", self.log_text()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
