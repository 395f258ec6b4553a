//! Dumps kept in object storage: S3 on moto and a local folder, real PostgreSQL 15
//! servers on both sides, the schedule with its records, and what readiness reads.

use std::time::Duration;

use qovery_dr_core::provider::ReplicationManager;
use qovery_dr_core::{DatabaseId, ErrorKind};
use qovery_dr_providers::postgres::{
    DumpSchedule, DumpStore, DumpStoreOptions, PgDumpBackup, PostgresReplicationManager, run_dump_schedule,
};
use qovery_dr_testkit::local_stack::MotoServer;

use super::cluster::{PgServer, bin, pgbench_init_scale};

fn staging(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qdr-dump-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A bucket on a fresh moto server and a store on it (static credentials, path-style).
async fn s3_store(moto: &MotoServer, bucket: &str, prefix: &str) -> DumpStore {
    moto.create_bucket(bucket).await.unwrap();
    let options = DumpStoreOptions::default()
        .with_region("us-east-1")
        .with_endpoint(moto.url())
        .with_credentials("AKIDLOCAL", qovery_dr_core::SecretString::new("local-secret"));
    DumpStore::from_url(&format!("s3://{bucket}/{prefix}"), &options).unwrap()
}

fn backup(source: &PgServer, target: &PgServer, dir: &std::path::Path, store: DumpStore) -> PgDumpBackup {
    PgDumpBackup::new(source.endpoint(), target.endpoint(), dir)
        .with_jobs(4)
        .with_checksums(true)
        .with_bin_dir(bin("pg_dump").parent().unwrap())
        .with_store(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pgbench_dump_round_trips_through_s3_and_verifies_counts_and_checksums() {
    let (source, target, moto) = (PgServer::primary(), PgServer::primary(), MotoServer::start().unwrap());
    pgbench_init_scale(&source, 5);
    let dir = staging("s3");
    let backup = backup(&source, &target, &dir, s3_store(&moto, "dumps", "orders").await);
    let record = backup.backup().await.unwrap();

    // The dump is in the bucket, its staging copy gone, the record beside it.
    let name = record.name();
    assert_eq!(record.stored_at.as_deref(), Some(format!("s3://dumps/orders/{name}").as_str()));
    assert!(!record.path.exists(), "the staging folder is removed once uploaded");
    let keys = moto.bucket_keys("dumps", "orders/").await.unwrap();
    assert!(keys.contains(&format!("orders/{name}/toc.dat")), "{keys:?}");
    assert!(keys.contains(&"orders/last-backup.json".to_owned()), "{keys:?}");
    assert!(keys.iter().filter(|k| k.ends_with(".dat.gz")).count() >= 4, "one file per table: {keys:?}");
    // What the dump saw, in its own snapshot: 500,000 accounts, a checksum per table.
    let accounts = record.contents.iter().find(|t| t.table == "public.pgbench_accounts").unwrap();
    assert_eq!(accounts.rows, 500_000);
    assert!(record.contents.iter().all(|t| t.checksum.is_some()), "{:?}", record.contents);

    // Writes after the dump do not disturb its check: it compares with what the dump saw.
    source.sql("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 5, now())");
    let check = backup.check_restore("orders_restore_check").await.unwrap();
    assert_eq!((check.dump.as_str(), check.tables, check.checksums), (name.as_str(), record.contents.len(), true));
    assert_eq!(
        target.sql("SELECT count(*) FROM pg_database WHERE datname = 'orders_restore_check'"),
        "0",
        "scratch dropped"
    );
    assert!(moto.bucket_keys("dumps", "orders/").await.unwrap().contains(&"orders/last-verified.json".to_owned()));

    // A restore into the DR database itself, from the bucket.
    backup.restore(&record).await.unwrap();
    assert_eq!(target.sql("SELECT count(*) FROM pgbench_accounts"), "500000");
    assert_eq!(
        target.sql("SELECT sum(abalance) FROM pgbench_accounts"),
        source.sql("SELECT sum(abalance) FROM pgbench_accounts")
    );
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "nothing staged is left behind: {leftovers:?}");

    // What readiness reads: the dump, when a restore was last verified, no failure.
    let info = backup.backup_info().await.unwrap().unwrap();
    assert_eq!(info.finished_at, record.finished_at);
    assert_eq!(info.last_verified_restore_at, Some(check.verified_at));
    assert_eq!(info.last_failure, None);

    // A dump cancelled while pg_dump writes (a schedule stopped, a timeout) leaves no
    // partial dump staged and records nothing.
    let staged = || {
        std::fs::read_dir(&dir)
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("dump-")).count())
            .unwrap_or(0)
    };
    let writing = async {
        while !std::fs::read_dir(&dir)
            .is_ok_and(|d| d.flatten().any(|e| std::fs::read_dir(e.path()).is_ok_and(|mut f| f.next().is_some())))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        r = backup.backup() => panic!("the dump finished before it could be cancelled: {r:?}"),
        () = writing => {}
    }
    for _ in 0..200 {
        if staged() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(staged(), 0, "the cancelled dump's staging folder is removed");
    assert_eq!(backup.backup_info().await.unwrap().unwrap().finished_at, record.finished_at, "nothing recorded");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_dump_fails_its_restore_check_and_the_failure_is_recorded_with_its_reason() {
    let (source, target) = (PgServer::primary(), PgServer::primary());
    source.sql("CREATE TABLE prices (id int PRIMARY KEY, cents int); INSERT INTO prices SELECT g, g * 10 FROM generate_series(1, 1000) g");
    let (dir, root) = (staging("damaged"), staging("damaged-store"));
    let store = DumpStore::from_url(&format!("file://{}", root.display()), &DumpStoreOptions::default()).unwrap();
    let backup = backup(&source, &target, &dir, store);
    let record = backup.backup().await.unwrap();
    let first = backup.check_restore("shop_check").await.unwrap();

    // The table's data file in the store replaced by a later dump's (same table, ten rows
    // changed): the restore succeeds, the comparison with what the dump saw does not.
    source.sql("UPDATE prices SET cents = 0 WHERE id <= 10");
    let later = PgDumpBackup::new(source.endpoint(), target.endpoint(), staging("later"))
        .with_bin_dir(bin("pg_dump").parent().unwrap())
        .backup()
        .await
        .unwrap();
    let data: Vec<_> = std::fs::read_dir(&later.path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".dat.gz"))
        .collect();
    assert_eq!(data.len(), 1, "one table, one data file");
    let stored = root.join(record.name()).join(data[0].file_name());
    assert!(stored.is_file(), "the same file name in the stored dump: {}", stored.display());
    std::fs::copy(data[0].path(), &stored).unwrap();

    let e = backup.check_restore("shop_check").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("public.prices: checksum"), "{e}");
    let failure = backup.last_failure().await.unwrap().unwrap();
    assert_eq!(failure.stage, "restore-check");
    assert!(failure.reason.contains("public.prices: checksum"), "{failure:?}");
    assert!(root.join("last-failure.json").is_file(), "recorded beside the dumps");
    // Readiness sees the failure (newer than the last verified check), and when that was.
    let info = backup.backup_info().await.unwrap().unwrap();
    assert_eq!(info.last_verified_restore_at, Some(first.verified_at));
    assert_eq!(info.last_failure.map(|f| f.stage), Some("restore-check".to_owned()));
    for d in [dir, root, staging("later")] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dump_is_recorded_beside_the_dumps_and_readiness_sees_it() {
    let (source, target, moto) = (PgServer::primary(), PgServer::primary(), MotoServer::start().unwrap());
    source.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)");
    let dir = staging("failed");
    let store = s3_store(&moto, "failing", "db").await;
    let good = backup(&source, &target, &dir, store.clone()).with_retain(2);
    // Three dumps with two kept: the oldest is deleted from the bucket.
    let oldest = good.backup().await.unwrap();
    good.backup().await.unwrap();
    let record = good.backup().await.unwrap();
    let keys = moto.bucket_keys("failing", "db/").await.unwrap();
    let mut dumps: Vec<&str> =
        keys.iter().filter_map(|k| k.strip_prefix("db/")?.split_once('/')).map(|(d, _)| d).collect();
    dumps.dedup();
    assert_eq!(dumps.len(), 2, "{keys:?}");
    assert!(!dumps.contains(&oldest.name().as_str()), "the oldest was pruned: {keys:?}");
    // The same store, a source that refuses: the failure lands beside the good dump.
    let mut wrong = source.endpoint();
    wrong.dbname = "no_such_database".into();
    let bad = PgDumpBackup::new(wrong, target.endpoint(), &dir)
        .with_bin_dir(bin("pg_dump").parent().unwrap())
        .with_store(store);
    let e = bad.backup().await.unwrap_err();
    assert!(e.to_string().contains("no_such_database"), "{e}");
    let info = good.backup_info().await.unwrap().unwrap();
    assert_eq!(info.finished_at, record.finished_at, "the last good dump still stands");
    let failure = info.last_failure.unwrap();
    assert_eq!(failure.stage, "dump");
    assert!(failure.reason.contains("no_such_database"), "{failure:?}");

    // Through the replication manager, as readiness reads it.
    let manager = PostgresReplicationManager::dump(DatabaseId::new("db"), good, source.endpoint());
    let status = manager.status(&DatabaseId::new("db")).await.unwrap();
    let last = status.last_backup.unwrap();
    assert_eq!(last.last_failure.map(|f| f.stage), Some("dump".to_owned()));
    assert_eq!(last.last_verified_restore_at, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_dumps_checks_and_prunes_into_a_folder_store() {
    let (source, target) = (PgServer::primary(), PgServer::primary());
    source.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)");
    let (dir, root) = (staging("schedule"), staging("schedule-store"));
    let store = DumpStore::from_url(&format!("file://{}", root.display()), &DumpStoreOptions::default()).unwrap();
    let backup = backup(&source, &target, &dir, store).with_retain(2);
    let schedule = DumpSchedule::new(Duration::from_millis(700)).with_restore_checks(Duration::from_secs(2), "t_check");
    // Real time: pg_dump and pg_restore are real processes.
    let summary = run_dump_schedule(&backup, &schedule, tokio::time::sleep(Duration::from_millis(3_200))).await;
    assert!(summary.dumps >= 3, "{summary:?}");
    assert!(summary.restore_checks >= 1, "{summary:?}");
    assert_eq!((summary.dump_failures, summary.restore_check_failures), (0, 0), "{summary:?}");
    // Records beside the dumps; old dumps pruned to two (plus the one last verified).
    for record in ["last-backup.json", "last-verified.json"] {
        assert!(root.join(record).is_file(), "{record}");
    }
    let dumps = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dump-"))
        .count();
    assert!((1..=3).contains(&dumps), "{dumps} dumps kept");
    let info = backup.backup_info().await.unwrap().unwrap();
    assert!(info.last_verified_restore_at.is_some());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&root);
}
