//! The testkit's local real stack (`qovery_dr_testkit::local_stack`) for the
//! connect and end-to-end tests, with helpers that fail the test loudly.

use std::path::PathBuf;

use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
pub use qovery_dr_testkit::local_stack::{
    API, API_DR, API_PRIMARY, APP, APP_DR, APP_PRIMARY, ApiProvider, CF_TOKEN, CF_ZONE, Load, LocalStack,
    LocalStackOptions, PG_PASSWORD, PgNode, QOVERY_TOKEN,
};

/// The services of each environment in the stack's Qovery fake.
pub const SERVICES: [&str; 3] = ["api", "web", "worker"];

pub struct Stack(pub LocalStack);

impl std::ops::Deref for Stack {
    type Target = LocalStack;
    fn deref(&self) -> &LocalStack {
        &self.0
    }
}

impl Stack {
    /// The stack with the DR registry already holding the primary's images (but not yet
    /// a registry of the Qovery organization).
    pub async fn start() -> Stack {
        Self::start_with(true).await
    }

    /// The stack; with `mirrored` false the DR registry starts empty (a failover copies the images).
    pub async fn start_with(mirrored: bool) -> Stack {
        Self::start_options(LocalStackOptions::default().mirrored(mirrored).dr_registry_in_qovery(false)).await
    }

    pub async fn start_options(options: LocalStackOptions) -> Stack {
        Stack(LocalStack::start(options).await.unwrap_or_else(|e| panic!("the local stack did not start: {e}")))
    }

    /// Writes `text` as the plan file and returns its path.
    pub fn write_plan(&self, text: &str) -> PathBuf {
        let path = self.dir.join("plan.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The Cloudflare fake (the stack's default `api.example.com` provider).
    pub fn cloudflare(&self) -> &CloudflareFake {
        match &self.api {
            ApiProvider::Cloudflare(fake, _) => fake,
            ApiProvider::Route53(..) => panic!("this stack has api.example.com on Route53"),
        }
    }

    /// The content `api.example.com` has at its provider.
    pub async fn api_content(&self) -> Option<String> {
        self.api_target().await.unwrap()
    }

    /// The content the Cloudflare fake holds for the `api.example.com` A record.
    pub fn cloudflare_content(&self, name: &str) -> Option<String> {
        assert_eq!(name, API, "the stack's Cloudflare zone holds one record");
        let ApiProvider::Cloudflare(fake, record) = &self.api else { panic!("not on Cloudflare") };
        fake.content(record)
    }

    /// What both Knot servers (asked with `kdig`) answer for `name`: they must agree.
    pub fn knot_answer(&self, name: &str) -> String {
        let [primary, secondary] = self.app_answers(name).unwrap();
        assert_eq!(primary, secondary, "the Knot primary and secondary answer the same for {name}");
        primary
    }

    /// The primary Knot server's answer for `name` once the secondary agrees (it transfers
    /// the zone after a NOTIFY, asynchronously): for switches made without the engine's wait.
    pub async fn knot_answer_settled(&self, name: &str) -> String {
        for _ in 0..100 {
            let [primary, secondary] = self.app_answers(name).unwrap();
            if primary == secondary {
                return primary;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the Knot secondary did not catch up with the primary for {name} within 5 s")
    }
}

/// An engine over what `connect` built, auto-approving, polling every 100 ms, no TTL drain.
pub fn engine(
    connected: &qovery_dr_providers::connect::Connected,
    plan: &qovery_dr_core::plan::DrPlan,
) -> qovery_dr_core::engine::EngineBuilder {
    connected
        .engine_builder(plan.clone())
        .unwrap()
        .approver(qovery_dr_core::engine::AutoApprove::new("oncall-sre"))
        .options(options())
}

pub fn options() -> qovery_dr_core::engine::EngineOptions {
    qovery_dr_core::engine::EngineOptions {
        operator: "e2e@127.0.0.1[pid 0]".into(),
        poll_interval: std::time::Duration::from_millis(100),
        drain_ttl: false,
        ..qovery_dr_core::engine::EngineOptions::default()
    }
}

/// `psql` on a stack server, failing the test on an error.
pub trait Psql {
    fn q(&self, sql: &str) -> String;
}

impl Psql for PgNode {
    fn q(&self, sql: &str) -> String {
        self.sql(sql).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Starts capturing this test binary's logs (see `common/logs.rs`).
pub fn capture_logs() {
    crate::logs::logs();
}

/// Fails if a secret of the stack appears in the captured logs, in clear, base64 or hex.
pub fn assert_logs_clean() {
    let logs = crate::logs::text();
    assert!(logs.len() > 1000, "the logs were captured ({} bytes)", logs.len());
    for secret in [QOVERY_TOKEN, CF_TOKEN, PG_PASSWORD] {
        let forms = [
            secret.to_owned(),
            data_encoding::BASE64.encode(secret.as_bytes()),
            data_encoding::HEXLOWER.encode(secret.as_bytes()),
        ];
        for form in forms {
            assert!(!logs.contains(&form), "a secret leaked into the logs (as {form})");
        }
    }
}
