//! CloudflareDnsSwitcher against the stateful Cloudflare fake of the testkit.

use std::time::{Duration, Instant};

use qovery_dr_core::provider::{DnsSwitcher, SwitchRequest, SwitchStrategy};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, SecretString};
use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
use qovery_dr_testkit::conformance::dns::DnsFixture;

const PRIMARY: &str = "203.0.113.10";
const DR: &str = "198.51.100.20";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "cf-test-token-0123456789";

fn switcher(fake: &CloudflareFake, token: &str) -> CloudflareDnsSwitcher {
    CloudflareDnsSwitcher::new(CloudflareConfig::new(ZONE, SecretString::new(token)).with_api_base(fake.api_base()))
        .unwrap()
}

fn app() -> DnsRecordId {
    DnsRecordId::new("app.example.com")
}

fn swap(from: &str, to: &str) -> SwitchRequest {
    SwitchRequest::new(app(), SwitchStrategy::RecordSwap, DnsTarget::new(from), DnsTarget::new(to))
}

async fn setup() -> DnsFixture<CloudflareDnsSwitcher> {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    fake.add_record("app.example.com", "A", PRIMARY, 60);
    fake.add_record("app.example.com", "TXT", "owner=qovery-dr", 60);
    let provider = switcher(&fake, TOKEN);
    // The fake lives as long as the test process.
    std::mem::forget(fake);
    DnsFixture {
        provider,
        record: app(),
        current: DnsTarget::new(PRIMARY),
        alternative: DnsTarget::new(DR),
        strategy: SwitchStrategy::RecordSwap,
        sync_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::dns_switcher_conformance!(cloudflare_on_fake, setup());

#[tokio::test]
async fn a_record_changed_behind_our_back_is_not_overwritten() {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    let id = fake.add_record("app.example.com", "A", PRIMARY, 60);
    fake.set_content(&id, "192.0.2.99");
    let err = switcher(&fake, TOKEN).switch(&swap(PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("192.0.2.99") && err.message().contains(PRIMARY), "{err}");
    assert_eq!(fake.content(&id).as_deref(), Some("192.0.2.99"), "not overwritten");
}

#[tokio::test]
async fn a_wrong_token_is_unauthenticated_with_the_cloudflare_code() {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    fake.add_record("app.example.com", "A", PRIMARY, 60);
    let err = switcher(&fake, "wrong-token-value").current(&app()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(err.message().contains("10000"), "surfaces the Cloudflare code: {err}");
    assert!(!format!("{err} {err:?}").contains("wrong-token-value"), "the token is never in errors");
    let shown = format!("{:?}", CloudflareConfig::new(ZONE, SecretString::new("wrong-token-value")));
    assert!(!shown.contains("wrong-token-value"), "Debug redacts the token: {shown}");
}

#[tokio::test]
async fn a_429_blocks_every_call_until_retry_after_without_sending() {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    fake.add_record("app.example.com", "A", PRIMARY, 60);
    let s = switcher(&fake, TOKEN);
    fake.rate_limit_next(2);
    let err = s.current(&app()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    let sent = fake.requests();
    let err = s.switch(&swap(PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.retry_after().unwrap() <= Duration::from_secs(2));
    assert_eq!(fake.requests(), sent, "nothing is sent while blocked");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.current(&app()).await.unwrap().target.as_str(), PRIMARY, "calls resume after retry-after");
}

#[tokio::test]
async fn requests_are_paced_under_the_limit() {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    fake.add_record("app.example.com", "A", PRIMARY, 60);
    let s = CloudflareDnsSwitcher::new(
        CloudflareConfig::new(ZONE, SecretString::new(TOKEN))
            .with_api_base(fake.api_base())
            .with_rate_limit(2, Duration::from_secs(1)),
    )
    .unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        s.current(&app()).await.unwrap();
    }
    // 2 requests of burst, then one every 500 ms.
    assert!(start.elapsed() >= Duration::from_millis(950), "{:?}", start.elapsed());
    assert_eq!(fake.requests(), 4);
}

#[tokio::test]
async fn unknown_records_zones_and_changes_are_not_found() {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    let s = switcher(&fake, TOKEN);
    assert_eq!(s.current(&app()).await.unwrap_err().kind(), ErrorKind::NotFound);
    let err = s.change_status(&ChangeId::new("cf:0123456789abcdef0123456789abcdef")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("81044"), "{err}");
    let other = CloudflareDnsSwitcher::new(
        CloudflareConfig::new("nosuchzone", SecretString::new(TOKEN)).with_api_base(fake.api_base()),
    )
    .unwrap();
    assert_eq!(other.current(&app()).await.unwrap_err().kind(), ErrorKind::NotFound);
}
