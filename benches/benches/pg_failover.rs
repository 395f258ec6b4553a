//! PostgreSQL failover on real PostgreSQL 15 under pgbench load: the fence, a lagging
//! promotion, the data-loss bound of unplanned failovers, and the write gap of a
//! switchover. The replication manager is the real one; the engine's other providers
//! are the testkit's simulation (fast), so every figure is PostgreSQL's and the SDK's.
//! A fresh primary and streaming standby per repetition.
//!
//! - `pg_fence_escapes`: statements that committed after the fence, over all tried
//!   (`pg_fence_escapes_tried`): an application role's `BEGIN READ WRITE`,
//!   `SET default_transaction_read_only = off` and `SET SESSION CHARACTERISTICS … READ
//!   WRITE`, each in a new session and in a session opened before the fence.
//! - `pg_promote_lagging_ms`: `promote_standby` on a standby 4 s behind in replay, with
//!   no hot-standby feedback (the case where `pg_promote(true)` stalled 30 s).
//! - `pg_rpo_bound_minus_truth_ms`: unplanned failovers (primary crashed under load,
//!   heartbeat every 200 ms), the reported bound minus the true loss (newest commit on
//!   the old primary's durable state minus the newest on the new one); alternately with
//!   the orchestrator's clock right and 1.5 s late (`…_skewed` is the late half alone).
//! - `pg_write_unavailable_ms`: switchovers; a probe inserting every ~2 ms, last commit
//!   on the old primary to first on the new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qovery_dr_benches::{a_first, figure, note, setting};
use qovery_dr_core::engine::{AutoApprove, Clock, Engine, EngineOptions, HeartbeatWriter, Interlock, MemoryJournal};
use qovery_dr_core::engine::{Outcome, RunMode, RunReport, SystemClock};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::provider::ReplicationManager;
use qovery_dr_core::{DatabaseId, Timestamp};
use qovery_dr_providers::postgres::{PgEndpoint, PostgresReplicationManager};
use qovery_dr_testkit::local_stack::{Load, PgNode};
use qovery_dr_testkit::{World, WorldConfig};

const REPETITIONS: usize = 3;
const HEARTBEAT: Duration = Duration::from_millis(200);

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("pg_failover: {what}: {e}");
    std::process::exit(1);
}

fn plan() -> DrPlan {
    let text = include_str!("../../examples/plans/aws-cross-region.toml")
        .replace("heartbeat_interval = \"5s\"", "heartbeat_interval = \"1s\"");
    DrPlan::parse(&text, PlanFormat::Toml).unwrap_or_else(|e| fail("the example plan", e))
}

fn sql(node: &PgNode, q: &str) -> String {
    node.sql(q).unwrap_or_else(|e| fail("psql", e))
}

struct Pair {
    primary: PgNode,
    standby: PgNode,
    manager: Arc<PostgresReplicationManager>,
}

fn pair(db: &DatabaseId) -> Pair {
    let primary = PgNode::primary().unwrap_or_else(|e| fail("the primary", e));
    primary.pgbench_init(1).unwrap_or_else(|e| fail("pgbench -i", e));
    let standby = PgNode::standby_of(&primary, "dr_slot").unwrap_or_else(|e| fail("the standby", e));
    let ep = |n: &PgNode| PgEndpoint::new("127.0.0.1", n.port, "postgres", "postgres");
    let manager = Arc::new(PostgresReplicationManager::physical(db.clone(), ep(&primary), ep(&standby)));
    Pair { primary, standby, manager }
}

#[derive(Debug)]
struct LateClock(Duration);

impl Clock for LateClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(Timestamp::now().unix_millis().saturating_sub(self.0.as_millis() as u64))
    }
}

fn engine(plan: &DrPlan, manager: Arc<PostgresReplicationManager>, late: Duration, overrides: bool) -> Engine {
    let sim = World::from_plan(plan);
    sim.world.set_config(WorldConfig::real_time_fast());
    sim.world.use_real_wall_clock();
    let mut providers = sim.providers();
    providers.replication = manager;
    providers.clock = None;
    let mut b = if late.is_zero() {
        Engine::builder(plan.clone(), providers).clock(SystemClock)
    } else {
        Engine::builder(plan.clone(), providers).clock(LateClock(late))
    };
    b = b.journal(MemoryJournal::new()).approver(AutoApprove::new("oncall-sre")).options(EngineOptions {
        operator: "pg_failover bench".into(),
        poll_interval: Duration::from_millis(50),
        drain_ttl: false,
        ..EngineOptions::default()
    });
    if overrides {
        b = b.override_interlock(Interlock::PrimaryMayAcceptWrites, "the primary was crashed by the benchmark");
    }
    b.build()
}

async fn run(engine: &Engine, mode: RunMode) -> RunReport {
    match engine.run(mode).await {
        Ok(r) if r.outcome == Outcome::Succeeded => r,
        Ok(r) => fail(&format!("the {mode}"), r.to_text()),
        Err(f) => fail(&format!("the {mode}"), format!("{}\n{}", f.error, f.report.to_text())),
    }
}

async fn client(port: u16, user: &str) -> Option<tokio_postgres::Client> {
    let conninfo = format!("host=127.0.0.1 port={port} user={user} dbname=postgres");
    let (c, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(c)
}

/// (escapes, tried) after one fence under load.
async fn fence_escapes(db: &DatabaseId) -> (usize, usize) {
    let p = pair(db);
    sql(&p.primary, "CREATE ROLE app LOGIN; CREATE TABLE t (x int); GRANT ALL ON t TO app");
    let _load = Load::start(&p.primary, 60).unwrap_or_else(|e| fail("pgbench", e));
    let open = client(p.primary.port, "app").await.unwrap_or_else(|| fail("a session of app", "no connection"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    p.manager.fence_primary(db).await.unwrap_or_else(|e| fail("the fence", e));
    let escapes = [
        "BEGIN READ WRITE; INSERT INTO t VALUES (1); COMMIT",
        "SET default_transaction_read_only = off; INSERT INTO t VALUES (2)",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; INSERT INTO t VALUES (3)",
    ];
    let (mut escaped, mut tried) = (0, 0);
    for sql in escapes {
        tried += 2;
        if let Some(c) = client(p.primary.port, "app").await
            && c.batch_execute(sql).await.is_ok()
        {
            escaped += 1;
        }
        if open.batch_execute(sql).await.is_ok() {
            escaped += 1;
        }
    }
    let rows: usize = sql(&p.primary, "SELECT count(*) FROM t").parse().unwrap_or_else(|e| fail("a count", e));
    (escaped.max(rows), tried)
}

async fn promote_lagging(db: &DatabaseId) -> f64 {
    let p = pair(db);
    sql(&p.standby, "ALTER SYSTEM SET recovery_min_apply_delay = '4s'");
    sql(&p.standby, "ALTER SYSTEM SET hot_standby_feedback = off");
    sql(&p.standby, "SELECT pg_reload_conf()");
    {
        let _load = Load::start(&p.primary, 6).unwrap_or_else(|e| fail("pgbench", e));
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    if sql(&p.standby, "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()") != "t" {
        fail("the lagging standby", "it had no WAL left to replay");
    }
    let started = Instant::now();
    p.manager.promote_standby(db).await.unwrap_or_else(|e| fail("the promotion", e));
    started.elapsed().as_secs_f64() * 1000.0
}

fn newest_ms(node: &PgNode) -> f64 {
    sql(node, "SELECT coalesce(extract(epoch FROM max(mtime)) * 1000, 0) FROM pgbench_history")
        .parse()
        .unwrap_or_else(|e| fail("newest row", e))
}

/// Reported bound minus the true loss, in ms, for one unplanned failover.
async fn rpo_bound_minus_truth(plan: &DrPlan, late: Duration) -> f64 {
    let db = &plan.primary().database.id;
    let p = pair(db);
    p.manager.setup_heartbeat(None).await.unwrap_or_else(|e| fail("the heartbeat table", e));
    let hb = HeartbeatWriter::spawn(p.manager.clone(), db.clone(), HEARTBEAT);
    let load = Load::start(&p.primary, 60).unwrap_or_else(|e| fail("pgbench", e));
    tokio::time::sleep(Duration::from_secs(3)).await;
    p.primary.crash().unwrap_or_else(|e| fail("crashing the primary", e));
    drop((load, hb));
    let report = run(&engine(plan, p.manager.clone(), late, true), RunMode::Failover).await;
    let reported = report.measured_rpo_ms.unwrap_or_else(|| fail("the report", "no measured RPO")) as f64;
    p.primary.start().unwrap_or_else(|e| fail("restarting the old primary", e));
    let truth = (newest_ms(&p.primary) - newest_ms(&p.standby)).max(0.0);
    note(&format!("unplanned failover, orchestrator {late:?} late: reported {reported} ms, true loss {truth:.0} ms"));
    reported - truth
}

/// Last commit on the old primary to first on the new, in ms, for one switchover.
async fn write_gap(plan: &DrPlan) -> f64 {
    let db = &plan.primary().database.id;
    let p = pair(db);
    p.manager.setup_heartbeat(None).await.unwrap_or_else(|e| fail("the heartbeat table", e));
    sql(&p.primary, "CREATE TABLE qdr_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())");
    let _hb = HeartbeatWriter::spawn(p.manager.clone(), db.clone(), HEARTBEAT);
    let _load = Load::start(&p.primary, 60).unwrap_or_else(|e| fail("pgbench", e));
    let (old, new) = (client(p.primary.port, "postgres").await, client(p.standby.port, "postgres").await);
    let (Some(old), Some(new)) = (old, new) else { fail("the probe", "no connection") };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(async move {
        let (mut last_old, mut old_open) = (None, true);
        while !*stop_rx.borrow() {
            if old_open {
                match old.execute("INSERT INTO qdr_probe DEFAULT VALUES", &[]).await {
                    Ok(_) => last_old = Some(Instant::now()),
                    Err(_) => old_open = false,
                }
            }
            if !old_open && new.execute("INSERT INTO qdr_probe DEFAULT VALUES", &[]).await.is_ok() {
                return (last_old, Some(Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (last_old, None)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    run(&engine(plan, p.manager.clone(), Duration::ZERO, false), RunMode::Switchover).await;
    for _ in 0..250 {
        if probe.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    match probe.await {
        Ok((Some(a), Some(b))) => b.saturating_duration_since(a).as_secs_f64() * 1000.0,
        _ => fail("the probe", "no commit seen on one side"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plan = plan();
    let db = plan.primary().database.id.clone();
    note("real PostgreSQL 15 pairs on 127.0.0.1 under pgbench load (4 clients); a fresh pair per repetition");
    setting("pg_repetitions", REPETITIONS);
    setting("pg_heartbeat_interval_ms", HEARTBEAT.as_millis());
    let (mut escapes, mut tried, mut promote, mut gaps) = (0, 0, Vec::new(), Vec::new());
    let (mut bound, mut bound_skewed) = (Vec::new(), Vec::new());
    for rep in 0..REPETITIONS {
        let (e, t) = fence_escapes(&db).await;
        escapes += e;
        tried += t;
        promote.push(promote_lagging(&db).await);
        // Right and late clocks alternate which goes first.
        let order = if a_first(rep) {
            [Duration::ZERO, Duration::from_millis(1500)]
        } else {
            [Duration::from_millis(1500), Duration::ZERO]
        };
        for late in order {
            let d = rpo_bound_minus_truth(&plan, late).await;
            bound.push(d);
            if !late.is_zero() {
                bound_skewed.push(d);
            }
        }
        gaps.push(write_gap(&plan).await);
    }
    note("pg_fence_escapes: statements of an application role committed after the fence (goal 0)");
    setting("pg_fence_escapes", escapes);
    setting("pg_fence_escapes_tried", tried);
    note("pg_promote_lagging_ms: promotion of a standby 4 s behind in replay (goal <= 2000)");
    figure("pg_promote_lagging_ms", &promote, 0);
    note("pg_rpo_bound_minus_truth_ms: reported loss bound - true loss (goal: <= heartbeat + 100, never negative)");
    figure("pg_rpo_bound_minus_truth_ms", &bound, 0);
    figure("pg_rpo_bound_minus_truth_ms_skewed", &bound_skewed, 0);
    note(
        "pg_write_unavailable_ms: switchover, last commit on the old primary to first on the new (goal: median <= 300)",
    );
    figure("pg_write_unavailable_ms", &gaps, 0);
}
