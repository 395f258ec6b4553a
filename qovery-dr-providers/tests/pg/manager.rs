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
    pair.manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
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
    let senders = pair.manager.senders().await.unwrap();
    assert_eq!(senders.len(), 1, "{senders:?}");
    let sender = &senders[0];
    assert_eq!(sender.state, "streaming");
    assert!(sender.replay_lsn < sender.flush_lsn, "received but not replayed: {sender:?}");
    pair.standby.sql("SELECT pg_wal_replay_resume()");
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    pair.manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
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
    let e = m
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(2)))
        .await
        .unwrap_err();
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
    // The publisher's sequences, as read while it answered (the engine journals this state
    // after its fence step).
    pair.primary.sql("SELECT setval('orders_id_seq', 5000)"); // values used, no row replicated
    let before = pair.manager.promotion_state(&db()).await.unwrap();
    assert_eq!(before.sequence_floors.get("public.orders_id_seq"), Some(&5000), "{before:?}");
    pair.primary.crash();
    let state = pair.manager.promotion_state(&db()).await.unwrap();
    assert!(state.warnings.iter().any(|w| w.contains("could not be read")), "{state:?}");
    assert_eq!(state.replication_slots.len(), 1, "the subscription's slot is named: {state:?}");
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::AlreadyPrimary);
    // The orchestrator died between the promotion and the fix-ups: a new process, with a new
    // manager that captured nothing, resumes from the journaled state.
    let mut journaled = before;
    journaled.merge(state);
    let resumed = setup::logical_manager_like(&pair);
    let report = resumed.post_promotion_fixups(&db(), &journaled).await.unwrap();
    assert!(report.sequences_synced >= 1, "{report:?}");
    assert!(
        report.warnings.iter().any(|w| w.contains("slot") && w.contains("unreachable publisher")),
        "the orphan slot is reported from the journaled state: {report:?}"
    );
    assert_eq!(
        pair.standby.sql("SELECT last_value FROM orders_id_seq"),
        "5000",
        "moved past the journaled floor, not only past the data"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logical_setup_is_idempotent_and_checked() {
    let publisher = PgServer::primary();
    let subscriber = PgServer::primary();
    for s in [&publisher, &subscriber] {
        s.sql("CREATE TABLE items (id int PRIMARY KEY, name text)");
    }
    publisher.sql("INSERT INTO items SELECT g, 'i' || g FROM generate_series(1, 50) g");
    let m = PostgresReplicationManager::logical(db(), publisher.endpoint(), subscriber.endpoint(), "sub");
    m.setup_heartbeat(None).await.unwrap();
    m.setup_logical("pub", true).await.unwrap();
    m.setup_logical("pub", true).await.unwrap();
    for _ in 0..100 {
        if subscriber.sql("SELECT count(*) FROM items") == "50" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subscriber.sql("SELECT count(*) FROM items"), "50", "copied by the initial sync");
    let s = m.status(&db()).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming);
    let slot = s.slots.iter().find(|x| x.name == "sub").expect("the subscription's slot is listed");
    assert_eq!(slot.kind, "logical");
    assert!(slot.active && slot.confirmed_flush_lsn.is_some(), "{slot:?}");
    assert_eq!(m.check_logical_setup().await.unwrap(), Vec::<String>::new());
    // A slot nobody consumes is a finding (it retains WAL).
    publisher.sql("SELECT pg_create_logical_replication_slot('forgotten', 'pgoutput')");
    let problems = m.check_logical_setup().await.unwrap();
    assert!(problems.iter().any(|p| p.contains("forgotten") && p.contains("inactive")), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitted_physical_reprotection_steps_work() {
    let pair = setup::physical().await;
    pair.primary.sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    pair.manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
    pair.manager.fence_primary(&db()).await.unwrap();
    pair.manager.promote_standby(&db()).await.unwrap();
    pair.standby.sql("INSERT INTO t VALUES (2)");
    let data = pair.primary.data.display().to_string();
    let steps = pair.manager.physical_reprotect_steps(&data);
    assert!(steps.iter().any(|s| s.starts_with("pg_rewind --target-pgdata=")), "{steps:?}");
    assert!(steps.iter().all(|s| !s.contains("password")), "no secret in the emitted steps");
    // Carry them out as an operator would.
    pair.primary.stop_fast();
    super::cluster::run(
        "pg_rewind",
        &[
            "--target-pgdata",
            &data,
            "--source-server",
            &format!("host=127.0.0.1 port={} user=postgres dbname=postgres", pair.standby.port),
        ],
    );
    std::fs::write(pair.primary.data.join("standby.signal"), "").unwrap();
    pair.standby.sql("SELECT pg_create_physical_replication_slot('back')");
    let auto = pair.primary.data.join("postgresql.auto.conf");
    let mut conf = std::fs::read_to_string(&auto).unwrap();
    conf.push_str(&format!("\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres'\nprimary_slot_name = 'back'\ndefault_transaction_read_only = off\n", pair.standby.port));
    std::fs::write(&auto, conf).unwrap();
    pair.primary.start();
    // The roles are now reversed: a manager the other way round sees a streaming pair.
    let back = PostgresReplicationManager::physical(db(), pair.standby.endpoint(), pair.primary.endpoint());
    let mut streaming = false;
    for _ in 0..100 {
        if back.status(&db()).await.unwrap().link == LinkState::Streaming {
            streaming = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(streaming, "{:?}", back.status(&db()).await.unwrap().link);
    let target = back.status(&db()).await.unwrap().primary_lsn.unwrap();
    back.wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(pair.primary.sql("SELECT count(*) FROM t"), "2", "the old primary now replays the new one's writes");
}

#[cfg(feature = "postgres-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_verified_server_certificate() {
    use qovery_dr_core::provider::Writability;
    let (server, ca) = PgServer::primary_tls_only();
    let standby = PgServer::primary();
    // The server accepts TLS only: a call that works went over verified TLS.
    let m = PostgresReplicationManager::physical(db(), server.endpoint().with_tls(&ca), standby.endpoint());
    assert_eq!(m.primary_writability(&db()).await.unwrap(), Writability::Writable);
    // Plain text is refused by the server…
    let plain = PostgresReplicationManager::physical(db(), server.endpoint(), standby.endpoint());
    assert_eq!(plain.fence_primary(&db()).await.unwrap_err().kind(), ErrorKind::Unauthenticated);
    // …and a certificate from another CA is refused by the client.
    let other = ca.with_file_name("other-ca.crt");
    let wrong = PostgresReplicationManager::physical(db(), server.endpoint().with_tls(&other), standby.endpoint());
    let e = wrong.fence_primary(&db()).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

/// Runs SQL in a new session of `role` (psql, stopping at the first error).
fn as_role(server: &PgServer, role: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new(super::cluster::bin("psql"))
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", role, "-d", "postgres"])
        .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A session of `role` kept open.
async fn session(server: &PgServer, role: &str) -> tokio_postgres::Client {
    let conninfo = format!("host=127.0.0.1 port={} user={role} dbname=postgres", server.port);
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The statements a client uses to get around a read-only default: each must fail after the fence.
const ESCAPES: [&str; 3] = [
    "BEGIN READ WRITE; INSERT INTO t VALUES (1); COMMIT",
    "SET default_transaction_read_only = off; INSERT INTO t VALUES (2)",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; INSERT INTO t VALUES (3)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_fence_no_statement_of_an_application_role_commits_and_unfencing_restores_its_login() {
    let pair = setup::physical().await;
    pair.primary
        .sql("CREATE ROLE app LOGIN; CREATE ROLE reporting NOLOGIN; CREATE TABLE t (x int); GRANT ALL ON t TO app");
    let open = session(&pair.primary, "app").await;
    open.batch_execute("INSERT INTO t VALUES (0)").await.unwrap();
    assert_eq!(pair.manager.fence_primary(&db()).await.unwrap(), qovery_dr_core::provider::FenceOutcome::Fenced);
    for sql in ESCAPES {
        let r = as_role(&pair.primary, "app", sql);
        assert!(r.is_err(), "{sql:?} committed on the fenced primary");
        assert!(r.unwrap_err().contains("not permitted to log in"), "{sql:?}");
    }
    // The session open across the fence was terminated: it cannot commit either.
    assert!(open.batch_execute(ESCAPES[0]).await.is_err(), "a session opened before the fence still commits");
    assert_eq!(pair.primary.sql("SELECT count(*) FROM t"), "1", "nothing committed after the fence");
    // Fencing again (a resumed run) is harmless.
    pair.manager.fence_primary(&db()).await.unwrap();
    // Unfencing gives back exactly the logins it took.
    pair.manager.unfence_primary().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    as_role(&pair.primary, "app", "INSERT INTO t VALUES (5)").unwrap();
    assert_eq!(pair.primary.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'reporting'"), "f");
    assert_eq!(pair.primary.sql("SELECT count(*) FROM qovery_dr.fenced_logins"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_promoted_standby_gives_the_fenced_logins_back() {
    let pair = setup::physical().await;
    pair.primary.sql("CREATE ROLE app LOGIN; CREATE TABLE t (x int); GRANT ALL ON t TO app");
    pair.manager.fence_primary(&db()).await.unwrap();
    let lsn = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    pair.manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(lsn, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(pair.standby.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'"), "f", "replicated");
    pair.manager.promote_standby(&db()).await.unwrap();
    as_role(&pair.standby, "app", "INSERT INTO t VALUES (1)").unwrap();
    assert!(as_role(&pair.primary, "app", "SELECT 1").is_err(), "the old primary stays fenced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_fence_is_weaker_by_name_a_client_that_asks_can_still_commit() {
    let pair = setup::physical().await;
    let manager = PostgresReplicationManager::physical(db(), pair.primary.endpoint(), pair.standby.endpoint())
        .with_fence(qovery_dr_core::provider::FenceKind::ReadOnly);
    pair.primary.sql("CREATE ROLE app LOGIN; CREATE TABLE t (x int); GRANT ALL ON t TO app");
    manager.fence_primary(&db()).await.unwrap();
    assert!(as_role(&pair.primary, "app", "INSERT INTO t VALUES (1)").is_err(), "a plain write is refused");
    as_role(&pair.primary, "app", ESCAPES[0]).expect("BEGIN READ WRITE gets around a read-only fence");
}

/// Promoting a standby that still has WAL to replay: `pg_promote(true)` held a snapshot
/// that conflicts with that replay, which then stalled until `max_standby_streaming_delay`
/// (30 s) cancelled it. Now the promotion is asked, then polled with short queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoting_a_lagging_standby_does_not_stall_on_its_own_snapshot() {
    let pair = setup::physical().await;
    pgbench_init(&pair.primary);
    // Replay 4 s behind, no feedback (the default): cleanup records replayed later conflict
    // with any snapshot the standby holds.
    pair.standby.sql("ALTER SYSTEM SET recovery_min_apply_delay = '4s'");
    pair.standby.sql("ALTER SYSTEM SET hot_standby_feedback = off");
    pair.standby.sql("SELECT pg_reload_conf()");
    {
        let _load = Load::start(&pair.primary, 6);
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let behind = pair.standby.sql("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()");
    assert_eq!(behind, "t", "the standby has WAL left to replay");
    let started = std::time::Instant::now();
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    let took = started.elapsed();
    println!("promotion of a lagging standby took {took:?}");
    assert!(took < Duration::from_secs(10), "the promotion stalled for {took:?}");
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_table_is_pruned_to_its_last_thousand_rows() {
    let pair = setup::physical().await;
    pair.manager.setup_heartbeat(None).await.unwrap();
    let mut last = 0;
    for _ in 0..1250 {
        last = pair.manager.write_heartbeat(&db()).await.unwrap().sequence;
    }
    let rows: u64 = pair.primary.sql("SELECT count(*) FROM qovery_dr.heartbeat").parse().unwrap();
    assert!((1000..=1100).contains(&rows), "{rows} rows kept after {last} heartbeats");
    assert_eq!(pair.primary.sql("SELECT max(seq) FROM qovery_dr.heartbeat"), last.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_catch_up_reuses_its_sessions() {
    let pair = setup::physical().await;
    pair.manager.setup_heartbeat(None).await.unwrap();
    // Replay 2 s behind: the wait polls for about 2 s.
    pair.standby.sql("ALTER SYSTEM SET recovery_min_apply_delay = '2s'");
    pair.standby.sql("SELECT pg_reload_conf()");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pair.primary.sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    let target = pair.manager.status(&db()).await.unwrap().primary_lsn.unwrap();
    let sessions = || -> u64 { pair.standby.sql("SELECT sum(sessions) FROM pg_stat_database").parse().unwrap() };
    let before = sessions();
    let started = std::time::Instant::now();
    pair.manager
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
    let (took, opened) = (started.elapsed(), sessions() - before - 1);
    println!("caught up in {took:?} with {opened} sessions opened on the standby");
    assert!(took >= Duration::from_millis(1000), "the wait lasted ({took:?})");
    // Every 50 ms a new session used to be opened (two per status, with the heartbeat).
    assert!(opened <= 2 + 2 * (took.as_millis() as u64 / 500), "{opened} sessions in {took:?}");
}

/// Waits until `m`'s standby replays its primary's current position.
async fn caught_up(m: &PostgresReplicationManager) {
    let target = m.status(&db()).await.unwrap().primary_lsn.unwrap();
    m.wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20))).await.unwrap();
}

/// The original primary's server as the failback manager controls it (as `postgres` when
/// the tests run as root, with the socket directory and port it was started with).
fn local_server(s: &PgServer) -> qovery_dr_providers::postgres::LocalPgServer {
    let bin = qovery_dr_testkit::pg_server::bin("pg_ctl").unwrap();
    let mut server = qovery_dr_providers::postgres::LocalPgServer::new(&s.data)
        .with_bin_dir(bin.parent().unwrap())
        .with_start_options(format!("-p {} -k {}", s.port, s.root.display()))
        .with_log_file(s.root.join("server.log"));
    if qovery_dr_testkit::pg_server::is_root() {
        server = server.with_os_user("postgres");
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_pair_is_re_protected_with_pg_rewind_and_the_write_after_the_fork_is_discarded() {
    let pair = setup::physical().await;
    pair.primary.sql("CREATE TABLE orders (id int primary key, note text); INSERT INTO orders VALUES (1, 'before')");
    caught_up(&pair.manager).await;
    // A failover: the standby is promoted while the old primary still takes one write
    // (the one a failover loses), then the old primary crashes.
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    pair.primary.sql("INSERT INTO orders VALUES (2, 'after the fork, on the old primary')");
    pair.standby.sql("INSERT INTO orders VALUES (3, 'after the fork, on the new primary')");
    pair.primary.crash();

    // The failback manager: the promoted DR database as primary, the original as standby.
    let back = PostgresReplicationManager::physical(db(), pair.standby.endpoint(), pair.primary.endpoint());
    assert!(!back.capabilities().reprotect, "no server control, no re-protection");
    let e = back.reprotect(&db()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
    let back = back.with_standby_server(local_server(&pair.primary));
    assert!(back.capabilities().reprotect);
    let report = back.reprotect(&db()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.method, "pg_rewind");
    assert!(!report.already && report.notes.iter().any(|n| n.contains("discarded")), "{report:?}");

    // It streams from the promoted one, holds its write, and not its own after the fork.
    let mut link = LinkState::NotApplicable;
    for _ in 0..200 {
        link = back.status(&db()).await.map(|s| s.link).unwrap_or(LinkState::NotApplicable);
        if link == LinkState::Streaming {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(link, LinkState::Streaming);
    assert_eq!(pair.primary.sql("SELECT pg_is_in_recovery()"), "t");
    let target = back.status(&db()).await.unwrap().primary_lsn.unwrap();
    back.wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(pair.primary.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3");
    // Repeated: it follows already.
    assert!(back.reprotect(&db()).await.unwrap().already);
    // And the failback's promotion makes it the writable primary again.
    assert_eq!(back.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    pair.primary.sql("INSERT INTO orders VALUES (4, 'after the failback')");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_protection_is_refused_when_nothing_was_promoted() {
    let pair = setup::physical().await;
    // The "failback manager" of a pair that never failed over: its primary is a standby.
    let back = PostgresReplicationManager::physical(db(), pair.standby.endpoint(), pair.primary.endpoint())
        .with_standby_server(local_server(&pair.primary));
    let e = back.reprotect(&db()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(pair.primary.sql("SELECT pg_is_in_recovery()"), "f", "the primary was not touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_logical_pair_is_re_protected_by_a_fresh_subscription_the_other_way() {
    let pair = setup::logical("CREATE TABLE orders (id int primary key, note text)").await;
    pair.primary.sql("INSERT INTO orders VALUES (1, 'before')");
    caught_up(&pair.manager).await;
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    pair.primary.sql("INSERT INTO orders VALUES (2, 'after the fork, on the old publisher')");
    pair.standby.sql("INSERT INTO orders VALUES (3, 'after the fork, on the promoted subscriber')");

    // The failback manager: the promoted database publishes, the original subscribes.
    let back = PostgresReplicationManager::logical(db(), pair.standby.endpoint(), pair.primary.endpoint(), "sub_back");
    assert_eq!(back.reprotect(&db()).await.unwrap_err().kind(), ErrorKind::NotSupported);
    let back = back.with_reprotect_publication("pub_back");
    assert!(back.capabilities().reprotect);
    let report = back.reprotect(&db()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.method, "resubscribe");
    assert!(!report.already && report.notes.iter().any(|n| n.contains("discarded")), "{report:?}");
    assert_eq!(back.status(&db()).await.unwrap().link, LinkState::Streaming);
    assert_eq!(pair.primary.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3");
    // New writes on the current primary arrive.
    pair.standby.sql("INSERT INTO orders VALUES (4, 'after re-protection')");
    let target = back.status(&db()).await.unwrap().primary_lsn.unwrap();
    back.wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(pair.primary.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3,4");
    assert!(back.reprotect(&db()).await.unwrap().already, "a repeat finds it subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_dump_pair_is_re_protected_by_a_fresh_dump_back_and_fails_back_with_nothing_lost() {
    let pair = setup::dump().await;
    // A failover: the DR side restores the last dump and is promoted; the old primary, fenced
    // read-only, still took one write (the loss), and the new primary takes writes.
    assert_eq!(pair.manager.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    pair.primary.sql("INSERT INTO orders (id, note) VALUES (100, 'after the fork, on the old primary')");
    pair.manager.fence_primary(&db()).await.unwrap();
    pair.standby.sql("INSERT INTO orders (id, note) VALUES (200, 'on the promoted DR database')");

    // The failback manager: a fresh dump back, from the DR database into the original.
    let dir = pair.standby.data.parent().unwrap().join("failback");
    let backup =
        qovery_dr_providers::postgres::PgDumpBackup::new(pair.standby.endpoint(), pair.primary.endpoint(), dir)
            .with_jobs(2)
            .with_bin_dir(super::cluster::bin("pg_dump").parent().unwrap());
    let back = PostgresReplicationManager::dump(db(), backup, pair.standby.endpoint());
    assert!(back.capabilities().reprotect);
    let report = back.reprotect(&db()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.method, "dump");
    assert!(report.notes.iter().any(|n| n.contains("discarded")), "{report:?}");
    assert_eq!(pair.primary.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,2,200");
    let status = back.status(&db()).await.unwrap();
    assert!(!status.standby_promoted, "the DR's promotion marker is not carried into the original");
    assert!(status.last_backup.is_some_and(|b| b.restore_verified));

    // The failback: the DR database fenced, one more write refused; a final dump after the
    // fence is the catch-up, then the original is promoted and takes writes.
    pair.standby.sql("INSERT INTO orders (id, note) VALUES (201, 'before the failback fence')");
    back.fence_primary(&db()).await.unwrap();
    let target = back.status(&db()).await.unwrap().primary_lsn.unwrap();
    let reached = back
        .wait_for_catch_up(&db(), &qovery_dr_core::provider::CatchUp::new(target, Duration::from_secs(60)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reached >= target);
    assert_eq!(back.promote_standby(&db()).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(pair.primary.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,2,200,201");
    pair.primary.sql("INSERT INTO orders (id, note) VALUES (300, 'after the failback')");
}
