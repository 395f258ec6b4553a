//! Values the failover-lock and journal tests of every backend share.

use std::sync::atomic::{AtomicU32, Ordering};

use std::time::Duration;

use qovery_dr_core::Timestamp;
use qovery_dr_core::engine::{
    AutoApprove, EngineBuilder, EngineOptions, FailoverLock, Journal, JournalEntry, JournalEvent, LockHolder,
    SystemClock,
};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_testkit::PlanWorld;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A plan name no other test uses.
pub fn plan_name() -> String {
    format!("shop-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

pub fn holder(run_id: &str, owner: &str) -> LockHolder {
    LockHolder {
        run_id: run_id.into(),
        owner: owner.into(),
        acquired_at: Timestamp::from_unix_millis(1_700_000_000_000),
    }
}

pub fn entry(seq: u64, run_id: &str) -> JournalEntry {
    JournalEntry::new(seq, Timestamp::from_unix_millis(1_700_000_000_000 + seq), run_id, JournalEvent::LockReleased)
}

/// The example plan under a name no other test uses.
pub fn example_plan() -> DrPlan {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap();
    let name = plan_name();
    let text = text.replace("name = \"shop-aws-cross-region\"", &format!("name = \"{name}\""));
    let plan = DrPlan::parse(&text, PlanFormat::Toml).unwrap();
    assert_eq!(plan.name(), name);
    plan
}

/// An engine on the simulated world `sim` with a real `lock` and `journal`, auto-approved,
/// polling every 50 ms, without the final TTL drain.
pub fn engine_with(sim: &PlanWorld, lock: impl FailoverLock, journal: impl Journal, operator: &str) -> EngineBuilder {
    sim.engine_builder()
        .clock(SystemClock)
        .lock(lock)
        .journal(journal)
        .approver(AutoApprove::new("oncall-sre"))
        .options(EngineOptions {
            operator: operator.into(),
            poll_interval: Duration::from_millis(50),
            drain_ttl: false,
            ..EngineOptions::default()
        })
}
