//! Conformance suites: one per provider trait, checking the `# Contract`
//! sections of the trait docs (idempotency, not-found semantics, error kinds,
//! state visible after a change).
//!
//! Each suite is a set of public async functions taking a fixture, plus a
//! macro that expands to one named `#[tokio::test]` per check. A check whose
//! capability the implementation does not declare is not skipped: it asserts
//! that the call answers [`ErrorKind::NotSupported`].
//!
//! To check your own provider, build a fresh fixture in an async function and
//! call the macro (your crate needs `tokio` as a dev-dependency):
//!
//! ```
//! use std::time::Duration;
//! use qovery_dr_core::provider::{SwitchStrategy, TargetHealth};
//! use qovery_dr_testkit::conformance::dns::DnsFixture;
//! use qovery_dr_testkit::{World, memory::InMemoryDns, world::HealthSource};
//!
//! // Replace InMemoryDns with your implementation, pointed at a test zone.
//! async fn setup() -> DnsFixture<InMemoryDns> {
//!     let world = World::new();
//!     world.add_record("www.example.com", "192.0.2.1", Duration::from_secs(60));
//!     world.set_target_health("192.0.2.2", HealthSource::Fixed(TargetHealth::Healthy));
//!     DnsFixture {
//!         provider: InMemoryDns::new(&world),
//!         record: "www.example.com".into(),
//!         current: "192.0.2.1".into(),
//!         alternative: "192.0.2.2".into(),
//!         strategy: SwitchStrategy::RecordSwap,
//!         sync_timeout: Duration::from_secs(120),
//!         poll_interval: Duration::from_secs(1),
//!     }
//! }
//!
//! qovery_dr_testkit::dns_switcher_conformance!(my_dns, setup(), start_paused);
//! # fn main() {}
//! ```
//!
//! With a simulated provider, append `start_paused` so waits take no real
//! time: `dns_switcher_conformance!(my_dns, setup(), start_paused);`.

// Conformance checks are assertions: failing loudly (panicking) is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod cluster;
pub mod dns;
pub mod lock;
pub mod registry;
pub mod replication;

use std::future::Future;
use std::time::Duration;

use qovery_dr_core::{ErrorKind, ProviderResult};

/// Asserts that a result is an error of `kind`, naming the check on failure.
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug>(result: ProviderResult<T>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: expected a {kind} error, got {e}"),
        Ok(v) => panic!("{what}: expected a {kind} error, got Ok({v:?})"),
    }
}

/// Polls `probe` every `interval` until it returns `Some`, at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, interval: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($suite:ident, $setup:expr, #[$test:meta], [$($check:ident),* $(,)?]) => {
        $(
            #[$test]
            async fn $check() {
                let fixture = $setup.await;
                $crate::conformance::$suite::$check(&fixture).await;
            }
        )*
    };
}
