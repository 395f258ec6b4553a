//! What the dump benchmarks share: the by-hand side, emptying the target, verifying the copy.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qovery_dr_providers::postgres::PgDumpBackup;

use crate::cluster::{PgServer, bin};

/// The same `pg_dump` and `pg_restore` commands the SDK runs, by hand, files on local disk.
pub fn by_hand(backup: &PgDumpBackup, out: &std::path::Path) -> Duration {
    let t0 = Instant::now();
    for (tool, args) in [("pg_dump", backup.dump_args(out)), ("pg_restore", backup.restore_args(out))] {
        let ok = Command::new(bin(tool)).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(ok.success(), "{tool}");
    }
    t0.elapsed()
}

/// Empties the target, so that a restore that restored nothing cannot pass verification.
pub fn empty(target: &PgServer) {
    target.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    assert_eq!(target.sql("SELECT count(*) FROM pg_stat_user_tables"), "0", "the target is empty");
}

/// Row counts and checksums of every table, source against target; stops the bench otherwise.
pub async fn verify(backup: &PgDumpBackup, side: &str, rep: usize) -> usize {
    let v = backup.verify(true).await.unwrap();
    assert!(!v.counts.is_empty(), "{side}, repetition {rep}: no table was restored");
    assert!(v.ok(), "{side}, repetition {rep}: the restored copy differs: {v:?}");
    v.counts.len()
}
