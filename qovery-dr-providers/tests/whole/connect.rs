//! `connect` from a plan file pointing at real peers: readiness passes through the
//! providers it builds, records in two DNS providers switch each through its own,
//! and every bad input is named without its secret.

use std::time::Duration;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{ChangeStatus, SwitchRequest, SwitchStrategy};
use qovery_dr_core::readiness::Readiness;
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind};
use qovery_dr_providers::connect::{ConnectError, ConnectOptions, connect, inspect};

use super::stack::*;

const SENTINELS: [&str; 3] = [QOVERY_TOKEN, CF_TOKEN, PG_PASSWORD];

fn assert_no_secret(text: &str) {
    for s in SENTINELS {
        assert!(!text.contains(s), "a secret value leaked into: {text}");
    }
}

async fn load(stack: &Stack, text: &str) -> DrPlan {
    DrPlan::load(stack.write_plan(text)).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The lint of the local stack's plan, with each built provider's own declarations equal
/// to what the lint reads from the plan alone.
fn static_stability_of_the_local_stack(
    stack: &Stack,
    plan: &DrPlan,
    connected: &qovery_dr_providers::connect::Connected,
) {
    use qovery_dr_core::stability::{Location, PlaneMap, StabilityReport};
    let built = PlaneMap::from_providers(plan, &connected.providers);
    assert_eq!(built, PlaneMap::from_plan(plan), "what the providers declare is what the plan's lint assumes");
    assert!(built.cluster.is_declared() && built.registry.is_declared());
    let report = StabilityReport::for_plan(plan);
    let env = &stack.environments.1;
    let knot = stack.knot.primary;
    let mut expected = vec![
        "primary-region-down degrades preflight postgres.status".to_owned(),
        "primary-region-down degrades fence-primary postgres.fence_primary".to_owned(),
        "primary-region-down blocks sync-images registry.copy_all".to_owned(),
    ];
    for step in [
        "preflight qovery.cluster_status".to_owned(),
        "preflight qovery.environment_status".to_owned(),
        format!("parameters:{env} qovery.set_variable"),
        format!("image:{env}/each service qovery.set_service_image"),
        format!("deploy:{env} qovery.deploy_environment"),
        format!("deploy:{env} qovery.deployment_status"),
        format!("verify:{env} qovery.environment_status"),
    ] {
        expected.push(format!("qovery-api-down blocks {step}"));
    }
    // Record swaps without health checks: both records need their provider's update path.
    for step in [
        format!("health:{API} cloudflare.target_health"),
        format!("dns:{APP} rfc2136.switch"),
        format!("dns:{APP} rfc2136.change_status"),
        format!("dns:{API} cloudflare.switch"),
        format!("dns:{API} cloudflare.change_status"),
    ] {
        expected.push(format!("dns-control-plane-down blocks {step}"));
    }
    assert_eq!(report.lines(), expected, "{}", report.to_text());
    // The etcd holding the lock and journal, and the Knot primary: the lint cannot place them.
    let unplaced: Vec<&Location> = report.unplaced.iter().map(|(p, _)| &p.location).collect();
    assert_eq!(unplaced.len(), 2, "{}", report.to_text());
    assert!(matches!(unplaced[0], Location::Endpoint { address } if address.starts_with("http://127.0.0.1:")));
    assert_eq!(unplaced[1], &Location::Endpoint { address: knot.to_string() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_built_from_a_plan_file_pass_readiness_against_the_real_peers() {
    capture_logs();
    let stack = Stack::start().await;
    // The lock and journal in a real etcd, as several orchestrator machines would share them.
    let etcd = qovery_dr_testkit::etcd_server::EtcdServer::single().unwrap_or_else(|e| panic!("{e}"));
    let etcd_url = format!("etcd://{}/qdr-live", etcd.endpoints()[0].trim_start_matches("http://"));
    let text = stack
        .plan_toml()
        .replace(&format!("url = \"file://{}/state\"", stack.dir.display()), &format!("url = \"{etcd_url}\""));
    let plan = load(&stack, &text).await;
    assert!(matches!(plan.state(), Some(qovery_dr_core::plan::StateBackend::Etcd { .. })), "{:?}", plan.state());
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_no_secret(&format!("{connected:?}"));
    static_stability_of_the_local_stack(&stack, &plan, &connected);
    let heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (lock, _journal) = connected.state.clone().expect("[state] gives a lock and a journal");
    let report = Readiness::new(plan.clone(), connected.providers.clone()).lock(lock).evaluate().await;
    drop(heartbeat);
    let table = report.to_table();
    assert!(report.ready, "not ready against the real stack:\n{table}");
    assert_no_secret(&table);
    // What the peers saw: the Qovery fake got the token from the file, and only reads.
    let requests = stack.qovery.requests().await;
    assert!(!requests.is_empty(), "readiness asked the Qovery fake");
    assert!(requests.iter().all(|(_, _, auth)| auth.as_deref() == Some(&format!("Token {QOVERY_TOKEN}")[..])));
    assert!(requests.iter().all(|(m, _, _)| m == "GET"), "readiness only reads: {requests:?}");
    // The heartbeat flowed: rows on the primary, replayed on the standby.
    let on_primary: u64 = stack.primary.q("SELECT count(*) FROM qovery_dr.heartbeat").parse().unwrap();
    let on_standby: u64 = stack.standby.q("SELECT count(*) FROM qovery_dr.heartbeat").parse().unwrap();
    assert!(on_primary >= 2 && on_standby >= 1, "heartbeats: {on_primary} on the primary, {on_standby} replayed");
    // DNS is untouched by readiness.
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
    assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_two_dns_providers_switch_each_through_its_own() {
    capture_logs();
    let stack = Stack::start().await;
    let plan = load(&stack, &stack.plan_toml()).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let dns = &connected.providers.dns;
    let router = connected.dns_router();
    assert_eq!(router.switcher_for(&DnsRecordId::new(APP)).unwrap().name(), "rfc2136");
    assert_eq!(router.switcher_for(&DnsRecordId::new(API)).unwrap().name(), "cloudflare");
    let requests_before = stack.cloudflare().requests();
    let mut changes = Vec::new();
    for (record, from, to) in [(APP, APP_PRIMARY, APP_DR), (API, API_PRIMARY, API_DR)] {
        let request = SwitchRequest::new(
            DnsRecordId::new(record),
            SwitchStrategy::RecordSwap,
            DnsTarget::new(from),
            DnsTarget::new(to),
        );
        changes.push(dns.switch(&request).await.unwrap_or_else(|e| panic!("{record}: {e}")));
    }
    for change in &changes {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while dns.change_status(change).await.unwrap() != ChangeStatus::InSync {
            assert!(tokio::time::Instant::now() < deadline, "{change} never in sync");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // At the peers: Knot answers the DR target over DNS, the Cloudflare fake holds it.
    assert_eq!(stack.knot_answer_settled(APP).await, APP_DR);
    assert!(stack.cloudflare().requests() > requests_before, "the Cloudflare record went through Cloudflare");
    assert_eq!(dns.current(&DnsRecordId::new(API)).await.unwrap().target, DnsTarget::new(API_DR));
    // A record no provider serves is named.
    let e = dns.current(&DnsRecordId::new("nope.example.org")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains(APP) && e.to_string().contains(API), "{e}");
    assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_names_the_field_or_reference_and_never_the_secret() {
    let stack = Stack::start().await;
    let good = stack.plan_toml();
    let d = stack.dir.display().to_string();

    // An unreadable secret file.
    let plan = load(&stack, &good.replace(&format!("file:{d}/cf-token"), &format!("file:{d}/no-such-file"))).await;
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    assert!(matches!(e, ConnectError::Secret { .. }), "{e}");
    assert_eq!(e.path(), "dns[1].cloudflare.token");
    assert!(e.to_string().contains("no-such-file"), "{e}");

    // A missing environment variable.
    let plan = load(&stack, &good.replace(&format!("file:{d}/qovery-token"), "env:QDR_LIVE_SURELY_UNSET_TOKEN")).await;
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    assert_eq!(e.path(), "qovery.token");
    assert!(e.to_string().contains("env:QDR_LIVE_SURELY_UNSET_TOKEN") && e.to_string().contains("not set"), "{e}");

    // A wrong token: the peer refuses it, Unauthenticated, and the token is not echoed.
    std::fs::write(stack.dir.join("wrong-qovery"), "qovery-token-WRONG-value").unwrap();
    std::fs::write(stack.dir.join("wrong-cf"), "cloudflare-token-WRONG-value").unwrap();
    let plan = load(
        &stack,
        &good
            .replace(&format!("file:{d}/qovery-token"), &format!("file:{d}/wrong-qovery"))
            .replace(&format!("file:{d}/cf-token"), &format!("file:{d}/wrong-cf")),
    )
    .await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap();
    let e = connected.providers.cluster.cluster_status(&plan.dr().cluster).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.to_string().contains("WRONG"), "{e}");
    let e = connected.providers.dns.current(&DnsRecordId::new(API)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.to_string().contains("WRONG"), "{e}");

    // credentials that are not user:password.
    std::fs::write(stack.dir.join("pair"), "just-a-token-sentinel").unwrap();
    let plan = load(
        &stack,
        &good.replace("[sites.dr.registry]\n", &format!("[sites.dr.registry]\ncredentials = \"file:{d}/pair\"\n")),
    )
    .await;
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    assert_eq!(e.path(), "sites.dr.registry.credentials");
    assert!(e.to_string().contains("user:password") && !e.to_string().contains("just-a-token"), "{e}");

    // A record of the first plan version, without a provider block.
    let old = good.replace(
        &format!(
            "\n[dns.cloudflare]\nzone_id = \"{CF_ZONE}\"\ntoken = \"file:{d}/cf-token\"\napi_base = \"{}\"\n",
            stack.cloudflare().api_base()
        ),
        "\n",
    );
    let plan = load(&stack, &old).await;
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    assert_eq!(e.path(), "dns[1]");
    assert!(e.to_string().contains("[dns.cloudflare]"), "{e}");

    // No [qovery] section: the plan loads, connecting says what to add.
    let start = good.find("[qovery]").unwrap();
    let end = good[start..].find("[state]").unwrap() + start;
    let plan = load(&stack, &format!("{}{}", &good[..start], &good[end..])).await;
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    assert_eq!(e.path(), "qovery");
    assert!(e.to_string().contains("organization") && e.to_string().contains("token"), "{e}");

    // inspect: what would be built, and whether each secret resolves, contacting nothing.
    let plan = load(&stack, &good).await;
    let report = inspect(&plan).await;
    assert!(report.ready(), "{}", report.to_text());
    assert_no_secret(&report.to_text());
    assert_eq!(report.secrets.len(), 5, "{}", report.to_text());
    let plan = load(&stack, &good.replace(&format!("file:{d}/tsig"), "env:QDR_LIVE_NO_TSIG")).await;
    let report = inspect(&plan).await;
    assert!(!report.ready());
    assert!(
        report.to_text().contains("dns[0].rfc2136.tsig_secret") && report.to_text().contains("env:QDR_LIVE_NO_TSIG")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_whose_auth_kind_does_not_match_the_server_is_refused_by_name() {
    use crate::reg::server::RegistryServer;
    // htpasswd for user dr, password qdr-registry-pw-42.
    const BCRYPT: &str = "$2b$12$YR0paBaq/FZn5JsjbYyPm.lw8K6WpaHHnnaFZ/mN/kCBTALpy0/Dy";
    let stack = Stack::start().await;
    let locked = RegistryServer::start_with_basic_auth("dr", BCRYPT);
    std::fs::write(stack.dir.join("registry-pw"), "qdr-registry-pw-42").unwrap();
    let d = stack.dir.display().to_string();
    let with_dr_registry = |auth: &str| {
        stack.plan_toml().replace(
            &format!("host = \"{rb}\"\nprefix = \"mirror\"\nurl = \"http://{rb}\"\n", rb = stack.registry_b.host()),
            &format!("host = \"{h}\"\nprefix = \"mirror\"\nurl = \"http://{h}\"\n{auth}", h = locked.host()),
        )
    };
    let image: qovery_dr_core::ImageRef = format!("{}/shop/api:v1", stack.registry_a.host()).parse().unwrap();

    // Anonymous against a registry that wants basic: Unauthenticated, naming the registry.
    let plan = load(&stack, &with_dr_registry("")).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap();
    let e = connected.providers.registry.parity(&image).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");

    // The right kind and password: the same call works.
    let auth = format!("auth = {{ kind = \"basic\", username = \"dr\", password = \"file:{d}/registry-pw\" }}\n");
    let plan = load(&stack, &with_dr_registry(&auth)).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap();
    let parity = connected.providers.registry.parity(&image).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!parity.is_present(), "the locked registry does not hold the image yet: {parity:?}");
    let e = format!("{connected:?}");
    assert!(!e.contains("qdr-registry-pw-42"), "{e}");

    // The same credentials from a Docker config.json (`auths`, base64 user:password).
    let config = stack.dir.join("docker-config.json");
    let encoded = data_encoding::BASE64.encode(b"dr:qdr-registry-pw-42");
    std::fs::write(&config, format!(r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#, locked.host())).unwrap();
    let auth = format!("auth = {{ kind = \"docker-config\", path = \"{}\" }}\n", config.display());
    let plan = load(&stack, &with_dr_registry(&auth)).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    connected.providers.registry.parity(&image).await.unwrap_or_else(|e| panic!("docker config credentials: {e}"));
    // A config without an entry for the host: anonymous, refused by the registry.
    std::fs::write(&config, r#"{"auths":{"other.example.com":{"auth":"eDp5"}}}"#).unwrap();
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap();
    let e = connected.providers.registry.parity(&image).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
}

/// The AWS configuration for moto (signature verification off: these credentials are accepted).
async fn moto_aws() -> aws_config::SdkConfig {
    let m = crate::dns::moto::moto();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_route53::config::Credentials::new(
            &m.access_key,
            &m.secret_key,
            None,
            None,
            "qdr-test",
        ))
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_tokens_from_get_authorization_token_open_the_registry_and_are_refreshed() {
    use crate::reg::server::RegistryServer;
    use qovery_dr_providers::registry::EcrCredentials;
    // moto's GetAuthorizationToken answers AWS:123456789012-auth-token (already expired).
    const BCRYPT: &str = "$2b$12$FpsJ51AbWs2EU8HWzov8c..uXKayBE/7s6rZVj0NE/vZqt7NaKDny";
    let moto_url = crate::dns::moto::moto().url.clone();
    let stack = Stack::start().await;
    let ecr = RegistryServer::start_with_basic_auth("AWS", BCRYPT);
    let text = stack.plan_toml().replace(
        &format!("host = \"{rb}\"\nprefix = \"mirror\"\nurl = \"http://{rb}\"\n", rb = stack.registry_b.host()),
        &format!(
            "host = \"{h}\"\nprefix = \"mirror\"\nurl = \"http://{h}\"\nauth = {{ kind = \"ecr\", region = \"eu-central-1\", endpoint_url = \"{moto_url}\" }}\n",
            h = ecr.host()
        ),
    );
    let plan = load(&stack, &text).await;
    let image: qovery_dr_core::ImageRef = format!("{}/shop/api:v1", stack.registry_a.host()).parse().unwrap();

    // Through connect: the token opens the registry (anonymous would get 401).
    let options = ConnectOptions::new().with_aws_config(moto_aws().await);
    let connected = connect(&plan, options).await.unwrap_or_else(|e| panic!("{e}"));
    let report = connected.providers.registry.copy(&image).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(report.blobs_copied > 0 || report.bytes_copied > 0, "{report:?}");
    let parity = connected.providers.registry.parity(&image).await.unwrap();
    assert!(parity.is_present(), "{parity:?}");
    assert!(!format!("{connected:?}").contains("auth-token"), "the token never prints");

    // Refresh: a token is reused until its refresh time, then fetched again.
    let creds = EcrCredentials::from_sdk_config(&moto_aws().await, Some(&moto_url))
        .with_refresh(Duration::from_secs(60), Duration::from_millis(300));
    let (user, password) = creds.credentials().await.unwrap();
    assert_eq!((user.as_str(), password.expose()), ("AWS", "123456789012-auth-token"));
    creds.credentials().await.unwrap();
    assert_eq!(creds.fetches(), 1, "reused before its refresh time");
    tokio::time::sleep(Duration::from_millis(400)).await;
    creds.credentials().await.unwrap();
    assert_eq!(creds.fetches(), 2, "fetched again once due");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_mixing_route53_cloudflare_and_rfc2136_switches_each_at_its_peer() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let stack = Stack::start().await;
    let sdk = moto_aws().await;
    let moto_url = crate::dns::moto::moto().url.clone();
    let admin = aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&sdk).endpoint_url(&moto_url).build(),
    );
    let zone = format!(
        "z{}-{}.qdr.test",
        std::process::id(),
        std::time::SystemTime::now().elapsed().map(|d| d.subsec_nanos()).unwrap_or(7)
    );
    let created = admin.create_hosted_zone().name(&zone).caller_reference(&zone).send().await.unwrap();
    let zone_id = created.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let www = format!("www.{zone}");
    let record = ResourceRecordSet::builder()
        .name(&www)
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("203.0.113.12").build().unwrap())
        .build()
        .unwrap();
    admin
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(Change::builder().action(ChangeAction::Create).resource_record_set(record).build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let text = format!(
        "{}\n[[dns]]\nname = \"{www}\"\nttl = 60\nstrategy = \"record-swap\"\nprimary_target = \"203.0.113.12\"\ndr_target = \"198.51.100.22\"\nhealth_check = false\n\n[dns.route53]\nhosted_zone_id = \"{zone_id}\"\nendpoint_url = \"{moto_url}\"\n",
        stack.plan_toml()
    );
    let plan = load(&stack, &text).await;
    let connected = connect(&plan, ConnectOptions::new().with_aws_config(sdk)).await.unwrap_or_else(|e| panic!("{e}"));
    let router = connected.dns_router();
    assert_eq!(router.switcher_for(&DnsRecordId::new(&www)).unwrap().name(), "route53");
    for (record, from, to) in
        [(APP, APP_PRIMARY, APP_DR), (API, API_PRIMARY, API_DR), (www.as_str(), "203.0.113.12", "198.51.100.22")]
    {
        let request = SwitchRequest::new(
            DnsRecordId::new(record),
            SwitchStrategy::RecordSwap,
            DnsTarget::new(from),
            DnsTarget::new(to),
        );
        connected.providers.dns.switch(&request).await.unwrap_or_else(|e| panic!("{record}: {e}"));
    }
    // Each peer holds its record's DR target.
    assert_eq!(stack.knot_answer_settled(APP).await, APP_DR);
    let sets = admin.list_resource_record_sets().hosted_zone_id(&zone_id).send().await.unwrap();
    let values: Vec<String> = sets
        .resource_record_sets()
        .iter()
        .filter(|s| s.name().trim_end_matches('.') == www && s.r#type() == &RrType::A)
        .flat_map(|s| s.resource_records().iter().map(|r| r.value().to_owned()))
        .collect();
    assert_eq!(values, vec!["198.51.100.22".to_owned()], "moto holds the DR target");
    assert_eq!(connected.providers.dns.current(&DnsRecordId::new(API)).await.unwrap().target, DnsTarget::new(API_DR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_urls_give_one_lock_for_all_orchestrators_in_etcd_and_postgres() {
    use qovery_dr_core::Timestamp;
    use qovery_dr_core::engine::{LockError, LockHolder};
    let stack = Stack::start().await;
    let etcd = qovery_dr_testkit::etcd_server::EtcdServer::single().unwrap_or_else(|e| panic!("{e}"));
    let file_state = format!("url = \"file://{}/state\"", stack.dir.display());
    let urls = [
        format!("etcd://{}/qdr-live", etcd.endpoints()[0].trim_start_matches("http://")),
        format!("postgres://postgres@127.0.0.1:{}/postgres", stack.primary.port),
        format!("file://{}/state", stack.dir.display()),
    ];
    for url in urls {
        let plan = load(&stack, &stack.plan_toml().replace(&file_state, &format!("url = \"{url}\""))).await;
        let first = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let second = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let (lock_a, _) = first.state.clone().unwrap();
        let (lock_b, _) = second.state.clone().unwrap();
        let holder = |run: &str| LockHolder {
            run_id: run.into(),
            owner: "sre@host-a[pid 1]".into(),
            acquired_at: Timestamp::now(),
        };
        lock_a.acquire(plan.name(), &holder("run-a")).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        // At the peer, independently of the SDK: the store names the holder.
        if url.starts_with("postgres") {
            assert_eq!(stack.primary.q("SELECT run_id FROM qovery_dr_locks WHERE plan = 'shop-local'"), "run-a");
        } else if url.starts_with("etcd") {
            let out = std::process::Command::new("etcdctl")
                .args(["--endpoints", &etcd.endpoints()[0], "get", "qdr-live/locks/shop-local", "--print-value-only"])
                .output()
                .expect("etcdctl (scripts/test installs etcd-client)");
            assert!(String::from_utf8_lossy(&out.stdout).contains("run-a"), "{}", String::from_utf8_lossy(&out.stdout));
        }
        match lock_b.acquire(plan.name(), &holder("run-b")).await {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.run_id, "run-a", "{url}"),
            other => panic!("{url}: a second orchestrator must be refused, got {other:?}"),
        }
        lock_a.release(plan.name(), "run-a").await.unwrap();
        lock_b.acquire(plan.name(), &holder("run-b")).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        lock_b.release(plan.name(), "run-b").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_listed_nameservers_the_dns_step_asks_the_servers_in_the_zones_ns_records() {
    use qovery_dr_core::provider::AuthoritativeResolver as _;
    let stack = Stack::start().await;
    let [knot_a, knot_b] = stack.knot.servers();
    let listed = format!("nameservers = [\"{knot_a}\", \"{knot_b}\"]\n");
    let text = stack.plan_toml();
    assert!(text.contains(&listed));
    let plan = load(&stack, &text.replace(&listed, "")).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let resolver = connected.providers.resolver.clone().expect("connect wires a resolver");
    // The zone's NS names (ns1, ns2.qdr.test) have glue 127.0.0.1; asked on the update server's port.
    let servers = resolver.nameservers(&DnsRecordId::new(APP)).await.unwrap();
    assert_eq!(servers, vec![knot_a.to_string()]);
    let served = resolver.lookup(&servers[0], &DnsRecordId::new(APP)).await.unwrap();
    assert_eq!(served, Some(DnsTarget::new(APP_PRIMARY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflare_records_are_checked_on_the_nameservers_the_plan_lists_and_say_so_when_none_are() {
    use qovery_dr_core::provider::AuthoritativeResolver as _;
    let stack = Stack::start().await;
    let text = stack.plan_toml();
    // None listed: the resolver says it cannot ask, and how to fix that.
    let plan = load(&stack, &text).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let resolver = connected.providers.resolver.clone().unwrap();
    let e = resolver.nameservers(&DnsRecordId::new(API)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported);
    assert!(e.message().contains("cloudflare.nameservers"), "{e}");
    // Listed: asked directly.
    let marker = "[dns.cloudflare]\n";
    assert!(text.contains(marker));
    let listed = text.replace(marker, "[dns.cloudflare]\nnameservers = [\"127.0.0.1:5399\", \"[::1]:5399\"]\n");
    let plan = load(&stack, &listed).await;
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let servers = connected.providers.resolver.clone().unwrap().nameservers(&DnsRecordId::new(API)).await.unwrap();
    assert_eq!(servers, vec!["127.0.0.1:5399".to_owned(), "[::1]:5399".to_owned()]);
    // A listed entry that is not ip:port is a plan error at its path.
    let bad = text.replace(marker, "[dns.cloudflare]\nnameservers = [\"ns1.cloudflare.com\"]\n");
    let e = DrPlan::load(stack.write_plan(&bad)).await.unwrap_err().to_string();
    assert!(e.contains("dns[1].cloudflare.nameservers[0]"), "{e}");
}
