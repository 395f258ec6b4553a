//! The engine driving every real provider at once, through `connect`, on the stack's
//! peers; every assertion reads the peers (rows on both PostgreSQL servers, Knot's
//! answers, the Cloudflare fake, the registries' manifests, the Qovery fake's state),
//! never the SDK's own report alone.

use std::time::Duration;

use qovery_dr_core::DnsRecordId;
use qovery_dr_core::engine::{Outcome, RunMode};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_providers::connect::{ConnectOptions, Connected, connect};

use super::stack::*;

async fn connected(stack: &Stack) -> (DrPlan, Connected) {
    let plan = DrPlan::load(stack.write_plan(&stack.plan_toml())).await.unwrap_or_else(|e| panic!("{e}"));
    let c = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    (plan, c)
}

/// The digest a registry of the stack serves for `repo:tag`.
async fn digest(registry: &qovery_dr_testkit::local_stack::RegistryServer, repo: &str, tag: &str) -> Option<String> {
    registry.digest(repo, tag).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_load_through_every_real_provider_loses_nothing_and_moves_everything() {
    let stack = Stack::start_with(false).await;
    let (plan, connected) = connected(&stack).await;
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    for name in SERVICES {
        assert_eq!(digest(&stack.registry_b, &format!("mirror/shop/{name}"), "v1").await, None, "DR registry empty");
    }
    let load = Load::start(&stack.primary, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let engine = engine(&connected, &plan).build();

    // The DR registry is not yet a registry of the Qovery organization: pointing services at
    // it would fail after the promotion. The run is refused before anything changes.
    let refused = engine.run(RunMode::Switchover).await.expect_err("the DR registry is unknown to Qovery");
    let message = refused.error.to_string();
    assert!(message.contains("no container registry of organization") && message.contains("preflight"), "{message}");
    assert_eq!(stack.primary.q("SELECT pg_is_in_recovery()"), "f");
    assert_eq!(stack.primary.q("SHOW default_transaction_read_only"), "off", "the primary was not fenced");
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "t", "nothing was promoted");
    // As an SRE would: register the DR registry in Qovery, then resume the refused run.
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let report = engine.resume().await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop(load);
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());

    // PostgreSQL: every row committed on the old primary is on the new one, which takes writes.
    let on_old: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_new: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(on_old > 100, "the load committed transactions ({on_old})");
    assert_eq!(on_new, on_old, "0 committed rows lost");
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f", "the DR database is the primary");
    stack.standby.q("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");

    // DNS: Knot answers the DR target over DNS; the Cloudflare fake holds it.
    assert_eq!(stack.knot_answer(APP), APP_DR);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_DR));

    // Registries: the DR registry serves the primary's digests.
    for name in SERVICES {
        let primary = digest(&stack.registry_a, &format!("shop/{name}"), "v1").await.unwrap();
        let dr = digest(&stack.registry_b, &format!("mirror/shop/{name}"), "v1").await;
        assert_eq!(dr.as_deref(), Some(primary.as_str()), "{name} in the DR registry with the primary's digest");
    }

    // Qovery: the DR environment runs DR-registry images and the DR parameters.
    let (dr_env, registry_b) = (stack.environments.1.clone(), stack.registry_b.host());
    stack.qovery.with(|s| {
        s.settle();
        let env = &s.envs[&dr_env];
        assert!(env.deployed, "the DR environment is deployed");
        for (svc, running) in &env.running {
            let registry = running["registry"].as_str().unwrap_or_default();
            let url = s.registries.get(registry).cloned().unwrap_or_default();
            assert!(url.contains(&registry_b), "{svc} runs from {url}, not the DR registry");
            assert!(running["image"].as_str().unwrap_or_default().starts_with("mirror/"), "{running}");
            let vars = running["vars"].to_string();
            assert!(vars.contains(&format!("postgres://127.0.0.1:{}/postgres", stack.standby.port)), "{svc}: {vars}");
        }
        assert_eq!(env.running.len(), SERVICES.len());
    });
    assert_eq!(report.measured_rpo_ms, Some(0), "{}", report.to_text());
}

/// A smoke step of the embedder's own: the DR database must accept a connection.
#[derive(Debug)]
struct DatabaseAnswers {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<qovery_dr_core::engine::ActionContext>>>,
}

#[qovery_dr_core::async_trait]
impl qovery_dr_core::engine::CustomAction for DatabaseAnswers {
    async fn run(
        &self,
        ctx: &qovery_dr_core::engine::ActionContext,
    ) -> Result<qovery_dr_core::engine::CustomOutput, qovery_dr_core::ProviderError> {
        self.seen.lock().unwrap().push(ctx.clone());
        tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.map_err(|e| {
            qovery_dr_core::ProviderError::new(qovery_dr_core::ErrorKind::Transient, "smoke", "connect", e.to_string())
        })?;
        Ok(qovery_dr_core::engine::CustomOutput::new(format!("the DR database accepts connections on {}", self.port)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_light_switchover_starts_the_dr_cluster_runs_a_smoke_step_and_stops_the_old_primary() {
    use qovery_dr_core::engine::{CustomStep, HookPoint};
    let stack = Stack::start().await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let (dr_cluster, primary_env) = (stack.clusters.1.clone(), stack.environments.0.clone());
    stack.qovery.with(|s| s.clusters.insert(dr_cluster.clone(), "STOPPED".into()));
    let text = stack.plan_toml() + "\n[failover]\nstart_stopped_cluster = true\nstop_old_primary = true\n";
    let plan = DrPlan::load(stack.write_plan(&text)).await.unwrap_or_else(|e| panic!("{e}"));
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let seen = std::sync::Arc::default();
    let smoke = DatabaseAnswers { port: stack.standby.port, seen: std::sync::Arc::clone(&seen) };
    let report = engine(&connected, &plan)
        .custom_step(
            CustomStep::new("db-answers", HookPoint::BeforeSwitch, "the DR database accepts connections"),
            smoke,
        )
        .build()
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());

    // Qovery: the DR cluster was started through the API and runs; the old primary is stopped.
    let requests = stack.qovery.requests().await;
    let deploy = format!("/organization/{}/cluster/{dr_cluster}/deploy", stack.qovery.with(|s| s.org.clone()));
    assert!(requests.iter().any(|(m, p, _)| m == "POST" && *p == deploy), "the cluster was started: {requests:?}");
    stack.qovery.with(|s| {
        s.settle();
        assert_eq!(s.clusters[&dr_cluster], "DEPLOYED");
        assert!(!s.envs[&primary_env].deployed, "the old primary's environment is stopped");
        assert!(s.envs[&stack.environments.1].deployed, "the DR environment runs");
    });
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    let (start, smoke_at, dns) = (
        names.iter().position(|n| *n == "start-cluster").unwrap(),
        names.iter().position(|n| *n == "custom:db-answers").unwrap(),
        names.iter().position(|n| n.starts_with("dns:")).unwrap(),
    );
    assert!(start < smoke_at && smoke_at < dns, "{names:?}");
    let smoke_step = &report.steps[smoke_at];
    assert_eq!(
        smoke_step.note.as_deref(),
        Some(format!("the DR database accepts connections on {}", stack.standby.port).as_str())
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f", "the DR database is the primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_clones_and_deletes_in_the_qovery_fake_and_leaves_production_untouched() {
    let stack = Stack::start_with(true).await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let (plan, connected) = connected(&stack).await;
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let envs_before: Vec<String> = stack.qovery.with(|s| s.envs.keys().cloned().collect());
    let engine = engine(&connected, &plan).build();
    let report = engine.run(RunMode::Drill).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    // Clones were created (requests seen) and deleted (the environments are as before).
    let requests = stack.qovery.requests().await;
    assert!(requests.iter().any(|(m, p, _)| m == "POST" && p.ends_with("/clone")), "a clone was requested");
    assert!(requests.iter().any(|(m, _, _)| m == "DELETE"), "the clone was deleted");
    let envs_after: Vec<String> = stack.qovery.with(|s| s.envs.keys().cloned().collect());
    assert_eq!(envs_after, envs_before, "no clone left behind");
    // Production untouched: DNS, the database roles, no production deployment.
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_PRIMARY));
    assert_eq!(stack.primary.q("SELECT pg_is_in_recovery()"), "f");
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "t", "the standby still replays");
    stack.primary.q("CREATE TABLE IF NOT EXISTS drill_probe (x int); INSERT INTO drill_probe VALUES (1)");
    let prod = [stack.environments.0.clone(), stack.environments.1.clone()];
    assert!(
        !requests
            .iter()
            .any(|(m, p, _)| m == "POST" && p.contains("/deploy") && prod.iter().any(|e| p.contains(e.as_str()))),
        "no deployment of a production environment: {requests:?}"
    );
}

/// Milliseconds since the epoch of the newest pgbench_history row on `server` (0 if none).
fn newest_row_ms(server: &PgNode) -> i64 {
    server
        .q("SELECT coalesce((extract(epoch FROM max(mtime)) * 1000)::bigint, 0) FROM pgbench_history")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplanned_failover_with_the_primary_killed_never_reports_less_loss_than_the_truth() {
    unplanned_failover(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplanned_failover_after_the_link_was_down_two_seconds_reports_at_least_the_lost_commits() {
    let (reported, truth, rows) = unplanned_failover(Some(Duration::from_secs(2))).await;
    assert!(rows > 0 && truth >= 1500, "the cut link lost commits: {rows} rows over {truth} ms");
    assert!(reported as i64 >= truth);
}

/// An unplanned failover after the primary crashed under load (its WAL receiver cut
/// `link_down_for` before the crash, if given); returns (reported bound ms, true loss ms, rows lost).
async fn unplanned_failover(link_down_for: Option<Duration>) -> (u64, i64, u64) {
    use qovery_dr_core::engine::Interlock;
    let stack = Stack::start_with(true).await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let (plan, connected) = connected(&stack).await;
    let heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.primary, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(down) = link_down_for {
        // The replication link breaks (the standby can no longer reach the primary): writes
        // go on committing on the primary only.
        stack.standby.q("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'");
        stack.standby.q("SELECT pg_reload_conf()");
        stack.standby.q("SELECT pg_terminate_backend(pid) FROM pg_stat_wal_receiver");
        tokio::time::sleep(down).await;
    }
    // The primary's host dies under load (an immediate stop: its durable state is what it wrote).
    stack.primary.crash().unwrap();
    drop(load);
    drop(heartbeat);
    let engine = engine(&connected, &plan)
        .override_interlock(Interlock::PrimaryMayAcceptWrites, "the primary's host is powered off (test)")
        .build();
    let report = engine.run(RunMode::Failover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f", "the DR database is the primary");
    assert_eq!(stack.knot_answer(APP), APP_DR);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_DR));

    // The truth, from the old primary's durable state (started again, isolated, to read it).
    stack.primary.start().unwrap();
    let (old_rows, new_rows): (u64, u64) = (
        stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap(),
        stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap(),
    );
    let true_loss_ms = (newest_row_ms(&stack.primary) - newest_row_ms(&stack.standby)).max(0);
    let reported = report.measured_rpo_ms.expect("an unplanned failover reports its data loss bound");
    println!(
        "unplanned failover: reported bound {reported} ms, true loss {true_loss_ms} ms ({} rows)",
        old_rows.saturating_sub(new_rows)
    );
    assert!(old_rows > 100 && new_rows <= old_rows, "{old_rows} rows on the old primary, {new_rows} on the new");
    assert!(
        reported as i64 >= true_loss_ms,
        "reported a loss of at most {reported} ms, but {true_loss_ms} ms of commits ({} rows) never reached the DR site\n{}",
        old_rows - new_rows,
        report.to_text()
    );
    (reported, true_loss_ms, old_rows.saturating_sub(new_rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_step_waits_until_every_authoritative_server_answers_the_dr_target() {
    use crate::dns::knot::{KEY_NAME, KEY_SECRET, KnotServer, ZONE};
    use qovery_dr_core::provider::{DnsSwitcher, SwitchRequest, SwitchStrategy};
    use qovery_dr_core::{DnsRecordId, DnsTarget, SecretString};
    use qovery_dr_providers::rfc2136::{Rfc2136Config, Rfc2136DnsSwitcher, TsigAlgorithm, TsigKey};
    let stack = Stack::start_with(true).await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    // A second authoritative server that lags: it gets each change 3 s after the first
    // (the switch, then the failover epoch beside it), as a slow secondary would. It is
    // a primary of its own, so each change is replayed on it; the replays keep its
    // serial level with the first server's (the provider's change status compares serials).
    let lagging = KnotServer::start(&[&format!("app 60 A {APP_PRIMARY}")]);
    let [knot_a, knot_b] = stack.knot.servers();
    let text = stack.plan_toml().replace(
        &format!("nameservers = [\"{knot_a}\", \"{knot_b}\"]"),
        &format!("nameservers = [\"{knot_a}\", \"{knot_b}\", \"{}\"]", lagging.addr),
    );
    assert!(text.contains(&lagging.addr.to_string()), "the lagging server is listed");
    let plan = DrPlan::load(stack.write_plan(&text)).await.unwrap();
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let _heartbeat = connected.start_heartbeat().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let engine = engine(&connected, &plan).build();
    let mut events = engine.subscribe();
    let secondary = lagging.addr;
    let catch_up = tokio::spawn(async move {
        let key = TsigKey::new(KEY_NAME, TsigAlgorithm::HmacSha256, SecretString::new(KEY_SECRET));
        let s = Rfc2136DnsSwitcher::new(Rfc2136Config::new(secondary, format!("{ZONE}.")).with_tsig(key)).unwrap();
        let mut replayed = Vec::new();
        while let Ok(e) = events.recv().await {
            // The engine waits for a change to be in sync: the lagging server gets it 3 s later.
            let qovery_dr_core::engine::Event::Waiting { what, .. } = &e else { continue };
            if what.starts_with(&format!("{APP} change ")) {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let request = SwitchRequest::new(
                    DnsRecordId::new(APP),
                    SwitchStrategy::RecordSwap,
                    DnsTarget::new(APP_PRIMARY),
                    DnsTarget::new(APP_DR),
                );
                s.switch(&request).await.unwrap();
                replayed.push("switch");
            } else if let Some(rest) = what.strip_prefix("epoch ")
                && rest.ends_with(&format!(" beside {APP} to be in sync"))
            {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let n: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                let epoch = qovery_dr_core::FailoverEpoch::new(
                    n,
                    "lagging-replay",
                    "switchover",
                    qovery_dr_core::Timestamp::from_unix_millis(0),
                );
                s.publish_failover_epoch(&DnsRecordId::new(APP), &epoch).await.unwrap();
                replayed.push("epoch");
                return replayed;
            }
        }
        replayed
    });
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    assert_eq!(catch_up.await.unwrap(), ["switch", "epoch"], "the engine announced each wait");
    let step = report.steps.iter().find(|s| s.name == format!("dns:{APP}")).unwrap();
    assert!(step.duration_ms >= 5_500, "the step waited for the lagging server twice: {step:?}");
    // Both authoritative servers answer the DR target, asked directly.
    assert_eq!(stack.knot_answer(APP), APP_DR);
    let out = std::process::Command::new("kdig")
        .args([&format!("@{}", secondary.ip()), "-p", &secondary.port().to_string(), APP, "A", "+short"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), APP_DR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_after_re_protection_returns_to_the_original_primary() {
    let stack = Stack::start_options(LocalStackOptions::default()).await;
    let (plan, connected) = connected(&stack).await;
    let engine = engine(&connected, &plan).build();

    // Away: a switchover under load.
    let heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.primary, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let away = engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop((load, heartbeat));
    assert_eq!(away.outcome, Outcome::Succeeded, "{}", away.to_text());
    assert_eq!(stack.standby.q("SELECT pg_is_in_recovery()"), "f");

    // Before re-protection the failback is refused, and nothing changes.
    let refused = engine.run(RunMode::Failback).await.expect_err("the original primary does not stream yet");
    assert!(refused.error.to_string().contains("re-protection"), "{}", refused.error);
    assert_eq!(stack.standby.q("SHOW default_transaction_read_only"), "off", "the DR primary was not fenced");
    assert_eq!(stack.knot_answer(APP), APP_DR);

    // Re-protection (the operator's part): the original primary rewound into a standby of the DR database.
    stack.primary.reprotect_as_standby_of(&stack.standby, "back_slot").unwrap();
    let heartbeat = connected.start_heartbeat_back().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.standby, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Back: the refused failback is resumed (a stopped run is continued, never restarted).
    let back = engine.resume().await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop((load, heartbeat));
    assert_eq!(back.outcome, Outcome::Succeeded, "{}", back.to_text());
    assert_eq!(back.mode, Some(RunMode::Failback));

    // PostgreSQL: the original primary takes writes again, with every row committed on the DR one.
    assert_eq!(stack.primary.q("SELECT pg_is_in_recovery()"), "f", "the original primary is the primary");
    let on_dr: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_original: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(on_dr > 200, "both loads committed transactions ({on_dr})");
    assert_eq!(on_original, on_dr, "0 committed rows lost on the way back");
    assert_eq!(stack.standby.q("SHOW default_transaction_read_only"), "on", "the DR database is fenced");
    stack.primary.q("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
    assert_eq!(back.measured_rpo_ms, Some(0), "{}", back.to_text());

    // DNS and Qovery: back at the primary site.
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
    assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_PRIMARY));
    let (prod, registry_a) = (stack.environments.0.clone(), stack.registry_a.url());
    let primary_db = format!("postgres://127.0.0.1:{}/postgres", stack.primary.port);
    stack.qovery.with(|s| {
        s.settle();
        let env = &s.envs[&prod];
        assert!(env.deployed, "the primary environment is deployed");
        assert_eq!(env.running.len(), SERVICES.len());
        for (svc, running) in &env.running {
            let registry = running["registry"].as_str().unwrap_or_default();
            assert_eq!(s.registries.get(registry), Some(&registry_a), "{svc} runs from the primary registry");
            let vars = running["vars"].to_string();
            assert!(vars.contains(&primary_db), "{svc} points at the original primary: {vars}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_of_a_logical_pair_with_route53_loses_nothing_and_moves_everything() {
    let stack = Stack::start_options(LocalStackOptions::default().logical().route53()).await;
    let plan = DrPlan::load(stack.write_plan(&stack.plan_toml())).await.unwrap_or_else(|e| panic!("{e}"));
    // moto accepts any key; the SDK needs one (the local_stack example prints these as exports).
    let env: std::collections::BTreeMap<_, _> = stack.aws_env().into_iter().collect();
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(env["AWS_REGION"].clone()))
        .credentials_provider(aws_sdk_route53::config::Credentials::new(
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "local-stack",
        ))
        .load()
        .await;
    let connected = connect(&plan, ConnectOptions::new().with_aws_config(aws)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(connected.dns_router().switcher_for(&DnsRecordId::new(API)).unwrap().name(), "route53");
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.primary, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The heartbeat reaches the subscriber (a table created after the subscription needs a refresh).
    let beats: u64 = stack.standby.q("SELECT count(*) FROM qovery_dr.heartbeat").parse().unwrap();
    assert!(beats > 0, "the heartbeat is replicated to the subscriber");
    let engine = engine(&connected, &plan).build();
    let report =
        engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop(load);
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());
    let on_old: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_new: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(on_old > 100, "the load committed transactions ({on_old})");
    assert_eq!(on_new, on_old, "0 committed rows lost");
    assert_eq!(stack.standby.q("SELECT count(*) FROM pg_subscription"), "0", "the subscriber is detached");
    stack.standby.q("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
    assert_eq!(stack.knot_answer(APP), APP_DR);
    assert_eq!(stack.api_content().await.as_deref(), Some(API_DR), "moto's Route53 holds the DR target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failback_that_re_protects_the_original_primary_itself_returns_to_it() {
    failback_that_re_protects(LocalStackOptions::default(), "rewound").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logical_failback_re_protects_by_subscribing_the_original_primary_again() {
    failback_that_re_protects(LocalStackOptions::default().logical(), "copied again").await;
}

/// Away by switchover, load on the DR primary, back by a failback that re-protects the
/// original primary itself (`said`: what the step's note says it did).
async fn failback_that_re_protects(options: LocalStackOptions, said: &str) {
    let stack = Stack::start_options(options).await;
    // The plan the stack writes names the original primary's server (data directory,
    // pg_ctl options); the option asks the failback to re-protect it.
    let text = stack.plan_toml() + "\n[failover]\nreprotect_on_failback = true\n";
    let plan = DrPlan::load(stack.write_plan(&text)).await.unwrap_or_else(|e| panic!("{e}"));
    let connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let engine = engine(&connected, &plan).build();

    let heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let away = engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop(heartbeat);
    assert_eq!(away.outcome, Outcome::Succeeded, "{}", away.to_text());
    // Writes on the DR primary while the original one is fenced and left behind. (The
    // heartbeat the other way needs its table on both sides: a logical original primary,
    // fenced, gets it only once re-protected, so that pair goes without.)
    let heartbeat = match plan.replication().mode {
        qovery_dr_core::provider::ReplicationMode::Physical => {
            Some(connected.start_heartbeat_back().await.unwrap_or_else(|e| panic!("{e}")))
        }
        _ => None,
    };
    let load = Load::start(&stack.standby, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // No hand work: the failback rewinds the original primary, waits until it streams, then
    // switches back.
    let back = engine.run(RunMode::Failback).await.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    drop((load, heartbeat));
    assert_eq!(back.outcome, Outcome::Succeeded, "{}", back.to_text());
    let step = back.steps.iter().find(|s| s.name == "reprotect").expect("a reprotect step");
    let note = step.note.clone().unwrap_or_default();
    assert!(note.contains(said) && note.contains("discarded"), "the report says what was done: {note}");
    assert_eq!(stack.primary.q("SELECT pg_is_in_recovery()"), "f", "the original primary is the primary again");
    let on_dr: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_original: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(on_dr > 100, "the load on the DR primary committed transactions ({on_dr})");
    assert_eq!(on_original, on_dr, "every row written on the DR primary is on the original one");
    assert_eq!(back.measured_rpo_ms, Some(0), "{}", back.to_text());
    stack.primary.q("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
    // The failback incremented the failover epoch again, on the original primary.
    assert_eq!(stack.primary.q("SELECT max(epoch) || ' ' || count(*) FROM qovery_dr.failover_epoch"), "2 2");
}

/// The failover epoch on real peers: after a switchover, the promoted PostgreSQL holds the
/// row (and refuses an application's older epoch), the DR environment holds the variable
/// at the Qovery fake, Knot serves the TXT record beside the switched record; readiness
/// agrees, then reports a layer forced out of step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_writes_one_failover_epoch_to_the_database_the_variable_and_the_txt_record() {
    use qovery_dr_core::readiness::{CheckStatus, Readiness};
    let stack = Stack::start_with(true).await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let (plan, connected) = connected(&stack).await;
    let epoch_check = || async {
        let r = Readiness::new(plan.clone(), connected.providers.clone()).evaluate().await;
        r.checks.into_iter().find(|c| c.id == "failover-epoch").expect("a failover-epoch check")
    };
    let before = epoch_check().await;
    assert_eq!(before.status, CheckStatus::Pass, "{before:?}");
    assert!(before.observed.starts_with("no failover recorded (epoch 0)"), "{before:?}");

    let report = engine(&connected, &plan)
        .build()
        .run(RunMode::Switchover)
        .await
        .unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.to_text());

    // The promoted database.
    let row = stack.standby.q("SELECT epoch || ' ' || run_id || ' ' || mode FROM qovery_dr.failover_epoch");
    assert_eq!(row, format!("1 {} switchover", report.run_id));
    // An application still on epoch 0 is refused; one on epoch 1 goes on.
    let stale = stack.standby.sql("SELECT qovery_dr.check_failover_epoch(0)").expect_err("a stale epoch is refused");
    assert!(stale.to_string().contains("stale failover epoch 0: this database is at epoch 1"), "{stale}");
    assert_eq!(stack.standby.q("SELECT qovery_dr.check_failover_epoch(1)"), "1");
    // The DR environment's variable, at the Qovery fake.
    let dr_env = stack.environments.1.clone();
    let var = |env: &str| {
        stack.qovery.with(|s| {
            s.envs[env]
                .vars
                .values()
                .flatten()
                .find(|v| v.key == qovery_dr_core::EPOCH_VARIABLE)
                .map(|v| v.value.clone())
        })
    };
    assert_eq!(var(&dr_env).as_deref(), Some("1"));
    // The TXT record beside the switched record, as both Knot servers serve it.
    let txt_name = format!("_qdr-epoch.{APP}");
    for server in stack.knot.servers() {
        let txt = stack.knot.txt(server, &txt_name).unwrap();
        assert!(txt.contains(&format!("qdr-epoch=1 run={} mode=switchover", report.run_id)), "{server}: {txt:?}");
    }

    let after = epoch_check().await;
    assert_eq!(after.status, CheckStatus::Pass, "{after:?}");
    assert_eq!(after.observed, "epoch 1 in all 3 layer(s)", "{after:?}");
    assert!(after.detail.contains(&format!("TXT _qdr-epoch.{API} (not kept by its provider)")), "{after:?}");

    // Forced out of step: the variable put back to 0, as a restored environment would be.
    stack.qovery.with(|s| {
        let env = s.envs.get_mut(&dr_env).unwrap();
        for v in env.vars.values_mut().flatten().filter(|v| v.key == qovery_dr_core::EPOCH_VARIABLE) {
            v.value = "0".into();
        }
    });
    let forced = epoch_check().await;
    assert_eq!(forced.status, CheckStatus::Fail, "{forced:?}");
    assert!(forced.observed.contains("variable QDR_FAILOVER_EPOCH holds 0"), "{forced:?}");
}
