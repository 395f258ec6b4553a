//! Each mode end to end, with paused time.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::engine::{
    EngineError, HeartbeatWriter, Interlock, JournalEvent, MemoryJournal, Outcome, RunMode, StepStatus,
};
use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, ReplicationManager};
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns, InMemoryReplication};
use qovery_dr_testkit::{FaultAction, Trigger};

use super::common::*;

fn assert_dr_serves(pw: &qovery_dr_testkit::PlanWorld) {
    for r in pw.plan.dns() {
        assert_eq!(pw.world.record_target(&r.record).as_ref(), Some(&r.dr_target), "{} switched", r.record);
    }
    let db = &pw.plan.primary().database.id;
    pw.world.with_state(|s| {
        let d = &s.databases[db];
        assert!(d.b.writable() && !d.a.writable(), "the DR database is the only writable one");
    });
    for env in &pw.plan.dr().environments {
        assert!(pw.world.environment_serving(env), "{env} serves");
    }
}

#[tokio::test(start_paused = true)]
async fn switchover_moves_everything_with_zero_data_loss() {
    let pw = aws();
    let engine = engine(&pw, MemoryJournal::new());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0));
    assert!(report.rpo_evidence.as_deref().unwrap().contains("final LSN"));
    assert!(report.measured_rto_ms.unwrap() > 60_000, "includes a 1-minute deployment");
    assert_eq!(report.rto_met, Some(true), "{}", report.to_text());
    assert!(report.steps.iter().all(|s| s.status == StepStatus::Succeeded), "{}", report.to_text());
    assert_dr_serves(&pw);
    // The DR services run the DR registry's images and the DR parameters.
    let cluster = InMemoryCluster::new(&pw.world);
    for svc in cluster.list_services(&pw.plan.dr().environments[0]).await.unwrap() {
        assert_eq!(svc.image.unwrap().registry(), pw.plan.registry_mapping().to.host);
    }
    pw.world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn failover_with_a_reachable_primary_fences_it_and_bounds_the_loss() {
    let pw = aws();
    let repl = InMemoryReplication::new(&pw.world);
    let _hb = HeartbeatWriter::spawn(Arc::new(repl), pw.plan.primary().database.id.clone(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(30)).await;
    // The application's cluster is gone; the database is still up.
    pw.world.set_cluster_state(&pw.plan.primary().cluster, qovery_dr_core::provider::ClusterState::Error);
    let report = engine(&pw, MemoryJournal::new())
        .run(RunMode::Failover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    // The primary answered: after the fence, a short catch-up proved that nothing was lost.
    assert_eq!(report.measured_rpo_ms, Some(0), "{}", report.to_text());
    assert!(report.rpo_evidence.as_deref().unwrap().contains("final LSN"), "{:?}", report.rpo_evidence);
    assert!(report.steps.iter().all(|s| s.name != "catch-up"), "no separate drain stage in an unplanned failover");
    assert_dr_serves(&pw);
    pw.world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn failover_with_a_crashed_primary_needs_proof_that_it_is_down() {
    let pw = aws();
    let repl = Arc::new(InMemoryReplication::new(&pw.world));
    let hb = HeartbeatWriter::spawn(repl.clone(), pw.plan.primary().database.id.clone(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(30)).await;
    pw.primary_outage();
    drop(hb);
    // Without proof, the engine refuses to promote and changes nothing.
    let journal = MemoryJournal::new();
    let failed = engine(&pw, journal.clone()).run(RunMode::Failover).await.unwrap_err();
    assert!(
        matches!(failed.error, EngineError::Refused { rule: Interlock::PrimaryMayAcceptWrites, ref step, .. } if step == "promote-database"),
        "{}",
        failed.error
    );
    assert_eq!(failed.report.outcome, Outcome::Refused);
    assert!(failed.report.safe_state.as_deref().unwrap().contains("NOT promoted"), "{:?}", failed.report.safe_state);
    assert_eq!(pw.world.recorder().applied_count("replication.promote_standby"), 0);
    // With the operator's proof, journaled, a resumed run completes.
    let engine = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "instance i-0abc terminated in the AWS console")
        .build();
    let report = engine.resume().await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(
        report.overrides,
        vec![(Interlock::PrimaryMayAcceptWrites, "instance i-0abc terminated in the AWS console".to_owned())]
    );
    assert!(journal.snapshot().iter().any(|e| matches!(
        &e.event,
        JournalEvent::InterlockOverridden { rule: Interlock::PrimaryMayAcceptWrites, .. }
    )));
    let rpo = report.measured_rpo_ms.unwrap();
    assert!(rpo <= 10_000, "heartbeats every 5 s bound the loss: {}", report.to_text());
    assert_dr_serves(&pw);
    pw.world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn drill_measures_on_clones_and_leaves_production_untouched() {
    let pw = aws();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let report = engine(&pw, MemoryJournal::new())
        .run(RunMode::Drill)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    assert!(report.measured_rto_ms.is_some() && report.measured_rpo_ms.is_some(), "{}", report.to_text());
    assert_eq!(report.approval.as_ref().unwrap().approver, "plan-policy", "the plan auto-approves drills");
    for r in pw.plan.dns() {
        assert_eq!(pw.world.record_target(&r.record).as_ref(), Some(&r.primary_target), "DNS untouched");
    }
    let rec = pw.world.recorder();
    for op in ["replication.fence_primary", "replication.promote_standby", "dns.switch"] {
        assert_eq!(rec.applied_count(op), 0, "{op} never called in a drill");
    }
    assert_eq!(rec.applied_count("cluster.clone_environment"), 1);
    assert_eq!(rec.applied_count("cluster.delete_environment"), 1, "the clone is cleaned up");
    let envs = pw.world.with_state(|s| s.environments.len());
    assert_eq!(
        envs,
        pw.plan.primary().environments.len() + pw.plan.dr().environments.len(),
        "no environment left behind"
    );
    rec.assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn a_failed_drill_still_cleans_up() {
    let pw = aws();
    pw.world.faults().inject(
        "cluster.deploy_environment",
        Trigger::Always,
        FaultAction::Fail(qovery_dr_core::ErrorKind::PermissionDenied),
    );
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Drill).await.unwrap_err();
    assert_eq!(
        failed.error.step(),
        Some(format!("deploy:clone-of-{}", pw.plan.primary().environments[0]).as_str()),
        "{}",
        failed.error
    );
    assert_eq!(pw.world.recorder().applied_count("cluster.delete_environment"), 1);
    assert!(
        failed.report.safe_state.as_deref().unwrap().contains("clones were deleted"),
        "{:?}",
        failed.report.safe_state
    );
    let envs = pw.world.with_state(|s| s.environments.len());
    assert_eq!(envs, 2, "no clone left behind");
}

#[tokio::test(start_paused = true)]
async fn failback_after_reprotection_returns_to_the_original_primary() {
    let pw = aws();
    let engine1 = engine(&pw, MemoryJournal::new());
    engine1.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    // Failback refuses before re-protection: the old primary is not a standby yet.
    let refused = engine(&pw, MemoryJournal::new()).run(RunMode::Failback).await.unwrap_err();
    assert!(matches!(refused.error, EngineError::NotReady { .. }), "{}", refused.error);
    assert!(refused.error.to_string().contains("re-protection"), "{}", refused.error);
    pw.world.reprotect(&pw.plan.primary().database.id);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report = engine(&pw, MemoryJournal::new())
        .run(RunMode::Failback)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0));
    for r in pw.plan.dns() {
        assert_eq!(
            pw.world.record_target(&r.record).as_ref(),
            Some(&r.primary_target),
            "{} back on the primary",
            r.record
        );
    }
    let db = &pw.plan.primary().database.id;
    pw.world.with_state(|s| {
        let d = &s.databases[db];
        assert!(d.a.writable() && !d.b.writable(), "the original primary is the only writable one again");
    });
    let cluster = InMemoryCluster::new(&pw.world);
    for svc in cluster.list_services(&pw.plan.primary().environments[0]).await.unwrap() {
        assert_eq!(svc.image.unwrap().registry(), pw.plan.registry_mapping().from.host);
    }
    pw.world.recorder().assert_no_violations();
    let _ = (InMemoryDns::new(&pw.world).name().to_owned(), InMemoryReplication::new(&pw.world).name().to_owned());
}

#[tokio::test(start_paused = true)]
async fn pilot_light_cross_cloud_failover_restores_from_the_last_dump() {
    let pw = qovery_dr_testkit::World::from_plan(&plan("scaleway-to-aws.yaml"));
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    pw.primary_outage();
    let report = pw
        .engine_builder()
        .approver(qovery_dr_core::engine::AutoApprove {
            who: "oncall-sre".into(),
            accepted_data_loss: Some(Duration::from_secs(3600)),
        })
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "Scaleway instance stopped from the console")
        .build()
        .run(RunMode::Failover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    assert_dr_serves(&pw);
    // The DR database was restored from the last dump, and the data loss is bounded by
    // that dump's age: dumps every 15 minutes, 20 minutes in, so at most one interval.
    let evidence = report.rpo_evidence.clone().unwrap_or_default();
    assert!(evidence.contains("the last dump restored on the DR side"), "{evidence}");
    let rpo = report.measured_rpo_ms.expect("the loss is bounded by the dump's age");
    let interval = pw.plan.replication().dump_interval.expect("the plan's dump interval");
    assert!(rpo > 0 && u128::from(rpo) <= interval.as_millis(), "loss {rpo} ms with dumps every {interval:?}");
    let repl = InMemoryReplication::new(&pw.world);
    let status = repl.status(&pw.plan.primary().database.id).await.unwrap();
    let dump = status.last_backup.expect("the DR side knows the dump it restored");
    assert!(evidence.contains(&dump.finished_at.to_string()), "{evidence} names dump {}", dump.finished_at);
    assert!(status.standby_promoted, "the DR database took over");
}

#[tokio::test(start_paused = true)]
async fn an_engine_on_another_clock_than_the_world_refuses_before_acting() {
    use qovery_dr_core::engine::{AutoApprove, Engine, SystemClock};
    let pw = aws();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The simulated world stamps heartbeats on its own clock (a fixed epoch under paused
    // time); an engine on the system clock would report months of data loss.
    let engine = Engine::builder(pw.plan.clone(), pw.providers())
        .clock(SystemClock)
        .approver(AutoApprove::new("oncall-sre"))
        .journal(MemoryJournal::new())
        .build();
    let failed = engine.run(RunMode::Drill).await.expect_err("a clock mismatch must refuse");
    assert!(matches!(failed.error, EngineError::ClockMismatch { .. }), "{}", failed.error);
    let message = failed.error.to_string();
    assert!(message.contains("build the engine without .clock(...)"), "{message}");
    assert!(engine.plan(RunMode::Drill).await.is_err(), "dry runs refuse too");
    pw.world.recorder().assert_no_mutations();

    // Without .clock(..), the engine takes the providers' clock and the drill runs.
    let engine = Engine::builder(pw.plan.clone(), pw.providers())
        .approver(AutoApprove::new("oncall-sre"))
        .journal(MemoryJournal::new())
        .build();
    let report = engine.run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
}

/// The DR environment of `pw` with `n` services, deploys taking `deploy`.
fn with_services(pw: &qovery_dr_testkit::PlanWorld, n: usize, deploy: Duration) {
    pw.world.set_config(qovery_dr_testkit::WorldConfig { deploy_duration: deploy, ..Default::default() });
    assert_eq!(pw.with_dr_services(n).len(), n);
}

#[tokio::test(start_paused = true)]
async fn an_environment_is_deployed_in_one_request_when_the_platform_allows_one_deployment_at_a_time() {
    // Reproduces the report: 5 services, 8 s deploys, a cluster that (like Qovery) refuses a
    // second deployment of an environment while one runs. Per-service deploy steps used to
    // conflict with each other and fail the switchover after the promotion.
    let pw = aws();
    with_services(&pw, 5, Duration::from_secs(8));
    let engine = engine(&pw, MemoryJournal::new());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let deploys: Vec<_> = report.steps.iter().filter(|s| s.name.starts_with("deploy:")).collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert_eq!(deploys[0].attempts, 1, "no conflict with ourselves: {deploys:?}");
    let calls = pw.world.recorder().calls_of("cluster.deploy_services");
    assert_eq!(calls.len(), 1, "one request for the environment: {calls:?}");
    assert!(calls.iter().all(|c| c.error.is_none()), "{calls:?}");
}

/// Runs a switchover while someone else deploys the DR environment as stage `at` starts.
async fn switchover_with_another_deployment_at(at: &'static str) -> (qovery_dr_testkit::PlanWorld, bool) {
    use qovery_dr_core::engine::Event;
    let pw = aws();
    with_services(&pw, 2, Duration::from_secs(8));
    let engine = engine(&pw, MemoryJournal::new());
    let mut events = engine.subscribe();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Our request is delayed a second, so theirs goes first and ours gets the platform's 409.
    pw.world.faults().inject("cluster.deploy_services", Trigger::Nth(1), FaultAction::Latency(Duration::from_secs(1)));
    let cluster = InMemoryCluster::new(&pw.world);
    let env = pw.plan.dr().environments[0].clone();
    let mut stages = engine.subscribe();
    let other = tokio::spawn(async move {
        while let Ok(e) = stages.recv().await {
            if matches!(&e, Event::StageStarted { stage, .. } if stage == at) {
                return cluster.deploy_environment(&env).await.is_ok();
            }
        }
        false
    });
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    assert!(other.await.unwrap(), "the other deployment started");
    let mut waited = false;
    while let Ok(e) = events.try_recv() {
        if let Event::Waiting { what, .. } = e {
            waited |= what.starts_with("another deployment of");
        }
    }
    assert!(waited, "the wait was announced as another deployment");
    // Whatever deployed last, the DR environment runs the DR configuration: DR-registry images.
    assert!(pw.world.environment_serving(&pw.plan.dr().environments[0]));
    let to = pw.plan.registry_mapping().to.host.clone();
    pw.world.with_state(|s| {
        for svc in s.environments[&pw.plan.dr().environments[0]].services.values() {
            let running =
                svc.running.as_ref().and_then(|c| c.image.as_ref()).map(|i| i.to_string()).unwrap_or_default();
            assert!(running.starts_with(&to), "{} runs {running}", svc.name);
        }
    });
    let calls = pw.world.recorder().calls_of("cluster.deploy_services");
    assert_eq!(calls.first().and_then(|c| c.error), Some(qovery_dr_core::ErrorKind::Conflict), "{calls:?}");
    let ours_ran = calls.iter().any(|c| c.error.is_none() && c.applied);
    (pw, ours_ran)
}

#[tokio::test(start_paused = true)]
async fn a_deployment_by_someone_else_that_deploys_our_configuration_is_waited_out_and_not_repeated() {
    // Started as our deploy stage starts: it deploys the DR configuration already applied.
    let (_, ours_ran) = switchover_with_another_deployment_at("deploy").await;
    assert!(!ours_ran, "their deployment deployed our configuration: no second one");
}

#[tokio::test(start_paused = true)]
async fn a_deployment_by_someone_else_of_an_older_configuration_is_waited_out_then_ours_runs() {
    // Started before our configuration was applied: once it ends the services are out of date.
    let (_, ours_ran) = switchover_with_another_deployment_at("configure").await;
    assert!(ours_ran, "ours ran once theirs ended");
}

/// Two authoritative servers; the second serves the new value only from `lag` after it is first asked.
#[derive(Debug)]
struct LaggingServers {
    since: std::sync::Mutex<Option<tokio::time::Instant>>,
    lag: Duration,
    /// Per record: (old, new) targets.
    targets:
        std::collections::BTreeMap<qovery_dr_core::DnsRecordId, (qovery_dr_core::DnsTarget, qovery_dr_core::DnsTarget)>,
}

#[qovery_dr_core::async_trait]
impl qovery_dr_core::provider::AuthoritativeResolver for LaggingServers {
    async fn nameservers(&self, _: &qovery_dr_core::DnsRecordId) -> qovery_dr_core::ProviderResult<Vec<String>> {
        Ok(vec!["ns1".into(), "ns2".into()])
    }
    async fn lookup(
        &self,
        server: &str,
        record: &qovery_dr_core::DnsRecordId,
    ) -> qovery_dr_core::ProviderResult<Option<qovery_dr_core::DnsTarget>> {
        let since = *self.since.lock().unwrap().get_or_insert_with(tokio::time::Instant::now);
        let caught_up = server == "ns1" || since.elapsed() >= self.lag;
        let (old, new) = self.targets[record].clone();
        Ok(Some(if caught_up { new } else { old }))
    }
}

#[tokio::test(start_paused = true)]
async fn the_dns_step_waits_for_every_authoritative_server_not_the_providers_in_sync() {
    let pw = aws();
    let record = pw.plan.dns()[0].clone();
    let mut providers = pw.providers();
    providers.resolver = Some(Arc::new(LaggingServers {
        since: std::sync::Mutex::new(None),
        lag: Duration::from_secs(90),
        targets: pw
            .plan
            .dns()
            .iter()
            .map(|r| (r.record.clone(), (r.primary_target.clone(), r.dr_target.clone())))
            .collect(),
    }));
    let engine = qovery_dr_core::engine::Engine::builder(pw.plan.clone(), providers)
        .journal(MemoryJournal::new())
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let step = report.steps.iter().find(|s| s.name == format!("dns:{}", record.record)).unwrap();
    assert!(step.duration_ms >= 90_000, "the step waited for ns2, not only the provider's in-sync: {step:?}");
}
