//! The fault and recording layers over a provider that is not the simulated world (a
//! stand-in for a real one): what they record and inject must not depend on the world.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, Layered, Providers, ReadOnlyLayer, RetryLayer,
    SwitchRequest, SwitchStrategy, TargetHealth,
};
use qovery_dr_core::resilience::RetryConfig;
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderResult, async_trait};
use qovery_dr_testkit::{FaultAction, FaultInjector, FaultLayer, Recorder, RecordingLayer, Trigger, World};

/// A DNS switcher that knows nothing of the testkit: it counts the switches it applied.
#[derive(Debug, Default)]
struct Counting {
    switched: AtomicU32,
}

#[async_trait]
impl DnsSwitcher for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn capabilities(&self) -> DnsCapabilities {
        DnsCapabilities::default().with_record_swap(true)
    }
    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        Ok(DnsRecordState::new(record.clone(), DnsTarget::new("192.0.2.1"), Duration::from_secs(60)))
    }
    async fn switch(&self, _: &SwitchRequest) -> ProviderResult<ChangeId> {
        self.switched.fetch_add(1, Ordering::SeqCst);
        Ok(ChangeId::new("c1"))
    }
    async fn change_status(&self, _: &ChangeId) -> ProviderResult<ChangeStatus> {
        Ok(ChangeStatus::InSync)
    }
    async fn target_health(&self, _: &DnsTarget) -> ProviderResult<TargetHealth> {
        std::future::pending().await
    }
}

fn request() -> SwitchRequest {
    SwitchRequest::new("www.example.com".into(), SwitchStrategy::RecordSwap, "192.0.2.1".into(), "192.0.2.2".into())
}

fn layered() -> (Arc<Counting>, Arc<FaultInjector>, Arc<Recorder>, impl DnsSwitcher) {
    let inner = Arc::new(Counting::default());
    let (faults, recorder) = (Arc::new(FaultInjector::default()), Arc::new(Recorder::default()));
    let dns = Layered::new(
        Arc::clone(&inner),
        (RecordingLayer::new(Arc::clone(&recorder)), FaultLayer::new(Arc::clone(&faults))),
    );
    (inner, faults, recorder, dns)
}

#[tokio::test(start_paused = true)]
async fn an_apply_then_fail_fault_applies_reports_indeterminate_and_is_recorded_as_applied() {
    let (inner, faults, recorder, dns) = layered();
    faults.inject("dns.switch", Trigger::Nth(1), FaultAction::ApplyThenFail(ErrorKind::Indeterminate));
    let e = dns.switch(&request()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Indeterminate);
    assert_eq!(inner.switched.load(Ordering::SeqCst), 1, "the switch reached the provider");
    let call = &recorder.calls_of("dns.switch")[0];
    assert!(call.mutating && call.applied, "{call:?}");
    assert_eq!(call.error, Some(ErrorKind::Indeterminate));
    assert!(call.detail.contains("www.example.com"), "the arguments are rendered: {}", call.detail);
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_never_reaches_the_provider_and_is_recorded_as_not_applied() {
    let (inner, faults, recorder, dns) = layered();
    faults.inject("dns.*", Trigger::FirstN(1), FaultAction::Fail(ErrorKind::Transient));
    assert_eq!(dns.switch(&request()).await.unwrap_err().kind(), ErrorKind::Transient);
    assert_eq!(inner.switched.load(Ordering::SeqCst), 0);
    dns.switch(&request()).await.unwrap();
    let calls = recorder.calls_of("dns.switch");
    assert_eq!(
        calls.iter().map(|c| (c.applied, c.error)).collect::<Vec<_>>(),
        [(false, Some(ErrorKind::Transient)), (true, None)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_call_cut_by_its_caller_is_recorded_as_a_timeout() {
    let (_, _, recorder, dns) = layered();
    let cut = tokio::time::timeout(Duration::from_secs(5), dns.target_health(&"192.0.2.2".into())).await;
    assert!(cut.is_err(), "the provider never answers");
    let call = &recorder.calls_of("dns.target_health")[0];
    assert_eq!((call.error, call.applied), (Some(ErrorKind::Timeout), false));
    assert_eq!(call.at - call.started, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn injected_latency_and_throttling_go_through_a_retry_layer_outside() {
    let (inner, faults, recorder, dns) = layered();
    faults.inject("dns.switch", Trigger::FirstN(2), FaultAction::Fail(ErrorKind::RateLimited));
    faults.inject("dns.switch", Trigger::Always, FaultAction::Latency(Duration::from_secs(2)));
    let retried = Layered::new(dns, RetryLayer::new(RetryConfig::new(5, Duration::from_millis(100))));
    let start = tokio::time::Instant::now();
    retried.switch(&request()).await.unwrap();
    assert_eq!(inner.switched.load(Ordering::SeqCst), 1, "throttled attempts were not applied; the third was");
    assert_eq!(recorder.calls_of("dns.switch").len(), 3, "each attempt went through the layers");
    // Three latencies of 2 s and two waits of at least 1 s (the fault's Retry-After).
    assert!(start.elapsed() >= Duration::from_secs(8), "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_whole_provider_set_behind_the_read_only_layer_reads_but_never_writes() {
    let pw = World::from_plan(&{
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml"))
                .unwrap();
        qovery_dr_core::plan::DrPlan::parse(&text, qovery_dr_core::plan::PlanFormat::Toml).unwrap()
    });
    let providers: Providers = pw.providers().with_layer(ReadOnlyLayer);
    let record = &pw.plan.dns()[0];
    assert!(providers.dns.current(&record.record).await.is_ok());
    let req = SwitchRequest::new(
        record.record.clone(),
        record.strategy,
        record.primary_target.clone(),
        record.dr_target.clone(),
    );
    assert_eq!(providers.dns.switch(&req).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(providers.replication.promote_standby(&pw.plan.dr().database.id).await.is_err());
    pw.world.recorder().assert_no_mutations();
}
