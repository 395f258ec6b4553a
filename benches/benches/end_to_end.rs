//! The whole stack, end to end: a switchover under pgbench load on the testkit's
//! local stack (the Qovery fake over HTTP with 3 services per environment and
//! ~1.8 s deploys, a PostgreSQL 15 primary and streaming standby, two
//! docker-registry servers, a Knot primary and secondary, the Cloudflare fake),
//! every provider built from the plan by `connect`. A fresh stack per repetition.
//!
//! Everything below is measured inside the run it describes:
//!
//! - `e2e_rto_over_critical_path` = the report's measured RTO / the critical path of
//!   the same run. The critical path sums, stage by stage up to the RTO's end (the
//!   `verify` stage), the slowest step's real operation time: the busy time of the
//!   provider calls that step made (each call timed and attributed to its step), and
//!   for a deploy step the Qovery fake's own deployment time from the request to the
//!   deployment's end (queued + deploying), when longer, and for the RFC 2136 DNS step
//!   the time until both Knot servers answer the DR target (a watcher asks them every
//!   5 ms over DNS, so the zone transfer to the secondary counts). What is left over is the
//!   engine's own cost: polling granularity, journaling, scheduling.
//! - `e2e_switchover_lost_rows`: rows committed on the old primary (pgbench_history
//!   and the probe table) that are not on the new one, counted with SQL on both
//!   servers, independently of the SDK.
//! - `e2e_write_unavailable_ms`: a probe client inserts a row every ~2 ms into the old
//!   primary, and once that fails (fenced), into the new one; the time from the last
//!   acknowledged commit on the old primary to the first on the new one.
//!
//! `QDR_E2E_STEPS=1` also prints, per step, its wall time and its real operation time.

use std::time::{Duration, Instant};

use qovery_dr_benches::timed::{CallLog, TimedCall, timed};
use qovery_dr_benches::{figure, note, setting};
use qovery_dr_core::engine::{AutoApprove, Engine, EngineOptions, Outcome, RunMode, RunReport};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_providers::connect::{ConnectOptions, connect};
use qovery_dr_providers::rfc2136::DnsAuthoritativeResolver;
use qovery_dr_testkit::local_stack::{APP, APP_DR, Load, LocalStack, LocalStackOptions};

const REPETITIONS: usize = 5;
const POLL: Duration = Duration::from_millis(100);

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("end_to_end: {what}: {e}");
    std::process::exit(1);
}

struct Probe {
    last_old: Option<Instant>,
    first_new: Option<Instant>,
}

/// Inserts into the old primary until it refuses, then into the new one until it accepts.
async fn probe(old_port: u16, new_port: u16, stop: tokio::sync::watch::Receiver<bool>) -> Probe {
    let connect = |port: u16| async move {
        let conninfo = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
        let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(conn);
        Some(client)
    };
    let (old, new) = (connect(old_port).await, connect(new_port).await);
    let mut out = Probe { last_old: None, first_new: None };
    let (Some(old), Some(new)) = (old, new) else { return out };
    let insert = "INSERT INTO qdr_probe (site) VALUES ($1)";
    let mut old_open = true;
    while !*stop.borrow() {
        if old_open {
            match old.execute(insert, &[&"old"]).await {
                Ok(_) => out.last_old = Some(Instant::now()),
                Err(_) => old_open = false,
            }
        }
        if !old_open && new.execute(insert, &[&"new"]).await.is_ok() {
            out.first_new = Some(Instant::now());
            return out;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// When every Knot server first answers the DR target for `app` (asked every 5 ms over DNS).
async fn both_serve(servers: Vec<std::net::SocketAddr>) -> Option<Instant> {
    use qovery_dr_core::DnsRecordId;
    use qovery_dr_core::provider::AuthoritativeResolver as _;
    let resolver = DnsAuthoritativeResolver::new(servers.clone(), Duration::from_secs(1));
    let record = DnsRecordId::new(APP);
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let mut all = true;
        for s in &servers {
            let served = resolver.lookup(&s.to_string(), &record).await.ok().flatten();
            all &= served.is_some_and(|t| t.as_str() == APP_DR);
        }
        if all {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

struct Sample {
    ratio: f64,
    rto_ms: f64,
    critical_ms: f64,
    lost_rows: f64,
    unavailable_ms: f64,
}

/// The real operation time of each step: its calls' busy time (the union of their
/// intervals), or for a deploy step the fake's request → end of deployment when longer.
fn critical_path_ms(
    report: &RunReport,
    calls: &[TimedCall],
    deploys: &[(String, Instant, Instant)],
    dns_served: &[(String, Instant)],
) -> f64 {
    let last = report.steps.iter().rposition(|s| s.stage == "verify").unwrap_or(report.steps.len());
    let mut stages: Vec<(String, f64)> = Vec::new();
    for step in &report.steps[..=last.min(report.steps.len().saturating_sub(1))] {
        let mut spans: Vec<(Instant, Instant)> =
            calls.iter().filter(|c| c.step.as_deref() == Some(step.name.as_str())).map(|c| (c.start, c.end)).collect();
        spans.sort();
        let (mut busy, mut cursor) = (Duration::ZERO, None::<Instant>);
        for (s, e) in &spans {
            let s = cursor.map_or(*s, |c| c.max(*s));
            if *e > s {
                busy += *e - s;
            }
            cursor = Some(cursor.map_or(*e, |c| c.max(*e)));
        }
        let mut real = busy.as_secs_f64() * 1000.0;
        if let Some(env) = step.name.strip_prefix("deploy:") {
            let first = spans.first().map(|s| s.0);
            for (e, at, done) in deploys {
                if e == env && first.is_some_and(|f| *at >= f) {
                    let from = first.unwrap_or(*at);
                    real = real.max(done.duration_since(from).as_secs_f64() * 1000.0);
                }
            }
        }
        if let Some(record) = step.name.strip_prefix("dns:")
            && let (Some(first), Some((_, served))) = (spans.first(), dns_served.iter().find(|(r, _)| r == record))
        {
            // The switch is real until the last authoritative server serves it (zone transfer included).
            real = real.max(served.saturating_duration_since(first.0).as_secs_f64() * 1000.0);
        }
        if std::env::var_os("QDR_E2E_STEPS").is_some() {
            note(&format!(
                "  {:<14} {:<50} wall {:>5} ms  real {real:>7.1} ms",
                step.stage, step.name, step.duration_ms
            ));
        }
        match stages.last_mut() {
            Some((name, slowest)) if *name == step.stage => *slowest = slowest.max(real),
            _ => stages.push((step.stage.clone(), real)),
        }
    }
    stages.iter().map(|(_, ms)| ms).sum()
}

async fn one_run(rep: usize) -> Sample {
    let stack = LocalStack::start(LocalStackOptions::default()).await.unwrap_or_else(|e| fail("the local stack", e));
    let plan_path = stack.write_plan().unwrap_or_else(|e| fail("the plan", e));
    let plan = DrPlan::load(&plan_path).await.unwrap_or_else(|e| fail("the plan", e));
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| fail("connect", e));
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| fail("the heartbeat", e));
    stack
        .primary
        .sql("CREATE TABLE qdr_probe (id bigserial PRIMARY KEY, site text NOT NULL, at timestamptz DEFAULT clock_timestamp())")
        .unwrap_or_else(|e| fail("the probe table", e));
    let log = CallLog::default();
    let Some((lock, journal)) = connected.state.clone() else { fail("the plan", "no [state]") };
    let engine: Engine = Engine::builder(plan.clone(), timed(&connected.providers, &log))
        .lock(lock)
        .journal(journal)
        .approver(AutoApprove::new("bench"))
        .options(EngineOptions {
            operator: "end_to_end bench".into(),
            poll_interval: POLL,
            drain_ttl: false,
            ..EngineOptions::default()
        })
        .build();
    let load = Load::start(&stack.primary, 300).unwrap_or_else(|e| fail("pgbench", e));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let prober = tokio::spawn(probe(stack.primary.port, stack.standby.port, stop_rx));
    let watcher = tokio::spawn(both_serve(stack.knot.servers().to_vec()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = match engine.run(RunMode::Switchover).await {
        Ok(r) if r.outcome == Outcome::Succeeded => r,
        Ok(r) => fail("the switchover", r.to_text()),
        Err(f) => fail("the switchover", format!("{}\n{}", f.error, f.report.to_text())),
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !prober.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = stop_tx.send(true);
    let probe = prober.await.unwrap_or_else(|e| fail("the probe", e));
    drop(load);

    let count = |node: &qovery_dr_testkit::local_stack::PgNode, sql: &str| -> f64 {
        node.sql(sql).unwrap_or_else(|e| fail("counting rows", e)).parse::<f64>().unwrap_or_else(|e| fail("a count", e))
    };
    let rows = "SELECT (SELECT count(*) FROM pgbench_history) + (SELECT count(*) FROM qdr_probe WHERE site = 'old')";
    let lost_rows = (count(&stack.primary, rows) - count(&stack.standby, rows)).max(0.0);
    let unavailable_ms = match (probe.last_old, probe.first_new) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64() * 1000.0,
        _ => fail("the probe", "no commit seen on one side"),
    };
    let (queued, deploying) = (stack.options.queued, stack.options.deploying);
    let deploys: Vec<(String, Instant, Instant)> = stack.qovery.with(|s| {
        s.deployments
            .values()
            .map(|d| {
                let at = d.at.into_std();
                (d.env.clone(), at, at + queued + deploying)
            })
            .collect()
    });
    let rto_ms = report.measured_rto_ms.unwrap_or_else(|| fail("the report", "no measured RTO")) as f64;
    let served = watcher.await.unwrap_or_else(|e| fail("the DNS watcher", e));
    let dns_served =
        vec![(APP.to_owned(), served.unwrap_or_else(|| fail("the DNS watcher", "the DR target never served")))];
    let critical_ms = critical_path_ms(&report, &log.calls(), &deploys, &dns_served);
    note(&format!(
        "repetition {rep}: RTO {rto_ms:.0} ms, critical path {critical_ms:.0} ms, {lost_rows} rows lost, writes unavailable {unavailable_ms:.0} ms"
    ));
    Sample { ratio: rto_ms / critical_ms, rto_ms, critical_ms, lost_rows, unavailable_ms }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    note(
        "a switchover under pgbench load (4 clients) through every real provider of the local stack, built by connect",
    );
    note("measured RTO and critical path come from the same run; rows are counted on both servers with SQL");
    setting("e2e_repetitions", REPETITIONS);
    setting("e2e_poll_interval_ms", POLL.as_millis());
    let o = LocalStackOptions::default();
    setting("e2e_services_per_environment", o.services.len());
    setting("e2e_fake_deploy_ms", (o.queued + o.deploying).as_millis());
    let mut samples = Vec::new();
    for rep in 0..REPETITIONS {
        samples.push(one_run(rep).await);
    }
    let pick = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    note("e2e_rto_over_critical_path = measured RTO / critical path (goal <= 1.10)");
    figure("e2e_rto_over_critical_path", &pick(|s| s.ratio), 3);
    figure("e2e_rto_ms", &pick(|s| s.rto_ms), 0);
    figure("e2e_critical_path_ms", &pick(|s| s.critical_ms), 0);
    note("e2e_switchover_lost_rows: committed on the old primary, missing on the new (goal 0)");
    figure("e2e_switchover_lost_rows", &pick(|s| s.lost_rows), 0);
    note("e2e_write_unavailable_ms: last commit on the old primary to first commit on the new (goal: median <= 300)");
    figure("e2e_write_unavailable_ms", &pick(|s| s.unavailable_ms), 0);
}
