//! The main example with `--live`, killed with SIGKILL mid-deploy against the real
//! stack (a switchover, a failover, a drill), then resumed: the run completes and each
//! mutation reached the peers once. And README's local-stack commands, as a user runs them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::stack::*;

/// The `failover_drill` example built with the real providers (`live`).
fn failover_drill() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        // scripts/test built every example with these features before running the tests.
        if std::env::var_os("QDR_EXAMPLES_PREBUILT").is_some() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // The feature set of `cargo test --workspace --all-features` (so, in the suite, a
        // no-op); `live` is among them.
        let status =
            Command::new(cargo).args(["build", "-q", "--workspace", "--all-features", "--examples"]).status().unwrap();
        assert!(status.success(), "building the examples with the real providers failed");
    });
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join("failover_drill");
    assert!(path.exists(), "{} was built", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_example_killed_mid_deploy_resumes_and_applies_each_mutation_once() {
    let t0 = std::time::Instant::now();
    let stack = Stack::start_with(true).await;
    println!("phase: stack up after {:?}", t0.elapsed());
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    // Deploys long enough to be killed in the middle of one.
    stack.qovery.set_durations(Duration::from_millis(500), Duration::from_secs(4));
    let plan = stack.write_plan(&stack.plan_toml());
    let bin = failover_drill();
    println!("phase: example built after {:?}", t0.elapsed());
    let args = ["--live", "--plan", plan.to_str().unwrap(), "--yes", "--no-ttl-drain"];

    // First process: killed with SIGKILL as soon as it starts deploying the DR environment.
    kill_mid_deploy(&bin, &args, "switchover").await;
    println!("phase: first run killed after {:?}", t0.elapsed());
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f", "the first run had promoted the DR database");
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY, "and had not switched DNS yet");

    // Second process: resumes from the plan's [state] journal and completes.
    let report = resume(&bin, &args);
    for step in report["steps"].as_array().into_iter().flatten() {
        println!("resumed report: {} {} ms, {} attempt(s)", step["name"], step["duration_ms"], step["attempts"]);
    }
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["mode"], "switchover");

    // At the peers: everything moved, each mutation once.
    assert_eq!(stack.knot_answer(APP), APP_DR);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_DR));
    let timeline: u32 = stack.standby.q("SELECT timeline_id FROM pg_control_checkpoint()").parse().unwrap();
    assert_eq!(timeline, 2, "promoted exactly once (one timeline switch)");
    let requests = stack.qovery.requests().await;
    let dr = &stack.environments.1;
    let deploys = requests
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.starts_with(&format!("/environment/{dr}/")) && p.ends_with("deploy"))
        .count();
    assert_eq!(deploys, 1, "the DR environment was deployed once; the resume waited for that deployment");
    let image_updates = requests.iter().filter(|(m, p, _)| m == "PUT" && p.starts_with("/container/")).count();
    assert_eq!(image_updates, SERVICES.len(), "each service pointed at the DR registry once");
}

/// Runs the example in `mode` and kills it with SIGKILL ~0.8 s after it starts a deploy step.
async fn kill_mid_deploy(bin: &std::path::Path, args: &[&str], mode: &str) {
    let mut child = Command::new(bin)
        .args(args)
        .args(["--mode", mode])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let reader = tokio::task::spawn_blocking(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let deploying = line.contains(" deploy:") && line.trim_end().ends_with("...");
            seen.push(line);
            if deploying {
                return (true, seen);
            }
        }
        (false, seen)
    });
    let Ok(joined) = tokio::time::timeout(Duration::from_secs(120), reader).await else {
        let _ = child.kill();
        panic!("the first {mode} did not reach a deploy step within 120 s");
    };
    let (deploying, seen) = joined.unwrap();
    assert!(deploying, "the first {mode} reached a deploy step:\n{}", seen.join("\n"));
    tokio::time::sleep(Duration::from_millis(800)).await; // the deploy request is in flight or accepted
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
}

/// `--resume --json` in a new process; the report.
fn resume(bin: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).args(args).args(["--resume", "--json"]).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the resume failed\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_killed_mid_deploy_of_its_clone_resumes_deletes_the_clone_and_leaves_production_alone() {
    let stack = Stack::start_options(LocalStackOptions::default()).await;
    stack.qovery.set_durations(Duration::from_millis(500), Duration::from_secs(4));
    let envs_before: Vec<String> = stack.qovery.with(|s| s.envs.keys().cloned().collect());
    let plan = stack.write_plan(&stack.plan_toml());
    let bin = failover_drill();
    let args = ["--live", "--plan", plan.to_str().unwrap(), "--yes", "--no-ttl-drain"];
    kill_mid_deploy(&bin, &args, "drill").await;
    let clones = stack.qovery.with(|s| s.envs.len()) - envs_before.len();
    assert_eq!(clones, 1, "the killed drill had created its clone");

    let report = resume(&bin, &args);
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["mode"], "drill");
    let requests = stack.qovery.requests().await;
    let cloned = requests.iter().filter(|(m, p, _)| m == "POST" && p.ends_with("/clone")).count();
    assert_eq!(cloned, 1, "one clone, created once: {requests:?}");
    let envs_after: Vec<String> = stack.qovery.with(|s| s.envs.keys().cloned().collect());
    assert_eq!(envs_after, envs_before, "the clone was deleted");
    let prod = [stack.environments.0.clone(), stack.environments.1.clone()];
    assert!(
        !requests
            .iter()
            .any(|(m, p, _)| m == "POST" && p.contains("/deploy") && prod.iter().any(|e| p.contains(e.as_str()))),
        "no deployment of a production environment"
    );
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "t", "the standby still replays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_killed_mid_deploy_resumes_and_promotes_once() {
    let stack = Stack::start_options(LocalStackOptions::default()).await;
    stack.qovery.set_durations(Duration::from_millis(500), Duration::from_secs(4));
    let plan = stack.write_plan(&stack.plan_toml());
    let bin = failover_drill();
    let args = ["--live", "--plan", plan.to_str().unwrap(), "--yes", "--no-ttl-drain"];
    kill_mid_deploy(&bin, &args, "failover").await;
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f", "the killed failover had promoted");

    let report = resume(&bin, &args);
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    assert_eq!(report["mode"], "failover");
    assert_eq!(stack.knot_answer(APP), APP_DR);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_DR));
    let timeline: u32 = stack.standby.q("SELECT timeline_id FROM pg_control_checkpoint()").parse().unwrap();
    assert_eq!(timeline, 2, "promoted exactly once");
    let dr = &stack.environments.1;
    let deploys = stack
        .qovery
        .requests()
        .await
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.starts_with(&format!("/environment/{dr}/")) && p.ends_with("deploy"))
        .count();
    assert_eq!(deploys, 1, "the DR environment was deployed once");
}

/// The example built with every feature (`local_stack` needs `local-stack`).
fn example(name: &str) -> PathBuf {
    let drill = failover_drill();
    let path = drill.with_file_name(name);
    assert!(path.exists(), "{} was built", path.display());
    path
}

/// README's "Everything on your machine": the `local_stack` example in one process, the
/// live `failover_drill` against the plan it wrote in another; then Ctrl-C stops the stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_live_example_runs_against_the_local_stack_example() {
    let dir = std::env::temp_dir().join(format!("qdr-readme-stack-{}", std::process::id()));
    let mut stack = Command::new(example("local_stack"))
        .args(["--dir", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    qovery_dr_testkit::reaper::kill_when_tests_exit(stack.id());
    let stdout = BufReader::new(stack.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let plan = loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
        let line = line.unwrap_or_else(|_| panic!("local_stack did not print its plan within 120 s"));
        if let Some(p) = line.strip_prefix("plan: ") {
            break PathBuf::from(p);
        }
    };
    assert_eq!(plan, dir.join("plan.toml"));
    let out = Command::new(failover_drill())
        .args(["--live", "--plan", plan.to_str().unwrap(), "--yes", "--no-ttl-drain"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("switchover") && stdout.contains(": succeeded"), "{stdout}");
    assert!(stdout.contains("measured RPO 0s"), "{stdout}");
    // Ctrl-C stops every server and the example exits cleanly.
    let pid = stack.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = stack.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut stack.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "local_stack exited with {status}: {stderr}");
    assert!(stderr.contains("local stack stopped (Ctrl-C)"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
