//! A readiness run over 500 environments through the Qovery provider, against
//! the Qovery fake enforcing a server-side limit (429 over it).

use std::sync::Arc;
use std::time::Duration;

use qovery_dr_core::EnvironmentId;
use qovery_dr_core::ErrorKind;
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::readiness::{Readiness, ReadinessOptions};
use qovery_dr_providers::RateLimiter;
use qovery_dr_providers::qovery::QoveryClusterProvider;
use qovery_dr_testkit::World;
use qovery_dr_testkit::qovery_fake::QoveryFake;

const ENVIRONMENTS: usize = 500;
/// The fake's limit: 400 requests in any one second.
const SERVER_LIMIT: usize = 400;

/// The fake with 500 production and 500 DR environments, and the plan naming them.
async fn world() -> (QoveryFake, DrPlan) {
    let fake = QoveryFake::start("org-1").await;
    let (paris, frankfurt) = (fake.add_cluster("paris"), fake.add_cluster("frankfurt"));
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap();
    let (mut prod, mut dr) = (Vec::new(), Vec::new());
    for i in 0..ENVIRONMENTS {
        let p = fake.add_environment("project-1", &format!("prod-{i}"), &paris);
        fake.add_container(&p, "api", "https://123456789012.dkr.ecr.eu-west-3.amazonaws.com", "shop/api", "v1");
        let d = fake.add_environment("project-1", &format!("dr-{i}"), &frankfurt);
        fake.add_container(&d, "api", "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com", "shop/api", "v1");
        prod.push(EnvironmentId::new(p));
        dr.push(EnvironmentId::new(d));
    }
    // A validated plan cannot be changed: the fake's ids are written into the text.
    let quoted = |ids: &[EnvironmentId]| ids.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
    let text = text
        .replace(r#"cluster = "c0a8f6b2-6f1e-4c55-9d6e-1a2b3c4d5e01""#, &format!("cluster = \"{paris}\""))
        .replace(r#"cluster = "c0a8f6b2-6f1e-4c55-9d6e-1a2b3c4d5e02""#, &format!("cluster = \"{frankfurt}\""))
        .replace(
            r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a01"]"#,
            &format!("environments = [{}]", quoted(&prod)),
        )
        .replace(
            r#"environments = ["e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a02"]"#,
            &format!("environments = [{}]", quoted(&dr)),
        );
    // With more than one environment per site the plan states the pairing (the
    // validator refuses list positions as one).
    let pairs: String = prod
        .iter()
        .zip(&dr)
        .map(|(p, d)| format!("\n[[environment_pairs]]\nprimary = \"{p}\"\ndr = \"{d}\"\n"))
        .collect();
    let plan = DrPlan::parse(&(text + &pairs), PlanFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((plan.primary().environments.len(), plan.dr().cluster.as_str()), (ENVIRONMENTS, frankfurt.as_str()));
    fake.set_rate_limit(SERVER_LIMIT, Duration::from_secs(1));
    (fake, plan)
}

/// Evaluates readiness with the Qovery provider behind `limiter`; returns the Qovery
/// requests sent and the checks that failed because of a 429.
async fn evaluate(fake: &QoveryFake, plan: &DrPlan, limiter: RateLimiter) -> (usize, usize) {
    let sim = World::from_plan(plan);
    let mut providers = sim.providers();
    providers.cluster = Arc::new(
        QoveryClusterProvider::builder("org-1")
            .with_token(qovery_dr_core::SecretString::new("qov-test"))
            .with_endpoint(fake.uri())
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(10)))
            .with_rate_limiter(limiter)
            .build()
            .unwrap(),
    );
    let before = fake.requests().await.len();
    let options = ReadinessOptions { concurrency: 32, rate_per_second: None, call_timeout: Duration::from_secs(60) };
    let report = Readiness::new(plan.clone(), providers).options(options).evaluate().await;
    let sent = fake.requests().await.len() - before;
    let throttled = report
        .checks
        .iter()
        .filter(|c| {
            format!("{c:?}").contains("429") || format!("{c:?}").contains(&format!("{:?}", ErrorKind::RateLimited))
        })
        .count();
    (sent, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_over_500_environments_stays_under_the_api_limit() {
    let (fake, plan) = world().await;
    // 360 per second in bursts of at most 20: no one-second window can exceed 380 < 400.
    let limiter = RateLimiter::new(360, Duration::from_secs(1)).with_burst(20);
    let (sent, throttled) = evaluate(&fake, &plan, limiter).await;
    eprintln!("paced: {sent} Qovery requests, {} answered 429", fake.rate_limited());
    assert!(sent >= 2 * ENVIRONMENTS, "the run reached every environment: {sent} requests");
    assert_eq!(fake.rate_limited(), 0, "zero 429s over {sent} requests");
    assert_eq!(throttled, 0);

    // The control: without the limiter the same run does hit the server's limit.
    let (fake, plan) = world().await;
    let (sent, _) = evaluate(&fake, &plan, RateLimiter::unlimited()).await;
    eprintln!("unpaced: {sent} Qovery requests, {} answered 429", fake.rate_limited());
    assert!(fake.rate_limited() > 0, "the fake enforces its limit ({sent} requests sent unpaced)");
}
