//! Several databases per site: fenced, caught up and promoted by the same steps, each
//! through its own manager, and all refused before any is fenced (or promoted) when one
//! cannot follow.

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::engine::{
    Approval, ApprovalDenied, ApprovalRequest, Approver, AutoApprove, Interlock, MemoryJournal, Outcome, RunMode,
    StepOutput, journaled_outputs,
};
use qovery_dr_core::provider::{Node, ReplicationManager, ReplicationRouter, Writability};
use qovery_dr_core::readiness::{CheckStatus, Readiness};
use qovery_dr_core::{DatabaseId, async_trait};
use qovery_dr_testkit::memory::InMemoryReplication;
use qovery_dr_testkit::world::LinkSim;
use qovery_dr_testkit::{PlanWorld, World};

use super::common::*;

const BILLING: &str = "billing-db";

fn billing_block(role: &str, host: &str) -> String {
    format!(
        "\n[[sites.{role}.additional_databases]]\nid = \"{BILLING}\"\nhost = \"{host}\"\nport = 5432\n\
         dbname = \"billing\"\nuser = \"dr_orchestrator\"\n"
    )
}

fn two_databases() -> PlanWorld {
    let plan = plan_edited("aws-cross-region.toml", |text| {
        text + &billing_block("primary", "billing.eu-west-3.example")
            + &billing_block("dr", "billing.eu-central-1.example")
    });
    assert_eq!(plan.primary().database_ids().len(), 2);
    World::from_plan(&plan)
}

fn ids() -> (DatabaseId, DatabaseId) {
    (DatabaseId::new("shop-db"), DatabaseId::new(BILLING))
}

async fn writability(pw: &PlanWorld, db: &DatabaseId) -> Writability {
    InMemoryReplication::new(&pw.world).primary_writability(db).await.unwrap()
}

async fn promoted(pw: &PlanWorld, db: &DatabaseId) -> bool {
    InMemoryReplication::new(&pw.world).status(db).await.unwrap().standby_promoted
}

/// Heartbeats on both databases, as the live wiring's writer does.
async fn with_heartbeats(pw: &PlanWorld, secs: u64) {
    let repl = Arc::new(InMemoryReplication::new(&pw.world));
    let (shop, billing) = ids();
    let hb = qovery_dr_core::engine::HeartbeatWriter::spawn_each(repl, vec![shop, billing], Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    drop(hb);
}

#[tokio::test(start_paused = true)]
async fn a_switchover_fences_catches_up_and_promotes_both_databases_in_the_same_stages() {
    let pw = two_databases();
    let journal = MemoryJournal::new();
    let e = engine(&pw, journal.clone());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    for (stage, names) in
        [("fence", "the old primaries of shop-db, billing-db"), ("promote", "the standbys of shop-db, billing-db")]
    {
        let s = runbook.stages.iter().find(|s| s.name == stage).unwrap();
        assert_eq!(s.steps.len(), 1, "{stage}: one step for every database");
        assert!(s.steps[0].description.contains(names), "{}", s.steps[0].description);
    }
    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let (shop, billing) = ids();
    assert!(promoted(&pw, &shop).await && promoted(&pw, &billing).await, "both standbys promoted");
    let outputs = journaled_outputs(&journal.snapshot(), &report.run_id).unwrap();
    match outputs.get("fence-primary") {
        Some(StepOutput::Fence(f)) => {
            assert!(f.fenced);
            assert!(f.other_databases[&billing].fenced, "the billing primary's fence is journaled: {f:?}");
        }
        other => panic!("{other:?}"),
    }
    match outputs.get("catch-up") {
        Some(StepOutput::CatchUp(c)) => {
            assert!(c.other_databases[&billing].replayed >= c.other_databases[&billing].final_lsn)
        }
        other => panic!("{other:?}"),
    }
    match outputs.get("promote-database") {
        Some(StepOutput::Promote(p)) => assert!(p.other_databases.contains_key(&billing)),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.measured_rpo_ms, Some(0), "both caught up: zero loss ({:?})", report.rpo_evidence);
    let evidence = report.rpo_evidence.unwrap_or_default();
    assert!(evidence.contains("shop-db:") && evidence.contains("billing-db:"), "{evidence}");
}

#[tokio::test(start_paused = true)]
async fn a_database_that_cannot_catch_up_refuses_the_switchover_before_either_is_fenced() {
    let pw = two_databases();
    let (shop, billing) = ids();
    pw.world.set_link(&billing, LinkSim::Down);
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.expect_err("refused");
    let message = failed.error.to_string();
    assert!(message.contains("billing-db") && message.contains("cannot catch up"), "{message}");
    assert_eq!(writability(&pw, &shop).await, Writability::Writable, "shop-db is not fenced");
    assert_eq!(writability(&pw, &billing).await, Writability::Writable, "billing-db is not fenced");
    let safe = failed.report.safe_state.unwrap_or_default();
    assert!(safe.contains("nothing in production was changed"), "{safe}");
}

/// Breaks one database's link while the approver is asked: after the preflight passed.
#[derive(Debug)]
struct BreaksTheLinkWhileAsked(PlanWorld);

#[async_trait]
impl Approver for BreaksTheLinkWhileAsked {
    async fn approve(&self, request: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        self.0.world.set_link(&DatabaseId::new(BILLING), LinkSim::Broken);
        AutoApprove::new("oncall-sre").approve(request).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_link_that_breaks_after_the_preflight_still_stops_the_fence_before_either_database() {
    let pw = two_databases();
    let (shop, billing) = ids();
    let e = pw
        .engine_builder()
        .journal(MemoryJournal::new())
        .approver(BreaksTheLinkWhileAsked(pw.clone()))
        .options(options())
        .build();
    let failed = e.run(RunMode::Switchover).await.expect_err("refused at the fence");
    let fence = failed.report.steps.iter().find(|s| s.name == "fence-primary").expect("the fence step ran");
    let why = fence.error.clone().unwrap_or_default();
    assert!(why.contains("billing-db") && why.contains("no database was fenced"), "{why}");
    assert_eq!(writability(&pw, &shop).await, Writability::Writable);
    assert_eq!(writability(&pw, &billing).await, Writability::Writable);
}

/// A failover with the override a terminated primary site justifies.
async fn failover_with_both_primaries_terminated(
    pw: &PlanWorld,
) -> Result<qovery_dr_core::engine::RunReport, Box<qovery_dr_core::engine::RunFailed>> {
    pw.engine_builder()
        .journal(MemoryJournal::new())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "both instances terminated")
        .build()
        .run(RunMode::Failover)
        .await
}

#[tokio::test(start_paused = true)]
async fn a_failover_promotes_neither_database_when_one_would_lose_more_than_the_rpo() {
    let pw = two_databases();
    let (shop, billing) = ids();
    // billing-db's standby is ten minutes behind; the RPO of the plan is far less.
    pw.world.set_replication_load(&billing, Duration::from_secs(600), 10);
    with_heartbeats(&pw, 30).await;
    pw.primary_outage();
    let failed = failover_with_both_primaries_terminated(&pw).await.expect_err("refused at the promotion");
    let message = failed.error.to_string();
    assert!(message.contains("billing-db") && message.contains("no database was promoted"), "{message}");
    assert!(!promoted(&pw, &shop).await, "shop-db, within the RPO on its own, is NOT promoted either");
    assert!(!promoted(&pw, &billing).await);
}

#[tokio::test(start_paused = true)]
async fn a_failover_with_both_databases_down_bounds_the_loss_by_the_worse_of_the_two() {
    let pw = two_databases();
    let (shop, billing) = ids();
    with_heartbeats(&pw, 30).await;
    pw.primary_outage();
    let report = failover_with_both_primaries_terminated(&pw).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert!(promoted(&pw, &shop).await && promoted(&pw, &billing).await);
    let evidence = report.rpo_evidence.clone().unwrap_or_default();
    assert!(evidence.contains("the worst of 2 databases"), "{evidence}");
    assert!(report.measured_rpo_ms.is_some_and(|ms| ms <= 10_000), "{:?}: {evidence}", report.measured_rpo_ms);
}

#[tokio::test(start_paused = true)]
async fn readiness_and_the_dry_run_look_at_every_database() {
    let pw = two_databases();
    pw.world.set_link(&DatabaseId::new(BILLING), LinkSim::Down);
    let r = Readiness::new(pw.plan.clone(), pw.providers()).clock(Arc::new(pw.world.clone())).evaluate().await;
    let of = |id: &str| r.checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id} in {}", r.to_table()));
    assert_ne!(of("replication:shop-db").status, CheckStatus::Fail);
    assert_eq!(of("replication:billing-db").status, CheckStatus::Fail);

    let runbook = engine(&pw, MemoryJournal::new()).plan(RunMode::Switchover).await.unwrap();
    assert!(runbook.would_refuse(), "{}", runbook.to_table());
    assert!(
        runbook
            .assessments
            .iter()
            .any(|a| a.verdict == "would-refuse" && a.evidence.starts_with("database billing-db:")),
        "{}",
        runbook.to_table()
    );
}

#[tokio::test]
async fn a_router_sends_each_database_to_its_own_manager() {
    let one = two_databases();
    let other = two_databases();
    let (shop, billing) = ids();
    // shop-db through one world's manager, billing-db through the other's.
    let router = ReplicationRouter::new()
        .route(shop.clone(), Arc::new(InMemoryReplication::new(&one.world)))
        .route(billing.clone(), Arc::new(InMemoryReplication::new(&other.world)));
    router.fence_primary(&billing).await.unwrap();
    assert_eq!(writability(&other, &billing).await, Writability::ReadOnly);
    assert_eq!(writability(&one, &billing).await, Writability::Writable, "the other manager was not called");
    assert!(router.last_heartbeat(&shop, Node::Standby).await.is_ok());
    let err = router.status(&DatabaseId::new("orders-db")).await.unwrap_err();
    assert_eq!(err.kind(), qovery_dr_core::ErrorKind::NotFound);
    assert!(err.to_string().contains("billing-db, shop-db"), "{err}");
}

#[test]
fn a_plan_pairs_every_additional_database_by_id() {
    let path = format!("{}/../examples/plans/aws-cross-region.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let parse = |t: String| qovery_dr_core::plan::DrPlan::parse(&t, qovery_dr_core::plan::PlanFormat::Toml);
    let only_primary = parse(text.clone() + &billing_block("primary", "billing.a")).unwrap_err().to_string();
    assert!(only_primary.contains("sites.primary.additional_databases[0].id"), "{only_primary}");
    let twice = parse(
        text.clone()
            + &billing_block("primary", "billing.a")
            + &billing_block("primary", "billing.b")
            + &billing_block("dr", "billing.c"),
    )
    .unwrap_err()
    .to_string();
    assert!(twice.contains("sites.primary.additional_databases[1].id") && twice.contains("twice"), "{twice}");
    let same_server = parse(text + &billing_block("primary", "billing.a") + &billing_block("dr", "billing.a"))
        .unwrap_err()
        .to_string();
    assert!(same_server.contains("sites.dr.additional_databases[0].host"), "{same_server}");
}
