//! The failover epoch: incremented by each promoting run, recorded in the promoted
//! database, set as the DR environments' variable, published beside each switched
//! record; readiness checks that the three agree.

use std::time::Duration;

use qovery_dr_core::engine::{MemoryJournal, RunMode, StepOutput, journaled_outputs};
use qovery_dr_core::provider::{DnsSwitcher, Node, ReplicationManager};
use qovery_dr_core::readiness::{CheckStatus, Readiness};
use qovery_dr_core::{EPOCH_VARIABLE, ErrorKind, FailoverEpoch, Timestamp};
use qovery_dr_testkit::memory::{InMemoryDns, InMemoryReplication};
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World};

use super::common::*;

/// The epoch each layer holds: the databases (both nodes), the DR environments'
/// variable, each record's TXT.
async fn layers(pw: &PlanWorld) -> (Option<u64>, Option<String>, Vec<Option<u64>>) {
    let repl = InMemoryReplication::new(&pw.world);
    let db = &pw.plan.primary().database.id;
    let mut newest = None;
    for node in [Node::Primary, Node::Standby] {
        if let Some(e) = repl.failover_epoch(db, node).await.unwrap() {
            newest = newest.max(Some(e.epoch));
        }
    }
    let env = &pw.plan.dr().environments[0];
    let var = pw.world.with_state(|s| s.environments[env].variables.get(EPOCH_VARIABLE).map(|v| v.value.clone()));
    let dns = InMemoryDns::new(&pw.world);
    let mut txt = Vec::new();
    for r in pw.plan.dns() {
        txt.push(dns.failover_epoch(&r.record).await.unwrap());
    }
    (newest, var, txt)
}

async fn epoch_check(pw: &PlanWorld) -> qovery_dr_core::readiness::CheckResult {
    let r = Readiness::new(pw.plan.clone(), pw.providers()).evaluate().await;
    r.checks.iter().find(|c| c.id == "failover-epoch").cloned().unwrap_or_else(|| panic!("{}", r.to_table()))
}

#[tokio::test(start_paused = true)]
async fn a_switchover_then_a_failback_each_increment_the_epoch_in_every_layer() {
    let pw =
        World::from_plan(&plan_edited("aws-cross-region.toml", |t| t + "\n[failover]\nreprotect_on_failback = true\n"));
    let before = epoch_check(&pw).await;
    assert_eq!(before.status, CheckStatus::Pass, "{before:?}");
    assert!(before.observed.starts_with("no failover recorded (epoch 0)"), "{before:?}");

    let journal = MemoryJournal::new();
    let report = engine(&pw, journal.clone()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    // Journaled: the step's output.
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get("failover-epoch") {
        Some(StepOutput::Epoch(o)) => assert_eq!((o.epoch, o.previous), (1, 0), "{o:?}"),
        other => panic!("{other:?}"),
    }
    let records = pw.plan.dns().len();
    assert_eq!(layers(&pw).await, (Some(1), Some("1".to_owned()), vec![Some(1); records]));
    let after = epoch_check(&pw).await;
    assert_eq!(after.status, CheckStatus::Pass, "{after:?}");
    assert_eq!(after.observed, format!("epoch 1 in all {} layer(s)", 2 + records));
    let r = Readiness::new(pw.plan.clone(), pw.providers()).evaluate().await;
    assert_eq!(r.metrics.failover_epoch, Some(1), "shown in the report's figures");

    tokio::time::sleep(Duration::from_secs(10)).await;
    engine(&pw, MemoryJournal::new()).run(RunMode::Failback).await.unwrap_or_else(|f| panic!("{}", f.error));
    let (db, _, txt) = layers(&pw).await;
    assert_eq!(db, Some(2), "a failback increments it again");
    assert_eq!(txt, vec![Some(2); records]);
    // The original primary's environments (the failback's DR side) got the variable.
    let env = &pw.plan.primary().environments[0];
    let var = pw.world.with_state(|s| s.environments[env].variables.get(EPOCH_VARIABLE).map(|v| v.value.clone()));
    assert_eq!(var.as_deref(), Some("2"));
    let check = epoch_check(&pw).await;
    assert_eq!(check.status, CheckStatus::Pass, "the newest variable on either site counts: {check:?}");
}

#[tokio::test(start_paused = true)]
async fn a_layer_that_missed_the_epoch_fails_readiness() {
    let pw = aws();
    engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    let record = pw.plan.dns()[0].record.clone();
    // Forced: the TXT record back at epoch 0 (as a restore of the zone would leave it).
    pw.world.with_state(|s| s.epochs.remove(&record));
    let check = epoch_check(&pw).await;
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    let txt = FailoverEpoch::record_name(&record);
    assert!(check.observed.contains(&format!("TXT {txt} holds 0")), "{check:?}");
    assert!(check.observed.starts_with("epoch 1 in ") && check.observed.contains("database shop-db"), "{check:?}");
    let r = Readiness::new(pw.plan.clone(), pw.providers()).evaluate().await;
    assert!(!r.ready, "a disagreement fails the verdict");
    assert_eq!(r.metrics.failover_epoch, None);
    // And the variable: a stale value on the DR environment.
    pw.world.with_state(|s| s.epochs.insert(record.clone(), 1));
    let env = pw.plan.dr().environments[0].clone();
    pw.world.with_state(|s| {
        if let Some(v) = s.environments.get_mut(&env).and_then(|e| e.variables.get_mut(EPOCH_VARIABLE)) {
            v.value = "7".into();
        }
    });
    let check = epoch_check(&pw).await;
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    assert!(check.observed.starts_with(&format!("epoch 7 in variable {EPOCH_VARIABLE}, but ")), "{check:?}");
    assert!(check.observed.contains("database shop-db holds 1"), "{check:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retried_epoch_step_records_one_epoch_not_two() {
    let pw = aws();
    // The first write is applied, then its answer lost: the retry finds this run's row.
    pw.world.faults().inject(
        "replication.record_failover_epoch",
        Trigger::Nth(1),
        FaultAction::ApplyThenFail(ErrorKind::Indeterminate),
    );
    engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    let db = &pw.plan.primary().database.id;
    let rows = pw.world.with_state(|s| s.databases[db].b.epochs.clone());
    assert_eq!(rows.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1], "{rows:?}");
    assert_eq!(pw.world.recorder().calls_of("replication.record_failover_epoch").len(), 2, "retried once");
}

#[tokio::test(start_paused = true)]
async fn a_newer_epoch_published_by_another_run_is_not_overwritten() {
    let pw = aws();
    let record = pw.plan.dns()[0].record.clone();
    pw.world.with_state(|s| s.epochs.insert(record.clone(), 9));
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_err();
    let text = failed.error.to_string();
    assert!(text.contains("a newer failover epoch than 1 is published beside"), "{text}");
    assert_eq!(pw.world.with_state(|s| s.epochs[&record]), 9, "left as it was");
    // The provider's own guard, called directly.
    let dns = InMemoryDns::new(&pw.world);
    let e = FailoverEpoch::new(2, "r", "failover", Timestamp::from_unix_millis(0));
    assert_eq!(dns.publish_failover_epoch(&record, &e).await.unwrap_err().kind(), ErrorKind::Conflict);
}

#[tokio::test(start_paused = true)]
async fn a_platform_api_that_never_answers_does_not_hold_the_epoch_step_up() {
    let pw = aws();
    // Reading the variable hangs (the Qovery API down): the step goes on from the databases.
    pw.world.faults().inject("cluster.list_variables", Trigger::Always, FaultAction::Hang);
    let started = tokio::time::Instant::now();
    let report =
        engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    let step = report.steps.iter().find(|s| s.name == "failover-epoch").unwrap();
    assert_eq!(step.attempts, 1, "{step:?}");
    // Both environments' reads share one 10 s bound, not 10 s each.
    assert!((10_000..11_000).contains(&step.duration_ms), "{step:?}");
    assert!(started.elapsed() < Duration::from_secs(30 * 60), "{:?}", started.elapsed());
    let db = &pw.plan.primary().database.id;
    assert_eq!(pw.world.with_state(|s| s.databases[db].b.epochs.len()), 1);
}
