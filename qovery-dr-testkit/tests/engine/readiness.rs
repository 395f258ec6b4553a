//! Readiness: the Pass/Warn/Fail boundaries of every check, on the simulated world.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::engine::{
    FailoverLock, InProcessLock, JournalEntry, JournalEvent, LockHolder, MemoryJournal, RunMode,
};
use qovery_dr_core::provider::{ClusterState, TargetHealth};
use qovery_dr_core::readiness::{Activity, CheckResult, CheckStatus, Readiness, ReadinessOptions, ReadinessReport};
use qovery_dr_core::{Digest, ImageRef, Timestamp};
use qovery_dr_testkit::world::{HealthSource, LinkSim};
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World};

use super::common::*;

async fn evaluate(pw: &PlanWorld) -> ReadinessReport {
    Readiness::new(pw.plan.clone(), pw.providers()).clock(Arc::new(pw.world.clone())).evaluate().await
}

fn check<'a>(r: &'a ReadinessReport, id_prefix: &str) -> &'a CheckResult {
    r.checks
        .iter()
        .find(|c| c.id.starts_with(id_prefix))
        .unwrap_or_else(|| panic!("no check {id_prefix} in {}", r.to_table()))
}

fn status(r: &ReadinessReport, id_prefix: &str) -> CheckStatus {
    check(r, id_prefix).status
}

#[tokio::test(start_paused = true)]
async fn a_healthy_world_is_ready() {
    let pw = aws();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = evaluate(&pw).await;
    assert!(r.ready, "{}", r.to_table());
    assert!(
        r.checks
            .iter()
            .filter(|c| c.category != qovery_dr_core::readiness::CheckCategory::Cadence)
            // Design findings of the plan, not the world's health (see the test below).
            .filter(|c| !c.id.starts_with("static-stability:"))
            .all(|c| c.status == CheckStatus::Pass),
        "{}",
        r.to_table()
    );
    assert!(r.to_table().contains("READY for failover"));
    pw.world.recorder().assert_no_mutations();
}

#[tokio::test(start_paused = true)]
async fn dr_cluster_running_deploying_error() {
    let pw = aws();
    assert_eq!(status(&evaluate(&pw).await, "cluster:"), CheckStatus::Pass);
    pw.world.set_cluster_state(&pw.plan.dr().cluster, ClusterState::Deploying);
    assert_eq!(status(&evaluate(&pw).await, "cluster:"), CheckStatus::Warn);
    pw.world.set_cluster_state(&pw.plan.dr().cluster, ClusterState::Error);
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "cluster:"), CheckStatus::Fail);
    assert!(!r.ready);
    assert!(r.reasons.iter().any(|x| x.starts_with("cluster:")), "{:?}", r.reasons);
    assert!(!r.metrics.dr_cluster_up);
}

#[tokio::test(start_paused = true)]
async fn replication_lag_against_the_rpo() {
    let pw = aws();
    let db = pw.plan.primary().database.id.clone();
    pw.world.set_replication_load(&db, Duration::from_secs(59), 1000);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Pass, "{}", r.to_table());
    let lag = r.metrics.replication_lag_seconds.unwrap();
    assert!((58.9..=59.1).contains(&lag), "{lag}");
    assert_eq!(r.metrics.replication_lag_bytes, Some(59_000));
    let pw = aws();
    pw.world.set_replication_load(&db, Duration::from_secs(61), 1000);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Fail, "{}", r.to_table());
    assert!(check(&r, "replication:").observed.contains("1m 1s"), "{:?}", check(&r, "replication:"));
}

#[tokio::test(start_paused = true)]
async fn replication_link_down_or_promoted() {
    let pw = aws();
    let db = pw.plan.primary().database.id.clone();
    pw.world.set_link(&db, LinkSim::Down);
    assert_eq!(status(&evaluate(&pw).await, "replication:"), CheckStatus::Fail);
    pw.world.set_link(&db, LinkSim::Broken);
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Fail);
    assert!(check(&r, "replication:").observed.contains("timeline"), "{:?}", check(&r, "replication:"));
    let pw = aws();
    pw.world.with_state(|s| s.databases.get_mut(&db).unwrap().b.is_primary = true);
    assert_eq!(status(&evaluate(&pw).await, "replication:"), CheckStatus::Warn);
}

#[tokio::test(start_paused = true)]
async fn dump_age_against_the_rpo() {
    let pw = World::from_plan(&plan("scaleway-to-aws.yaml"));
    let db = pw.plan.primary().database.id.clone();
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Fail, "no dump yet: {}", r.to_table());
    tokio::time::sleep(Duration::from_secs(10 * 60)).await; // dump at 15 min, now 20 min
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Pass, "{}", r.to_table());
    let age = r.metrics.last_backup_age_seconds.unwrap();
    assert!((299.0..=301.0).contains(&age), "{age}");
    pw.world.with_state(|s| s.databases.get_mut(&db).unwrap().dump_every = Some(Duration::from_secs(30 * 60)));
    tokio::time::sleep(Duration::from_secs(30 * 60)).await; // now 50 min, last dump at 30 min: 20 min old > 15 min
    assert_eq!(status(&evaluate(&pw).await, "replication:"), CheckStatus::Fail);
}

#[tokio::test(start_paused = true)]
async fn restore_checks_and_failed_dumps_from_the_records_beside_the_dumps() {
    use qovery_dr_core::provider::BackupFailure;
    let pw = World::from_plan(&plan("scaleway-to-aws.yaml"));
    let db = pw.plan.primary().database.id.clone();
    let id = format!("restore-check:{db}");
    tokio::time::sleep(Duration::from_secs(20 * 60)).await; // a dump at 15 min, its restore verified
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &id), CheckStatus::Pass, "{}", r.to_table());
    assert!(
        check(&r, &id).expected.contains("1day 15m"),
        "the plan's cadence plus a dump interval: {:?}",
        check(&r, &id)
    );

    // No restore ever verified, with a cadence in the plan: a Fail that says why it matters.
    pw.world.with_state(|s| s.databases.get_mut(&db).unwrap().restores_verified = false);
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &id), CheckStatus::Fail, "{}", r.to_table());
    assert!(check(&r, &id).observed.contains("no restore was ever verified"), "{:?}", check(&r, &id));

    // A failed restore check after the last verified one: a Fail carrying the reason.
    let now = pw.world.wall_now();
    pw.world.with_state(|s| {
        let d = s.databases.get_mut(&db).unwrap();
        d.restores_verified = true;
        d.backup_failure = Some(BackupFailure::new(now, "restore-check", "public.orders: 10 rows dumped, 9 restored"));
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &id), CheckStatus::Fail, "{}", r.to_table());
    assert!(check(&r, &id).observed.contains("10 rows dumped, 9 restored"), "{:?}", check(&r, &id));
    assert_eq!(status(&r, "replication:"), CheckStatus::Pass, "a failed check does not age the dump");

    // A failed dump while the last good one is within the RPO: a Warn with the reason.
    pw.world.with_state(|s| {
        s.databases.get_mut(&db).unwrap().backup_failure =
            Some(BackupFailure::new(now, "dump", "pg_dump exited with 1: disk full"));
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Warn, "{}", r.to_table());
    assert!(check(&r, "replication:").observed.contains("disk full"), "{:?}", check(&r, "replication:"));
    assert_eq!(status(&r, &id), CheckStatus::Pass);
}

#[tokio::test(start_paused = true)]
async fn dns_ttl_health_checks_and_ownership() {
    let pw = aws();
    let r0 = &pw.plan.dns()[0];
    pw.world.add_record(r0.record.clone(), r0.primary_target.clone(), Duration::from_secs(450));
    assert_eq!(status(&evaluate(&pw).await, "dns:shop.example.com"), CheckStatus::Pass, "TTL of half the RTO passes");
    pw.world.add_record(r0.record.clone(), r0.primary_target.clone(), Duration::from_secs(900));
    let r = evaluate(&pw).await;
    assert_eq!(
        status(&r, "dns:shop.example.com"),
        CheckStatus::Warn,
        "TTL equal to the RTO leaves no time to fail over"
    );
    assert!(check(&r, "dns:shop.example.com").detail.contains("more than half the RTO"), "{}", r.to_table());
    pw.world.add_record(r0.record.clone(), r0.primary_target.clone(), Duration::from_secs(901));
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "dns:shop.example.com"), CheckStatus::Fail);
    assert!(!r.metrics.dns_ready);
    pw.world.add_record(r0.record.clone(), "198.51.100.7", Duration::from_secs(60));
    assert_eq!(status(&evaluate(&pw).await, "dns:shop.example.com"), CheckStatus::Warn, "owned by someone else");
    pw.world.add_record(r0.record.clone(), r0.primary_target.clone(), Duration::from_secs(60));
    pw.world.with_state(|s| {
        s.health.remove(&r0.dr_target);
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "dns:shop.example.com"), CheckStatus::Warn);
    assert!(check(&r, "dns:shop.example.com").detail.contains("no health check on the DR target"));
    pw.world.set_target_health(r0.dr_target.clone(), HealthSource::Fixed(TargetHealth::Unhealthy));
    assert!(check(&evaluate(&pw).await, "dns:shop.example.com").detail.contains("unhealthy"));
    pw.world.with_state(|s| {
        s.records.remove(&r0.record);
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "dns:shop.example.com"), CheckStatus::Fail);
    assert_eq!(check(&r, "dns:shop.example.com").observed, "record missing");
}

#[tokio::test(start_paused = true)]
async fn environment_deployed_out_of_date_failed_or_stopped() {
    let pw = aws();
    let env = pw.plan.dr().environments[0].clone();
    let id = format!("environment:{env}");
    assert_eq!(status(&evaluate(&pw).await, &id), CheckStatus::Pass);
    let svc = pw.world.with_state(|s| s.environments[&env].services.keys().next().unwrap().clone());
    pw.world.with_state(|s| {
        s.environments.get_mut(&env).unwrap().services.get_mut(&svc).unwrap().desired.image =
            Some("123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api:v2".parse().unwrap());
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &id), CheckStatus::Warn, "{}", r.to_table());
    assert!(check(&r, &id).observed.starts_with("OUT_OF_DATE"));
    // Warm standby expects it running; pilot light only deployable.
    let pw = aws();
    pw.world.with_state(|s| {
        let e = s.environments.get_mut(&env).unwrap();
        e.running = false;
        for svc in e.services.values_mut() {
            svc.running = None;
        }
    });
    assert_eq!(status(&evaluate(&pw).await, &id), CheckStatus::Warn, "stopped in warm standby");
    let pl = World::from_plan(&plan("scaleway-to-aws.yaml"));
    let pl_env = format!("environment:{}", pl.plan.dr().environments[0]);
    assert_eq!(status(&evaluate(&pl).await, &pl_env), CheckStatus::Pass, "stopped in pilot light is deployable");
    // A failed deployment fails the check.
    let pw = aws();
    pw.world.fail_next_deployments(&env, 1);
    let cluster = qovery_dr_testkit::memory::InMemoryCluster::new(&pw.world);
    qovery_dr_core::provider::ClusterProvider::deploy_environment(&cluster, &env).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(status(&evaluate(&pw).await, &id), CheckStatus::Fail);
}

#[tokio::test(start_paused = true)]
async fn images_present_missing_moved_or_foreign() {
    let pw = aws();
    let api: ImageRef = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api:v1".parse().unwrap();
    let dr_api = pw.plan.registry_mapping().remap(&api).unwrap();
    assert_eq!(
        status(&evaluate(&pw).await, "image:123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api"),
        CheckStatus::Pass
    );
    let moved = Digest::from_sha256([7; 32]);
    pw.world.add_image(&dr_api, moved, 1);
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, "image:123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api"), CheckStatus::Fail);
    assert_eq!(r.metrics.images_missing, 1);
    pw.world.with_state(|s| {
        s.registries
            .get_mut(dr_api.registry())
            .unwrap()
            .tags
            .remove(&(dr_api.repository().to_owned(), "v1".to_owned()));
    });
    let r = evaluate(&pw).await;
    let c = check(&r, "image:123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api");
    assert_eq!((c.status, c.observed.as_str()), (CheckStatus::Fail, "missing"));
    assert!(!r.ready);
    // A third-party image is a warning.
    let env = pw.plan.dr().environments[0].clone();
    pw.world.with_state(|s| {
        let svc = s.environments.get_mut(&env).unwrap().services.values_mut().next().unwrap();
        svc.desired.image = Some("nginx:1.27".parse().unwrap());
    });
    assert_eq!(status(&evaluate(&pw).await, "image:nginx"), CheckStatus::Warn);
}

#[tokio::test(start_paused = true)]
async fn parity_of_variables_secrets_and_services() {
    let pw = aws();
    let (prod, dr) = (pw.plan.primary().environments[0].clone(), pw.plan.dr().environments[0].clone());
    let vars = format!("parity-variables:{dr}");
    let svcs = format!("parity-services:{dr}");
    assert_eq!(status(&evaluate(&pw).await, &vars), CheckStatus::Pass, "per-site parameters are declared overrides");
    let set = |env: &qovery_dr_core::EnvironmentId, key: &str, secret: bool| {
        let env = env.clone();
        let key = key.to_owned();
        pw.world.with_state(move |s| {
            s.environments
                .get_mut(&env)
                .unwrap()
                .variables
                .insert(key, qovery_dr_testkit::state::VarSim { value: "v".into(), secret });
        });
    };
    set(&prod, "STRIPE_KEY", true);
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &vars), CheckStatus::Fail);
    assert!(check(&r, &vars).observed.contains("STRIPE_KEY (secret)"), "{:?}", check(&r, &vars));
    assert!(!r.to_table().contains("\"v\""), "secret values never appear");
    set(&dr, "STRIPE_KEY", true);
    assert_eq!(status(&evaluate(&pw).await, &vars), CheckStatus::Pass, "secrets compared by presence");
    set(&dr, "DEBUG_DR_ONLY", false);
    assert_eq!(status(&evaluate(&pw).await, &vars), CheckStatus::Warn);
    // Services: a tag differing is a warning, a missing service a failure.
    pw.world.with_state(|s| {
        let svc = s.environments.get_mut(&dr).unwrap().services.values_mut().find(|x| x.name == "web").unwrap();
        svc.desired.image = Some("123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/web:v0".parse().unwrap());
        svc.running = Some(svc.desired.clone());
    });
    assert_eq!(status(&evaluate(&pw).await, &svcs), CheckStatus::Warn);
    pw.world.with_state(|s| {
        let e = s.environments.get_mut(&dr).unwrap();
        let id = e.services.iter().find(|(_, x)| x.name == "worker").unwrap().0.clone();
        e.services.remove(&id);
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &svcs), CheckStatus::Fail);
    assert!(check(&r, &svcs).observed.contains("worker"));
}

#[tokio::test(start_paused = true)]
async fn cross_az_resilience() {
    let pw = aws();
    let dr = pw.plan.dr().environments[0].clone();
    let id = format!("resilience:{dr}");
    assert_eq!(status(&evaluate(&pw).await, &id), CheckStatus::Pass);
    pw.world.with_state(|s| {
        s.environments.get_mut(&dr).unwrap().services.values_mut().next().unwrap().desired.min_instances = 1
    });
    let r = evaluate(&pw).await;
    assert_eq!(status(&r, &id), CheckStatus::Warn);
    assert!(r.ready, "a warning does not block the verdict");
}

#[tokio::test(start_paused = true)]
async fn the_lock_must_be_free() {
    let pw = aws();
    let lock = Arc::new(InProcessLock::new());
    let r = Readiness::new(pw.plan.clone(), pw.providers()).lock(lock.clone()).evaluate().await;
    assert_eq!(status(&r, "lock"), CheckStatus::Pass);
    lock.acquire(
        pw.plan.name(),
        &LockHolder { run_id: "run-1".into(), owner: "bob".into(), acquired_at: Timestamp::from_unix_millis(0) },
    )
    .await
    .unwrap();
    let r = Readiness::new(pw.plan.clone(), pw.providers()).lock(lock).evaluate().await;
    assert_eq!(status(&r, "lock"), CheckStatus::Fail);
    assert!(!r.ready);
}

fn entry(at: Timestamp, event: JournalEvent) -> JournalEntry {
    JournalEntry::new(0, at, "r", event)
}

#[tokio::test(start_paused = true)]
async fn drill_cadence_from_the_journal() {
    let pw = aws();
    let journal = MemoryJournal::new();
    engine(&pw, journal.clone()).run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}", f.error));
    let mut history = journal.snapshot();
    let now = pw.world.wall_now();
    history.push(entry(
        now,
        JournalEvent::ActivityRecorded {
            activity: Activity::RunbookReview,
            by: "alice".into(),
            note: "monthly review".into(),
        },
    ));
    let old = Timestamp::from_unix_millis(now.unix_millis() - 40 * 24 * 3600 * 1000);
    history.push(entry(
        old,
        JournalEvent::ActivityRecorded {
            activity: Activity::BackupRestoreTest,
            by: "bob".into(),
            note: "restored into staging".into(),
        },
    ));
    let r = Readiness::new(pw.plan.clone(), pw.providers())
        .clock(Arc::new(pw.world.clone()))
        .history(history)
        .evaluate()
        .await;
    assert_eq!(status(&r, "cadence:partial-drill"), CheckStatus::Pass);
    assert_eq!(status(&r, "cadence:runbook-review"), CheckStatus::Pass);
    assert_eq!(status(&r, "cadence:backup-restore-test"), CheckStatus::Warn, "40 days > monthly");
    assert!(check(&r, "cadence:backup-restore-test").detail.contains("overdue"));
    assert_eq!(status(&r, "cadence:full-failover-drill"), CheckStatus::Warn, "never done");
    assert!(r.metrics.last_drill_age_seconds.is_some() && r.metrics.last_drill_rto_seconds.is_some());
}

#[tokio::test(start_paused = true)]
async fn renders_as_json_and_prometheus() {
    let pw = aws();
    let r = evaluate(&pw).await;
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["ready"], true);
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"].is_string() && c["observed"].is_string() && c["expected"].is_string())
    );
    let text = r.to_prometheus();
    assert!(text.contains("# TYPE qdr_ready gauge"), "{text}");
    assert!(text.contains("qdr_ready{plan=\"shop-aws-cross-region\"} 1"), "{text}");
    assert!(text.contains("qdr_readiness_check{"), "{text}");
    assert!(text.contains("qdr_replication_lag_seconds"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");
}

#[tokio::test(start_paused = true)]
async fn calls_respect_the_concurrency_bound_and_the_rate() {
    let pw = aws();
    pw.world.faults().inject("*", Trigger::Always, FaultAction::Latency(Duration::from_millis(20)));
    let options =
        ReadinessOptions { concurrency: 2, rate_per_second: Some(10.0), call_timeout: Duration::from_secs(5) };
    let r = Readiness::new(pw.plan.clone(), pw.providers()).options(options).evaluate().await;
    assert!(r.ready, "{}", r.to_table());
    let calls = pw.world.recorder().calls();
    let mut starts: Vec<Duration> = calls.iter().map(|c| c.started).collect();
    starts.sort();
    for (i, t0) in starts.iter().enumerate() {
        let in_window = starts[i..].iter().take_while(|t| **t - *t0 < Duration::from_secs(1)).count();
        assert!(in_window <= 10, "{in_window} calls within one second at a rate of 10/s");
    }
    for c in &calls {
        let overlapping = calls.iter().filter(|o| o.started < c.at && c.started < o.at).count();
        assert!(overlapping <= 2, "at most 2 calls at once, saw {overlapping}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_provider_is_reported_not_waited_for() {
    let pw = aws();
    pw.world.faults().inject("replication.status", Trigger::Always, FaultAction::Hang);
    let options = ReadinessOptions { call_timeout: Duration::from_secs(3), ..ReadinessOptions::default() };
    let r = Readiness::new(pw.plan.clone(), pw.providers()).options(options).evaluate().await;
    assert_eq!(status(&r, "replication:"), CheckStatus::Fail);
    assert_eq!(check(&r, "replication:").observed, "timeout");
}

/// Environments are paired by the plan's statement: with the DR list in the other order
/// than the primary's, each DR environment is still compared with its own primary.
#[tokio::test(start_paused = true)]
async fn parity_pairs_environments_by_the_plans_statement_not_by_position() {
    let path = format!("{}/../examples/plans/aws-cross-region.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let text = text
        .replace(
            r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a01"]"#,
            r#"environments = ["prod-api", "prod-web"]"#,
        )
        .replace(
            r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a02"]"#,
            r#"environments = ["dr-web", "dr-api"]"#,
        )
        + "\n[[environment_pairs]]\nprimary = \"prod-api\"\ndr = \"dr-api\"\n\n[[environment_pairs]]\nprimary = \"prod-web\"\ndr = \"dr-web\"\n";
    let plan = qovery_dr_core::plan::DrPlan::parse(&text, qovery_dr_core::plan::PlanFormat::Toml).unwrap();
    let pw = World::from_plan(&plan);
    let set = |env: &str, key: &str| {
        let (env, key) = (qovery_dr_core::EnvironmentId::new(env), key.to_owned());
        pw.world.with_state(move |s| {
            s.environments
                .get_mut(&env)
                .unwrap()
                .variables
                .insert(key, qovery_dr_testkit::state::VarSim { value: "v".into(), secret: false });
        });
    };
    set("prod-api", "API_ONLY");
    set("dr-api", "API_ONLY");
    set("prod-web", "WEB_ONLY");
    set("dr-web", "WEB_ONLY");
    let r = evaluate(&pw).await;
    for dr in ["dr-api", "dr-web"] {
        let c = check(&r, &format!("parity-variables:{dr}"));
        assert_eq!(c.status, CheckStatus::Pass, "{dr} compared with its own primary: {c:?}");
    }
}

/// A journal that cannot be read.
#[derive(Debug)]
struct Unreadable;

#[qovery_dr_core::async_trait]
impl qovery_dr_core::engine::Journal for Unreadable {
    async fn append(
        &self,
        _: &qovery_dr_core::engine::LockGuard,
        _: &JournalEntry,
    ) -> Result<(), qovery_dr_core::journal::JournalError> {
        unreachable!("readiness only reads")
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, qovery_dr_core::journal::JournalError> {
        Err(qovery_dr_core::journal::JournalError::Io {
            path: "etcd://10.0.0.1:2379/qdr".into(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_journal_is_read_at_every_evaluation() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let readiness = Readiness::new(pw.plan.clone(), pw.providers())
        .clock(Arc::new(pw.world.clone()))
        .journal(Arc::new(journal.clone()));
    let before = readiness.evaluate().await;
    assert_eq!(status(&before, "cadence:partial-drill"), CheckStatus::Warn, "never done");
    assert!(before.metrics.last_drill_age_seconds.is_none());
    // A drill recorded after the readiness was built is seen by its next evaluation.
    engine(&pw, journal.clone()).run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}", f.error));
    let after = readiness.evaluate().await;
    assert_eq!(status(&after, "cadence:partial-drill"), CheckStatus::Pass);
    assert!(after.metrics.last_drill_rto_seconds.is_some(), "{:?}", after.metrics);

    let unreadable = Readiness::new(pw.plan.clone(), pw.providers())
        .clock(Arc::new(pw.world.clone()))
        .journal(Arc::new(Unreadable))
        .evaluate()
        .await;
    let c = check(&unreadable, "journal");
    assert_eq!(c.status, CheckStatus::Warn);
    assert!(c.observed.contains("etcd://10.0.0.1:2379/qdr: connection refused"), "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn the_static_stability_lint_is_in_the_report() {
    let pw = aws();
    let r = evaluate(&pw).await;
    // Deploys go through the Qovery API; the images are copied from the primary's ECR.
    let qovery = check(&r, "static-stability:qovery-api-down");
    assert_eq!(qovery.status, CheckStatus::Warn, "{qovery:?}");
    assert!(qovery.observed.starts_with("5 step(s) blocked: preflight, "), "{qovery:?}");
    assert!(qovery.detail.contains("dns_only = true"), "{qovery:?}");
    assert_eq!(status(&r, "static-stability:primary-region-down"), CheckStatus::Warn);
    assert!(check(&r, "static-stability:primary-region-down").detail.starts_with("sync-images needs ECR "));
    // Route53 failover routing with health checks: the data plane fails over by itself.
    assert_eq!(status(&r, "static-stability:dns-control-plane-down"), CheckStatus::Pass);
    assert!(r.ready, "a design warning, not a failing check");
}
