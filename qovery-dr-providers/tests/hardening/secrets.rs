//! The secrets audit: a sentinel planted in every secret input (API tokens,
//! database passwords, registry credentials, TSIG and etcd secrets, webhook
//! routing keys, Qovery secret values) must appear nowhere: not in the TRACE
//! logs of a full drill and of provider calls (Qovery and Cloudflare against their
//! fakes; PostgreSQL, the registry, etcd and the webhook against closed ports, for
//! their errors), not in the journal, not in any report, not in any `Debug` output,
//! not in errors. Authenticated traffic to real peers: `secrets_on_the_wire.rs`.

use std::time::Duration;

use qovery_dr_core::engine::{AutoApprove, Engine, EngineOptions, FileJournal, Journal, RunMode};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, VariableScope, VariableValue};
use qovery_dr_core::readiness::Readiness;
use qovery_dr_core::{DnsRecordId, SecretString};
use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
use qovery_dr_providers::postgres::PgEndpoint;
use qovery_dr_providers::qovery::QoveryClusterProvider;
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use qovery_dr_providers::rfc2136::{Rfc2136Config, TsigAlgorithm, TsigKey};
use qovery_dr_providers::webhook::{WebhookFormat, WebhookNotifier};
use qovery_dr_testkit::World;
use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
use qovery_dr_testkit::qovery_fake::QoveryFake;

/// In every secret; found nowhere else.
const SENTINEL: &str = "QDRSENTINEL7f3a9c";

fn secret(what: &str) -> String {
    format!("{SENTINEL}-{what}")
}

use crate::logs::logs;

/// Fails naming where the sentinel was found, with context around it.
fn assert_clean(place: &str, text: &str) {
    if let Some(i) = text.find(SENTINEL) {
        let before: String = text[..i].chars().rev().take(120).collect::<Vec<_>>().into_iter().rev().collect();
        let after: String = text[i..].chars().take(160).collect();
        panic!("a secret leaked into {place}: …{before}{after}…");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_journals_reports_debug_or_errors() {
    logs();
    let dir = std::env::temp_dir().join(format!("qdr-secrets-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut debug = Vec::<(String, String)>::new();
    let mut errors = Vec::<(String, String)>::new();

    // The plan (its credentials are references, `env:NAME`), and secrets as a program holds them.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
        .unwrap();
    let plan = DrPlan::parse(&text, PlanFormat::Toml).unwrap();
    let qovery_token = SecretString::new(secret("qovery-token"));
    let db_password = SecretString::new(secret("db-password"));
    debug.push(("DrPlan".into(), format!("{plan:?}")));

    // 1. A full drill on the simulated world, with a secret variable in the DR environment,
    //    journaled to a file, and every report rendered.
    let sim = World::from_plan(&plan);
    sim.world.set_config(qovery_dr_testkit::WorldConfig::real_time_fast());
    let providers = sim.providers();
    let env = plan.dr().environments[0].clone();
    providers
        .cluster
        .set_variable(
            &VariableScope::Environment(env.clone()),
            "STRIPE_SECRET_KEY",
            &VariableValue::Secret(SecretString::new(secret("qovery-secret-value"))),
        )
        .await
        .unwrap();
    let listed = providers.cluster.list_variables(&VariableScope::Environment(env)).await.unwrap();
    debug.push(("listed variables".into(), format!("{listed:?}")));
    let journal_path = dir.join("drill.jsonl");
    let engine = Engine::builder(plan.clone(), providers.clone())
        .clock(sim.world.clone())
        .journal(FileJournal::new(&journal_path))
        .approver(AutoApprove::new("oncall-sre"))
        .options(EngineOptions {
            drain_ttl: false,
            poll_interval: Duration::from_millis(50),
            ..EngineOptions::default()
        })
        .build();
    let runbook = engine.plan(RunMode::Drill).await.unwrap();
    let report = engine.run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}", f.error));
    let entries = FileJournal::new(&journal_path).entries().await.unwrap();
    let timeline = qovery_dr_core::document::Timeline::from_journal(&entries, None).unwrap();
    let readiness = Readiness::new(plan.clone(), providers).evaluate().await;
    let mut outputs = vec![
        ("journal file".to_owned(), std::fs::read_to_string(&journal_path).unwrap()),
        ("report text".to_owned(), report.to_text()),
        ("report JSON".to_owned(), serde_json::to_string(&report).unwrap()),
        ("runbook table".to_owned(), runbook.to_table()),
        ("runbook markdown".to_owned(), qovery_dr_core::document::runbook_markdown(&plan, &runbook)),
        ("drill report HTML".to_owned(), timeline.to_html()),
        ("drill report markdown".to_owned(), timeline.to_markdown()),
        ("drill report JSON".to_owned(), timeline.to_json()),
        ("readiness table".to_owned(), readiness.to_table()),
        ("readiness metrics".to_owned(), readiness.to_prometheus()),
        ("simulated world".to_owned(), sim.world.to_json().unwrap()),
    ];

    // 2. Real providers with the secrets, against local peers.
    let qovery_fake = QoveryFake::start("org-1").await;
    let cluster = qovery_fake.add_cluster("frankfurt");
    let qenv = qovery_fake.add_environment("project-1", "dr", &cluster);
    let qovery = QoveryClusterProvider::builder("org-1")
        .with_token(qovery_token.clone())
        .with_endpoint(qovery_fake.uri())
        .build()
        .unwrap();
    debug.push(("QoveryClusterProvider".into(), format!("{qovery:?}")));
    let jwt =
        qovery_dr_providers::qovery::QoveryToken::from_secret(SecretString::new(format!("ey{}.a.b", secret("jwt"))));
    debug.push(("QoveryToken".into(), format!("{jwt:?}")));
    let scope = VariableScope::Environment(qenv.as_str().into());
    qovery
        .set_variable(&scope, "STRIPE_SECRET_KEY", &VariableValue::Secret(SecretString::new(secret("qovery-secret"))))
        .await
        .unwrap();
    debug.push(("Qovery variables".into(), format!("{:?}", qovery.list_variables(&scope).await.unwrap())));
    let e = qovery.list_services(&"no-such-environment".into()).await.unwrap_err();
    errors.push(("qovery".into(), format!("{e} {e:?}")));

    let cf_token = secret("cloudflare-token");
    let cf_fake = CloudflareFake::start("zone-1", &cf_token).await;
    cf_fake.add_record("app.example.com", "A", "203.0.113.10", 60);
    let cf_config = CloudflareConfig::new("zone-1", SecretString::new(&cf_token)).with_api_base(cf_fake.api_base());
    debug.push(("CloudflareConfig".into(), format!("{cf_config:?}")));
    let cf = CloudflareDnsSwitcher::new(cf_config).unwrap();
    cf.current(&DnsRecordId::new("app.example.com")).await.unwrap();
    let wrong = CloudflareDnsSwitcher::new(
        CloudflareConfig::new("zone-1", SecretString::new(secret("wrong-cloudflare-token")))
            .with_api_base(cf_fake.api_base()),
    )
    .unwrap();
    let e = wrong.current(&DnsRecordId::new("app.example.com")).await.unwrap_err();
    errors.push(("cloudflare".into(), format!("{e} {e:?}")));

    let pg = PgEndpoint::new("127.0.0.1", 1, "dr_orchestrator", "shop").with_password(db_password.clone());
    debug.push(("PgEndpoint".into(), format!("{pg:?}")));
    debug.push(("PgEndpoint conninfo".into(), format!("{:?}", pg.conninfo())));
    let manager = qovery_dr_providers::postgres::PostgresReplicationManager::physical(
        plan.primary().database.id.clone(),
        pg.clone(),
        pg.with_dbname("postgres"),
    );
    debug.push(("PostgresReplicationManager".into(), format!("{manager:?}")));
    let dump = qovery_dr_providers::postgres::PgDumpBackup::new(pg.clone(), pg.clone(), dir.join("dump"));
    debug.push(("PgDumpBackup".into(), format!("{dump:?}")));
    let lock = qovery_dr_providers::postgres::PgFailoverLock::connect(pg.clone()).await.unwrap_err();
    errors.push(("postgres".into(), format!("{lock} {lock:?}")));

    let registry_auth = RegistryAuth::Basic { username: "AWS".into(), password: SecretString::new(secret("registry")) };
    debug.push(("RegistryAuth".into(), format!("{registry_auth:?}")));
    let sync = OciRegistrySync::new(
        "http://127.0.0.1:1".parse().unwrap(),
        registry_auth.clone(),
        "http://127.0.0.1:2".parse().unwrap(),
        registry_auth,
        plan.registry_mapping().clone(),
    );
    debug.push(("OciRegistrySync".into(), format!("{sync:?}")));
    let image = "127.0.0.1:1/shop/api:v1".parse::<qovery_dr_core::ImageRef>().unwrap();
    let e = qovery_dr_core::provider::RegistrySync::parity(&sync, &image).await.unwrap_err();
    errors.push(("registry".into(), format!("{e} {e:?}")));

    let tsig = TsigKey::new("dr-key", TsigAlgorithm::HmacSha256, SecretString::new(secret("tsig")));
    let rfc = Rfc2136Config::new("127.0.0.1:53".parse().unwrap(), "example.com").with_tsig(tsig);
    debug.push(("Rfc2136Config".into(), format!("{rfc:?}")));

    let etcd = EtcdConfig::new(["http://127.0.0.1:1"])
        .with_credentials("dr", SecretString::new(secret("etcd")))
        .with_timeout(Duration::from_millis(300));
    debug.push(("EtcdConfig".into(), format!("{etcd:?}")));
    let e = EtcdFailoverLock::connect(etcd).await.unwrap_err();
    errors.push(("etcd".into(), format!("{e} {e:?}")));

    let hook = WebhookNotifier::new(
        format!("http://127.0.0.1:1/hooks/{}", secret("webhook-path")).parse().unwrap(),
        WebhookFormat::PagerDuty { routing_key: SecretString::new(secret("pagerduty")) },
    )
    .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(1)));
    debug.push(("WebhookNotifier".into(), format!("{hook:?}")));
    let note = crate::notification(plan.name());
    let e = qovery_dr_core::monitor::Notifier::notify(&hook, &note).await.unwrap_err();
    errors.push(("webhook".into(), format!("{e} {e:?}")));

    let aws = aws_sdk_route53::config::Credentials::new("AKIDEXAMPLE", secret("aws"), None, None, "audit");
    debug.push(("AWS credentials".into(), format!("{aws:?}")));

    // 3. Nothing of it anywhere.
    outputs.push(("TRACE logs".to_owned(), crate::logs::text()));
    for (place, text) in outputs.iter().chain(&debug).chain(&errors) {
        assert_clean(place, text);
    }
    // The audit looked at real material: the logs are TRACE-rich and the drill ran.
    let log_text = &outputs.last().unwrap().1;
    assert!(log_text.contains("TRACE"), "TRACE events were captured");
    assert!(log_text.len() > 10_000, "{} bytes of logs", log_text.len());
    for source in ["qovery_dr_core", "qovery_dr_providers", "reqwest", "hyper_util"] {
        assert!(log_text.contains(source), "the logs include {source}'s");
    }
    assert!(outputs[0].1.contains("run_finished"));
    // And the secrets did reach their destinations (they were not simply dropped).
    assert!(qovery_fake.with(|s| format!("{:?}", s.envs).contains(SENTINEL)), "the Qovery secret was stored");
    std::fs::remove_dir_all(&dir).unwrap();
}
