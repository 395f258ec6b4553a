//! PgFailoverLock and PgJournal against a real PostgreSQL 15 server.

use std::time::Duration;

use qovery_dr_core::engine::{FailoverLock, Interlock, Journal, JournalError, JournalEvent, Outcome, RunMode};
use qovery_dr_providers::postgres::PgFailoverLock;
use qovery_dr_testkit::{World, WorldConfig};

use super::cluster::PgServer;
use crate::lock_fixtures::{engine_with, entry, example_plan, holder, plan_name};

// Exclusivity, re-entry, tokens, ordering and no-overwrite: `lock_conformance.rs`.

#[tokio::test]
async fn a_holder_whose_session_ended_is_fenced_out_of_the_journal() {
    let pg = PgServer::primary();
    let plan = plan_name();
    let a = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    let ga = a.acquire(&plan, &holder("run-a", "alice@laptop")).await.unwrap();
    let ja = a.journal(&plan);
    ja.append(&ga, &entry(0, "run-a")).await.unwrap();
    // The lock session ends under the holder, as when the server drops a stalled client
    // (TCP keepalive, a network partition): its advisory lock goes with it.
    let ended = pg.sql(&format!("SELECT pg_terminate_backend(backend_pid) FROM qovery_dr_locks WHERE plan = '{plan}'"));
    assert!(ended.contains('t'), "{ended}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    let gb = b.acquire(&plan, &holder("run-a", "bob@ci")).await.expect("the dead session's lock is free");
    b.journal(&plan).append(&gb, &entry(1, "run-a")).await.unwrap();
    // The first holder's journal connection is still alive, but its token is refused.
    let err = ja.append(&ga, &entry(2, "run-a")).await.unwrap_err();
    match &err {
        JournalError::Refused(m) => assert!(m.contains("fencing token"), "{m}"),
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(ja.entries().await.unwrap().len(), 2, "nothing written after the session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_with_a_postgres_lock_and_journal_and_an_override_takes_over() {
    let pg = PgServer::primary();
    let plan = example_plan();
    // A run "on another machine" that died without its session ending: the operator overrides.
    let other = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    other.acquire(plan.name(), &holder("run-dead", "carol@old-laptop")).await.unwrap();

    let sim = World::from_plan(&plan);
    sim.world.set_config(WorldConfig::real_time_fast());
    sim.world.use_real_wall_clock();
    let lock = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    let journal = lock.journal(plan.name());
    let build = |overrides: bool| {
        let mut b = engine_with(&sim, lock.clone(), journal.clone(), "pg-lock-test");
        if overrides {
            b = b.override_interlock(Interlock::LockHeld, "carol's laptop is in the river");
        }
        b.build()
    };
    let refused = build(false).run(RunMode::Switchover).await.unwrap_err();
    assert!(refused.error.to_string().contains("carol@old-laptop"), "{}", refused.error);
    assert!(journal.entries().await.unwrap().is_empty(), "nothing journaled by the refused run");

    let report = build(true).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let entries = journal.entries().await.unwrap();
    assert!(
        entries.iter().any(
            |e| matches!(&e.event, JournalEvent::InterlockOverridden { rule, .. } if *rule == Interlock::LockHeld)
        )
    );
    assert!(matches!(entries.last().unwrap().event, JournalEvent::RunFinished { .. }));
    assert_eq!(lock.holder(plan.name()).await.unwrap(), None, "released at the end");
}

/// `qovery_dr_locks` is a shared table: another tool may have created it with other types.
/// Reading it gives a typed error naming the problem, never a panic (`Row::get` panicked).
#[tokio::test]
async fn a_lock_table_created_with_other_types_is_an_error_not_a_panic() {
    let pg = PgServer::primary();
    pg.sql(
        "CREATE TABLE qovery_dr_locks (plan text PRIMARY KEY, run_id text NOT NULL, owner text NOT NULL, \
         acquired_at text NOT NULL, token text NOT NULL, backend_pid integer NOT NULL)",
    );
    let lock = PgFailoverLock::connect(pg.endpoint()).await.expect("the tables exist: connect does not recreate them");
    let plan = plan_name();
    let e = tokio::spawn(async move { lock.acquire(&plan, &holder("run-a", "alice@laptop")).await })
        .await
        .expect("no panic")
        .unwrap_err();
    let message = e.to_string();
    assert!(message.contains("registering the holder") && message.contains("bigint"), "{message}");
}
