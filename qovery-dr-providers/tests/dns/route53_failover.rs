//! Route53 failover routing: on moto (record sets, health checks, `Inverted`
//! written through the SDK) and on the testkit's fake for what moto does not model
//! (checkers reporting a failing primary, `HealthCheckVersion` moving and enforced).

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use qovery_dr_core::provider::{ChangeStatus, DnsSwitcher, SwitchRequest, SwitchStrategy};
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind};
use qovery_dr_providers::route53::{Route53Config, Route53DnsSwitcher};
use qovery_dr_testkit::conformance::dns::DnsFixture;
use qovery_dr_testkit::route53_fake::Route53Fake;

use super::moto::moto;
use super::route53::{DR, NEXT, PRIMARY, sdk};

fn failover_set(name: &str, role: ResourceRecordSetFailover, value: &str, check: Option<&str>) -> Change {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(60)
        .set_identifier(role.as_str().to_ascii_lowercase())
        .failover(role)
        .set_health_check_id(check.map(str::to_owned))
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap()
}

/// A fresh moto zone whose `app` record fails over from PRIMARY (watched by a new
/// health check) to DR. Returns the switcher, the record, an admin client and the check id.
async fn failover_zone() -> (Route53DnsSwitcher, DnsRecordId, aws_sdk_route53::Client, String) {
    let m = moto();
    let sdk = sdk(&m.url, &m.access_key, &m.secret_key).await;
    let admin = aws_sdk_route53::Client::new(&sdk);
    let zone = format!("f{}-{}.qdr.test", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let created = admin.create_hosted_zone().name(&zone).caller_reference(&zone).send().await.unwrap();
    let zone_id = created.hosted_zone().unwrap().id().to_owned();
    let check = admin
        .create_health_check()
        .caller_reference(format!("hc-{zone}"))
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Http)
                .ip_address(PRIMARY)
                .port(80)
                .resource_path("/healthz")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let check_id = check.health_check().unwrap().id().to_owned();
    let name = format!("app.{zone}.");
    let batch = ChangeBatch::builder()
        .changes(failover_set(&name, ResourceRecordSetFailover::Primary, PRIMARY, Some(&check_id)))
        .changes(failover_set(&name, ResourceRecordSetFailover::Secondary, DR, None))
        .build()
        .unwrap();
    admin.change_resource_record_sets().hosted_zone_id(&zone_id).change_batch(batch).send().await.unwrap();
    let s = Route53DnsSwitcher::from_sdk_config(
        &sdk,
        Route53Config::new(&zone_id)
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(2, Duration::from_millis(10))),
    );
    (s, DnsRecordId::new(format!("app.{zone}")), admin, check_id)
}

async fn inverted(admin: &aws_sdk_route53::Client, check: &str) -> Option<bool> {
    let out = admin.get_health_check().health_check_id(check).send().await.unwrap();
    out.health_check().unwrap().health_check_config().unwrap().inverted()
}

fn failover(record: &DnsRecordId, from: &str, to: &str) -> SwitchRequest {
    SwitchRequest::new(record.clone(), SwitchStrategy::FailoverRouting, DnsTarget::new(from), DnsTarget::new(to))
}

async fn failover_setup() -> DnsFixture<Route53DnsSwitcher> {
    let (provider, record, _, _) = failover_zone().await;
    DnsFixture {
        provider,
        record,
        current: DnsTarget::new(PRIMARY),
        alternative: DnsTarget::new(DR),
        strategy: SwitchStrategy::FailoverRouting,
        sync_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::dns_switcher_conformance!(route53_failover_on_moto, failover_setup());

#[tokio::test]
async fn failover_inverts_the_primary_check_and_failback_restores_it() {
    let (s, record, admin, check) = failover_zone().await;
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), PRIMARY, "healthy primary serves");
    let change = s.switch(&failover(&record, PRIMARY, DR)).await.unwrap();
    assert_eq!(inverted(&admin, &check).await, Some(true), "Inverted=true on the primary's check");
    let hc = admin.get_health_check().health_check_id(&check).send().await.unwrap();
    assert_ne!(hc.health_check().unwrap().health_check_config().unwrap().disabled(), Some(true), "never Disabled");
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), DR);
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::InSync);

    s.switch(&failover(&record, DR, PRIMARY)).await.unwrap();
    assert_eq!(inverted(&admin, &check).await, Some(false));
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), PRIMARY);
    // The failover's change id now reports PENDING: traffic is no longer on the secondary.
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::Pending);
}

#[tokio::test]
async fn a_failover_record_changed_behind_our_back_is_not_overwritten() {
    let (s, record, admin, check) = failover_zone().await;
    let zone = s.current(&record).await.unwrap().record;
    // Someone re-points the PRIMARY set.
    let name = format!("{zone}.");
    let batch = ChangeBatch::builder()
        .changes(failover_set(&name, ResourceRecordSetFailover::Primary, "192.0.2.99", Some(&check)))
        .build()
        .unwrap();
    let zone_id = admin.list_hosted_zones().send().await.unwrap();
    let zone_id = zone_id.hosted_zones().iter().find(|z| name.ends_with(z.name())).map(|z| z.id().to_owned()).unwrap();
    admin.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch).send().await.unwrap();
    let err = s.switch(&failover(&record, PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("192.0.2.99") && err.message().contains(PRIMARY), "{err}");
    assert_eq!(inverted(&admin, &check).await, Some(false), "the check was not touched");

    let err = s.switch(&failover(&record, "192.0.2.99", "192.0.2.77")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "a target that is neither set: {err}");
}

/// The fake, with `app.example.com` failing over from PRIMARY (check `hc-primary`) to DR.
async fn on_fake() -> (Route53Fake, Route53DnsSwitcher, DnsRecordId) {
    let fake = Route53Fake::start().await;
    fake.add_failover_record("app.example.com", PRIMARY, DR, "hc-primary");
    let sdk = sdk(&fake.uri(), "AKIDEXAMPLE", "secret").await;
    let s = Route53DnsSwitcher::from_sdk_config(
        &sdk,
        Route53Config::new("ZFAKE")
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(5))),
    );
    (fake, s, DnsRecordId::new("app.example.com"))
}

#[tokio::test]
async fn a_concurrent_edit_of_the_check_is_read_again_not_overwritten() {
    let (fake, s, record) = on_fake().await;
    // Someone edits something else on the check between our read and our update.
    fake.edit_before_next_updates("hc-primary", 1, None);
    s.switch(&failover(&record, PRIMARY, DR)).await.unwrap();
    assert_eq!(fake.health_check_updates(), 2, "one refused for its stale version, one accepted after re-reading");
    assert_eq!(fake.health_check("hc-primary"), Some((3, true)));

    // Someone else fails over at the same moment: our update is refused, the re-read sees it done.
    let (fake, s, record) = on_fake().await;
    fake.edit_before_next_updates("hc-primary", 1, Some(true));
    s.switch(&failover(&record, PRIMARY, DR)).await.unwrap();
    assert_eq!(fake.health_check_updates(), 1, "nothing written after seeing the failover done");
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), DR);

    // A check that changes under every attempt: Conflict, and the last foreign state stands.
    let (fake, s, record) = on_fake().await;
    fake.edit_before_next_updates("hc-primary", 10, None);
    let err = s.switch(&failover(&record, PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("someone else"), "{err}");
    assert_eq!(fake.health_check_updates(), 3);
    assert_eq!(fake.health_check("hc-primary").map(|(_, inv)| inv), Some(false));
}

#[tokio::test]
async fn a_failing_primary_is_not_inverted_and_not_failed_back_to() {
    let (fake, s, record) = on_fake().await;
    fake.set_health("hc-primary", 2, 16); // 12.5 %: Route53 already serves the secondary
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), DR);
    let change = s.switch(&failover(&record, PRIMARY, DR)).await.unwrap();
    assert_eq!(fake.health_check_updates(), 0, "inverting a failing primary would send traffic back to it");
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::InSync);

    let err = s.switch(&failover(&record, DR, PRIMARY)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains("failing"), "{err}");
    assert_eq!(fake.health_check_updates(), 0);

    // Once it recovers, failover routing would move traffic back by itself...
    fake.set_health("hc-primary", 16, 16);
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), PRIMARY);
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::Pending);
    // ...and a failover now pins it to the secondary by inverting the check.
    s.switch(&failover(&record, PRIMARY, DR)).await.unwrap();
    assert_eq!(fake.health_check("hc-primary"), Some((2, true)));
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::InSync);
}

#[tokio::test]
async fn record_swap_on_a_failover_record_is_refused() {
    let (fake, s, record) = on_fake().await;
    let mut req = failover(&record, PRIMARY, DR);
    req.strategy = SwitchStrategy::RecordSwap;
    let err = s.switch(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported, "{err}");
    assert_eq!(fake.health_check_updates(), 0);
    let err = s.change_status(&qovery_dr_core::ChangeId::new("qdr-hc:hc-primary:sideways")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
