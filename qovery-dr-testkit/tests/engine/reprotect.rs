//! A failback that re-protects first (`failover.reprotect_on_failback`): the original
//! primary is made a standby of the current one by the replication manager, as a step.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::ErrorKind;
use qovery_dr_core::engine::{MemoryJournal, Outcome, RunMode, StepOutput, journaled_outputs};
use qovery_dr_core::provider::{Providers, ReplicationCapabilities};
use qovery_dr_testkit::memory::InMemoryReplication;
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World};

use super::common::*;

fn reprotecting_world() -> PlanWorld {
    let plan = plan_edited("aws-cross-region.toml", |text| text + "\n[failover]\nreprotect_on_failback = true\n");
    assert!(plan.failover().reprotect_on_failback);
    World::from_plan(&plan)
}

async fn switched_over(pw: &PlanWorld) {
    engine(pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failback_re_protects_the_original_primary_as_a_step_then_returns_to_it() {
    let pw = reprotecting_world();
    switched_over(&pw).await;
    let journal = MemoryJournal::new();
    let e = engine(&pw, journal.clone());
    let runbook = e.plan(RunMode::Failback).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    let at = stages.iter().position(|s| *s == "reprotect").expect("a reprotect stage");
    assert_eq!(stages[at - 1], "lock", "after the lock, before anything else: {stages:?}");
    assert!(at < stages.iter().position(|s| *s == "fence").unwrap());
    assert!(runbook.steps().find(|s| s.id == "reprotect").unwrap().point_of_no_return, "it discards data");
    assert!(!runbook.would_refuse(), "{}", runbook.to_table());

    let report = e.run(RunMode::Failback).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0));
    let db = &pw.plan.primary().database.id;
    pw.world.with_state(|s| {
        let d = &s.databases[db];
        assert!(d.a.writable() && !d.b.writable(), "the original primary is the only writable one again");
    });
    let outputs = journaled_outputs(&journal.snapshot(), &report.run_id).unwrap();
    match outputs.get("reprotect") {
        Some(StepOutput::Reprotect(r)) => {
            assert!(!r.report.already);
            assert!(r.report.notes.iter().any(|n| n.contains("discarded")), "{r:?}");
            assert_eq!(r.link, qovery_dr_core::provider::LinkState::Streaming);
        }
        other => panic!("{other:?}"),
    }
    let step = report.steps.iter().find(|s| s.name == "reprotect").unwrap();
    assert!(step.note.as_deref().unwrap_or_default().contains("discarded"), "shown in the report: {step:?}");
    let md = qovery_dr_core::document::runbook_markdown(&pw.plan, &runbook);
    assert!(md.contains("`reprotect`** ⚠ point of no return"), "{md}");
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_failback_still_refuses_and_names_it() {
    let pw = aws();
    switched_over(&pw).await;
    let refused = engine(&pw, MemoryJournal::new()).run(RunMode::Failback).await.unwrap_err();
    let message = refused.error.to_string();
    assert!(message.contains("failover.reprotect_on_failback"), "{message}");
    assert!(!refused.report.steps.iter().any(|s| s.name == "reprotect"));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_to_the_re_protection_is_retried_and_the_second_attempt_finds_it_done() {
    let pw = reprotecting_world();
    switched_over(&pw).await;
    // The first call acts, then its answer is lost.
    pw.world.faults().inject(
        "replication.reprotect",
        Trigger::FirstN(1),
        FaultAction::ApplyThenFail(ErrorKind::Indeterminate),
    );
    let journal = MemoryJournal::new();
    let report = engine(&pw, journal.clone()).run(RunMode::Failback).await.unwrap_or_else(|f| panic!("{}", f.error));
    let step = report.steps.iter().find(|s| s.name == "reprotect").unwrap();
    assert_eq!(step.attempts, 2, "{step:?}");
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get("reprotect") {
        Some(StepOutput::Reprotect(r)) => assert!(r.report.already, "the retry found it done: {r:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_manager_that_cannot_re_protect_is_foreseen_by_the_dry_run_and_stops_the_run_with_production_unchanged() {
    let pw = reprotecting_world();
    switched_over(&pw).await;
    let without = ReplicationCapabilities::default()
        .with_physical(true)
        .with_logical(true)
        .with_fencing(true)
        .with_heartbeat(true);
    let providers = Providers {
        replication: Arc::new(InMemoryReplication::new(&pw.world).with_capabilities(without)),
        ..pw.providers()
    };
    let e = qovery_dr_core::engine::Engine::builder(pw.plan.clone(), providers)
        .journal(MemoryJournal::new())
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
        .clock(pw.world.clone())
        .build();
    let runbook = e.plan(RunMode::Failback).await.unwrap();
    assert!(
        runbook.assessments.iter().any(|a| a.step == "reprotect" && a.verdict == "would-refuse"),
        "{}",
        runbook.to_table()
    );
    let failed = e.run(RunMode::Failback).await.expect_err("cannot re-protect");
    assert!(failed.error.to_string().contains("cannot re-protect"), "{}", failed.error);
    let safe = failed.report.safe_state.unwrap_or_default();
    assert!(safe.contains("current primary is unchanged"), "{safe}");
    let db = &pw.plan.primary().database.id;
    pw.world.with_state(|s| assert!(s.databases[db].b.writable(), "the promoted DR database still serves"));
}

#[tokio::test(start_paused = true)]
async fn a_dump_pair_fails_back_after_a_fresh_dump_back() {
    let plan = plan_edited("scaleway-to-aws.yaml", |text| text + "\nfailover:\n  reprotect_on_failback: true\n");
    assert_eq!(plan.replication().mode, qovery_dr_core::provider::ReplicationMode::Dump);
    let pw = World::from_plan(&plan);
    tokio::time::sleep(Duration::from_secs(120)).await;
    engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let journal = MemoryJournal::new();
    let report = engine(&pw, journal.clone())
        .run(RunMode::Failback)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get("reprotect") {
        Some(StepOutput::Reprotect(r)) => {
            assert_eq!(r.link, qovery_dr_core::provider::LinkState::NotApplicable, "a dump pair has no stream: {r:?}")
        }
        other => panic!("{other:?}"),
    }
    let db = &pw.plan.primary().database.id;
    pw.world.with_state(|s| assert!(s.databases[db].a.writable(), "the original primary takes writes again"));
}
