//! Every interlock: refusal (typed, journaled, nothing unsafe done) and
//! override (explicit reason, journaled). Plus the approval gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qovery_dr_core::engine::{
    Approval, ApprovalDenied, ApprovalRequest, Approver, AutoApprove, EngineError, FailoverLock, InProcessLock,
    Interlock, JournalEvent, LockHolder, MemoryJournal, Outcome, RunMode,
};
use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, Node, SwitchRequest, TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ProviderResult, Timestamp, async_trait};
use qovery_dr_testkit::World;
use qovery_dr_testkit::memory::{InMemoryDns, InMemoryReplication};
use qovery_dr_testkit::world::{LinkSim, NodeCondition};

use super::common::*;

fn refused_rule(e: &EngineError) -> Option<Interlock> {
    match e {
        EngineError::Refused { rule, .. } => Some(*rule),
        _ => None,
    }
}

fn journaled_override(journal: &MemoryJournal, rule: Interlock) -> Option<String> {
    journal.snapshot().into_iter().find_map(|e| match e.event {
        JournalEvent::InterlockOverridden { rule: r, reason, .. } if r == rule => Some(reason),
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_primary_is_never_promoted_over_without_an_override() {
    let pw = aws();
    tokio::time::sleep(Duration::from_secs(10)).await;
    pw.primary_partitioned();
    let journal = MemoryJournal::new();
    let failed = engine(&pw, journal.clone()).run(RunMode::Failover).await.unwrap_err();
    assert_eq!(refused_rule(&failed.error), Some(Interlock::PrimaryMayAcceptWrites), "{}", failed.error);
    assert!(failed.error.to_string().contains("may still accept writes"), "{}", failed.error);
    assert!(
        journal
            .snapshot()
            .iter()
            .any(|e| matches!(e.event, JournalEvent::InterlockRefused { rule: Interlock::PrimaryMayAcceptWrites, .. }))
    );
    assert_eq!(pw.world.recorder().applied_count("replication.promote_standby"), 0);
    pw.world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn overriding_the_fence_rule_is_journaled_and_the_world_shows_why_it_is_dangerous() {
    let pw = aws();
    let repl = Arc::new(InMemoryReplication::new(&pw.world));
    let _hb = qovery_dr_core::engine::HeartbeatWriter::spawn(
        repl,
        pw.plan.primary().database.id.clone(),
        Duration::from_secs(5),
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    pw.primary_partitioned();
    let journal = MemoryJournal::new();
    let engine = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(AutoApprove { who: "oncall-sre".into(), accepted_data_loss: Some(Duration::from_secs(3600)) })
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "operator believes the primary is down")
        .build();
    let report = engine.run(RunMode::Failover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(
        journaled_override(&journal, Interlock::PrimaryMayAcceptWrites).as_deref(),
        Some("operator believes the primary is down")
    );
    assert!(
        report.rpo_evidence.unwrap().contains("not fenced"),
        "the report says the bound excludes the unfenced primary's writes"
    );
    // The primary was only partitioned: it still takes writes. This is the split brain the rule prevents.
    assert!(pw.world.recorder().violations().iter().any(|v| v.description.contains("split brain")));
}

#[tokio::test(start_paused = true)]
async fn lag_beyond_the_rpo_refuses_promotion() {
    let pw = aws();
    let db = pw.plan.primary().database.id.clone();
    let repl = Arc::new(InMemoryReplication::new(&pw.world));
    let _hb = qovery_dr_core::engine::HeartbeatWriter::spawn(repl, db.clone(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The link broke five minutes before the outage: the standby is 5 minutes behind (RPO 1 minute).
    pw.world.set_link(&db, LinkSim::Down);
    tokio::time::sleep(Duration::from_secs(300)).await;
    pw.world.set_node_condition(&db, Node::Primary, NodeCondition::Down);
    let journal = MemoryJournal::new();
    let e = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "primary host powered off")
        .build()
        .run(RunMode::Failover)
        .await
        .unwrap_err();
    assert_eq!(refused_rule(&e.error), Some(Interlock::LagExceedsRpo), "{}", e.error);
    assert!(e.error.to_string().contains("exceeds the RPO 1m"), "{}", e.error);
    assert_eq!(pw.world.recorder().applied_count("replication.promote_standby"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_approved_data_loss_budget_lets_a_measured_loss_through() {
    let pw = aws();
    let db = pw.plan.primary().database.id.clone();
    let repl = Arc::new(InMemoryReplication::new(&pw.world));
    let hb = qovery_dr_core::engine::HeartbeatWriter::spawn(repl, db.clone(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(10)).await;
    pw.world.set_link(&db, LinkSim::Down);
    tokio::time::sleep(Duration::from_secs(300)).await;
    pw.world.set_node_condition(&db, Node::Primary, NodeCondition::Down);
    drop(hb);
    let journal = MemoryJournal::new();
    let report = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(AutoApprove { who: "head-of-infra".into(), accepted_data_loss: Some(Duration::from_secs(600)) })
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "primary host powered off")
        .build()
        .run(RunMode::Failover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let reason = journaled_override(&journal, Interlock::LagExceedsRpo).unwrap();
    assert!(reason.contains("approved data-loss budget of 10m by head-of-infra"), "{reason}");
    let rpo = report.measured_rpo_ms.unwrap();
    assert!((295_000..=320_000).contains(&rpo), "about five minutes lost: {}", report.to_text());
    assert_eq!(report.rpo_met, Some(false), "the report shows the RPO was missed");
}

#[tokio::test(start_paused = true)]
async fn overriding_the_lag_rule_needs_a_reason_and_is_journaled() {
    let pw = aws();
    let db = pw.plan.primary().database.id.clone();
    pw.world.set_link(&db, LinkSim::Down);
    tokio::time::sleep(Duration::from_secs(300)).await;
    pw.world.set_node_condition(&db, Node::Primary, NodeCondition::Down);
    let journal = MemoryJournal::new();
    let report = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "primary host powered off")
        .override_interlock(Interlock::LagExceedsRpo, "business accepts losing the last 5 minutes of orders")
        .build()
        .run(RunMode::Failover)
        .await
        .unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(journaled_override(&journal, Interlock::LagExceedsRpo).is_some());
    assert_eq!(report.overrides.len(), 2);
}

/// A DNS switcher whose health checks turn a target unhealthy after a few reads.
#[derive(Debug)]
struct SickAfter {
    inner: InMemoryDns,
    target: DnsTarget,
    reads: AtomicUsize,
    healthy_reads: usize,
}

#[async_trait]
impl DnsSwitcher for SickAfter {
    fn name(&self) -> &str {
        "sick-after"
    }
    fn capabilities(&self) -> DnsCapabilities {
        self.inner.capabilities()
    }
    async fn current(&self, r: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        self.inner.current(r).await
    }
    async fn switch(&self, r: &SwitchRequest) -> ProviderResult<ChangeId> {
        self.inner.switch(r).await
    }
    async fn change_status(&self, c: &ChangeId) -> ProviderResult<ChangeStatus> {
        self.inner.change_status(c).await
    }
    async fn target_health(&self, t: &DnsTarget) -> ProviderResult<TargetHealth> {
        if *t == self.target && self.reads.fetch_add(1, Ordering::SeqCst) >= self.healthy_reads {
            return Ok(TargetHealth::Unhealthy);
        }
        self.inner.target_health(t).await
    }
}

fn sick_engine(
    pw: &qovery_dr_testkit::PlanWorld,
    journal: MemoryJournal,
    override_reason: Option<&str>,
) -> qovery_dr_core::engine::Engine {
    let mut providers = pw.providers();
    let target = pw.plan.dns()[0].dr_target.clone();
    providers.dns = Arc::new(SickAfter {
        inner: InMemoryDns::new(&pw.world),
        target,
        reads: AtomicUsize::new(0),
        // Healthy for the approval's look-ahead and the verify-dr step, sick by the switch.
        healthy_reads: 2,
    });
    let mut b = qovery_dr_core::engine::Engine::builder(pw.plan.clone(), providers)
        .clock(pw.world.clone())
        .journal(journal)
        .approver(AutoApprove::new("oncall-sre"))
        .options(options());
    if let Some(r) = override_reason {
        b = b.override_interlock(Interlock::UnhealthyDnsTarget, r);
    }
    b.build()
}

#[tokio::test(start_paused = true)]
async fn dns_is_never_pointed_at_an_unhealthy_target() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let failed = sick_engine(&pw, journal.clone(), None).run(RunMode::Switchover).await.unwrap_err();
    assert_eq!(refused_rule(&failed.error), Some(Interlock::UnhealthyDnsTarget), "{}", failed.error);
    assert_eq!(failed.error.step(), Some(format!("dns:{}", pw.plan.dns()[0].record).as_str()));
    assert_eq!(
        pw.world.record_target(&pw.plan.dns()[0].record).as_ref(),
        Some(&pw.plan.dns()[0].primary_target),
        "not switched"
    );
    assert!(failed.report.safe_state.unwrap().contains("promoted"), "the report says where it stopped");
}

#[tokio::test(start_paused = true)]
async fn overriding_the_dns_health_rule_is_journaled() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let report = sick_engine(&pw, journal.clone(), Some("health checker is broken; target verified by hand"))
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(journaled_override(&journal, Interlock::UnhealthyDnsTarget).is_some());
    assert_eq!(pw.world.record_target(&pw.plan.dns()[0].record).as_ref(), Some(&pw.plan.dns()[0].dr_target));
}

#[tokio::test(start_paused = true)]
async fn one_failover_at_a_time() {
    let pw = aws();
    let lock = InProcessLock::new();
    let other =
        LockHolder { run_id: "run-other".into(), owner: "bob@ci".into(), acquired_at: Timestamp::from_unix_millis(0) };
    lock.acquire(pw.plan.name(), &other).await.unwrap();
    let engine =
        pw.engine_builder().lock(lock.clone()).approver(AutoApprove::new("oncall-sre")).options(options()).build();
    let failed = engine.run(RunMode::Switchover).await.unwrap_err();
    assert_eq!(refused_rule(&failed.error), Some(Interlock::LockHeld));
    assert!(failed.error.to_string().contains("run run-other by bob@ci"), "{}", failed.error);
    pw.world.recorder().assert_no_mutations();
    // The operator declares the other run dead: the override takes the lock over.
    let journal = MemoryJournal::new();
    let engine = pw
        .engine_builder()
        .lock(lock.clone())
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(Interlock::LockHeld, "bob's CI job was killed")
        .build();
    engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert!(journaled_override(&journal, Interlock::LockHeld).is_some());
    assert_eq!(lock.holder(pw.plan.name()).await.unwrap(), None, "released after success");
}

#[tokio::test(start_paused = true)]
async fn a_refused_lock_journals_nothing_and_lock_wait_takes_over_when_freed() {
    let pw = aws();
    let lock = InProcessLock::new();
    let other =
        LockHolder { run_id: "run-other".into(), owner: "bob@ci".into(), acquired_at: Timestamp::from_unix_millis(0) };
    lock.acquire(pw.plan.name(), &other).await.unwrap();
    // Refused: nothing is journaled, so a shared journal is never written by a non-holder.
    let journal = MemoryJournal::new();
    let engine = pw
        .engine_builder()
        .lock(lock.clone())
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    let failed = engine.run(RunMode::Switchover).await.unwrap_err();
    assert_eq!(refused_rule(&failed.error), Some(Interlock::LockHeld));
    assert!(journal.snapshot().is_empty(), "{:?}", journal.snapshot());

    // With lock_wait, the run waits for the holder's lock to go (its lease expired) and runs.
    let freed = {
        let (lock, plan) = (lock.clone(), pw.plan.name().to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            lock.release(&plan, "run-other").await.unwrap();
        })
    };
    let engine = pw
        .engine_builder()
        .lock(lock.clone())
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(qovery_dr_core::engine::EngineOptions { lock_wait: Duration::from_secs(60), ..options() })
        .build();
    let start = tokio::time::Instant::now();
    engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert!(start.elapsed() >= Duration::from_secs(20), "waited for the lock: {:?}", start.elapsed());
    freed.await.unwrap();
    assert!(matches!(journal.snapshot()[0].event, JournalEvent::RunStarted { .. }));
}

#[derive(Debug)]
struct Refuse;

#[async_trait]
impl Approver for Refuse {
    async fn approve(&self, _: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        Err(ApprovalDenied { by: "carol".into(), reason: "not during the sale".into() })
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_past_preflight_happens_without_approval() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let engine = pw.engine_builder().journal(journal.clone()).approver(Refuse).options(options()).build();
    let failed = engine.run(RunMode::Switchover).await.unwrap_err();
    assert!(matches!(failed.error, EngineError::Denied(_)), "{}", failed.error);
    assert_eq!(failed.report.outcome, Outcome::Denied);
    pw.world.recorder().assert_no_mutations();
    assert!(journal.snapshot().iter().any(
        |e| matches!(&e.event, JournalEvent::ApprovalDenied { reason } if reason.contains("not during the sale"))
    ));
}

#[tokio::test(start_paused = true)]
async fn only_the_plans_approvers_may_approve() {
    let pw = aws();
    let engine = pw.engine_builder().approver(AutoApprove::new("mallory")).options(options()).build();
    let failed = engine.run(RunMode::Switchover).await.unwrap_err();
    assert!(failed.error.to_string().contains("mallory is not an approver of this plan"), "{}", failed.error);
    pw.world.recorder().assert_no_mutations();
}

#[tokio::test(start_paused = true)]
async fn the_approval_is_journaled_with_who_and_when() {
    let pw = aws();
    let journal = MemoryJournal::new();
    let before = pw.world.wall_now();
    engine(&pw, journal.clone()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    let approval = journal
        .snapshot()
        .into_iter()
        .find_map(|e| match e.event {
            JournalEvent::ApprovalGranted { approval } => Some(approval),
            _ => None,
        })
        .unwrap();
    assert_eq!(approval.approver, "oncall-sre");
    assert!(approval.at >= before && approval.at <= pw.world.wall_now(), "stamped by the engine's clock");
}

/// A DNS provider with health checks, and a record the plan says has none (its DR target
/// answers `Unknown`): the run does not wait for a health that will never come (it did,
/// until the step timed out, with Route53 on moto).
#[tokio::test(start_paused = true)]
async fn a_record_with_health_checks_off_in_the_plan_is_not_waited_on_when_its_health_is_unknown() {
    use qovery_dr_testkit::state::HealthSource;
    let pw = World::from_plan(&plan_edited("aws-cross-region.toml", |t| {
        // Every record: the first states it, the second takes the default (on).
        t.replace("health_check = true\n", "").replace("\n[dns.route53]", "\nhealth_check = false\n\n[dns.route53]")
    }));
    for r in pw.plan.dns() {
        assert!(!r.health_check);
        pw.world.set_target_health(r.dr_target.clone(), HealthSource::Fixed(TargetHealth::Unknown));
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report =
        tokio::time::timeout(Duration::from_secs(3600), engine(&pw, MemoryJournal::new()).run(RunMode::Switchover))
            .await
            .expect("the run does not hang on an unknown health")
            .unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(report.steps.iter().any(|s| s.name.starts_with("health:")), "the health steps ran");
    pw.world.recorder().assert_no_violations();
}
