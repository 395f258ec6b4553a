//! Rfc2136DnsSwitcher and DnsAuthoritativeResolver against real Knot servers.

use std::time::{Duration, Instant};

use qovery_dr_core::provider::{
    ChangeStatus, DnsSwitcher, PropagationOptions, SwitchRequest, SwitchStrategy, verify_propagation,
};
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind, SecretString};
use qovery_dr_providers::rfc2136::{
    DnsAuthoritativeResolver, Rfc2136Config, Rfc2136DnsSwitcher, TsigAlgorithm, TsigKey,
};
use qovery_dr_testkit::conformance::dns::DnsFixture;

use super::knot::{KEY_NAME, KEY_SECRET, KnotServer, ZONE};

const PRIMARY: &str = "203.0.113.10";
const DR: &str = "198.51.100.20";

fn key() -> TsigKey {
    TsigKey::new(KEY_NAME, TsigAlgorithm::HmacSha256, SecretString::new(KEY_SECRET))
}

fn switcher(server: &KnotServer) -> Rfc2136DnsSwitcher {
    Rfc2136DnsSwitcher::new(Rfc2136Config::new(server.addr, ZONE).with_tsig(key()).with_timeout(Duration::from_secs(2)))
        .unwrap()
}

fn app() -> DnsRecordId {
    DnsRecordId::new(format!("app.{ZONE}"))
}

fn swap(from: &str, to: &str) -> SwitchRequest {
    SwitchRequest::new(app(), SwitchStrategy::RecordSwap, DnsTarget::new(from), DnsTarget::new(to))
}

async fn setup() -> DnsFixture<Rfc2136DnsSwitcher> {
    let server = KnotServer::start(&[&format!("app 60 A {PRIMARY}")]);
    let provider = switcher(&server);
    // The server lives as long as the test process (its watchdog stops it then).
    std::mem::forget(server);
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

qovery_dr_testkit::dns_switcher_conformance!(rfc2136_on_knot, setup());

#[tokio::test]
async fn a_record_changed_behind_our_back_is_not_overwritten() {
    let server = KnotServer::start(&[&format!("app 60 A {PRIMARY}")]);
    let ours = switcher(&server);
    // Someone else (another tool, a human with nsupdate) moves the record.
    let someone = switcher(&server);
    someone.switch(&swap(PRIMARY, "192.0.2.99")).await.unwrap();
    let err = ours.switch(&swap(PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("192.0.2.99") && err.message().contains(PRIMARY), "names both values: {err}");
    assert_eq!(ours.current(&app()).await.unwrap().target.as_str(), "192.0.2.99", "left as the other owner set it");
}

#[tokio::test]
async fn a_switch_can_change_the_record_type_and_keeps_the_ttl() {
    let server = KnotServer::start(&[&format!("app 120 A {PRIMARY}"), "www 60 CNAME app"]);
    let s = switcher(&server);
    s.switch(&swap(PRIMARY, "lb.dr.example.net")).await.unwrap();
    let now = s.current(&app()).await.unwrap();
    assert_eq!(now.target.as_str(), "lb.dr.example.net");
    assert_eq!(now.ttl, Duration::from_secs(120), "the old TTL is kept");
    s.switch(&swap("lb.dr.example.net", PRIMARY)).await.unwrap();
    assert_eq!(s.current(&app()).await.unwrap().target.as_str(), PRIMARY, "and back to an address");
    let www = s.current(&DnsRecordId::new(format!("www.{ZONE}"))).await.unwrap();
    assert_eq!(www.target.as_str(), format!("app.{ZONE}"), "CNAMEs read back without the final dot");
}

#[tokio::test]
async fn unsigned_and_wrongly_signed_updates_are_unauthenticated_and_change_nothing() {
    let server = KnotServer::start(&[&format!("app 60 A {PRIMARY}")]);
    let unsigned = Rfc2136DnsSwitcher::new(Rfc2136Config::new(server.addr, ZONE)).unwrap();
    let err = unsigned.switch(&swap(PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    let wrong = TsigKey::new(
        KEY_NAME,
        TsigAlgorithm::HmacSha256,
        SecretString::new("d3JvbmctdHNpZy1zZWNyZXQtdGhpcnR5LXR3byEhIQ=="),
    );
    let bad = Rfc2136DnsSwitcher::new(
        Rfc2136Config::new(server.addr, ZONE).with_tsig(wrong).with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let err = bad.switch(&swap(PRIMARY, DR)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(!err.to_string().contains("d3JvbmctdHNpZy1zZWNyZXQ"), "the secret is never in errors: {err}");
    assert_eq!(switcher(&server).current(&app()).await.unwrap().target.as_str(), PRIMARY);
}

#[tokio::test]
async fn records_outside_the_zone_and_a_dead_server_are_reported() {
    let server = KnotServer::start(&[&format!("app 60 A {PRIMARY}")]);
    let s = switcher(&server);
    let mut outside = swap(PRIMARY, DR);
    outside.record = DnsRecordId::new("app.other.test");
    let err = s.switch(&outside).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("not in zone"), "{err}");
    let addr = server.addr;
    drop(server);
    let dead = Rfc2136DnsSwitcher::new(
        Rfc2136Config::new(addr, ZONE).with_tsig(key()).with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let err = dead.current(&app()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Transient), "{err}");
    assert!(err.message().contains(&addr.to_string()), "names the server: {err}");
}

#[tokio::test]
async fn change_status_waits_for_every_listed_nameserver() {
    let (a, b) =
        (KnotServer::start(&[&format!("app 60 A {PRIMARY}")]), KnotServer::start(&[&format!("app 60 A {PRIMARY}")]));
    let config = Rfc2136Config::new(a.addr, ZONE).with_tsig(key()).nameservers(vec![a.addr, b.addr]);
    let s = Rfc2136DnsSwitcher::new(config).unwrap();
    let change = s.switch(&swap(PRIMARY, DR)).await.unwrap();
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::Pending, "b has not got the new serial");
    switcher(&b).switch(&swap(PRIMARY, DR)).await.unwrap();
    assert_eq!(s.change_status(&change).await.unwrap(), ChangeStatus::InSync);
}

#[tokio::test]
async fn propagation_names_the_late_server_and_waits_out_the_ttl() {
    let records = [&format!("app 2 A {PRIMARY}")[..]];
    let (a, b) = (KnotServer::start(&records), KnotServer::start(&records));
    switcher(&a).switch(&swap(PRIMARY, DR)).await.unwrap();
    // The second authoritative server gets the change 2.5 s late.
    let late = switcher(&b);
    let lag = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        late.switch(&swap(PRIMARY, DR)).await.unwrap();
    });
    let resolver = DnsAuthoritativeResolver::new(vec![a.addr, b.addr], Duration::from_secs(1));
    let options = PropagationOptions {
        poll_interval: Duration::from_millis(100),
        straggler_after: Duration::from_secs(1),
        deadline: Duration::from_secs(20),
        wait_out_ttl: true,
    };
    let started = Instant::now();
    let report =
        verify_propagation(&resolver, &app(), &DnsTarget::new(DR), Duration::from_secs(2), options).await.unwrap();
    let waited = started.elapsed();
    lag.await.unwrap();
    assert_eq!(report.stragglers(), vec![b.addr.to_string().as_str()], "{report:?}");
    assert!(report.servers[0].serving_new_after < Duration::from_secs(1), "{report:?}");
    assert!(report.all_servers_after >= Duration::from_millis(2500), "{report:?}");
    assert_eq!(report.ttl_waited, Duration::from_secs(2));
    assert_eq!(report.effective_cutover, report.all_servers_after + Duration::from_secs(2));
    assert!(waited >= report.effective_cutover, "returned after the TTL ran out: {waited:?} vs {report:?}");
}

#[tokio::test]
async fn propagation_times_out_naming_a_server_that_never_switches() {
    let records = [&format!("app 2 A {PRIMARY}")[..]];
    let (a, b) = (KnotServer::start(&records), KnotServer::start(&records));
    switcher(&a).switch(&swap(PRIMARY, DR)).await.unwrap();
    let resolver = DnsAuthoritativeResolver::new(vec![a.addr, b.addr], Duration::from_secs(1));
    let options = PropagationOptions {
        poll_interval: Duration::from_millis(100),
        deadline: Duration::from_millis(600),
        ..Default::default()
    };
    let err =
        verify_propagation(&resolver, &app(), &DnsTarget::new(DR), Duration::from_secs(2), options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains(&format!("{} (serves {PRIMARY})", b.addr)), "{err}");
}

#[tokio::test]
async fn discovery_finds_the_zones_name_servers_from_its_ns_records() {
    use qovery_dr_core::provider::AuthoritativeResolver;
    // NS: ns1.qdr.test (glue in the zone: 127.0.0.1) and localhost. (outside it: the system resolver).
    let server = KnotServer::start(&[&format!("app 60 A {PRIMARY}"), "@ NS localhost."]);
    let found = DnsAuthoritativeResolver::discover(server.addr, ZONE, Duration::from_secs(2)).await.unwrap();
    let servers = found.nameservers(&app()).await.unwrap();
    assert_eq!(servers, vec![server.addr.to_string()], "both names resolve to 127.0.0.1, asked on the server's port");
    assert_eq!(found.lookup(&servers[0], &app()).await.unwrap(), Some(DnsTarget::new(PRIMARY)));

    // A server asked about a zone it does not serve: it refuses, and the error names the server.
    let e =
        DnsAuthoritativeResolver::discover(server.addr, "nowhere.invalid", Duration::from_secs(1)).await.unwrap_err();
    assert!(e.to_string().contains(&server.addr.to_string()), "{e}");
}
