//! The failover engine driving real PostgreSQL (the other providers are the
//! testkit's simulation): switchover under a pgbench load loses nothing;
//! an unplanned failover reports a loss bound that never under-states the
//! ground truth; a lagging standby is refused.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::DatabaseId;
use qovery_dr_core::engine::{
    AutoApprove, Engine, EngineError, EngineOptions, HeartbeatWriter, Interlock, MemoryJournal, Outcome, RunMode,
    SystemClock,
};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::provider::{Node, ReplicationManager};
use qovery_dr_testkit::{World, WorldConfig};

use super::cluster::{Load, PgServer, pgbench_init};
use super::setup::{self, DB, Pair};

fn plan(rpo: &str) -> DrPlan {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap();
    let text = text
        .replace("rpo = \"1m\"", &format!("rpo = \"{rpo}\""))
        .replace("heartbeat_interval = \"5s\"", "heartbeat_interval = \"1s\"")
        .replace("id = \"shop-db\"", &format!("id = \"{DB}\""));
    plan_from(&text)
}

fn plan_from(text: &str) -> DrPlan {
    let plan = DrPlan::parse(text, PlanFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.primary().database.id, DatabaseId::new(DB));
    plan
}

/// An engine whose replication manager is the real pair; everything else simulated and fast.
fn engine(plan: &DrPlan, pair: Arc<Pair>, overrides: &[(Interlock, &str)]) -> Engine {
    engine_behind(plan, pair, overrides, Duration::ZERO)
}

/// The system clock, `behind` late: an orchestrator whose clock drifted.
#[derive(Debug)]
struct LateClock(Duration);

impl qovery_dr_core::engine::Clock for LateClock {
    fn now(&self) -> qovery_dr_core::Timestamp {
        let now = qovery_dr_core::Timestamp::now().unix_millis();
        qovery_dr_core::Timestamp::from_unix_millis(now.saturating_sub(self.0.as_millis() as u64))
    }
}

/// [`engine`] on an orchestrator whose clock is `behind` the databases' (real providers
/// declare no clock of their own, so the engine cannot see the skew by comparing them).
fn engine_behind(plan: &DrPlan, pair: Arc<Pair>, overrides: &[(Interlock, &str)], behind: Duration) -> Engine {
    let sim = World::from_plan(plan);
    sim.world.set_config(WorldConfig::real_time_fast());
    sim.world.use_real_wall_clock();
    let mut providers = sim.providers();
    providers.replication = pair;
    let mut b = if behind.is_zero() {
        Engine::builder(plan.clone(), providers).clock(SystemClock)
    } else {
        providers.clock = None;
        Engine::builder(plan.clone(), providers).clock(LateClock(behind))
    };
    b = b.journal(MemoryJournal::new()).approver(AutoApprove::new("oncall-sre")).options(EngineOptions {
        operator: "pg-test".into(),
        poll_interval: Duration::from_millis(50),
        drain_ttl: false,
        ..EngineOptions::default()
    });
    for (rule, why) in overrides {
        b = b.override_interlock(*rule, *why);
    }
    b.build()
}

fn db() -> DatabaseId {
    DatabaseId::new(DB)
}

async fn switchover_under_load(pair: Pair) {
    let pair = Arc::new(pair);
    let _hb = HeartbeatWriter::spawn(pair.clone(), db(), Duration::from_millis(200));
    let load = Load::start(&pair.primary, 60);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = engine(&plan("1m"), pair.clone(), &[])
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop(load);
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0), "{}", report.to_text());
    let on_old = pair.primary.sql("SELECT count(*) FROM pgbench_history");
    let on_new = pair.standby.sql("SELECT count(*) FROM pgbench_history");
    assert!(on_old.parse::<u64>().unwrap() > 100, "the load committed transactions ({on_old})");
    assert_eq!(on_new, on_old, "every committed transaction reached the new primary");
    let old_hb = pair.last_heartbeat(&db(), Node::Primary).await.unwrap().unwrap();
    let new_hb = pair.last_heartbeat(&db(), Node::Standby).await.unwrap().unwrap();
    assert_eq!(new_hb.sequence, old_hb.sequence, "every acknowledged heartbeat reached the new primary");
    let e =
        pair.primary.sql_err("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
    assert!(e.contains("read-only"), "the old primary refuses writes: {e}");
    pair.standby.sql("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn physical_switchover_under_load_loses_nothing() {
    let pair = setup::physical().await;
    pgbench_init(&pair.primary);
    switchover_under_load(pair).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logical_switchover_under_load_loses_nothing() {
    let pair = setup::logical_with(pgbench_init, false).await;
    switchover_under_load(pair).await;
}

fn epoch_ms(server: &PgServer, sql: &str) -> i64 {
    server.sql(sql).parse::<f64>().map(|s| (s * 1000.0) as i64).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplanned_failover_never_understates_the_loss() {
    unplanned_failover(Duration::ZERO).await;
}

/// The bound compared the heartbeat's time (the database's clock) with the
/// orchestrator's: 1.5 s behind, it under-stated the loss by about that much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestrator_clock_1500_ms_late_does_not_shrink_the_loss_bound() {
    unplanned_failover(Duration::from_millis(1500)).await;
}

async fn unplanned_failover(behind: Duration) {
    let pair = setup::physical().await;
    pgbench_init(&pair.primary);
    let pair = Arc::new(pair);
    let hb = HeartbeatWriter::spawn(pair.clone(), db(), Duration::from_millis(200));
    let load = Load::start(&pair.primary, 60);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The replication link breaks; the primary goes on committing for 2 s, then crashes.
    pair.standby.sql("ALTER SYSTEM SET primary_conninfo = ''");
    pair.standby.sql("SELECT pg_reload_conf()");
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(hb);
    pair.primary.crash();
    drop(load);
    let report = engine_behind(
        &plan("1m"),
        pair.clone(),
        &[(Interlock::PrimaryMayAcceptWrites, "pg_ctl stop -m immediate by the test")],
        behind,
    )
    .run(RunMode::Failover)
    .await
    .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let reported = report.measured_rpo_ms.expect("measured from heartbeats") as i64;
    // The fence that could not happen is reported as skipped, and the evidence says why the end is what it is.
    let fence = report.steps.iter().find(|s| s.name == "fence-primary").unwrap();
    assert_eq!(fence.note.as_deref(), Some("unreachable: NOT fenced"), "{fence:?}");
    assert!(report.to_text().contains("skipped"), "{}", report.to_text());
    let evidence = report.rpo_evidence.clone().unwrap_or_default();
    assert!(evidence.contains("found unreachable at"), "{evidence}");
    // Ground truth: restart the old primary alone and compare what each side committed.
    pair.primary.start();
    let old_count: u64 = pair.primary.sql("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let new_count: u64 = pair.standby.sql("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(old_count > new_count, "commits were lost ({old_count} on the old primary, {new_count} on the new)");
    let old_last = epoch_ms(&pair.primary, "SELECT extract(epoch FROM max(mtime)) FROM pgbench_history");
    let new_last = epoch_ms(&pair.standby, "SELECT extract(epoch FROM max(mtime)) FROM pgbench_history");
    let truth = old_last - new_last;
    assert!(truth > 500, "about 2 s of commits lost: {truth} ms");
    assert!(
        reported >= truth,
        "the report ({reported} ms) must never under-state the loss ({truth} ms)\n{}",
        report.to_text()
    );
    assert!(reported <= truth + 10_000, "and stays a useful bound ({reported} ms for {truth} ms)");
    println!(
        "unplanned failover (orchestrator {behind:?} late): lost {} commits over {truth} ms; reported bound {reported} ms",
        old_count - new_count
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_standby_is_refused_by_the_rpo_interlock() {
    let pair = setup::physical().await;
    pgbench_init(&pair.primary);
    let pair = Arc::new(pair);
    let hb = HeartbeatWriter::spawn(pair.clone(), db(), Duration::from_millis(200));
    let load = Load::start(&pair.primary, 60);
    tokio::time::sleep(Duration::from_secs(1)).await;
    pair.standby.sql("SELECT pg_wal_replay_pause()");
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(hb);
    pair.primary.crash();
    drop(load);
    let failed = engine(
        &plan("2s"),
        pair.clone(),
        &[(Interlock::PrimaryMayAcceptWrites, "pg_ctl stop -m immediate by the test")],
    )
    .run(RunMode::Failover)
    .await
    .unwrap_err();
    assert!(matches!(failed.error, EngineError::Refused { rule: Interlock::LagExceedsRpo, .. }), "{}", failed.error);
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "t", "not promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reads_the_last_verified_dump() {
    let pair = Arc::new(setup::dump().await);
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap()
        .replace("mode = \"logical\"", "mode = \"dump\"\ndump_interval = \"1m\"")
        .replace("id = \"shop-db\"", &format!("id = \"{DB}\""));
    let plan = plan_from(&text);
    assert_eq!(plan.replication().dump_interval, Some(Duration::from_secs(60)));
    let sim = World::from_plan(&plan);
    let mut providers = sim.providers();
    providers.replication = pair.clone();
    let report = qovery_dr_core::readiness::Readiness::new(plan, providers).evaluate().await;
    let check = report.checks.iter().find(|c| c.id.starts_with("replication:")).unwrap();
    assert_eq!(check.status, qovery_dr_core::readiness::CheckStatus::Pass, "{check:?}");
    assert!(report.metrics.last_backup_age_seconds.unwrap() < 60.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_against_a_paused_standby_is_refused_before_the_primary_is_fenced() {
    let pair = Arc::new(setup::physical().await);
    pair.standby.sql("SELECT pg_wal_replay_pause()");
    let plan = plan("1m");
    let started = std::time::Instant::now();
    let failed = engine(&plan, Arc::clone(&pair), &[]).run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("preflight") && message.contains("replay is paused"), "{message}");
    assert!(message.contains("pg_wal_replay_resume"), "says what to do: {message}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not after retries");
    assert_eq!(pair.primary.sql("SHOW default_transaction_read_only"), "off", "production was not fenced");
    // The provider's wait fails at once with its reason too (for a run already past preflight).
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    let e = pair
        .manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("pg_wal_replay_resume"), "{e}");
}

const BILLING: &str = "billing-db";

/// The plan with a second database pair (billing-db) on both sites.
fn plan_with_billing() -> DrPlan {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap()
        .replace("heartbeat_interval = \"5s\"", "heartbeat_interval = \"1s\"")
        .replace("id = \"shop-db\"", &format!("id = \"{DB}\""));
    let block = |role: &str, host: &str| {
        format!(
            "\n[[sites.{role}.additional_databases]]\nid = \"{BILLING}\"\nhost = \"{host}\"\nport = 5432\n\
             dbname = \"postgres\"\nuser = \"postgres\"\n"
        )
    };
    plan_from(&(text + &block("primary", "billing-a.example") + &block("dr", "billing-b.example")))
}

/// A second physical pair, managed as billing-db.
async fn billing_pair() -> Pair {
    let primary = PgServer::primary();
    let standby = PgServer::standby_of(&primary, "billing_slot");
    let manager = qovery_dr_providers::postgres::PostgresReplicationManager::physical(
        DatabaseId::new(BILLING),
        primary.endpoint(),
        standby.endpoint(),
    );
    manager.setup_heartbeat(None).await.unwrap();
    Pair { manager, primary, standby }
}

/// Each database through its own manager, as `connect` routes a site of several.
fn router(shop: &Arc<Pair>, billing: &Arc<Pair>) -> Arc<qovery_dr_core::provider::ReplicationRouter> {
    Arc::new(
        qovery_dr_core::provider::ReplicationRouter::new()
            .route(DB, Arc::clone(shop) as Arc<dyn ReplicationManager>)
            .route(BILLING, Arc::clone(billing) as Arc<dyn ReplicationManager>),
    )
}

/// [`engine`] over a router of two pairs.
fn engine_over(plan: &DrPlan, replication: Arc<qovery_dr_core::provider::ReplicationRouter>) -> Engine {
    let sim = World::from_plan(plan);
    sim.world.set_config(WorldConfig::real_time_fast());
    sim.world.use_real_wall_clock();
    let mut providers = sim.providers();
    providers.replication = replication;
    Engine::builder(plan.clone(), providers)
        .clock(SystemClock)
        .journal(MemoryJournal::new())
        .approver(AutoApprove::new("oncall-sre"))
        .options(EngineOptions {
            operator: "pg-test".into(),
            poll_interval: Duration::from_millis(50),
            drain_ttl: false,
            ..EngineOptions::default()
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_database_pairs_switch_over_together_under_load_and_lose_nothing() {
    let (shop, billing) = (Arc::new(setup::physical().await), Arc::new(billing_pair().await));
    pgbench_init(&shop.primary);
    pgbench_init(&billing.primary);
    let replication = router(&shop, &billing);
    let _hb = HeartbeatWriter::spawn_each(
        replication.clone(),
        vec![DatabaseId::new(DB), DatabaseId::new(BILLING)],
        Duration::from_millis(200),
    );
    let loads = (Load::start(&shop.primary, 60), Load::start(&billing.primary, 60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = engine_over(&plan_with_billing(), replication)
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop(loads);
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0), "{}", report.to_text());
    for pair in [&shop, &billing] {
        let on_old = pair.primary.sql("SELECT count(*) FROM pgbench_history");
        let on_new = pair.standby.sql("SELECT count(*) FROM pgbench_history");
        assert!(on_old.parse::<u64>().unwrap() > 50, "the load committed transactions ({on_old})");
        assert_eq!(on_new, on_old, "every committed transaction reached the new primary");
        assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f", "promoted");
        let e = pair
            .primary
            .sql_err("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
        assert!(e.contains("read-only"), "the old primary refuses writes: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_standby_of_one_pair_refuses_the_switchover_before_either_primary_is_fenced() {
    let (shop, billing) = (Arc::new(setup::physical().await), Arc::new(billing_pair().await));
    billing.standby.sql("SELECT pg_wal_replay_pause()");
    let failed = engine_over(&plan_with_billing(), router(&shop, &billing)).run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains(BILLING) && message.contains("replay is paused"), "{message}");
    for pair in [&shop, &billing] {
        assert_eq!(pair.primary.sql("SHOW default_transaction_read_only"), "off", "not fenced");
        assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "t", "not promoted");
    }
}
