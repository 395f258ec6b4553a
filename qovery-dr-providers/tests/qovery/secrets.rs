//! No token and no secret value in any log line (TRACE) or Debug output during a run.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qovery_dr_core::provider::{ClusterProvider, DeploymentPhase, VariableScope, VariableValue};
use qovery_dr_core::{EnvironmentId, SecretString, ServiceId};
use qovery_dr_providers::qovery::QoveryClusterProvider;
use qovery_dr_testkit::qovery_fake::QoveryFake;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "qov_TOKEN_SENTINEL_5f1c";
const SECRET: &str = "SECRET_VALUE_SENTINEL_8e2d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_token_nor_a_secret_value_is_ever_logged_or_printed() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global, not thread-local: a thread-local subscriber can miss events from
    // callsites another test thread cached as uninteresting first.
    tracing::subscriber::set_global_default(subscriber).expect("only this test installs a global subscriber");

    let fake = QoveryFake::start("org-1").await;
    let c = fake.add_cluster("paris");
    let env = EnvironmentId::new(fake.add_environment("p1", "prod", &c));
    let svc = ServiceId::new(fake.add_container(env.as_str(), "api", "https://r1.example.com", "shop/api", "v1"));
    fake.set_durations(Duration::from_millis(20), Duration::from_millis(50));
    fake.fail_next("/environment", 1, 500, None);
    let p = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_dr_core::SecretString::new(TOKEN))
        .with_endpoint(fake.uri())
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(3, Duration::from_millis(10)))
        .build()
        .unwrap();
    let mut debug = format!("{p:?}\n");
    let scope = VariableScope::Environment(env.clone());
    p.set_variable(&scope, "DB_PASSWORD", &VariableValue::Secret(SecretString::new(SECRET))).await.unwrap();
    p.set_variable(&scope, "DB_PASSWORD", &VariableValue::Secret(SecretString::new(SECRET))).await.unwrap();
    debug.push_str(&format!("{:?}\n", p.list_variables(&scope).await.unwrap()));
    p.set_service_image(&env, &svc, &"r1.example.com/shop/api:v2".parse().unwrap()).await.unwrap();
    let d = p.deploy_services(&env, &qovery_dr_core::provider::DeployServices::new(vec![svc.clone()])).await.unwrap();
    loop {
        let s = p.deployment_status(&env, &d).await.unwrap();
        debug.push_str(&format!("{s:?}\n"));
        if s.phase == DeploymentPhase::Deployed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = p.environment_status(&EnvironmentId::new("missing")).await.unwrap_err();
    debug.push_str(&format!("{e:?} {e}\n"));
    debug.push_str(&format!("{:?}\n", VariableValue::Secret(SecretString::new(SECRET))));

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("qovery request"), "TRACE output was captured ({} bytes): {logs}", logs.len());
    for (what, text) in [("logs", &logs), ("Debug output", &debug)] {
        assert!(!text.contains(TOKEN), "the token appears in the {what}");
        assert!(!text.contains(SECRET), "a secret value appears in the {what}");
    }
    // The fake did store the secret: it was sent, just never shown.
    let stored = fake.with(|s| s.envs[env.as_str()].vars.values().flatten().any(|v| v.value == SECRET));
    assert!(stored);
}
