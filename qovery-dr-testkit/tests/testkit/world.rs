//! The simulated world: lifecycle timings, lag model, faults, invariants.

use std::time::Duration;

use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::provider::{
    ClusterProvider, ClusterState, DeploymentPhase, DnsSwitcher, LinkState, Node, ReplicationManager, ReplicationMode,
    SwitchRequest, SwitchStrategy, TargetHealth, Writability,
};
use qovery_dr_core::{ErrorKind, Lsn};
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns, InMemoryReplication};
use qovery_dr_testkit::world::{DatabaseSpec, LinkSim, NodeCondition};
use qovery_dr_testkit::{FaultAction, Trigger, World};

fn plan() -> DrPlan {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap();
    DrPlan::parse(&text, PlanFormat::Toml).unwrap()
}

#[tokio::test(start_paused = true)]
async fn deployments_go_queued_deploying_deployed_in_simulated_time() {
    let pw = World::from_plan(&plan());
    let cluster = InMemoryCluster::new(&pw.world);
    let env = &pw.plan.dr().environments[0];
    let id = cluster.deploy_environment(env).await.unwrap();
    let phase = |c: &InMemoryCluster| {
        let (c, env, id) = (c.clone(), env.clone(), id.clone());
        async move { c.deployment_status(&env, &id).await.unwrap().phase }
    };
    assert_eq!(phase(&cluster).await, DeploymentPhase::Queued);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(phase(&cluster).await, DeploymentPhase::InProgress);
    assert_eq!(cluster.deploy_environment(env).await.unwrap_err().kind(), ErrorKind::Conflict, "409 while in progress");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(phase(&cluster).await, DeploymentPhase::Deployed);
}

#[tokio::test(start_paused = true)]
async fn scripted_deployment_failure_ends_in_error() {
    let pw = World::from_plan(&plan());
    let cluster = InMemoryCluster::new(&pw.world);
    let env = &pw.plan.dr().environments[0];
    pw.world.fail_next_deployments(env, 1);
    let id = cluster.deploy_environment(env).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let s = cluster.deployment_status(env, &id).await.unwrap();
    assert_eq!((s.phase, s.raw_state.as_str()), (DeploymentPhase::Failed, "DEPLOYMENT_ERROR"));
    assert!(!pw.world.environment_serving(env));
}

#[tokio::test(start_paused = true)]
async fn replay_follows_the_primary_with_the_configured_lag() {
    let world = World::new();
    world.add_database(DatabaseSpec {
        lag: Duration::from_secs(2),
        write_rate: 1000,
        ..DatabaseSpec::streaming("db", ReplicationMode::Physical)
    });
    let repl = InMemoryReplication::new(&world);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = repl.status(&"db".into()).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming);
    assert_eq!(s.lag_bytes, Some(2000), "2 s behind at 1000 B/s");
    let lag = s.lag.unwrap();
    assert!((Duration::from_millis(1900)..=Duration::from_millis(2100)).contains(&lag), "{lag:?}");
}

#[tokio::test(start_paused = true)]
async fn idle_primary_means_zero_time_lag_not_a_growing_one() {
    let world = World::new();
    world.add_database(DatabaseSpec { write_rate: 0, ..DatabaseSpec::streaming("db", ReplicationMode::Physical) });
    let repl = InMemoryReplication::new(&world);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let s = repl.status(&"db".into()).await.unwrap();
    assert_eq!(s.lag, Some(Duration::ZERO));
    assert_eq!(s.lag_bytes, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_broken_link_is_reported_and_replay_stops() {
    let world = World::new();
    world.add_database(DatabaseSpec::streaming("db", ReplicationMode::Physical));
    let repl = InMemoryReplication::new(&world);
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.set_link(&"db".into(), LinkSim::Down);
    let before = repl.status(&"db".into()).await.unwrap().standby_replay_lsn.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = repl.status(&"db".into()).await.unwrap();
    assert!(matches!(s.link, LinkState::Down(_)), "{:?}", s.link);
    assert_eq!(s.standby_replay_lsn, Some(before), "replay does not advance without a receiver");
    world.set_link(&"db".into(), LinkSim::Broken);
    let target = repl.status(&"db".into()).await.unwrap().primary_lsn.unwrap();
    let e = repl
        .wait_for_catch_up(&"db".into(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
}

#[tokio::test(start_paused = true)]
async fn promoting_without_fencing_a_live_primary_is_a_recorded_split_brain() {
    let world = World::new();
    world.add_database(DatabaseSpec::streaming("db", ReplicationMode::Physical));
    let repl = InMemoryReplication::new(&world);
    repl.promote_standby(&"db".into()).await.unwrap();
    let v = world.recorder().violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].description.contains("split brain"), "{v:?}");
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_primary_cannot_be_fenced_and_still_counts_as_writable() {
    let world = World::new();
    world.add_database(DatabaseSpec::streaming("db", ReplicationMode::Physical));
    let repl = InMemoryReplication::new(&world);
    world.set_node_condition(&"db".into(), Node::Primary, NodeCondition::Partitioned);
    assert_eq!(repl.primary_writability(&"db".into()).await.unwrap(), Writability::Unreachable);
    assert_eq!(repl.fence_primary(&"db".into()).await.unwrap_err().kind(), ErrorKind::Timeout);
    repl.promote_standby(&"db".into()).await.unwrap();
    assert_eq!(world.recorder().violations().len(), 1, "partitioned primary + promoted standby = two writers");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_measure_what_the_standby_really_has() {
    let world = World::new();
    world.add_database(DatabaseSpec {
        lag: Duration::from_secs(3),
        ..DatabaseSpec::streaming("db", ReplicationMode::Physical)
    });
    let repl = InMemoryReplication::new(&world);
    let db = "db".into();
    let first = repl.write_heartbeat(&db).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = repl.write_heartbeat(&db).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.set_node_condition(&db, Node::Primary, NodeCondition::Down);
    let on_standby = repl.last_heartbeat(&db, Node::Standby).await.unwrap().unwrap();
    assert_eq!(on_standby.sequence, first.sequence, "the second heartbeat had not replicated when the primary died");
    assert!(second.written_at.saturating_since(on_standby.written_at) >= Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn reprotect_reverses_the_pair_for_failback() {
    let world = World::new();
    world.add_database(DatabaseSpec::streaming("db", ReplicationMode::Physical));
    let repl = InMemoryReplication::new(&world);
    let db = "db".into();
    repl.fence_primary(&db).await.unwrap();
    repl.promote_standby(&db).await.unwrap();
    world.reprotect(&db);
    let s = repl.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming, "the old primary now follows the new one");
    assert_eq!(repl.primary_writability(&db).await.unwrap(), Writability::Writable, "the new primary takes writes");
    world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn faults_fail_delay_hang_and_apply_then_report_indeterminate() {
    let pw = World::from_plan(&plan());
    let world = &pw.world;
    let dns = InMemoryDns::new(world);
    let record = &pw.plan.dns()[0];
    world.faults().inject("dns.current", Trigger::Nth(1), FaultAction::Fail(ErrorKind::RateLimited));
    let e = dns.current(&record.record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(dns.current(&record.record).await.is_ok(), "only the first call fails");

    world.faults().inject("dns.current", Trigger::Always, FaultAction::Latency(Duration::from_secs(7)));
    let t0 = tokio::time::Instant::now();
    dns.current(&record.record).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(7));
    world.faults().clear();

    world.faults().inject("dns.current", Trigger::Always, FaultAction::Hang);
    let hung = tokio::time::timeout(Duration::from_secs(30), dns.current(&record.record)).await;
    assert!(hung.is_err(), "a hung call never answers");
    world.faults().clear();

    world.faults().inject("dns.switch", Trigger::Nth(1), FaultAction::ApplyThenFail(ErrorKind::Indeterminate));
    let req = SwitchRequest::new(
        record.record.clone(),
        SwitchStrategy::FailoverRouting,
        record.primary_target.clone(),
        record.dr_target.clone(),
    );
    assert_eq!(dns.switch(&req).await.unwrap_err().kind(), ErrorKind::Indeterminate);
    assert_eq!(world.record_target(&record.record), Some(record.dr_target.clone()), "applied despite the error");
    assert!(dns.switch(&req).await.is_ok(), "the retry is an idempotent no-op");
    assert_eq!(world.recorder().calls_of("dns.switch").len(), 2);
    assert_eq!(world.recorder().applied_count("dns.switch"), 1, "the retry changed nothing");
}

#[tokio::test(start_paused = true)]
async fn switching_dns_to_an_unhealthy_target_is_a_violation() {
    let pw = World::from_plan(&plan());
    let world = &pw.world;
    let record = &pw.plan.dns()[0];
    world.set_cluster_state(&pw.plan.dr().cluster, ClusterState::Error);
    let dns = InMemoryDns::new(world);
    assert_eq!(dns.target_health(&record.dr_target).await.unwrap(), TargetHealth::Unhealthy);
    let req = SwitchRequest::new(
        record.record.clone(),
        SwitchStrategy::FailoverRouting,
        record.primary_target.clone(),
        record.dr_target.clone(),
    );
    dns.switch(&req).await.unwrap();
    let v = world.recorder().violations();
    assert!(v.iter().any(|v| v.description.contains("unhealthy target")), "{v:?}");
}

#[tokio::test(start_paused = true)]
async fn flapping_health_alternates() {
    let world = World::new();
    world.set_target_flapping("t", Duration::from_secs(10));
    assert_eq!(world.target_health(&"t".into()), TargetHealth::Healthy);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(world.target_health(&"t".into()), TargetHealth::Unhealthy);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(world.target_health(&"t".into()), TargetHealth::Healthy);
}

#[tokio::test(start_paused = true)]
async fn the_world_from_a_plan_is_healthy_and_reads_are_not_mutations() {
    let pw = World::from_plan(&plan());
    let cluster = InMemoryCluster::new(&pw.world);
    let dns = InMemoryDns::new(&pw.world);
    let repl = InMemoryReplication::new(&pw.world);
    assert!(cluster.cluster_status(&pw.plan.dr().cluster).await.unwrap().is_healthy());
    for env in pw.plan.primary().environments.iter().chain(&pw.plan.dr().environments) {
        assert!(pw.world.environment_serving(env), "{env} serving");
        let services = cluster.list_services(env).await.unwrap();
        assert_eq!(services.len(), 3);
    }
    for r in pw.plan.dns() {
        assert_eq!(dns.current(&r.record).await.unwrap().target, r.primary_target);
        assert_eq!(dns.target_health(&r.dr_target).await.unwrap(), TargetHealth::Healthy);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = repl.status(&pw.plan.primary().database.id).await.unwrap();
    assert!(s.primary_lsn.unwrap() > Lsn(0x0100_0000), "the workload writes");
    pw.world.recorder().assert_no_mutations();
    pw.world.recorder().assert_no_violations();
}

#[tokio::test(start_paused = true)]
async fn the_recorder_never_holds_a_secret_value() {
    let pw = World::from_plan(&plan());
    let cluster = InMemoryCluster::new(&pw.world);
    let scope = qovery_dr_core::provider::VariableScope::Environment(pw.plan.dr().environments[0].clone());
    let value = qovery_dr_core::provider::VariableValue::Secret(qovery_dr_core::SecretString::new("sentinel-4242"));
    cluster.set_variable(&scope, "DB_PASSWORD", &value).await.unwrap();
    let calls = format!("{:?}", pw.world.recorder().calls());
    assert!(!calls.contains("sentinel-4242"), "{calls}");
    assert!(calls.contains("DB_PASSWORD=[redacted]"), "{calls}");
}

#[tokio::test(start_paused = true)]
async fn a_saved_world_loads_with_its_state_and_its_clock() {
    let pw = World::from_plan(&plan());
    let cluster = InMemoryCluster::new(&pw.world);
    let env = &pw.plan.dr().environments[0];
    let id = cluster.deploy_environment(env).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let json = pw.world.to_json().unwrap();
    let loaded = World::from_json(&json, pw.world.config()).unwrap();
    let again = InMemoryCluster::new(&loaded);
    assert_eq!(
        again.deployment_status(env, &id).await.unwrap().phase,
        DeploymentPhase::InProgress,
        "the deployment continues"
    );
    // Simulated time continues, plus the real time that passed between save and load.
    let drift = loaded.wall_now().saturating_since(pw.world.wall_now());
    assert!(drift < Duration::from_secs(1), "the wall clock continues: {drift:?}");
    assert!(pw.world.wall_now() <= loaded.wall_now());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(again.deployment_status(env, &id).await.unwrap().phase, DeploymentPhase::Deployed);
    assert_eq!(loaded.record_target(&pw.plan.dns()[0].record), pw.world.record_target(&pw.plan.dns()[0].record));
    let repl = InMemoryReplication::new(&loaded);
    assert!(repl.status(&pw.plan.primary().database.id).await.unwrap().primary_lsn.is_some());
}
