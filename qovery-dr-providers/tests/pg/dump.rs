//! The dump strategy on real servers.

use qovery_dr_providers::postgres::PgDumpBackup;

use super::cluster::{PgServer, bin, pgbench_init_scale};

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("qdr-dump-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pgbench_database_is_dumped_restored_and_verified() {
    let source = PgServer::primary();
    let target = PgServer::primary();
    pgbench_init_scale(&source, 20);
    let dir = scratch("verified");
    let backup = PgDumpBackup::new(source.endpoint(), target.endpoint(), &dir)
        .with_jobs(4)
        .with_bin_dir(bin("pg_dump").parent().unwrap());
    assert_eq!(backup.last_backup().await.unwrap(), None);
    let record = backup.backup_and_verify(false).await.unwrap();
    assert!(record.restore_verified);
    assert!(record.tables >= 4, "{record:?}");
    assert!(record.size_bytes > 1_000_000, "{record:?}");
    let v = backup.verify(false).await.unwrap();
    let accounts = v.counts.iter().find(|(t, _, _)| t == "public.pgbench_accounts").unwrap();
    assert_eq!((accounts.1, accounts.2), (2_000_000, 2_000_000));
    assert!(v.ok());
    // The record readiness reads for freshness.
    let last = backup.last_backup().await.unwrap().unwrap();
    assert_eq!(last, record);
    // A damaged copy is caught.
    target.sql("DELETE FROM pgbench_branches WHERE bid = 1");
    let v = backup.verify(false).await.unwrap();
    assert!(!v.ok());
    assert!(v.counts.iter().any(|(t, a, b)| t == "public.pgbench_branches" && a != b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_catch_a_changed_row_that_counts_miss() {
    let source = PgServer::primary();
    let target = PgServer::primary();
    source.sql("CREATE TABLE prices (id int PRIMARY KEY, cents int); INSERT INTO prices SELECT g, g * 10 FROM generate_series(1, 1000) g");
    let dir = scratch("checksums");
    let backup = PgDumpBackup::new(source.endpoint(), target.endpoint(), &dir)
        .with_jobs(2)
        .with_bin_dir(bin("pg_dump").parent().unwrap());
    backup.backup_and_verify(true).await.unwrap();
    target.sql("UPDATE prices SET cents = 0 WHERE id = 7");
    let v = backup.verify(true).await.unwrap();
    assert!(v.counts.iter().all(|(_, a, b)| a == b), "same counts");
    assert_eq!(v.checksum_mismatches, vec!["public.prices".to_owned()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dump_is_an_error_with_the_tools_words() {
    let source = PgServer::primary();
    let target = PgServer::primary();
    let mut wrong = source.endpoint();
    wrong.dbname = "no_such_database".into();
    let backup =
        PgDumpBackup::new(wrong, target.endpoint(), scratch("failed")).with_bin_dir(bin("pg_dump").parent().unwrap());
    let e = backup.backup().await.unwrap_err();
    assert!(e.to_string().contains("no_such_database"), "{e}");
    assert_eq!(backup.last_backup().await.unwrap(), None, "nothing recorded");
}
