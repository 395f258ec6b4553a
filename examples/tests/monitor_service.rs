//! The readiness monitor as a service (`monitor_service`), run as a user runs it: scraped
//! over HTTP while a fault is injected and removed, its webhook notifications counted by
//! a local receiver, stopped with SIGTERM; the Grafana dashboard checked against the
//! metrics it serves. On the simulated world, and with `--live` on the local stack's
//! real peers.
#![cfg(feature = "service")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/example.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/qovery-dr-monitor.json");

/// A running service; killed if the test ends before it stopped.
struct Service {
    child: Child,
    base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(args: &[&str]) -> Service {
        let mut child = Command::new(common::example("monitor_service"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        std::thread::spawn({
            let stderr = stderr.clone();
            move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let Some(address) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            panic!("the service did not start: stdout {first:?}, stderr:\n{}", stderr.lock().unwrap());
        };
        Service { base: address.to_owned(), child, stderr }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The value of `name{plan="…"}` in /metrics.
    async fn metric(&self, name: &str) -> Option<f64> {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `name` has `value`, or fails with what was seen.
    async fn wait_metric(&self, name: &str, value: f64, within: Duration) {
        let start = Instant::now();
        loop {
            let seen = self.metric(name).await;
            if seen == Some(value) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{name} stayed {seen:?}, not {value}, for {within:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and returns how long the service took to exit, and its status.
    fn terminate(&mut self) -> (Duration, std::process::ExitStatus) {
        let asked = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (asked.elapsed(), status);
            }
            assert!(asked.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A webhook receiver answering 200 to every POST.
async fn receiver() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    server
}

/// The notifications the receiver got, as `(check, from, to)`.
async fn received(server: &MockServer) -> Vec<(String, String, String)> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .map(|r| {
            let n: Value = serde_json::from_slice(&r.body).unwrap();
            (
                n["check"].as_str().unwrap().to_owned(),
                n["from"].as_str().unwrap().to_owned(),
                n["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn wait_received(server: &MockServer, n: usize, within: Duration) -> Vec<(String, String, String)> {
    let start = Instant::now();
    loop {
        let got = received(server).await;
        if got.len() >= n || start.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The metric names a scrape declares (`# TYPE name kind`), counters under their
/// `_total` sample name too.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_owned());
            if kind == "counter" {
                names.insert(format!("{name}_total"));
            }
        }
    }
    names
}

/// Every query of a Grafana dashboard (panels, rows' panels, template variables).
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            if p["type"] != "row" {
                let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
                if targets.is_empty() {
                    out.push((title.clone(), String::new()));
                }
                for t in targets {
                    out.push((title.clone(), t["expr"].as_str().unwrap_or_default().to_owned()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
            out.push((format!("variable {}", v["name"]), q.to_owned()));
        }
    }
    out
}

/// What is wrong with the dashboard against a scrape: queries naming no `qdr_` metric,
/// and `qdr_` names the service does not export (`absent`: names this scrape cannot
/// hold, each with the reason, still required to be among the monitor's metric names).
fn dashboard_problems(dashboard: &Value, scrape: &str, absent: &[(&str, &str)]) -> Vec<String> {
    let mut exported = exported(scrape);
    for (name, _why) in absent {
        if qovery_dr_core::monitor::MonitorMetrics::NAMES.contains(name) {
            exported.insert((*name).to_owned());
        }
    }
    let mut problems = Vec::new();
    for (panel, expr) in queries(dashboard) {
        let names: Vec<&str> =
            expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("qdr_")).collect();
        if names.is_empty() {
            problems.push(format!("{panel}: {expr:?} names no qdr_ metric"));
        }
        for name in names {
            if !exported.contains(name) {
                problems.push(format!("{panel}: {name} is not exported"));
            }
        }
    }
    problems
}

fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap()
}

#[test]
fn the_dashboard_check_rejects_a_metric_the_service_does_not_export() {
    let scrape = "# HELP qdr_ready x.\n# TYPE qdr_ready gauge\nqdr_ready{plan=\"p\"} 1.0\n\
                  # TYPE qdr_monitor_evaluations counter\nqdr_monitor_evaluations_total{plan=\"p\"} 3\n";
    let good = serde_json::json!({"panels": [
        {"type": "row", "title": "r", "panels": [{"type": "stat", "title": "a", "targets": [{"expr": "qdr_ready{plan=~\"$plan\"}"}]}]},
        {"type": "timeseries", "title": "b", "targets": [{"expr": "rate(qdr_monitor_evaluations_total[5m])"}]},
    ], "templating": {"list": [{"type": "query", "name": "plan", "query": {"query": "label_values(qdr_ready, plan)"}}]}});
    assert_eq!(dashboard_problems(&good, scrape, &[]), Vec::<String>::new());
    let broken = serde_json::json!({"panels": [
        {"type": "row", "title": "r", "panels": [{"type": "stat", "title": "typo", "targets": [{"expr": "qdr_raedy"}]}]},
        {"type": "stat", "title": "no target", "targets": []},
        {"type": "stat", "title": "not ours", "targets": [{"expr": "up"}]},
        {"type": "stat", "title": "counter without _total", "targets": [{"expr": "qdr_monitor_evaluation"}]},
    ]});
    assert_eq!(
        dashboard_problems(&broken, scrape, &[("qdr_monitor_evaluation", "not a name the monitor has")]),
        [
            "typo: qdr_raedy is not exported",
            "no target: \"\" names no qdr_ metric",
            "not ours: \"up\" names no qdr_ metric",
            "counter without _total: qdr_monitor_evaluation is not exported",
        ]
    );
}

/// The simulated world with an outage of the DR cluster from 7 s to 11 s: the metrics, the
/// readiness endpoint and the notifications follow it; SIGTERM ends the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_service_follows_an_outage_notifies_each_transition_once_and_stops_on_sigterm() {
    // A drill on record first, so the drill figures are served too.
    let dir = std::env::temp_dir().join(format!("qdr-monitor-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal.jsonl");
    let drill = Command::new(common::example("failover_drill"))
        .args(["--mode", "drill", "--yes", "--json", "--journal", journal.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(drill.status.success(), "the drill: {}", String::from_utf8_lossy(&drill.stderr));

    let hook = receiver().await;
    let mut service = Service::start(&[
        "--interval",
        "300ms",
        "--outage",
        "7s+4s",
        "--journal",
        journal.to_str().unwrap(),
        "--webhook",
        &format!("{}/hook", hook.uri()),
    ]);
    assert_eq!(service.get("/healthz").await, (200, "ok\n".to_owned()));
    service.wait_metric("qdr_dr_cluster_up", 1.0, Duration::from_secs(3)).await;
    let (status, body) = service.get("/readiness").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &report["ready"]), (200, &Value::Bool(true)), "{body}");
    assert_eq!(report["plan"], "shop-aws-cross-region");
    // The activities never done warn from the start (the drill counts as the partial one);
    // settled before the outage. The webhook notifier paces itself at one a second.
    // So do the plan's static-stability findings (deploys need the Qovery API, images are
    // copied from the primary's ECR).
    let baseline = wait_received(&hook, 5, Duration::from_secs(8)).await;
    let mut warned: Vec<&str> = baseline.iter().map(|(check, _, _)| check.as_str()).collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            "cadence:backup-restore-test",
            "cadence:full-failover-drill",
            "cadence:runbook-review",
            "static-stability:primary-region-down",
            "static-stability:qovery-api-down"
        ],
        "{baseline:?}"
    );
    assert!(baseline.iter().all(|(_, from, to)| from == "pass" && to == "warn"), "{baseline:?}");
    let scrape = service.get("/metrics").await.1;
    let absent = [("qdr_last_backup_age_seconds", "only the dump strategy has backups; this plan replicates")];
    assert_eq!(dashboard_problems(&dashboard(), &scrape, &absent), Vec::<String>::new(), "{scrape}");
    assert!(service.metric("qdr_last_drill_rto_seconds").await.is_some_and(|rto| rto > 0.0), "{scrape}");

    service.wait_metric("qdr_dr_cluster_up", 0.0, Duration::from_secs(5)).await;
    service.wait_metric("qdr_ready", 0.0, Duration::from_secs(2)).await;
    let (status, body) = service.get("/readiness").await;
    assert_eq!(status, 503, "not ready answers 503: {body}");
    service.wait_metric("qdr_dr_cluster_up", 1.0, Duration::from_secs(6)).await;
    service.wait_metric("qdr_ready", 1.0, Duration::from_secs(2)).await;
    // The recovery's notifications (4 at one a second), then some more evaluations for
    // any repeat.
    wait_received(&hook, baseline.len() + 8, Duration::from_secs(8)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<_> = received(&hook).await.into_iter().skip(baseline.len()).collect();
    let of = |check: &str| -> Vec<(String, String)> {
        after.iter().filter(|(c, _, _)| c.starts_with(check)).map(|(_, f, t)| (f.clone(), t.clone())).collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(of("cluster:"), [pair("pass", "fail"), pair("fail", "pass")], "{after:?}");
    assert_eq!(of("verdict"), [pair("pass", "fail"), pair("fail", "pass")], "{after:?}");
    assert_each_transition_once(&after);
    let sent = service.metric("qdr_monitor_notifications_total").await.unwrap();
    assert_eq!(sent as usize, received(&hook).await.len(), "every notification sent was counted, and received");

    let (took, status) = service.terminate();
    assert!(status.success(), "exit {status:?}; stderr:\n{}", service.stderr());
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    for (args, says) in [
        (&["--interval", "0s"][..], "--interval must be longer than zero"),
        (&["--confirmations", "0"][..], "--confirmations \"0\": a whole number, at least 1"),
        (&["--webhook", "ftp://x"][..], "an http or https URL"),
        (&["--webhook-format", "slack"][..], "--webhook-format needs --webhook"),
        (&["--heartbeat"][..], "it needs --live"),
        (&["--listen", "localhost"][..], "--listen \"localhost\""),
        (&["--outage", "1m"][..], "AT+FOR"),
    ] {
        let out = Command::new(common::example("monitor_service")).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A port already in use is named.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(common::example("monitor_service")).args(["--listen", &address]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {address}")), "{stderr}");
}

/// Each check's notifications after the baseline: a chain of transitions (each one's
/// `from` is the previous one's `to`: no transition notified twice) that ends where it
/// started (the fault was removed).
fn assert_each_transition_once(after: &[(String, String, String)]) {
    let mut by_check: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for (check, from, to) in after {
        by_check.entry(check).or_default().push((from, to));
    }
    for (check, chain) in by_check {
        for pair in chain.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{check}: {chain:?} (a transition repeated or lost)");
        }
        assert_eq!(chain.first().map(|t| t.0), chain.last().map(|t| t.1), "{check} recovered: {chain:?}");
    }
}

/// `--live` on the local stack's real peers (Qovery fake over HTTP, PostgreSQL 15 pair with
/// the service's own heartbeat, registries, Knot, the Cloudflare fake): the DR cluster
/// breaks in the Qovery fake and recovers; the scrape, the readiness endpoint and the
/// webhook follow; SIGTERM stops it within a second.
#[cfg(all(feature = "live", feature = "local-stack"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_service_on_the_local_stack_follows_a_broken_dr_cluster_and_its_repair() {
    use qovery_dr_testkit::local_stack::{LocalStack, LocalStackOptions};
    let stack = LocalStack::start(LocalStackOptions::default().mirrored(true).dr_registry_in_qovery(false))
        .await
        .unwrap_or_else(|e| panic!("the local stack did not start: {e}"));
    let plan = stack.write_plan().unwrap();
    let hook = receiver().await;
    let mut service = Service::start(&[
        "--live",
        "--heartbeat",
        "--plan",
        plan.to_str().unwrap(),
        "--interval",
        "500ms",
        "--webhook",
        &format!("{}/hook", hook.uri()),
    ]);
    // Ready against the real peers (the heartbeat replays on the standby within a few
    // evaluations); then quiet: the baseline's notifications (activities never done) sent.
    service.wait_metric("qdr_ready", 1.0, Duration::from_secs(20)).await;
    let mut baseline = received(&hook).await;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = received(&hook).await;
        if now.len() == baseline.len() {
            break;
        }
        baseline = now;
    }
    assert!(
        baseline
            .iter()
            .all(|(check, _, to)| (check.starts_with("cadence:") || check.starts_with("static-stability:"))
                && to == "warn"),
        "only the activities never done and the plan's static-stability findings notify at start: {baseline:?}"
    );
    let (status, body) = service.get("/readiness").await;
    assert_eq!(status, 200, "{body}");
    let scrape = service.get("/metrics").await.1;
    let absent = [
        ("qdr_last_backup_age_seconds", "only the dump strategy has backups; this pair replicates"),
        ("qdr_last_drill_age_seconds", "no drill in this stack's journal"),
        ("qdr_last_drill_rto_seconds", "no drill in this stack's journal"),
        ("qdr_last_drill_rpo_seconds", "no drill in this stack's journal"),
    ];
    assert_eq!(dashboard_problems(&dashboard(), &scrape, &absent), Vec::<String>::new(), "{scrape}");

    // The fault: the DR cluster in error at the Qovery API.
    let dr_cluster = stack.clusters.1.clone();
    let healthy = stack.qovery.with(|s| s.clusters.insert(dr_cluster.clone(), "DEPLOYMENT_ERROR".into())).unwrap();
    service.wait_metric("qdr_dr_cluster_up", 0.0, Duration::from_secs(10)).await;
    service.wait_metric("qdr_ready", 0.0, Duration::from_secs(5)).await;
    let (status, body) = service.get("/readiness").await;
    assert_eq!(status, 503, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains(&dr_cluster)),
        "the reason names the cluster: {body}"
    );
    wait_received(&hook, baseline.len() + 2, Duration::from_secs(10)).await;
    // Removed: the cluster deployed again.
    stack.qovery.with(|s| s.clusters.insert(dr_cluster.clone(), healthy));
    service.wait_metric("qdr_dr_cluster_up", 1.0, Duration::from_secs(10)).await;
    service.wait_metric("qdr_ready", 1.0, Duration::from_secs(5)).await;
    wait_received(&hook, baseline.len() + 4, Duration::from_secs(10)).await;
    // More evaluations, for any repeat.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<_> = received(&hook).await.into_iter().skip(baseline.len()).collect();
    let of = |check: &str| -> Vec<(String, String)> {
        after.iter().filter(|(c, _, _)| c == check).map(|(_, f, t)| (f.clone(), t.clone())).collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let cluster_check = format!("cluster:{dr_cluster}");
    assert_eq!(of(&cluster_check), [pair("pass", "fail"), pair("fail", "pass")], "{after:?}");
    assert_eq!(of("verdict"), [pair("pass", "fail"), pair("fail", "pass")], "{after:?}");
    assert_each_transition_once(&after);
    let sent = service.metric("qdr_monitor_notifications_total").await.unwrap();
    assert_eq!(sent as usize, received(&hook).await.len());

    let (took, status) = service.terminate();
    assert!(status.success(), "exit {status:?}; stderr:\n{}", service.stderr());
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");
}
