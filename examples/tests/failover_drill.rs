//! The main example as a user runs it: each mode with `--json`, and a real
//! process killed with SIGKILL mid-run, then resumed with `--resume`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/example.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    common::example("failover_drill")
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

fn sibling(name: &str) -> PathBuf {
    example().with_file_name(name)
}

fn chromium() -> PathBuf {
    let path =
        std::env::var_os("QDR_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium is required for the report test and was not found at {}: run ./scripts/test (it installs Debian's chromium) or set QDR_CHROMIUM",
        path.display()
    );
    path
}

fn headless(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

#[test]
fn the_html_drill_report_renders_in_a_real_browser() {
    let dir = std::env::temp_dir().join(format!("qdr-example-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("drill.jsonl");
    let v = run_json(&["--mode", "drill", "--journal", journal.to_str().unwrap()]);
    assert_report(&v, "drill");
    let out = dir.join("report");
    let status = Command::new(sibling("drill_report"))
        .args(["--journal", journal.to_str().unwrap(), "--out", out.to_str().unwrap(), "--runbook"])
        .status()
        .unwrap();
    assert!(status.success());
    let html_path = out.join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    for external in ["src=\"http", "href=\"http", "<link", "url(http", "@import"] {
        assert!(!html.contains(external), "self-contained: no external asset ({external})");
    }
    let runbook = std::fs::read_to_string(out.join("runbook.md")).unwrap();
    assert!(
        runbook.contains("```mermaid") && runbook.contains("Roll back:") && runbook.contains("oncall-sre"),
        "{runbook}"
    );
    let steps = v["steps"].as_array().unwrap().len();

    let url = format!("file://{}", html_path.display());
    let dom =
        Command::new(chromium()).args(headless(&dir.join("profile-dom"))).arg("--dump-dom").arg(&url).output().unwrap();
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("class=\"step-bar\"").count(), steps, "one bar per step in the rendered page");
    let figure = |id: &str| -> String {
        let start = dom.find(&format!("id=\"{id}\">")).unwrap_or_else(|| panic!("#{id} rendered")) + id.len() + 6;
        dom[start..].split('<').next().unwrap().to_owned()
    };
    assert!(figure("rto").contains("within objective"), "RTO figure: {}", figure("rto"));
    assert!(figure("rpo").contains("within objective"), "RPO figure: {}", figure("rpo"));

    let png = dir.join("report.png");
    let shot = Command::new(chromium())
        .args(headless(&dir.join("profile-shot")))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1300,1100")
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "chromium failed: {}", String::from_utf8_lossy(&shot.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let colors: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let ink = pixels.iter().filter(|p| p.iter().take(3).any(|c| *c < 200)).count();
    assert!(colors.len() > 20, "the screenshot is not blank ({} colors)", colors.len());
    assert!(ink * 100 > pixels.len(), "more than 1% of the page is drawn ({ink} of {})", pixels.len());
    let green = pixels.iter().filter(|p| p.len() >= 3 && p[0] == 0x2e && p[1] == 0x7d && p[2] == 0x32).count();
    assert!(green > 100, "the step bars are drawn ({green} green pixels)");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two orchestrators against one etcd: exactly one runs; the holder is killed with
/// SIGKILL mid-run; a third process takes over once the 3 s lease expires and finishes
/// from the shared journal, with each non-idempotent action done exactly once.
#[cfg(feature = "distributed")]
#[test]
fn two_orchestrators_one_etcd_one_runs_and_a_successor_takes_over_after_sigkill() {
    let etcd = qovery_dr_testkit::etcd_server::EtcdServer::single().unwrap();
    let endpoints = etcd.endpoints().join(",");
    let journal = || {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoints, "get", "--prefix", "/qovery-dr/journal/", "--print-value-only"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    one_runs_then_a_successor_takes_over("etcd", &["--etcd", &endpoints, "--lease-ttl", "3s"], journal);
    drop(etcd);
}

/// The same with the lock and journal in PostgreSQL: the killed holder's session ends
/// with its process, which frees the advisory lock.
#[cfg(feature = "distributed")]
#[test]
fn two_orchestrators_one_postgres_one_runs_and_a_successor_takes_over_after_sigkill() {
    let pg = qovery_dr_testkit::pg_server::PgInstance::start("").unwrap();
    let target = format!("127.0.0.1:{}/postgres", pg.port());
    let port = pg.port().to_string();
    let journal = || {
        let sql = "SELECT entry FROM qovery_dr_journal ORDER BY plan, seq";
        let out = qovery_dr_testkit::pg_server::run(
            "psql",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-At", "-c", sql, "postgres"],
        )
        .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    one_runs_then_a_successor_takes_over("pg", &["--pg-lock", &target], journal);
    drop(pg);
}

/// Two `failover_drill` processes started at once with `backend` args: exactly one runs and
/// the other exits naming it; the holder is killed with SIGKILL mid-deploy; a successor
/// resumes with `--lock-wait` and finishes; `journal()` returns the shared journal's entries.
#[cfg(feature = "distributed")]
fn one_runs_then_a_successor_takes_over(tag: &str, backend: &[&str], journal: impl Fn() -> String) {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;

    let dir = std::env::temp_dir().join(format!("qdr-example-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let world = dir.join("shared.world.json");
    let w = world.to_str().unwrap();
    let mut common = vec!["--mode", "switchover", "--yes", "--json", "--world", w];
    common.extend_from_slice(backend);
    // Both at once; each process's stderr (progress) goes line by line to the test.
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|i| {
            let mut child = Command::new(example())
                .args(&common)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stderr = child.stderr.take().unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send((i, line));
                }
            });
            child
        })
        .collect();
    drop(tx);
    let mut lines: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(90);
    let holder = loop {
        let (i, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no process reached the deploy stage:\n{lines:#?}"));
        let started_deploying = line.contains("    deploy:") && line.ends_with("...");
        lines[i].push(line);
        if started_deploying {
            break i;
        }
    };
    // The holder is mid-run (past the point of no return): kill it.
    children[holder].kill().unwrap();
    children[holder].wait().unwrap();
    let other = 1 - holder;
    let status = children[other].wait().unwrap();
    while let Ok((i, line)) = rx.recv_timeout(Duration::from_millis(200)) {
        lines[i].push(line);
    }
    let refused = lines[other].join("\n");
    assert!(!status.success(), "the second orchestrator must not run:\n{refused}");
    assert!(refused.contains("holds the lock"), "it names the holder:\n{refused}");
    assert!(refused.contains(&format!("pid {}", children[holder].id())), "the holder's identity:\n{refused}");
    // The machine too: across machines the host is what an operator needs.
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "failover_drill".to_owned());
    assert!(refused.contains(&format!("@{host}[pid {}]", children[holder].id())), "the holder's host:\n{refused}");

    // A successor takes over after the 3 s lease expires, from the shared journal.
    let out = Command::new(example())
        .args(["--yes", "--json", "--world", w, "--resume", "--lock-wait", "30s"])
        .args(backend)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "takeover failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_report(&v, "switchover");

    // Exactly once: one promotion in the shared journal, one deployment per service in the world.
    let journal = journal();
    assert_eq!(journal.matches("\"event\":\"run_started\"").count(), 1, "one run, taken over:\n{journal}");
    assert_eq!(journal.matches("\"step\":\"promote-database\",\"output\"").count(), 1, "promoted once");
    let world: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&world).unwrap()).unwrap();
    let mut per_service = std::collections::BTreeMap::<String, usize>::new();
    for d in world["state"]["deployments"].as_object().unwrap().values() {
        for s in d["services"].as_array().unwrap() {
            *per_service.entry(s.as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(per_service.len(), 3, "{per_service:?}");
    assert!(per_service.values().all(|n| *n == 1), "each service deployed exactly once: {per_service:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `plan_check` on a plan whose DR region comes from a Terraform output and whose DR
/// cluster is compared with one (the real CLI): the ties and no drift, the DR tfvars
/// written; after `terraform apply` moves the cluster, the drift with both values and
/// exit status 1.
#[test]
fn plan_check_shows_terraform_drift_and_writes_the_dr_tfvars() {
    let terraform = std::env::var("QDR_TERRAFORM").unwrap_or_else(|_| "terraform".to_owned());
    let dir = std::env::temp_dir().join(format!("qdr-plan-check-tf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("infra")).unwrap();
    std::fs::write(
        dir.join("infra/main.tf"),
        "variable \"cluster_id\" { type = string }\noutput \"cluster_id\" { value = var.cluster_id }\n\
         output \"region\" { value = \"eu-central-1\" }\n",
    )
    .unwrap();
    let apply = |cluster: &str| {
        let out = Command::new(&terraform)
            .args([&format!("-chdir={}", dir.join("infra").display()), "apply", "-auto-approve", "-input=false"])
            .arg(format!("-var=cluster_id={cluster}"))
            .output()
            .unwrap_or_else(|e| {
                panic!("`{terraform}` does not run ({e}): this test needs Terraform (scripts/tools.sh)")
            });
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    const DR_CLUSTER: &str = "c0a8f6b2-6f1e-4c55-9d6e-1a2b3c4d5e02";
    apply(DR_CLUSTER);
    let plan = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml")).unwrap();
    let (before, after) = plan.split_once("[sites.dr]\n").unwrap();
    let after = after.replacen("region = \"eu-central-1\"", "region = \"tf:dr/region\"", 1);
    let plan = format!(
        "{before}[sites.dr]\n{after}\n[terraform]\nbinary = \"{terraform}\"\nsources.dr = {{ dir = \"infra\" }}\n\
         compare = {{ \"sites.dr.cluster\" = \"tf:dr/cluster_id\" }}\n"
    );
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    let run = || {
        Command::new(sibling("plan_check"))
            .arg(dir.join("plan.toml"))
            .args(["--dr-tfvars", &dir.join("dr.tfvars.json").display().to_string()])
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("sites.dr.region takes its value from tf:dr/region"), "{stdout}");
    assert!(stdout.contains("sites.dr.cluster is compared with tf:dr/cluster_id"), "{stdout}");
    assert!(stdout.contains("terraform drift: 2 field(s) compared, 0 differ"), "{stdout}");
    let tfvars: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dr.tfvars.json")).unwrap()).unwrap();
    assert_eq!(tfvars["cluster_id"], DR_CLUSTER);

    apply("c-moved");
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "DRIFT (used by the failover) sites.dr.cluster: the plan says \"{DR_CLUSTER}\" (the plan file), Terraform says \"c-moved\" (tf:dr/cluster_id now)"
        )),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("drift in a field the failover uses"));
    std::fs::remove_dir_all(&dir).unwrap();
}
