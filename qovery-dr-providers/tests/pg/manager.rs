//! Behaviour on real servers: lag, paused replay, diverged timelines,
//! logical promotion with a dead publisher.

use std::time::Duration;

use qovery_dr_core::provider::{LinkState, Node, PromoteOutcome, ReplicationManager};
use qovery_dr_core::{DatabaseId, ErrorKind};
use qovery_dr_providers::postgres::PostgresReplicationManager;

use super::cluster::{Load, PgServer, pgbench_init};
use super::setup::{self, DB};

fn db() -> DatabaseId {
    DatabaseId::new(DB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_replay_is_reported_and_its_lag_grows() {
    let pair = setup::physical().await;
    pgbench_init(&pair.primary);
    let _load = Load::start(&pair.primary, 30);
    let hb = pair.manager.write_heartbeat(&db()).await.unwrap();
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    pair.manager.wait_for_catch_up(&db(), target, Duration::from_secs(20)).await.unwrap();
    assert_eq!(pair.manager.last_heartbeat(&db(), Node::Standby).await.unwrap().unwrap().sequence, hb.sequence);
    pair.standby.sql("SELECT pg_wal_replay_pause()");
    let mut last = 0;
    for _ in 0..3 {
        pair.manager.write_heartbeat(&db()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let s = pair.manager.status(&db()).await.unwrap();
        assert!(matches!(&s.link, LinkState::Down(why) if why.contains("paused")), "{:?}", s.link);
        let bytes = s.lag_bytes.unwrap();
        assert!(bytes > last, "the byte lag grows under load: {bytes} after {last}");
        last = bytes;
    }
    let s = pair.manager.status(&db()).await.unwrap();
    assert!(s.lag.unwrap() >= Duration::from_secs(1), "the heartbeat lag grows: {:?}", s.lag);
    pair.standby.sql("SELECT pg_wal_replay_resume()");
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    pair.manager.wait_for_catch_up(&db(), target, Duration::from_secs(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_primary_shows_no_time_lag() {
    let pair = setup::physical().await;
    pair.manager.write_heartbeat(&db()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = pair.manager.status(&db()).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming);
    assert_eq!(s.lag, Some(Duration::ZERO), "idle, caught up: zero, not the time since the last write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_without_receiver_is_down_and_a_diverged_one_is_broken() {
    let primary = PgServer::primary();
    let b = PgServer::standby_of(&primary, "b");
    let c = PgServer::standby_of(&primary, "c");
    // B loses its upstream.
    b.sql("ALTER SYSTEM SET primary_conninfo = ''");
    b.sql("SELECT pg_reload_conf()");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = PostgresReplicationManager::physical(db(), primary.endpoint(), b.endpoint());
    let s = m.status(&db()).await.unwrap();
    assert!(matches!(&s.link, LinkState::Down(why) if why.contains("no WAL receiver")), "{:?}", s.link);
    // C is promoted: B (following A's timeline 1) can never follow C (timeline 2).
    b.sql(&format!("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=postgres'", primary.port));
    b.sql("SELECT pg_reload_conf()");
    c.sql("SELECT pg_promote(true, 60)");
    c.sql("CHECKPOINT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = PostgresReplicationManager::physical(db(), c.endpoint(), b.endpoint());
    let s = m.status(&db()).await.unwrap();
    assert!(
        matches!(&s.link, LinkState::Broken(why) if why.contains("timeline 1") && why.contains("on 2")),
        "{:?}",
        s.link
    );
    let target = s.primary_lsn.unwrap();
    let e = m.wait_for_catch_up(&db(), target, Duration::from_secs(2)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logical_promotion_with_a_dead_publisher_syncs_sequences_and_reports_the_orphan_slot() {
    let pair = setup::logical("CREATE TABLE orders (id serial PRIMARY KEY, note text)").await;
    pair.primary.sql("INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 100) g");
    for _ in 0..100 {
        if pair.standby.sql("SELECT count(*) FROM orders") == "100" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pair.standby.sql("SELECT count(*) FROM orders"), "100");
    assert_eq!(
        pair.standby.sql("SELECT last_value FROM orders_id_seq"),
        "1",
        "PostgreSQL 15 does not replicate sequences"
    );
    pair.primary.crash();
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::AlreadyPrimary);
    let report = pair.manager.post_promotion_fixups(&db()).await.unwrap();
    assert!(report.sequences_synced >= 1, "{report:?}");
    assert!(
        report.warnings.iter().any(|w| w.contains("slot") && w.contains("sub")),
        "the orphan slot is reported: {report:?}"
    );
    let id = pair.standby.sql("INSERT INTO orders (note) VALUES ('after failover') RETURNING id");
    assert!(id.parse::<i64>().unwrap() > 100, "a serial insert on the new primary does not collide: got id {id}");
    assert!(pair.manager.status(&db()).await.unwrap().standby_promoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_refuses_writes_and_unfencing_restores_them() {
    let pair = setup::physical().await;
    pair.primary.sql("CREATE TABLE t (x int)");
    pair.manager.fence_primary(&db()).await.unwrap();
    let e = pair.primary.sql_err("INSERT INTO t VALUES (1)");
    assert!(e.contains("read-only transaction"), "{e}");
    assert_eq!(pair.manager.write_heartbeat(&db()).await.unwrap_err().kind(), ErrorKind::Conflict);
    pair.manager.unfence_primary().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    pair.primary.sql("INSERT INTO t VALUES (1)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_primary_is_not_fenced_and_says_so() {
    let pair = setup::physical().await;
    pair.primary.crash();
    let e = pair.manager.fence_primary(&db()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("NOT fenced"), "{e}");
    assert_eq!(
        pair.manager.primary_writability(&db()).await.unwrap(),
        qovery_dr_core::provider::Writability::Unreachable
    );
}
