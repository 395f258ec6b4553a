//! The ClusterProvider conformance suite: QoveryClusterProvider + the fake.

use std::time::Duration;

use qovery_dr_core::ServiceId;
use qovery_dr_providers::qovery::QoveryClusterProvider;
use qovery_dr_testkit::conformance::cluster::ClusterFixture;
use qovery_dr_testkit::qovery_fake::QoveryFake;

async fn setup() -> ClusterFixture<QoveryClusterProvider> {
    let fake = QoveryFake::start("org-1").await;
    let c1 = fake.add_cluster("paris");
    let c2 = fake.add_cluster("frankfurt");
    let env = fake.add_environment("project-1", "prod", &c1);
    let svc = fake.add_container(&env, "api", "https://r1.example.com", "shop/api", "v1");
    fake.add_container(&env, "web", "https://r2.example.com:5000", "shop/web", "v1");
    fake.set_durations(Duration::from_millis(100), Duration::from_millis(300));
    let provider = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("qov_conformance"))
        .with_endpoint(fake.uri())
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(3, Duration::from_millis(20)))
        .build()
        .unwrap();
    // The fake lives as long as the process: the fixture cannot own it.
    std::mem::forget(fake);
    ClusterFixture {
        provider,
        cluster: c1.into(),
        clone_target: c2.into(),
        environment: env.into(),
        project: "project-1".into(),
        service: ServiceId::new(svc),
        image: "r2.example.com:5000/shop/api:v2".parse().unwrap(),
        deploy_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::cluster_provider_conformance!(qovery_against_the_fake, setup());

#[tokio::test]
async fn a_stopped_cluster_is_started_through_the_api_and_runs_after_its_deployment() {
    use qovery_dr_core::ClusterId;
    use qovery_dr_core::provider::{ClusterProvider, ClusterState};
    let fake = QoveryFake::start("org-1").await;
    let c = fake.add_cluster("frankfurt");
    fake.with(|s| s.clusters.insert(c.clone(), "STOPPED".into()));
    fake.set_durations(Duration::from_millis(100), Duration::from_millis(200));
    let p = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("qov_conformance"))
        .with_endpoint(fake.uri())
        .build()
        .unwrap();
    let id = ClusterId::new(c.clone());
    assert_eq!(p.cluster_status(&id).await.unwrap().state, ClusterState::Stopped);
    p.start_cluster(&id).await.unwrap();
    assert_eq!(p.cluster_status(&id).await.unwrap().state, ClusterState::Deploying);
    let start = std::time::Instant::now();
    while !p.cluster_status(&id).await.unwrap().is_healthy() {
        assert!(start.elapsed() < Duration::from_secs(10), "the cluster never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = fake.requests().await;
    assert!(
        requests.iter().any(|(m, path, _)| m == "POST" && path == &format!("/organization/org-1/cluster/{c}/deploy")),
        "{requests:?}"
    );
    // A cluster in error is refused (starting does not repair it).
    fake.with(|s| s.clusters.insert(c.clone(), "DEPLOYMENT_ERROR".into()));
    let e = p.start_cluster(&id).await.unwrap_err();
    assert_eq!(e.kind(), qovery_dr_core::ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn a_service_is_scaled_through_the_api_and_a_repeat_writes_nothing() {
    use qovery_dr_core::provider::ClusterProvider;
    use qovery_dr_core::{EnvironmentId, ServiceScale};
    let fake = QoveryFake::start("org-1").await;
    let c = fake.add_cluster("frankfurt");
    let env = fake.add_environment("project-1", "dr", &c);
    let svc = fake.add_container(&env, "api", "https://r1.example.com", "shop/api", "v1");
    let p = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("qov_conformance"))
        .with_endpoint(fake.uri())
        .build()
        .unwrap();
    let scale = ServiceScale::new(3, 9).with_cpu_millicores(1000).with_memory_mib(2048);
    p.set_service_scale(&EnvironmentId::new(env.clone()), &ServiceId::new(svc.clone()), &scale).await.unwrap();
    let stored = fake.with(|s| s.envs[&env].containers[&svc].clone());
    assert_eq!(
        (&stored["min_running_instances"], &stored["max_running_instances"], &stored["cpu"], &stored["memory"]),
        (&serde_json::json!(3), &serde_json::json!(9), &serde_json::json!(1000), &serde_json::json!(2048))
    );
    assert_eq!(stored["image_name"], "shop/api", "the image is kept");
    let puts = |r: &[(String, String, Option<String>)]| r.iter().filter(|(m, _, _)| m == "PUT").count();
    let before = puts(&fake.requests().await);
    p.set_service_scale(&EnvironmentId::new(env.clone()), &ServiceId::new(svc.clone()), &scale).await.unwrap();
    assert_eq!(puts(&fake.requests().await), before, "the same scale again writes nothing");
    let e = p
        .set_service_scale(&EnvironmentId::new(env), &ServiceId::new(svc), &ServiceScale::new(5, 2))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), qovery_dr_core::ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn jobs_are_listed_re_pointed_and_deployed_and_databases_only_listed() {
    use qovery_dr_core::provider::{ClusterProvider, DeployServices, DeploymentPhase, ServiceKind};
    use qovery_dr_core::{EnvironmentId, ErrorKind, ServiceScale};
    let fake = QoveryFake::start("org-1").await;
    let c = fake.add_cluster("frankfurt");
    let env = fake.add_environment("project-1", "dr", &c);
    let api = fake.add_container(&env, "api", "https://r1.example.com", "shop/api", "v1");
    let job = fake.add_job(&env, "nightly-report", "https://r1.example.com", "shop/report", "v3");
    let db = fake.add_database(&env, "orders", "POSTGRESQL", "MANAGED");
    fake.add_registry("https://r2.example.com");
    fake.set_durations(Duration::from_millis(50), Duration::from_millis(100));
    let p = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new("qov_conformance"))
        .with_endpoint(fake.uri())
        .build()
        .unwrap();
    let env_id = EnvironmentId::new(env.clone());
    let services = p.list_services(&env_id).await.unwrap();
    let find = |id: &str| services.iter().find(|s| s.id.as_str() == id).unwrap_or_else(|| panic!("{id}: {services:?}"));
    assert_eq!(find(&job).kind, ServiceKind::Job);
    assert_eq!(find(&job).image.as_ref().map(ToString::to_string).as_deref(), Some("r1.example.com/shop/report:v3"));
    assert_eq!(find(&db).kind, ServiceKind::Database { engine: "POSTGRESQL".into(), managed: true });
    assert_eq!(find(&api).kind, ServiceKind::Container);

    // Re-pointed at the DR registry: the job's source image changes, nothing else of it.
    let dr: qovery_dr_core::ImageRef = "r2.example.com/shop/report:v3".parse().unwrap();
    p.set_service_image(&env_id, &ServiceId::new(job.clone()), &dr).await.unwrap();
    let stored = fake.with(|s| s.envs[&env].jobs[&job].clone());
    assert_eq!(stored["source"]["image"]["registry"]["url"], "https://r2.example.com");
    assert_eq!(stored["schedule"]["cronjob"]["scheduled_at"], "0 3 * * *", "the schedule is kept");
    let puts = |r: &[(String, String, Option<String>)]| r.iter().filter(|(m, _, _)| m == "PUT").count();
    let before = puts(&fake.requests().await);
    p.set_service_image(&env_id, &ServiceId::new(job.clone()), &dr).await.unwrap();
    assert_eq!(puts(&fake.requests().await), before, "the same image again writes nothing");

    // Deployed with the containers, in one request naming it under `jobs`.
    let d = p
        .deploy_services(&env_id, &DeployServices::new(vec![ServiceId::new(api), ServiceId::new(job.clone())]))
        .await
        .unwrap();
    let covered = fake.with(|s| s.deployments[d.as_str()].services.clone());
    assert!(covered.contains(&job), "the deploy request names the job: {covered:?}");
    let start = std::time::Instant::now();
    while p.deployment_status(&env_id, &d).await.unwrap().phase != DeploymentPhase::Deployed {
        assert!(start.elapsed() < Duration::from_secs(10), "the deployment never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running = fake.with(|s| s.envs[&env].running[&job].clone());
    assert_eq!(running["registry"], stored["source"]["image"]["registry_id"], "the job runs the DR image");

    // Neither a job nor a database has instance counts; a database has no image.
    for id in [&job, &db] {
        let e = p.set_service_scale(&env_id, &ServiceId::new(id.clone()), &ServiceScale::new(1, 2)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let e = p.set_service_image(&env_id, &ServiceId::new(db), &dr).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
