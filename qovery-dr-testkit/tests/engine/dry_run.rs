//! Dry run: the exact runbook, evaluated against live state, with zero
//! mutating calls (the recorder proves it).

use std::sync::Arc;

use qovery_dr_core::ErrorKind;
use qovery_dr_core::engine::{RunMode, Runbook};
use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, SwitchRequest, SwitchStrategy};
use qovery_dr_core::provider::{ReadOnly, ReadOnlyLayer};
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns};

use super::common::*;

#[tokio::test(start_paused = true)]
async fn dry_run_of_every_mode_makes_no_mutating_call() {
    for mode in RunMode::ALL {
        let pw = aws();
        let runbook = engine(&pw, Default::default()).plan(mode).await.unwrap();
        assert!(!runbook.stages.is_empty());
        pw.world.recorder().assert_no_mutations();
        assert!(!pw.world.recorder().calls().is_empty(), "{mode}: the dry run reads live state");
    }
}

#[tokio::test(start_paused = true)]
async fn the_runbook_follows_the_default_order() {
    let pw = aws();
    let runbook = engine(&pw, Default::default()).plan(RunMode::Switchover).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        stages,
        [
            "preflight",
            "approval",
            "lock",
            "fence",
            "catch-up",
            "promote",
            "post-promotion",
            "epoch",
            "images",
            "configure",
            "deploy",
            "verify-dr",
            "dns",
            "verify",
            "record",
            "drain"
        ]
    );
    let deploy = runbook.stages.iter().find(|s| s.name == "deploy").unwrap();
    // One request per environment (its three services together): platforms refuse a
    // second deployment of an environment while one runs.
    assert_eq!(deploy.steps.len(), 1, "one deploy step per environment");
    match &deploy.steps[0].kind {
        qovery_dr_core::engine::StepKind::DeployServices { services, .. } => assert_eq!(services.len(), 3),
        other => panic!("{other:?}"),
    }
    let ponr: Vec<&str> = runbook.steps().filter(|s| s.point_of_no_return).map(|s| s.id.as_str()).collect();
    assert_eq!(ponr, ["promote-database"]);
    let failover = engine(&pw, Default::default()).plan(RunMode::Failover).await.unwrap();
    assert!(failover.stages.iter().all(|s| s.name != "catch-up"), "an unplanned failover does not wait for catch-up");
    let drill = engine(&pw, Default::default()).plan(RunMode::Drill).await.unwrap();
    assert!(
        drill.stages.iter().all(|s| s.name != "dns" && s.name != "promote" && s.name != "fence"),
        "a drill touches no production DNS or database role"
    );
    assert_eq!(drill.cleanup.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_runbook_renders_as_a_table_and_as_json() {
    let pw = aws();
    let runbook = engine(&pw, Default::default()).plan(RunMode::Switchover).await.unwrap();
    let table = runbook.to_table();
    assert!(table.contains("promote-database") && table.contains("yes"), "{table}");
    assert!(table.contains("preconditions and interlocks, evaluated now"), "{table}");
    let json = serde_json::to_string_pretty(&runbook).unwrap();
    let back: Runbook = serde_json::from_str(&json).unwrap();
    assert_eq!(back, runbook);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["stages"][5]["steps"][0]["kind"], "promote_database");
    assert_eq!(v["stages"][5]["steps"][0]["point_of_no_return"], true);
}

#[tokio::test(start_paused = true)]
async fn dry_run_shows_the_interlocks_that_would_refuse() {
    let pw = aws();
    pw.primary_outage();
    let runbook = engine(&pw, Default::default()).plan(RunMode::Failover).await.unwrap();
    assert!(runbook.would_refuse(), "{}", runbook.to_table());
    let a = runbook.assessments.iter().find(|a| a.step == "promote-database" && a.verdict == "would-refuse").unwrap();
    assert!(a.evidence.contains("primary-may-accept-writes"), "{a:?}");
    pw.world.recorder().assert_no_mutations();
    // A planned switchover is refused outright without a primary.
    let runbook = engine(&pw, Default::default()).plan(RunMode::Switchover).await.unwrap();
    assert!(
        runbook.assessments.iter().any(|a| a.verdict == "would-refuse" && a.evidence.contains("use failover")),
        "{}",
        runbook.to_table()
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_flags_a_record_owned_by_someone_else() {
    let pw = aws();
    pw.world.add_record(pw.plan.dns()[0].record.clone(), "203.0.113.99", std::time::Duration::from_secs(60));
    let runbook = engine(&pw, Default::default()).plan(RunMode::Switchover).await.unwrap();
    assert!(
        runbook.assessments.iter().any(|a| a.verdict == "would-refuse" && a.evidence.contains("another owner")),
        "{}",
        runbook.to_table()
    );
}

#[tokio::test(start_paused = true)]
async fn the_read_only_guard_refuses_writes_before_they_reach_the_provider() {
    let pw = aws();
    let cluster: Arc<dyn ClusterProvider> = Arc::new(InMemoryCluster::new(&pw.world));
    let dns: Arc<dyn DnsSwitcher> = Arc::new(InMemoryDns::new(&pw.world));
    let ro_cluster = ReadOnly::new(cluster, ReadOnlyLayer);
    let ro_dns = ReadOnly::new(dns, ReadOnlyLayer);
    let e = ro_cluster.deploy_environment(&pw.plan.dr().environments[0]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("dry-run guard"), "{e}");
    let r = &pw.plan.dns()[0];
    let req =
        SwitchRequest::new(r.record.clone(), SwitchStrategy::RecordSwap, r.primary_target.clone(), r.dr_target.clone());
    assert!(ro_dns.switch(&req).await.is_err());
    assert!(ro_cluster.list_services(&pw.plan.dr().environments[0]).await.is_ok(), "reads pass through");
    pw.world.recorder().assert_no_mutations();
}

/// Records what it was asked, then refuses.
#[derive(Debug, Default)]
struct Witness {
    asked: std::sync::Mutex<Option<qovery_dr_core::engine::ApprovalRequest>>,
}

#[qovery_dr_core::async_trait]
impl qovery_dr_core::engine::Approver for Witness {
    async fn approve(
        &self,
        request: &qovery_dr_core::engine::ApprovalRequest,
    ) -> Result<qovery_dr_core::engine::Approval, qovery_dr_core::engine::ApprovalDenied> {
        *self.asked.lock().unwrap() = Some(request.clone());
        Err(qovery_dr_core::engine::ApprovalDenied { by: "witness".into(), reason: "only looking".into() })
    }
}

#[tokio::test(start_paused = true)]
async fn the_approver_sees_the_refusals_and_warnings_the_dry_run_foresees() {
    let pw = aws();
    // One record now points elsewhere (another owner), the other's DR target is not healthy yet.
    let (taken, waiting) = (&pw.plan.dns()[0], &pw.plan.dns()[1]);
    pw.world.add_record(taken.record.clone(), "203.0.113.99", std::time::Duration::from_secs(60));
    pw.world.set_target_health(
        waiting.dr_target.clone(),
        qovery_dr_testkit::world::HealthSource::Fixed(qovery_dr_core::provider::TargetHealth::Unhealthy),
    );
    let witness = Arc::new(Witness::default());
    let engine = pw.engine_builder().approver(Arc::clone(&witness)).options(options()).build();
    let failed = engine.run(RunMode::Failover).await.unwrap_err();
    assert!(failed.error.to_string().contains("only looking"), "{}", failed.error);
    let asked = witness.asked.lock().unwrap().clone().expect("the approver was asked");
    let refusal = format!("dns:{}: ", taken.record);
    assert!(
        asked.foreseen_refusals.iter().any(|r| r.starts_with(&refusal) && r.contains("another owner")),
        "{:#?}",
        asked.foreseen_refusals
    );
    let warning = format!("health:{}: ", waiting.record);
    assert!(asked.foreseen_warnings.iter().any(|w| w.starts_with(&warning)), "{:#?}", asked.foreseen_warnings);
    assert!(
        !asked.foreseen_refusals.iter().any(|r| r.starts_with("lock:")),
        "the run's own lock is no refusal: {:#?}",
        asked.foreseen_refusals
    );
}
