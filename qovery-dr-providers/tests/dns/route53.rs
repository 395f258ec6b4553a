//! Route53DnsSwitcher against moto (signing proven on a server verifying
//! signatures; see `moto.rs` for why the suite runs on one that does not), and its error
//! paths against a wiremock server speaking Route53's XML errors (moto cannot
//! throttle).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_route53::config::{Credentials, Region};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use qovery_dr_core::provider::{DnsSwitcher, SwitchRequest, SwitchStrategy};
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind};
use qovery_dr_providers::route53::{Route53Config, Route53DnsSwitcher};
use qovery_dr_testkit::conformance::dns::DnsFixture;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::moto::{moto, moto_signed};

pub(super) const PRIMARY: &str = "203.0.113.10";
pub(super) const DR: &str = "198.51.100.20";
pub(super) static NEXT: AtomicU32 = AtomicU32::new(0);

pub(super) async fn sdk(endpoint: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "qdr-test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A fresh hosted zone in moto holding `app.<zone>` -> PRIMARY; returns the switcher and the record.
async fn zone_with_app() -> (Route53DnsSwitcher, DnsRecordId) {
    let m = moto();
    let good = sdk(&m.url, &m.access_key, &m.secret_key).await;
    let admin = aws_sdk_route53::Client::new(&good);
    let zone = format!("z{}-{}.qdr.test", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let created = admin.create_hosted_zone().name(&zone).caller_reference(&zone).send().await.unwrap();
    let zone_id = created.hosted_zone().unwrap().id().to_owned();
    let record = format!("app.{zone}");
    let set = ResourceRecordSet::builder()
        .name(format!("{record}."))
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(PRIMARY).build().unwrap())
        .build()
        .unwrap();
    let batch = ChangeBatch::builder()
        .changes(Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap())
        .build()
        .unwrap();
    admin.change_resource_record_sets().hosted_zone_id(&zone_id).change_batch(batch).send().await.unwrap();
    let config = Route53Config::new(zone_id)
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(2, Duration::from_millis(10)));
    (Route53DnsSwitcher::from_sdk_config(&good, config), DnsRecordId::new(record))
}

async fn setup() -> DnsFixture<Route53DnsSwitcher> {
    let (provider, record) = zone_with_app().await;
    DnsFixture {
        provider,
        record,
        current: DnsTarget::new(PRIMARY),
        alternative: DnsTarget::new(DR),
        strategy: SwitchStrategy::RecordSwap,
        sync_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::dns_switcher_conformance!(route53_on_moto, setup());

fn weighted(name: &str, id: &str, value: &str, weight: i64) -> Change {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(60)
        .set_identifier(id)
        .weight(weight)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap()
}

/// A fresh zone whose `app` record is weighted: PRIMARY 100, DR 0 (and `extra` sets if given).
async fn weighted_zone(
    extra: &[(&str, &str, i64)],
) -> (Route53DnsSwitcher, DnsRecordId, aws_sdk_route53::Client, String) {
    let m = moto();
    let sdk = sdk(&m.url, &m.access_key, &m.secret_key).await;
    let admin = aws_sdk_route53::Client::new(&sdk);
    let zone = format!("w{}-{}.qdr.test", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let created = admin.create_hosted_zone().name(&zone).caller_reference(&zone).send().await.unwrap();
    let zone_id = created.hosted_zone().unwrap().id().to_owned();
    let name = format!("app.{zone}.");
    let mut changes = vec![weighted(&name, "primary", PRIMARY, 100), weighted(&name, "dr", DR, 0)];
    changes.extend(extra.iter().map(|(id, v, w)| weighted(&name, id, v, *w)));
    let batch = ChangeBatch::builder().set_changes(Some(changes)).build().unwrap();
    admin.change_resource_record_sets().hosted_zone_id(&zone_id).change_batch(batch).send().await.unwrap();
    let s = Route53DnsSwitcher::from_sdk_config(
        &sdk,
        Route53Config::new(&zone_id)
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(2, Duration::from_millis(10))),
    );
    (s, DnsRecordId::new(format!("app.{zone}")), admin, zone_id)
}

async fn weights(admin: &aws_sdk_route53::Client, zone_id: &str) -> Vec<(String, i64)> {
    let out = admin.list_resource_record_sets().hosted_zone_id(zone_id).send().await.unwrap();
    let mut w: Vec<(String, i64)> =
        out.resource_record_sets().iter().filter_map(|s| Some((s.set_identifier()?.to_owned(), s.weight()?))).collect();
    w.sort();
    w
}

async fn weighted_setup() -> DnsFixture<Route53DnsSwitcher> {
    let (provider, record, _, _) = weighted_zone(&[]).await;
    DnsFixture {
        provider,
        record,
        current: DnsTarget::new(PRIMARY),
        alternative: DnsTarget::new(DR),
        strategy: SwitchStrategy::WeightedShift { percent: 100 },
        sync_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::dns_switcher_conformance!(route53_weighted_on_moto, weighted_setup());

#[tokio::test]
async fn weighted_shift_moves_traffic_in_increments() {
    let (s, record, admin, zone_id) = weighted_zone(&[]).await;
    let shift = |percent| {
        SwitchRequest::new(
            record.clone(),
            SwitchStrategy::WeightedShift { percent },
            DnsTarget::new(PRIMARY),
            DnsTarget::new(DR),
        )
    };
    s.switch(&shift(10)).await.unwrap();
    assert_eq!(weights(&admin, &zone_id).await, vec![("dr".into(), 10), ("primary".into(), 90)]);
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), PRIMARY, "most traffic still on the primary");
    s.switch(&shift(10)).await.unwrap();
    assert_eq!(
        weights(&admin, &zone_id).await,
        vec![("dr".into(), 10), ("primary".into(), 90)],
        "a repeat changes nothing"
    );
    s.switch(&shift(100)).await.unwrap();
    assert_eq!(weights(&admin, &zone_id).await, vec![("dr".into(), 100), ("primary".into(), 0)]);
    assert_eq!(s.current(&record).await.unwrap().target.as_str(), DR);
    let mut swap = shift(100);
    swap.strategy = SwitchStrategy::RecordSwap;
    let err = s.switch(&swap).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported, "a record swap on weighted records would not move traffic: {err}");
}

#[tokio::test]
async fn weighted_shift_refuses_when_someone_else_took_the_traffic() {
    let (s, record, admin, zone_id) = weighted_zone(&[("canary", "192.0.2.99", 0)]).await;
    // Someone else sends everything to their canary.
    let name = format!("{record}.");
    let batch = ChangeBatch::builder()
        .changes(weighted(&name, "primary", PRIMARY, 0))
        .changes(weighted(&name, "canary", "192.0.2.99", 100))
        .build()
        .unwrap();
    admin.change_resource_record_sets().hosted_zone_id(&zone_id).change_batch(batch).send().await.unwrap();
    let req = SwitchRequest::new(
        record.clone(),
        SwitchStrategy::WeightedShift { percent: 100 },
        DnsTarget::new(PRIMARY),
        DnsTarget::new(DR),
    );
    let err = s.switch(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("192.0.2.99"), "{err}");
    assert_eq!(
        weights(&admin, &zone_id).await,
        vec![("canary".into(), 100), ("dr".into(), 0), ("primary".into(), 0)],
        "nothing overwritten"
    );
}

fn swap(record: &DnsRecordId, from: &str, to: &str) -> SwitchRequest {
    SwitchRequest::new(record.clone(), SwitchStrategy::RecordSwap, DnsTarget::new(from), DnsTarget::new(to))
}

#[tokio::test]
async fn a_record_changed_behind_our_back_is_not_overwritten() {
    let (ours, record) = zone_with_app().await;
    ours.switch(&swap(&record, PRIMARY, "192.0.2.99")).await.unwrap(); // someone else's change
    let err = ours.switch(&swap(&record, PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("192.0.2.99") && err.message().contains(PRIMARY), "names both values: {err}");
    assert_eq!(ours.current(&record).await.unwrap().target.as_str(), "192.0.2.99");
}

#[tokio::test]
async fn requests_are_signed_and_a_wrong_secret_is_refused() {
    let m = moto_signed();
    let zone = |n: &str| format!("signed-{n}-{}.qdr.test", NEXT.fetch_add(1, Ordering::SeqCst));
    // A client on the SDK configuration the switcher is built from, with the right key: moto
    // verifies the signature and accepts. (moto's verification rejects requests with query
    // strings, such as ListResourceRecordSets: see moto.rs.)
    let z = zone("good");
    let signed = aws_sdk_route53::Client::new(&sdk(&m.url, &m.access_key, &m.secret_key).await);
    signed.create_hosted_zone().name(&z).caller_reference(&z).send().await.expect("a correctly signed request");
    // The same request signed with a wrong secret is refused.
    let bad_sdk = sdk(&m.url, &m.access_key, "not-the-secret-key-at-all").await;
    let bad = Route53DnsSwitcher::from_sdk_config(
        &bad_sdk,
        Route53Config::new("Z").with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(5))),
    );
    let z = zone("bad");
    let refused = aws_sdk_route53::Client::new(&bad_sdk)
        .create_hosted_zone()
        .name(&z)
        .caller_reference(&z)
        .send()
        .await
        .unwrap_err();
    let raw = format!("{refused:?}");
    assert!(raw.contains("SignatureDoesNotMatch"), "{raw}");
    // And through the switcher, the refusal is Unauthenticated, naming the code, without the secret.
    let err = bad.current(&DnsRecordId::new(format!("app.{z}"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(err.message().contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.to_string().contains("not-the-secret-key-at-all"), "the secret is never in errors");
}

#[tokio::test]
async fn an_unknown_hosted_zone_is_not_found() {
    let m = moto();
    let sdk = sdk(&m.url, &m.access_key, &m.secret_key).await;
    let s = Route53DnsSwitcher::from_sdk_config(&sdk, Route53Config::new("/hostedzone/ZNOSUCHZONE"));
    let err = s.current(&DnsRecordId::new("app.example.com")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

const THROTTLED: &str = r#"<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r1</RequestId></ErrorResponse>"#;

const NO_RECORDS: &str = r#"<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>"#;

async fn fake(server: &MockServer, attempts: u32) -> Route53DnsSwitcher {
    let sdk = sdk(&server.uri(), "AKIDEXAMPLE", "secret").await;
    Route53DnsSwitcher::from_sdk_config(
        &sdk,
        Route53Config::new("ZFAKE")
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(attempts, Duration::from_millis(5))),
    )
}

#[tokio::test]
async fn throttling_is_retried_then_reported_as_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("/hostedzone/ZFAKE/rrset"))
        .respond_with(ResponseTemplate::new(400).set_body_string(THROTTLED))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/hostedzone/ZFAKE/rrset"))
        .respond_with(ResponseTemplate::new(200).set_body_string(NO_RECORDS))
        .mount(&server)
        .await;
    let err = fake(&server, 3).await.current(&DnsRecordId::new("app.example.com")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "two throttles retried, then the real answer: {err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    let always = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(400).set_body_string(THROTTLED)).mount(&always).await;
    let err = fake(&always, 2).await.current(&DnsRecordId::new("app.example.com")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(always.received_requests().await.unwrap().len(), 2, "max attempts honoured");
    assert_eq!(err.retries_exhausted(), Some(2), "retried here: the engine does not retry it on top");
}

/// Every attempt spends a rate-limiter token (the SDK's own retries used to go out
/// without one): four attempts at one request per second take three seconds.
#[tokio::test]
async fn every_attempt_spends_a_rate_limiter_token() {
    let always = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(400).set_body_string(THROTTLED)).mount(&always).await;
    let sdk = sdk(&always.uri(), "AKIDEXAMPLE", "secret").await;
    let limiter = qovery_dr_providers::RateLimiter::new(1, Duration::from_secs(1)).with_burst(1);
    let config = Route53Config::new("ZFAKE")
        .with_retry(qovery_dr_core::resilience::RetryConfig::new(4, Duration::from_millis(1)))
        .with_rate_limiter(limiter);
    let started = std::time::Instant::now();
    let err = Route53DnsSwitcher::from_sdk_config(&sdk, config)
        .current(&DnsRecordId::new("app.example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(always.received_requests().await.unwrap().len(), 4, "no SDK retry inside an attempt");
    assert!(started.elapsed() >= Duration::from_millis(2900), "{:?}: a token per attempt", started.elapsed());
}

#[tokio::test]
async fn a_lost_answer_to_a_write_is_indeterminate() {
    // A listener that accepts and closes: the request is sent, no answer comes back.
    let record = DnsRecordId::new("app.example.com");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = record.clone();
    tokio::spawn(async move {
        let record = name;
        loop {
            if let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
                // A plausible list answer for reads, then drop the connection on writes.
                if buf.starts_with(b"GET") {
                    let body = format!(
                        r#"<?xml version="1.0"?><ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ResourceRecordSets><ResourceRecordSet><Name>{record}.</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>{PRIMARY}</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>"#
                    );
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, resp.as_bytes()).await;
                }
            }
        }
    });
    let sdk = sdk(&format!("http://{addr}"), "AKIDEXAMPLE", "secret").await;
    let s = Route53DnsSwitcher::from_sdk_config(
        &sdk,
        Route53Config::new("ZFAKE")
            .with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(5))),
    );
    let err = s.switch(&swap(&record, PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Indeterminate, "{err}");
    assert!(err.kind().needs_reconcile());
}

#[tokio::test]
async fn an_unknown_change_is_not_found() {
    // moto answers INSYNC for any change id; real Route53 answers NoSuchChange (404).
    let server = MockServer::start().await;
    let body = r#"<?xml version="1.0"?><ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>NoSuchChange</Code><Message>A change with the specified change ID does not exist.</Message></Error></ErrorResponse>"#;
    Mock::given(method("GET"))
        .and(path_regex("/change/C0NOSUCHCHANGE"))
        .respond_with(ResponseTemplate::new(404).set_body_string(body))
        .mount(&server)
        .await;
    let err = fake(&server, 1).await.change_status(&qovery_dr_core::ChangeId::new("C0NOSUCHCHANGE")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("NoSuchChange"), "{err}");
}

#[tokio::test]
async fn wait_in_sync_follows_pending_to_insync_with_backoff() {
    let fake = qovery_dr_testkit::route53_fake::Route53Fake::start().await;
    fake.add_change("C0PENDING", 2);
    let sdk = sdk(&fake.uri(), "AKIDEXAMPLE", "secret").await;
    let s = Route53DnsSwitcher::from_sdk_config(&sdk, Route53Config::new("ZFAKE"));
    let change = qovery_dr_core::ChangeId::new("C0PENDING");
    assert_eq!(s.change_status(&change).await.unwrap(), qovery_dr_core::provider::ChangeStatus::Pending);
    let start = std::time::Instant::now();
    s.wait_in_sync(&change, Duration::from_secs(30)).await.unwrap();
    // One more PENDING poll, then INSYNC after a 1 s backoff.
    assert_eq!(fake.change_polls(), 3);
    assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
    assert_eq!(
        s.change_status(&change).await.unwrap(),
        qovery_dr_core::provider::ChangeStatus::InSync,
        "stays in sync"
    );

    fake.add_change("C0STUCK", u32::MAX);
    let err = s.wait_in_sync(&qovery_dr_core::ChangeId::new("C0STUCK"), Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("PENDING"), "{err}");
}

#[tokio::test]
async fn target_health_follows_the_checkers_over_time() {
    use qovery_dr_core::provider::TargetHealth;
    let fake = qovery_dr_testkit::route53_fake::Route53Fake::start().await;
    let sdk = sdk(&fake.uri(), "AKIDEXAMPLE", "secret").await;
    let config = Route53Config::new("ZFAKE").with_health_check(DR, "hc-dr").with_health_check("192.0.2.250", "hc-gone");
    let s = Route53DnsSwitcher::from_sdk_config(
        &sdk,
        config.with_retry(qovery_dr_core::resilience::RetryConfig::new(1, Duration::from_millis(5))),
    );
    let dr = DnsTarget::new(DR);
    fake.set_health("hc-dr", 16, 16);
    assert_eq!(s.target_health(&dr).await.unwrap(), TargetHealth::Healthy);
    fake.set_health("hc-dr", 3, 16); // 18.75 %: still healthy for Route53
    assert_eq!(s.target_health(&dr).await.unwrap(), TargetHealth::Healthy);
    fake.set_health("hc-dr", 2, 16); // 12.5 %
    assert_eq!(s.target_health(&dr).await.unwrap(), TargetHealth::Unhealthy);
    fake.set_health("hc-dr", 16, 16);
    assert_eq!(s.target_health(&dr).await.unwrap(), TargetHealth::Healthy, "and back");
    assert_eq!(
        s.target_health(&DnsTarget::new(PRIMARY)).await.unwrap(),
        TargetHealth::Unknown,
        "no health check configured"
    );
    let err = s.target_health(&DnsTarget::new("192.0.2.250")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "a configured check that does not exist: {err}");
}
