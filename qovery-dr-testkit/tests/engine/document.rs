//! Drill reports and runbook documents built from real runs on the simulated world.

use std::time::Duration;

use qovery_dr_core::ErrorKind;
use qovery_dr_core::document::{AuditEvent, Timeline, runbook_markdown};
use qovery_dr_core::engine::{Interlock, MemoryJournal, RunMode, StepStatus};
use qovery_dr_testkit::{FaultAction, Trigger};

use super::common::*;

#[tokio::test(start_paused = true)]
async fn the_timeline_shows_every_step_its_retries_and_the_audit_trail() {
    let pw = aws();
    pw.world.faults().inject("cluster.deploy_services", Trigger::Nth(1), FaultAction::Fail(ErrorKind::Transient));
    let repl = std::sync::Arc::new(qovery_dr_testkit::memory::InMemoryReplication::new(&pw.world));
    let hb = qovery_dr_core::engine::HeartbeatWriter::spawn(
        repl,
        pw.plan.primary().database.id.clone(),
        Duration::from_secs(5),
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    pw.primary_outage();
    drop(hb);
    let journal = MemoryJournal::new();
    let engine = pw
        .engine_builder()
        .journal(journal.clone())
        .approver(qovery_dr_core::engine::AutoApprove {
            who: "oncall-sre".into(),
            accepted_data_loss: Some(Duration::from_secs(3600)),
        })
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "host powered off <b>by hand</b>")
        .build();
    let report = engine.run(RunMode::Failover).await.unwrap_or_else(|f| panic!("{}", f.error));
    let t = Timeline::from_journal(&journal.snapshot(), None).unwrap();
    assert_eq!(t.steps.len(), report.steps.len(), "one span per step");
    assert!(t.steps.iter().all(|s| s.status == StepStatus::Succeeded && s.end_ms.is_some()));
    let retried: Vec<_> = t.steps.iter().filter(|s| !s.failed_attempts.is_empty()).collect();
    assert_eq!(retried.len(), 1, "the failed deploy attempt is on the timeline");
    assert_eq!(retried[0].attempts, 2);
    assert!(t.audit.iter().any(|a| matches!(a, AuditEvent::Approved { .. })));
    assert!(
        t.audit.iter().any(|a| matches!(a, AuditEvent::Overridden { rule: Interlock::PrimaryMayAcceptWrites, .. }))
    );
    let stages: Vec<&str> = t.steps.iter().map(|s| s.stage.as_str()).collect();
    assert!(stages.windows(2).all(|w| w[0] != "?" && w[1] != "?"), "every span knows its stage");

    let md = t.to_markdown();
    assert!(md.contains("| RTO |") && md.contains("| RPO |"), "{md}");
    assert!(md.contains("overridden") && md.contains("↳ attempt failed"), "{md}");
    let html = t.to_html();
    assert_eq!(html.matches("class=\"step-bar\"").count(), report.steps.len());
    assert_eq!(html.matches("class=\"retry\"").count(), 1);
    assert!(html.contains("host powered off &lt;b&gt;by hand&lt;/b&gt;"), "operator text is escaped");
    assert!(!html.contains("<b>by hand</b>"));
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json["run_id"], report.run_id);
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_run_still_has_a_timeline() {
    let pw = aws();
    pw.primary_outage();
    let journal = MemoryJournal::new();
    let _ = engine(&pw, journal.clone()).run(RunMode::Failover).await.unwrap_err();
    let t = Timeline::from_journal(&journal.snapshot(), None).unwrap();
    assert!(t.steps.iter().any(|s| s.status == StepStatus::Refused), "{:?}", t.steps);
    assert!(t.audit.iter().any(|a| matches!(a, AuditEvent::Refused { .. })));
    assert!(t.to_markdown().contains("refused"));
    assert!(Timeline::from_journal(&[], None).is_err());
}

#[tokio::test(start_paused = true)]
async fn the_runbook_document_lists_every_step_with_verification_and_rollback() {
    let pw = aws();
    for mode in RunMode::ALL {
        let runbook = engine(&pw, MemoryJournal::new()).plan(mode).await.unwrap();
        let md = runbook_markdown(&pw.plan, &runbook);
        for step in runbook.steps() {
            assert!(md.contains(&format!("**`{}`**", step.id)), "{mode}: {} in the runbook", step.id);
        }
        let steps = runbook.steps().count();
        assert_eq!(md.matches("   - Verify by hand:").count(), steps, "{mode}");
        assert_eq!(md.matches("   - Roll back:").count(), steps, "{mode}");
        assert_eq!(md.matches("```mermaid").count(), 2, "{mode}: the sites and the flow");
        assert!(md.contains("**oncall-sre**") && md.contains("**head-of-infra**"), "contacts and approvers");
        if mode.moves_production() {
            assert!(md.contains("⚠ point of no return"), "{mode}");
        }
    }
    pw.world.recorder().assert_no_mutations();
}
