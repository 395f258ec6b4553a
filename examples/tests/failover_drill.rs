//! The main example as a user runs it: each mode with `--json`, and a real
//! process killed with SIGKILL mid-run, then resumed with `--resume`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    // cargo test builds the examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("failover_drill");
    assert!(path.exists(), "{} is built by cargo test", path.display());
    path
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(example()).args(args).arg("--json").arg("--yes").stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}): {stdout}"))
}

fn assert_report(v: &serde_json::Value, mode: &str) {
    assert_eq!(v["outcome"], "succeeded", "{v:#}");
    assert_eq!(v["mode"], mode);
    assert!(v["measured_rto_ms"].as_u64().is_some(), "{v:#}");
    assert!(v["measured_rpo_ms"].as_u64().is_some(), "{v:#}");
    assert_eq!(v["objectives"]["rto"], "15m");
    let steps = v["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for s in steps {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["name"].is_string() && s["duration_ms"].is_u64() && s["attempts"].as_u64() >= Some(1), "{s}");
    }
}

#[test]
fn every_mode_runs_and_reports_json() {
    // The modes run in parallel: each takes a few seconds of real (simulated) time.
    let handles: Vec<_> = ["switchover", "failover", "drill", "failback"]
        .into_iter()
        .map(|mode| std::thread::spawn(move || (mode, run_json(&["--mode", mode]))))
        .collect();
    for h in handles {
        let (mode, v) = h.join().unwrap();
        assert_report(&v, mode);
        if mode != "drill" {
            assert_eq!(v["measured_rpo_ms"], 0, "{mode}: zero loss proven by LSN");
        }
    }
}

#[test]
fn a_failover_with_a_crashed_primary_database_is_refused_then_resumed_with_proof() {
    let dir = std::env::temp_dir().join(format!("qdr-example-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("failover.jsonl");
    let j = journal.to_str().unwrap();
    let out = Command::new(example())
        .args(["--mode", "failover", "--primary-db-down", "--yes", "--json", "--journal", j])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "refused");
    assert!(v["safe_state"].as_str().unwrap().contains("NOT promoted"), "{v:#}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"), "the user is told how to go on");
    let v = run_json(&[
        "--journal",
        j,
        "--resume",
        "--override",
        "primary-may-accept-writes=instance stopped in the console",
    ]);
    assert_eq!(v["outcome"], "succeeded", "{v:#}");
    assert_eq!(v["overrides"][0][0], "primary-may-accept-writes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killed_with_sigkill_mid_run_then_resumed_completes() {
    let dir = std::env::temp_dir().join(format!("qdr-example-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("run.jsonl");
    let j = journal.to_str().unwrap();
    let mut child = Command::new(example())
        .args(["--mode", "switchover", "--yes", "--json", "--journal", j])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the deployments have started (after the point of no return), then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("\"event\":\"step_started\",\"step\":\"deploy:") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never reached the deploy stage: {text}");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
    let before = std::fs::read_to_string(&journal).unwrap();
    assert!(!before.contains("run_finished"), "it died mid-run");

    let v = run_json(&["--journal", j, "--resume"]);
    assert_report(&v, "switchover");
    assert_eq!(v["measured_rpo_ms"], 0);
    let after = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(after.matches("\"event\":\"run_started\"").count(), 1, "one run, resumed, not restarted");
    assert_eq!(after.matches("\"step\":\"promote-database\",\"output\"").count(), 1, "promoted once");
    // The saved world shows each DR service deployed by exactly one request.
    let world: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.world.json")).unwrap()).unwrap();
    let deployments = world["state"]["deployments"].as_object().unwrap();
    let mut per_service = std::collections::BTreeMap::<String, usize>::new();
    for d in deployments.values() {
        for s in d["services"].as_array().unwrap() {
            *per_service.entry(s.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(per_service.len(), 3, "{per_service:?}");
    assert!(per_service.values().all(|n| *n == 1), "each service deployed exactly once: {per_service:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
