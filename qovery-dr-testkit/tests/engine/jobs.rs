//! Jobs and the databases the platform runs, among an environment's services: a job's
//! image is synced and re-pointed and the job deployed with the others; a database is a
//! read-only fact, never scaled, re-pointed or deployed.

use qovery_dr_core::engine::{MemoryJournal, Outcome, RunMode, StepKind};
use qovery_dr_core::provider::{ClusterProvider, ServiceKind};
use qovery_dr_core::{ImageRef, ServiceId};
use qovery_dr_testkit::memory::InMemoryCluster;
use qovery_dr_testkit::world::ServiceSpec;
use qovery_dr_testkit::world::build::digest_of;
use qovery_dr_testkit::{PlanWorld, World};

use super::common::*;

const JOB: &str = "nightly-report";
const DB: &str = "sessions-redis";

/// The AWS plan (scaled: every service 2–6 on the DR site), its DR environment with a
/// cron job from the primary registry and a managed database beside the three containers.
fn world_with_a_job() -> PlanWorld {
    let plan = plan_edited("aws-cross-region.toml", |text| {
        text + "\n[sites.dr.scale]\nmin_instances = 2\nmax_instances = 6\n"
    });
    let pw = World::from_plan(&plan);
    let from = &plan.registry_mapping().from;
    let image: ImageRef =
        format!("{}/{}/report:v3", from.host, from.prefix.clone().unwrap_or_default()).parse().unwrap();
    pw.world.add_image(&image, digest_of("report"), 20 << 20);
    let env = &plan.dr().environments[0];
    pw.world.add_service(
        env,
        ServiceSpec {
            id: ServiceId::new("job-1"),
            name: JOB.into(),
            image: Some(image),
            min_instances: 0,
            kind: ServiceKind::Job,
        },
    );
    pw.world.add_service(
        env,
        ServiceSpec {
            id: ServiceId::new("db-1"),
            name: DB.into(),
            image: None,
            min_instances: 1,
            kind: ServiceKind::Database { engine: "REDIS".into(), managed: true },
        },
    );
    pw
}

#[tokio::test(start_paused = true)]
async fn a_jobs_image_is_synced_and_re_pointed_and_the_job_deployed_and_a_database_left_alone() {
    let pw = world_with_a_job();
    let env = pw.plan.dr().environments[0].clone();
    let cluster = InMemoryCluster::new(&pw.world);
    let listed = cluster.list_services(&env).await.unwrap();
    let kind = |name: &str| listed.iter().find(|s| s.name == name).map(|s| s.kind.clone());
    assert_eq!(kind(JOB), Some(ServiceKind::Job));
    assert!(matches!(kind(DB), Some(ServiceKind::Database { managed: true, .. })));

    let e = engine(&pw, MemoryJournal::new());
    let runbook = e.plan(RunMode::Switchover).await.unwrap();
    let ids: Vec<&str> = runbook.steps().map(|s| s.id.as_str()).collect();
    assert!(ids.contains(&format!("image:{env}/{JOB}").as_str()), "the job is re-pointed: {ids:?}");
    assert!(ids.contains(&format!("scale:{env}/api").as_str()), "containers are scaled: {ids:?}");
    assert!(!ids.contains(&format!("scale:{env}/{JOB}").as_str()), "a job has no instance counts: {ids:?}");
    assert!(!ids.iter().any(|id| id.ends_with(DB)), "nothing is done to the database: {ids:?}");
    let sync = runbook.steps().find_map(|s| match &s.kind {
        StepKind::SyncImages { images } => Some(images.clone()),
        _ => None,
    });
    assert!(sync.unwrap_or_default().iter().any(|i| i.repository().ends_with("report")), "the job's image is synced");
    let deployed = runbook.steps().find_map(|s| match &s.kind {
        StepKind::DeployServices { services, .. } => Some(services.clone()),
        _ => None,
    });
    let deployed = deployed.expect("one deploy request for the environment");
    assert!(deployed.contains(&ServiceId::new("job-1")), "{deployed:?}");
    assert!(!deployed.contains(&ServiceId::new("db-1")), "{deployed:?}");

    let report = e.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let after = cluster.list_services(&env).await.unwrap();
    let job = after.iter().find(|s| s.name == JOB).unwrap();
    let dr_host = &pw.plan.registry_mapping().to.host;
    assert_eq!(job.image.as_ref().map(|i| i.registry().to_owned()), Some(dr_host.clone()), "{job:?}");
}

#[tokio::test]
async fn scaling_a_job_or_a_database_is_refused_as_invalid_input() {
    let pw = world_with_a_job();
    let env = pw.plan.dr().environments[0].clone();
    let cluster = InMemoryCluster::new(&pw.world);
    for svc in ["job-1", "db-1"] {
        let err = cluster
            .set_service_scale(&env, &ServiceId::new(svc), &qovery_dr_core::ServiceScale::new(1, 2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), qovery_dr_core::ErrorKind::InvalidInput, "{svc}: {err}");
    }
}
