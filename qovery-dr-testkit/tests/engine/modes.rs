//! Each mode end to end, with paused time.

use std::time::Duration;

use qovery_dr_core::engine::{MemoryJournal, Outcome, RunMode, StepStatus};
use qovery_dr_core::provider::{Node, Writability};
use qovery_dr_testkit::world::NodeCondition;

use super::common::*;

#[tokio::test(start_paused = true)]
async fn switchover_moves_everything_with_zero_data_loss() {
    let pw = aws();
    let engine = engine(&pw, MemoryJournal::new());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    println!("{}", report.to_text());
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0));
    assert!(report.measured_rto_ms.unwrap() > 0);
    assert_eq!(report.rto_met, Some(true), "{}", report.to_text());
    assert!(report.steps.iter().all(|s| s.status == StepStatus::Succeeded), "{}", report.to_text());
    for r in &pw.plan.dns {
        assert_eq!(pw.world.record_target(&r.record).as_ref(), Some(&r.dr_target));
    }
    let db = &pw.plan.primary.database.id;
    pw.world.with_state(|s| {
        let d = &s.databases[db];
        assert!(d.b.writable() && !d.a.writable(), "the DR database is the only writable one");
    });
    pw.world.recorder().assert_no_violations();
    let _ = (Node::Primary, Writability::ReadOnly, NodeCondition::Up);
}
