//! CloudflareDnsSwitcher on load balancers (pool strategy) against the stateful
//! Cloudflare fake of the testkit.

use std::time::Duration;

use qovery_dr_core::provider::{DnsSwitcher, SwitchRequest, SwitchStrategy, TargetHealth};
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind, SecretString};
use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
use qovery_dr_testkit::conformance::dns::DnsFixture;

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "cf-test-token-0123456789";

fn shop() -> DnsRecordId {
    DnsRecordId::new("shop.example.com")
}

fn to_pool(from: &str, to: &str) -> SwitchRequest {
    SwitchRequest::new(shop(), SwitchStrategy::LoadBalancerPool, DnsTarget::new(from), DnsTarget::new(to))
}

/// A load balancer for shop.example.com: primary pool first and enabled, DR pool
/// second, disabled, and the fallback. Returns the fake, the switcher, (primary, dr, lb).
async fn lb_world() -> (CloudflareFake, CloudflareDnsSwitcher, (String, String, String)) {
    let fake = CloudflareFake::start(ZONE, TOKEN).await;
    let primary = fake.add_pool(true, 3, 3);
    let dr = fake.add_pool(false, 3, 3);
    let lb = fake.add_load_balancer("shop.example.com", &[&primary, &dr], &dr);
    let config = CloudflareConfig::new(ZONE, SecretString::new(TOKEN))
        .with_api_base(fake.api_base())
        .with_load_balancers(fake.account_id());
    (fake, CloudflareDnsSwitcher::new(config).unwrap(), (primary, dr, lb))
}

async fn setup() -> DnsFixture<CloudflareDnsSwitcher> {
    let (fake, provider, (primary, dr, _)) = lb_world().await;
    // The fake lives as long as the test process.
    std::mem::forget(fake);
    DnsFixture {
        provider,
        record: shop(),
        current: DnsTarget::new(primary),
        alternative: DnsTarget::new(dr),
        strategy: SwitchStrategy::LoadBalancerPool,
        sync_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::dns_switcher_conformance!(cloudflare_lb_on_fake, setup());

#[tokio::test]
async fn a_switch_enables_the_new_pool_puts_it_first_and_moves_the_fallback() {
    let (fake, s, (primary, dr, lb)) = lb_world().await;
    // Keep the fallback on the primary to see it moved.
    let lb_both = fake.add_load_balancer("www.example.com", &[&primary, &dr], &primary);
    assert_eq!(s.current(&shop()).await.unwrap().target.as_str(), primary, "the first enabled pool");
    s.switch(&to_pool(&primary, &dr)).await.unwrap();
    assert_eq!(fake.pool_enabled(&dr), Some(true), "a disabled pool gets no traffic: enabled");
    assert_eq!(fake.pool_enabled(&primary), Some(true), "the old pool is left enabled for the other LBs");
    assert_eq!(fake.load_balancer(&lb), Some((vec![dr.clone(), primary.clone()], Some(dr.clone()))));

    let mut www = to_pool(&primary, &dr);
    www.record = DnsRecordId::new("www.example.com");
    s.switch(&www).await.unwrap();
    assert_eq!(
        fake.load_balancer(&lb_both),
        Some((vec![dr.clone(), primary.clone()], Some(dr.clone()))),
        "the fallback leaves the pool traffic is leaving"
    );

    // Failback restores the order; the fallback again leaves the pool traffic is leaving.
    s.switch(&to_pool(&dr, &primary)).await.unwrap();
    assert_eq!(fake.load_balancer(&lb), Some((vec![primary.clone(), dr.clone()], Some(primary.clone()))));
}

#[tokio::test]
async fn a_load_balancer_changed_behind_our_back_is_not_overwritten() {
    let (fake, s, (primary, dr, lb)) = lb_world().await;
    let other = fake.add_pool(true, 3, 3);
    fake.set_default_pools(&lb, &[&other, &primary, &dr]); // someone else's change
    let before = fake.requests();
    let err = s.switch(&to_pool(&primary, &dr)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.message().contains(&other) && err.message().contains(&primary), "names both values: {err}");
    assert_eq!(fake.load_balancer(&lb).unwrap().0, vec![other.clone(), primary.clone(), dr.clone()]);
    assert_eq!(fake.pool_enabled(&dr), Some(false), "nothing written");
    assert!(fake.requests() > before);

    let err = s.switch(&to_pool(&primary, "ffffffffffffffffffffffffffffffff")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "a pool the LB does not use: {err}");
}

#[tokio::test]
async fn disabling_a_pool_fails_over_and_pool_health_follows_the_pops() {
    let (fake, s, (primary, dr, _)) = lb_world().await;
    s.set_pool_enabled(&dr, true).await.unwrap();
    s.set_pool_enabled(&primary, false).await.unwrap();
    assert_eq!(s.current(&shop()).await.unwrap().target.as_str(), dr, "a disabled pool makes the LB fail over");
    assert_eq!(fake.pool_enabled(&primary), Some(false));

    assert_eq!(s.pool_health(&dr).await.unwrap(), TargetHealth::Healthy);
    fake.set_pool_health(&dr, 1, 3);
    assert_eq!(s.target_health(&DnsTarget::new(&dr)).await.unwrap(), TargetHealth::Unhealthy);
    fake.set_pool_health(&dr, 0, 0);
    assert_eq!(s.pool_health(&dr).await.unwrap(), TargetHealth::Unknown);
    assert_eq!(s.target_health(&DnsTarget::new("203.0.113.10")).await.unwrap(), TargetHealth::Unknown);

    let err = s.pool_health("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = s.pool_health("../zones").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "not a pool id: {err}");
}

#[tokio::test]
async fn pools_need_an_account_and_a_valid_token() {
    let (fake, _, (primary, dr, _)) = lb_world().await;
    let dns_only = CloudflareDnsSwitcher::new(
        CloudflareConfig::new(ZONE, SecretString::new(TOKEN)).with_api_base(fake.api_base()),
    )
    .unwrap();
    assert!(!dns_only.capabilities().load_balancer_pools);
    let err = dns_only.switch(&to_pool(&primary, &dr)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported, "{err}");
    let err = dns_only.pool_health(&dr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");

    let wrong = CloudflareConfig::new(ZONE, SecretString::new("not-the-token"))
        .with_api_base(fake.api_base())
        .with_load_balancers(fake.account_id());
    let err = CloudflareDnsSwitcher::new(wrong).unwrap().switch(&to_pool(&primary, &dr)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("not-the-token"));
    assert_eq!(fake.pool_enabled(&dr), Some(false));

    let (fake, s, _) = lb_world().await;
    let mut request = to_pool("a", "b");
    request.record = DnsRecordId::new("nolb.example.com");
    let err = s.switch(&request).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    fake.rate_limit_next(120);
    let err = s.current(&shop()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
}
