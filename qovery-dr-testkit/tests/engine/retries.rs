//! Retries under hostile answers: a server's Retry-After is capped, backoffs count inside
//! the step's budget, and an error a provider already retried is not retried again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{AutoApprove, Engine, MemoryJournal, Outcome, RunMode};
use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, SwitchRequest, TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult};
use qovery_dr_testkit::PlanWorld;
use qovery_dr_testkit::memory::InMemoryDns;

use super::common::*;

/// A DNS provider whose `switch` answers `error()` the first `failures` times.
#[derive(Debug)]
struct Hostile {
    inner: InMemoryDns,
    failures: u32,
    calls: Arc<AtomicU32>,
    error: fn() -> ProviderError,
}

#[async_trait]
impl DnsSwitcher for Hostile {
    fn name(&self) -> &str {
        "hostile"
    }
    fn capabilities(&self) -> DnsCapabilities {
        self.inner.capabilities()
    }
    async fn current(&self, r: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        self.inner.current(r).await
    }
    async fn switch(&self, r: &SwitchRequest) -> ProviderResult<ChangeId> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err((self.error)());
        }
        self.inner.switch(r).await
    }
    async fn change_status(&self, c: &ChangeId) -> ProviderResult<ChangeStatus> {
        self.inner.change_status(c).await
    }
    async fn target_health(&self, t: &DnsTarget) -> ProviderResult<TargetHealth> {
        self.inner.target_health(t).await
    }
}

/// The world's DNS, answering `error()` to the first `failures` switches; and the call count.
fn hostile(pw: &PlanWorld, failures: u32, error: fn() -> ProviderError) -> (Hostile, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    (Hostile { inner: InMemoryDns::new(&pw.world), failures, calls: Arc::clone(&calls), error }, calls)
}

fn engine_with_dns(pw: &PlanWorld, dns: Hostile, options: qovery_dr_core::engine::EngineOptions) -> Engine {
    let mut providers = pw.providers();
    providers.dns = Arc::new(dns);
    Engine::builder(pw.plan.clone(), providers)
        .journal(MemoryJournal::new())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options)
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_of_u64_max_seconds_is_capped_and_the_run_finishes() {
    let pw = aws();
    let (dns, _) = hostile(&pw, 2, || {
        ProviderError::new(ErrorKind::RateLimited, "hostile", "switch", "429")
            .with_retry_after(Duration::from_secs(u64::MAX))
    });
    let started = tokio::time::Instant::now();
    let report =
        engine_with_dns(&pw, dns, options()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let took = started.elapsed();
    // Two records, each refused twice: at most 2 capped waits of 5 minutes per record, in parallel.
    assert!(took < Duration::from_secs(2 * 300 + 600), "the run took {took:?}");
    assert!(took >= Duration::from_secs(300), "the capped Retry-After was honoured ({took:?})");
}

#[tokio::test(start_paused = true)]
async fn backoffs_count_inside_the_steps_budget() {
    let pw = aws();
    // 4 minutes each: within the cap, but a 10-minute budget holds only three attempts.
    let (dns, _) = hostile(&pw, u32::MAX, || {
        ProviderError::new(ErrorKind::RateLimited, "hostile", "switch", "429")
            .with_retry_after(Duration::from_secs(240))
    });
    let mut opts = options();
    opts.retry.total_budget = Some(Duration::from_secs(600));
    let engine = engine_with_dns(&pw, dns, opts);
    let failed = engine.run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("would pass the step's budget of 10m"), "{message}");
    let step = failed.report.steps.iter().find(|s| s.name.starts_with("dns:")).unwrap();
    assert!(step.duration_ms <= 600_000, "{step:?}");
    assert_eq!(step.attempts, 3, "{step:?}");
}

#[tokio::test(start_paused = true)]
async fn an_error_a_provider_already_retried_is_not_retried_again() {
    let pw = aws();
    let (dns, calls) = hostile(&pw, u32::MAX, || {
        ProviderError::new(ErrorKind::Transient, "hostile", "switch", "503 after 4 attempts").with_retries_exhausted(4)
    });
    let failed = engine_with_dns(&pw, dns, options()).run(RunMode::Switchover).await.unwrap_err();
    assert!(failed.error.to_string().contains("503 after 4 attempts"), "{}", failed.error);
    assert_eq!(calls.load(Ordering::SeqCst), pw.plan.dns().len() as u32, "one call per record: no engine retry on top");
}
