//! The plan's `[failover]` options that change the sequence: stopping the old primary.

use qovery_dr_core::ErrorKind;
use qovery_dr_core::engine::{MemoryJournal, Outcome, RunMode, StepOutput, journaled_outputs};
use qovery_dr_core::provider::{ClusterProvider, DeploymentPhase};
use qovery_dr_testkit::{FaultAction, PlanWorld, Trigger, World};

use super::common::*;

fn stopping_world() -> PlanWorld {
    let plan = plan_edited("aws-cross-region.toml", |text| text + "\n[failover]\nstop_old_primary = true\n");
    assert!(plan.failover().stop_old_primary);
    World::from_plan(&plan)
}

async fn primary_phases(pw: &PlanWorld) -> Vec<DeploymentPhase> {
    let cluster = qovery_dr_testkit::memory::InMemoryCluster::new(&pw.world);
    let status = cluster.environment_status(&pw.plan.primary().environments[0]).await.unwrap();
    status.services.iter().map(|s| s.phase).collect()
}

#[tokio::test(start_paused = true)]
async fn a_switchover_stops_the_old_primary_after_the_switch_when_the_plan_asks() {
    let pw = stopping_world();
    let journal = MemoryJournal::new();
    let e = engine(&pw, journal.clone());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    let at = stages.iter().position(|s| *s == "stop-old-primary").expect("a stop stage");
    assert_eq!(stages[at - 1], "verify", "after DNS is verified: {stages:?}");
    assert_eq!(stages[at + 1], "record", "{stages:?}");
    assert!(primary_phases(&pw).await.iter().all(|p| *p == DeploymentPhase::Deployed));

    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(primary_phases(&pw).await.iter().all(|p| *p == DeploymentPhase::Stopped), "the old primary is stopped");
    let id = format!("stop-old-primary:{}", pw.plan.primary().environments[0]);
    let outputs = journaled_outputs(&journal.snapshot(), &report.run_id).unwrap();
    match outputs.get(&id) {
        Some(StepOutput::StopEnvironment(o)) => assert!(o.stopped && o.deployment.is_some() && o.skipped.is_none()),
        other => panic!("{id}: {other:?}"),
    }
    // The RTO ends at the verified switch: the stop after it is not in it.
    assert!(report.measured_rto_ms.is_some());
}

#[tokio::test(start_paused = true)]
async fn without_the_option_the_old_primary_keeps_running() {
    let pw = aws();
    let report =
        engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert!(!report.steps.iter().any(|s| s.stage == "stop-old-primary"));
    assert!(primary_phases(&pw).await.iter().all(|p| *p == DeploymentPhase::Deployed));
}

#[tokio::test(start_paused = true)]
async fn a_failover_whose_old_site_never_answers_succeeds_and_says_what_to_stop() {
    let pw = stopping_world();
    let repl = std::sync::Arc::new(qovery_dr_testkit::memory::InMemoryReplication::new(&pw.world));
    let hb = qovery_dr_core::engine::HeartbeatWriter::spawn(
        repl,
        pw.plan.primary().database.id.clone(),
        std::time::Duration::from_secs(5),
    );
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    pw.primary_outage();
    drop(hb);
    pw.world.faults().inject(
        "cluster.stop_environment",
        Trigger::FirstN(u64::MAX),
        FaultAction::Fail(ErrorKind::Transient),
    );
    let report = pw
        .engine_builder()
        .journal(MemoryJournal::new())
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
        .override_interlock(qovery_dr_core::engine::Interlock::PrimaryMayAcceptWrites, "instance terminated")
        .build()
        .run(RunMode::Failover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let step = report.steps.iter().find(|s| s.stage == "stop-old-primary").unwrap();
    let note = step.note.as_deref().unwrap_or_default();
    assert!(note.contains("could not be stopped") && note.contains("stop it as soon as that site answers"), "{note}");
}

#[tokio::test(start_paused = true)]
async fn a_switchover_whose_stop_is_refused_fails_the_step() {
    let pw = stopping_world();
    pw.world.faults().inject(
        "cluster.stop_environment",
        Trigger::FirstN(u64::MAX),
        FaultAction::Fail(ErrorKind::PermissionDenied),
    );
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_err();
    assert!(failed.error.to_string().contains("stop-old-primary"), "{}", failed.error);
    assert!(failed.error.to_string().contains("permission_denied"), "{}", failed.error);
}

fn pilot_light(option: bool) -> PlanWorld {
    let extra = if option { "\n[failover]\nstart_stopped_cluster = true\n" } else { "" };
    let plan = plan_edited("aws-cross-region.toml", |text| text + extra);
    let pw = World::from_plan(&plan);
    pw.world.set_cluster_state(&pw.plan.dr().cluster, qovery_dr_core::provider::ClusterState::Stopped);
    pw
}

#[tokio::test(start_paused = true)]
async fn a_stopped_dr_cluster_is_started_first_and_waited_for_when_the_plan_allows() {
    let pw = pilot_light(true);
    let journal = MemoryJournal::new();
    let e = engine(&pw, journal.clone());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(&stages[..5], ["preflight", "approval", "lock", "start-cluster", "fence"], "{stages:?}");
    assert!(!runbook.would_refuse(), "{}", runbook.to_table());
    assert!(runbook.assessments.iter().any(|a| a.step == "start-cluster" && a.evidence.contains("will be started")));

    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let cluster = qovery_dr_testkit::memory::InMemoryCluster::new(&pw.world);
    assert!(cluster.cluster_status(&pw.plan.dr().cluster).await.unwrap().is_healthy());
    match journaled_outputs(&journal.snapshot(), &report.run_id).unwrap().get("start-cluster") {
        Some(StepOutput::StartCluster(o)) => {
            assert!(o.started, "{o:?}");
            // The world's clusters take a deployment's time to start (65 s in the test world).
            assert!(o.waited_ms.unwrap() >= 60_000, "{o:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pw.world.recorder().applied_count("cluster.start_cluster"), 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_option_a_stopped_dr_cluster_is_refused_before_anything_changes() {
    let pw = pilot_light(false);
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_err();
    assert!(failed.error.to_string().contains("is Stopped"), "{}", failed.error);
    pw.world.recorder().assert_no_mutations();
}

#[tokio::test(start_paused = true)]
async fn a_dr_cluster_in_error_is_refused_even_with_the_option() {
    let pw = pilot_light(true);
    pw.world.set_cluster_state(&pw.plan.dr().cluster, qovery_dr_core::provider::ClusterState::Error);
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_err();
    assert!(failed.error.to_string().contains("is Error"), "{}", failed.error);
    assert_eq!(pw.world.recorder().applied_count("cluster.start_cluster"), 0);
}

#[tokio::test(start_paused = true)]
async fn readiness_warns_of_a_stopped_cluster_the_plan_will_start() {
    use qovery_dr_core::readiness::CheckStatus;
    for (option, expected) in [(true, CheckStatus::Warn), (false, CheckStatus::Fail)] {
        let pw = pilot_light(option);
        let report = qovery_dr_core::readiness::Readiness::new(pw.plan.clone(), pw.providers())
            .clock(std::sync::Arc::new(pw.world.clone()))
            .evaluate()
            .await;
        let c = report.checks.iter().find(|c| c.id.starts_with("cluster:")).unwrap();
        assert_eq!(c.status, expected, "option {option}: {c:?}");
    }
}

fn dns_only_world() -> PlanWorld {
    let plan = plan_edited("aws-cross-region.toml", |text| text + "\n[failover]\ndns_only = true\n");
    assert!(plan.warnings().iter().any(|w| w.path == "failover.dns_only"), "warm standby: a warning about scale");
    World::from_plan(&plan)
}

/// Deploys the DR environment with the DR configuration, as a hot standby runs.
async fn serve_dr_configuration(pw: &PlanWorld) {
    use qovery_dr_core::provider::{VariableScope, VariableValue};
    let c = qovery_dr_testkit::memory::InMemoryCluster::new(&pw.world);
    let env = &pw.plan.dr().environments[0];
    for (k, v) in pw.plan.dr().parameters.iter() {
        c.set_variable(&VariableScope::Environment(env.clone()), k, &VariableValue::Plain(v.clone())).await.unwrap();
    }
    for s in c.list_services(env).await.unwrap() {
        if let Some(dr) = s.image.and_then(|i| pw.plan.registry_mapping().remap(&i).ok()) {
            c.set_service_image(env, &s.id, &dr).await.unwrap();
        }
    }
    let d = c.deploy_environment(env).await.unwrap();
    while !c.deployment_status(env, &d).await.unwrap().phase.is_terminal() {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

const PLATFORM_WRITES: [&str; 5] = [
    "cluster.deploy_environment",
    "cluster.deploy_services",
    "cluster.redeploy_environment",
    "cluster.set_variable",
    "cluster.set_service_image",
];

fn platform_writes(pw: &PlanWorld) -> usize {
    PLATFORM_WRITES.iter().map(|op| pw.world.recorder().applied_count(op)).sum()
}

#[tokio::test(start_paused = true)]
async fn a_dns_only_switchover_promotes_and_switches_without_configuring_or_deploying() {
    let pw = dns_only_world();
    serve_dr_configuration(&pw).await;
    let before = platform_writes(&pw);
    let e = engine(&pw, MemoryJournal::new());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    for absent in ["images", "configure", "deploy"] {
        assert!(!stages.contains(&absent), "{absent} in {stages:?}");
    }
    let at = stages.iter().position(|s| *s == "verify-dr-config").expect("the configuration is verified");
    assert!(at < stages.iter().position(|s| *s == "fence").unwrap(), "before anything changes: {stages:?}");
    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(platform_writes(&pw), before, "no variable set, nothing deployed");
    assert_eq!(pw.world.recorder().applied_count("replication.promote_standby"), 1);
    assert_eq!(pw.world.record_target(&pw.plan.dns()[0].record).as_ref(), Some(&pw.plan.dns()[0].dr_target));
}

#[tokio::test(start_paused = true)]
async fn a_dns_only_failover_is_refused_before_fencing_when_the_dr_site_runs_another_configuration() {
    let pw = dns_only_world();
    // The DR environment still points at the primary's database (and runs the primary's images).
    let env = pw.plan.dr().environments[0].clone();
    let primary_host = pw.plan.primary().parameters["DATABASE_HOST"].clone();
    pw.world.with_state(|s| {
        let e = s.environments.get_mut(&env).unwrap();
        let var = qovery_dr_testkit::world::state::VarSim { value: primary_host.clone(), secret: false };
        e.variables.insert("DATABASE_HOST".into(), var);
    });
    let failed = engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("does not serve the DR configuration"), "{message}");
    assert!(
        message.contains(&format!("DATABASE_HOST is {primary_host}, the DR value is ")),
        "the parameter is named with both values: {message}"
    );
    assert!(message.contains("from the primary's registry"), "the image is named: {message}");
    assert_eq!(pw.world.recorder().applied_count("replication.fence_primary"), 0, "nothing fenced");
    pw.world.recorder().assert_no_mutations();
}

const SCALES: &str = "
[sites.primary.scale]
min_instances = 3
max_instances = 8

[sites.dr.scale]
min_instances = 2
max_instances = 6

[sites.dr.scale.services.api]
min_instances = 3
max_instances = 10
cpu_millicores = 1000
memory_mib = 2048
";

fn desired_scales(
    pw: &PlanWorld,
    env: &qovery_dr_core::EnvironmentId,
) -> Vec<(String, Option<qovery_dr_core::ServiceScale>)> {
    pw.world.with_state(|s| {
        s.environments[env].services.values().map(|svc| (svc.name.clone(), svc.desired.scale)).collect()
    })
}

#[tokio::test(start_paused = true)]
async fn a_failover_scales_the_dr_site_up_before_deploying_it() {
    use qovery_dr_core::ServiceScale;
    let plan = plan_edited("aws-cross-region.toml", |text| text + SCALES);
    let pw = World::from_plan(&plan);
    let e = engine(&pw, MemoryJournal::new());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let configure = runbook.stages.iter().find(|s| s.name == "configure").unwrap();
    let scales: Vec<&str> =
        configure.steps.iter().map(|s| s.id.as_str()).filter(|id| id.starts_with("scale:")).collect();
    assert_eq!(scales.len(), 3, "{scales:?}");
    let api = configure.steps.iter().find(|s| s.id.ends_with("/api") && s.id.starts_with("scale:")).unwrap();
    assert!(api.description.contains("3–10 instances (1000m CPU 2048 MiB)"), "{}", api.description);
    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let env = pw.plan.dr().environments[0].clone();
    for (name, scale) in desired_scales(&pw, &env) {
        let expected = if name == "api" {
            ServiceScale::new(3, 10).with_cpu_millicores(1000).with_memory_mib(2048)
        } else {
            ServiceScale::new(2, 6)
        };
        assert_eq!(scale, Some(expected), "{name}");
    }
    // Deployed with it: the running configuration holds the scale.
    let running = pw.world.with_state(|s| {
        s.environments[&env]
            .services
            .values()
            .filter_map(|svc| svc.running.as_ref().map(|r| r.min_instances))
            .collect::<Vec<_>>()
    });
    assert!(running.contains(&3) && running.contains(&2), "{running:?}");
}

#[tokio::test(start_paused = true)]
async fn a_drill_scales_its_clones_so_the_change_is_proven_accepted() {
    let plan = plan_edited("aws-cross-region.toml", |text| text + SCALES);
    let pw = World::from_plan(&plan);
    let journal = MemoryJournal::new();
    let report = engine(&pw, journal.clone()).run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}", f.error));
    let scaled: Vec<&str> =
        report.steps.iter().map(|s| s.name.as_str()).filter(|n| n.starts_with("scale:clone-of-")).collect();
    assert_eq!(scaled.len(), 3, "{scaled:?}");
    assert!(
        report
            .steps
            .iter()
            .filter(|s| s.name.starts_with("scale:"))
            .all(|s| s.status == qovery_dr_core::engine::StepStatus::Succeeded)
    );
    // Production untouched: the DR environment keeps its standby scale.
    let env = pw.plan.dr().environments[0].clone();
    assert!(desired_scales(&pw, &env).iter().all(|(_, s)| s.is_none()));
}

#[tokio::test(start_paused = true)]
async fn readiness_warns_when_the_dr_site_cannot_carry_the_primarys_load() {
    use qovery_dr_core::readiness::CheckStatus;
    let evaluate = |extra: &'static str| async move {
        let plan = plan_edited("aws-cross-region.toml", |text| text + extra);
        let pw = World::from_plan(&plan);
        qovery_dr_core::readiness::Readiness::new(pw.plan.clone(), pw.providers())
            .clock(std::sync::Arc::new(pw.world.clone()))
            .evaluate()
            .await
    };
    let r = evaluate(SCALES).await;
    let c = r.checks.iter().find(|c| c.id == "capacity:every service").unwrap();
    assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
    let short = "
[sites.primary.scale.services.api]
min_instances = 12
max_instances = 20

[sites.dr.scale.services.api]
min_instances = 1
max_instances = 4
";
    let r = evaluate(short).await;
    let c = r.checks.iter().find(|c| c.id == "capacity:api").unwrap();
    assert_eq!(c.status, CheckStatus::Warn, "{c:?}");
    assert!(c.detail.contains("at most 4 instances") && c.detail.contains("at least 12"), "{c:?}");
}
