//! Servers a test starts must not outlive it. Fixtures shared through a whole
//! test binary are often leaked on purpose (their `Drop` never runs), so each
//! server gets a watchdog: a shell loop that kills it once the test process is gone.

use std::process::{Command, Stdio};

/// Kills `server_pid` (and only it) when the current process has exited.
pub fn kill_when_tests_exit(server_pid: u32) {
    let me = std::process::id();
    let script = format!("while kill -0 {me} 2>/dev/null; do sleep 1; done; kill {server_pid} 2>/dev/null");
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
