//! Conformance checks for [`DnsSwitcher`].

use std::time::Duration;

use qovery_dr_core::provider::{ChangeStatus, DnsSwitcher, SwitchRequest, SwitchStrategy, TargetHealth};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind};

use super::{assert_kind, eventually};

/// What the DNS checks need.
#[derive(Debug, Clone)]
pub struct DnsFixture<P> {
    /// The implementation under test.
    pub provider: P,
    /// An existing record the checks may switch.
    pub record: DnsRecordId,
    /// Where it points at the start.
    pub current: DnsTarget,
    /// A healthy target to switch it to.
    pub alternative: DnsTarget,
    /// The strategy to switch this record with (must be in the capabilities).
    pub strategy: SwitchStrategy,
    /// How long propagation may take.
    pub sync_timeout: Duration,
    /// How often to poll.
    pub poll_interval: Duration,
}

const MISSING: &str = "qdr-conformance-missing.invalid";

fn request<P>(f: &DnsFixture<P>, expected: &DnsTarget, new: &DnsTarget) -> SwitchRequest {
    SwitchRequest::new(f.record.clone(), f.strategy, expected.clone(), new.clone())
}

/// `current` shows the starting target; an unknown record is `NotFound`.
pub async fn current_known_and_unknown<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.record, f.record);
    assert_eq!(r.target, f.current, "the record starts at the fixture's target");
    assert_kind(f.provider.current(&DnsRecordId::new(MISSING)).await, ErrorKind::NotFound, "current(unknown)");
}

/// A switch whose expected value does not match is a `Conflict` and changes nothing.
pub async fn guarded_switch_refuses_a_foreign_value<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let stranger = DnsTarget::new("qdr-conformance-someone-else.invalid");
    assert_kind(
        f.provider.switch(&request(f, &stranger, &f.alternative)).await,
        ErrorKind::Conflict,
        "switch with a wrong expected value",
    );
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.target, f.current, "a refused switch changes nothing");
}

/// After a switch, `current` shows the new target and the change reaches `InSync`.
pub async fn switch_is_visible_and_propagates<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let change = f.provider.switch(&request(f, &f.current, &f.alternative)).await.expect("switch");
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.target, f.alternative, "current shows the new target");
    let synced = eventually(f.sync_timeout, f.poll_interval, || async {
        (f.provider.change_status(&change).await.expect("change_status") == ChangeStatus::InSync).then_some(())
    })
    .await;
    assert!(synced.is_some(), "change {change} in sync within {:?}", f.sync_timeout);
    assert_eq!(f.provider.change_status(&change).await.expect("change_status"), ChangeStatus::InSync, "stays in sync");
}

/// Repeating a switch that was already applied succeeds without change (safe retry).
pub async fn switch_is_idempotent<P: DnsSwitcher>(f: &DnsFixture<P>) {
    f.provider.switch(&request(f, &f.current, &f.alternative)).await.expect("first switch");
    f.provider.switch(&request(f, &f.current, &f.alternative)).await.expect("the same switch again");
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.target, f.alternative);
}

/// Unknown records and changes are `NotFound`.
pub async fn unknown_record_and_change_are_not_found<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let mut req = request(f, &f.current, &f.alternative);
    req.record = DnsRecordId::new(MISSING);
    assert_kind(f.provider.switch(&req).await, ErrorKind::NotFound, "switch(unknown record)");
    assert_kind(f.provider.change_status(&ChangeId::new(MISSING)).await, ErrorKind::NotFound, "change_status(unknown)");
}

/// The fixture's strategy is declared, and every undeclared strategy is `NotSupported` and changes nothing.
pub async fn undeclared_strategies_are_not_supported<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let caps = f.provider.capabilities();
    assert!(caps.supports(f.strategy), "the fixture's strategy {} is declared in the capabilities", f.strategy);
    for strategy in [
        SwitchStrategy::RecordSwap,
        SwitchStrategy::FailoverRouting,
        SwitchStrategy::WeightedShift { percent: 100 },
        SwitchStrategy::LoadBalancerPool,
    ] {
        if caps.supports(strategy) {
            continue;
        }
        let mut req = request(f, &f.current, &f.alternative);
        req.strategy = strategy;
        assert_kind(
            f.provider.switch(&req).await,
            ErrorKind::NotSupported,
            &format!("switch with undeclared {strategy}"),
        );
    }
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.target, f.current, "refused switches change nothing");
}

/// Target health answers; without health checks it is `Unknown`, never an error.
pub async fn target_health_answers<P: DnsSwitcher>(f: &DnsFixture<P>) {
    let h = f.provider.target_health(&f.alternative).await.expect("target_health");
    if f.provider.capabilities().health_checks {
        assert_ne!(h, TargetHealth::Unhealthy, "the fixture's alternative target is healthy");
    } else {
        assert_eq!(h, TargetHealth::Unknown, "without health checks, health is Unknown");
    }
    let unknown = f.provider.target_health(&DnsTarget::new(MISSING)).await.expect("target_health(unknown target)");
    assert_eq!(unknown, TargetHealth::Unknown, "a target without a health check is Unknown, not an error");
}

/// The failover epoch beside the record: none at first, published and read back, the
/// same epoch again a no-op, a newer one replacing it, an older one refused (`Conflict`)
/// and left alone, the record's own target untouched. A provider that keeps none
/// answers `NotSupported` to both the read and the publication.
pub async fn failover_epoch_is_published_guarded<P: DnsSwitcher>(f: &DnsFixture<P>) {
    use qovery_dr_core::{FailoverEpoch, Timestamp};
    let epoch =
        |n: u64| FailoverEpoch::new(n, format!("conformance-{n}"), "switchover", Timestamp::from_unix_millis(0));
    let first = f.provider.failover_epoch(&f.record).await;
    if let Err(e) = &first
        && e.kind() == ErrorKind::NotSupported
    {
        assert_kind(
            f.provider.publish_failover_epoch(&f.record, &epoch(1)).await,
            ErrorKind::NotSupported,
            "publish_failover_epoch without support",
        );
        return;
    }
    assert_eq!(first.expect("failover_epoch"), None, "no epoch beside a record at first");
    let in_sync = |change: ChangeId| async move {
        let synced = eventually(f.sync_timeout, f.poll_interval, || async {
            (f.provider.change_status(&change).await.expect("change_status") == ChangeStatus::InSync).then_some(())
        })
        .await;
        assert!(synced.is_some(), "epoch change {change} in sync within {:?}", f.sync_timeout);
    };
    in_sync(f.provider.publish_failover_epoch(&f.record, &epoch(1)).await.expect("publish epoch 1")).await;
    assert_eq!(f.provider.failover_epoch(&f.record).await.expect("read"), Some(1));
    // Again (a retry): the same epoch, no error.
    in_sync(f.provider.publish_failover_epoch(&f.record, &epoch(1)).await.expect("publish epoch 1 again")).await;
    in_sync(f.provider.publish_failover_epoch(&f.record, &epoch(2)).await.expect("publish epoch 2")).await;
    assert_eq!(f.provider.failover_epoch(&f.record).await.expect("read"), Some(2));
    assert_kind(
        f.provider.publish_failover_epoch(&f.record, &epoch(1)).await,
        ErrorKind::Conflict,
        "publishing an older epoch",
    );
    assert_eq!(f.provider.failover_epoch(&f.record).await.expect("read"), Some(2), "the newer epoch stays");
    let r = f.provider.current(&f.record).await.expect("current");
    assert_eq!(r.target, f.current, "the epoch beside the record leaves the record alone");
}

/// Expands to one `#[tokio::test]` per DNS check, in a module named `$name`.
/// `$setup` is an expression giving a future of a fresh [`DnsFixture`].
#[macro_export]
macro_rules! dns_switcher_conformance {
    ($name:ident, $setup:expr) => {
        $crate::dns_switcher_conformance!(@inner $name, $setup, #[::tokio::test]);
    };
    ($name:ident, $setup:expr, start_paused) => {
        $crate::dns_switcher_conformance!(@inner $name, $setup, #[::tokio::test(start_paused = true)]);
    };
    (@inner $name:ident, $setup:expr, #[$test:meta]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(dns, $setup, #[$test], [
                current_known_and_unknown,
                guarded_switch_refuses_a_foreign_value,
                switch_is_visible_and_propagates,
                switch_is_idempotent,
                unknown_record_and_change_are_not_found,
                undeclared_strategies_are_not_supported,
                target_health_answers,
                failover_epoch_is_published_guarded,
            ]);
        }
    };
}
