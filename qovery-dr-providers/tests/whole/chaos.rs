//! Chaos on real peers: the seeded fault schedules of the simulated world's chaos test,
//! applied through a `FaultLayer` to the providers `connect` builds (the Qovery client
//! over HTTP to the Qovery fake, PostgreSQL 15, Knot and the Cloudflare fake, the
//! registries). Every run either completes or stops in the safe state it reports, read
//! back from the peers, and a sampler polling both PostgreSQL servers never sees two
//! writable primaries. `QDR_LIVE_CHAOS_RUNS=N` runs seeds 0..N (default 6);
//! `QDR_LIVE_CHAOS_SEED=S` replays one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qovery_dr_core::engine::{AutoApprove, EngineOptions, Outcome, RunMode};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::resilience::RetryConfig;
use qovery_dr_providers::connect::{ConnectOptions, connect};
use qovery_dr_testkit::{ChaosOptions, ChaosSchedule, FaultInjector, FaultLayer, Recorder, RecordingLayer};

use super::stack::*;

/// Whether a server accepts writes now: out of recovery and not fenced read-only.
/// `None` when it does not answer (stopped, or restarting).
async fn writable(port: u16) -> Option<bool> {
    let conninfo = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2");
    let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.ok()?;
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')", &[])
        .await
        .ok()?;
    let (in_recovery, read_only): (bool, String) = (row.try_get(0).ok()?, row.try_get(1).ok()?);
    Some(!in_recovery && read_only == "off")
}

/// Polls both servers until stopped; returns the moments both accepted writes. The
/// standby is asked first: once it is promoted, the primary was fenced before, so a
/// "both writable" sample is never an artefact of the order of the two questions.
fn split_brain_sampler(primary: u16, standby: u16, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut seen = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            if writable(standby).await == Some(true) && writable(primary).await == Some(true) {
                seen.push(format!("both servers writable {:?} into the run", started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    })
}

/// One schedule on a fresh stack: its outcome, and how many calls failed (injected or not).
async fn one(seed: u64) -> (Outcome, usize) {
    let stack = Stack::start_with(true).await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let plan = DrPlan::load(stack.write_plan(&stack.plan_toml())).await.unwrap_or_else(|e| panic!("{e}"));
    let mut connected = connect(&plan, ConnectOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let _heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let injector = Arc::new(FaultInjector::default());
    let recorder = Arc::new(Recorder::default());
    let schedule = ChaosSchedule::random(seed, ChaosSchedule::RUN_OPERATIONS, ChaosOptions::real_time());
    schedule.apply(&injector);
    let faults = schedule.describe();
    connected.providers = connected
        .providers
        .with_layer((RecordingLayer::new(Arc::clone(&recorder)), FaultLayer::new(Arc::clone(&injector))));
    let ctx =
        |error: &str| format!("seed {seed} (replay with QDR_LIVE_CHAOS_SEED={seed}); faults: {faults:#?}; {error}");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = split_brain_sampler(stack.primary.port, stack.standby.port, Arc::clone(&stop));
    let options = EngineOptions {
        operator: "chaos@127.0.0.1".into(),
        poll_interval: Duration::from_millis(100),
        drain_ttl: false,
        // Real time: short backoffs, so that a schedule of throttling costs seconds.
        retry: RetryConfig::new(6, Duration::from_millis(200)),
        ..EngineOptions::default()
    };
    let engine = connected
        .engine_builder(plan.clone())
        .unwrap()
        .approver(AutoApprove::new("oncall-sre"))
        .options(options)
        .build();
    let run = tokio::time::timeout(Duration::from_secs(300), engine.run(RunMode::Switchover)).await;
    stop.store(true, Ordering::SeqCst);
    let split = sampler.await.unwrap();
    assert!(split.is_empty(), "{}", ctx(&format!("split brain: {split:?}")));
    let calls = recorder.calls();
    // Every run reads the live state through the layers before it changes anything.
    assert!(calls.iter().any(|c| !c.mutating), "{}", ctx("the recording layer saw the run's calls"));
    let failed_calls = calls.iter().filter(|c| c.error.is_some()).count();

    let standby_writable = writable(stack.standby.port).await;
    let primary_writable = writable(stack.primary.port).await;
    let dns_primary =
        stack.knot_answer(APP) == APP_PRIMARY && stack.cloudflare_content(API).as_deref() == Some(API_PRIMARY);
    match run {
        Err(_) => panic!("{}", ctx("the run neither completed nor stopped within 5 minutes")),
        Ok(Ok(report)) => {
            assert_eq!(report.outcome, Outcome::Succeeded);
            assert_eq!(standby_writable, Some(true), "{}", ctx("completed: the DR database is the primary"));
            assert_eq!(primary_writable, Some(false), "{}", ctx("completed: the old primary refuses writes"));
            assert_eq!(stack.knot_answer(APP), APP_DR, "{}", ctx("completed: Knot answers the DR target"));
            assert_eq!(stack.cloudflare_content(API).as_deref(), Some(API_DR), "{}", ctx("completed: Cloudflare"));
            (Outcome::Succeeded, failed_calls)
        }
        Ok(Err(failed)) => {
            let safe = failed.report.safe_state.clone().unwrap_or_default();
            let error = failed.error.to_string();
            let ctx = |what: &str| ctx(&format!("{what}; stopped with {error}; safe state {safe:?}"));
            assert!(failed.error.step().is_some(), "{}", ctx("the error names the step"));
            if safe.starts_with("nothing in production was changed") {
                assert_eq!(standby_writable, Some(false), "{}", ctx("untouched: the standby is not promoted"));
                assert!(dns_primary, "{}", ctx("untouched: DNS answers the primary targets"));
            } else if safe.contains("NOT promoted") {
                assert_eq!(standby_writable, Some(false), "{}", ctx("not promoted"));
                assert_eq!(primary_writable, Some(false), "{}", ctx("fenced: the old primary refuses writes"));
            } else if safe.contains("is the only primary") || safe.contains("DNS points at the DR site") {
                assert_eq!(standby_writable, Some(true), "{}", ctx("promoted"));
                assert_eq!(primary_writable, Some(false), "{}", ctx("promoted: the old primary refuses writes"));
            } else {
                panic!("{}", ctx("an undocumented safe state"));
            }
            (failed.report.outcome, failed_calls)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_fault_schedules_on_real_peers_complete_or_stop_in_the_safe_state_they_report() {
    capture_logs();
    let seeds: Vec<u64> = match std::env::var("QDR_LIVE_CHAOS_SEED") {
        Ok(s) => vec![s.parse().expect("QDR_LIVE_CHAOS_SEED is a number")],
        Err(_) => (0..std::env::var("QDR_LIVE_CHAOS_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(6u64)).collect(),
    };
    let (mut completed, mut stopped, mut failed_calls) = (0, 0, 0);
    for seed in &seeds {
        let (outcome, failed) = one(*seed).await;
        failed_calls += failed;
        match outcome {
            Outcome::Succeeded => completed += 1,
            _ => stopped += 1,
        }
    }
    println!(
        "live chaos: {} schedules, {completed} completed, {stopped} stopped in a safe state, {failed_calls} calls failed",
        seeds.len()
    );
    assert!(failed_calls > 0, "the fault layer made calls to the real providers fail");
}
