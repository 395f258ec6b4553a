//! The dump strategy's overhead: the SDK's `PgDumpBackup` (backup, then
//! restore) against the very same `pg_dump` and `pg_restore` commands run by
//! hand, on a `pgbench -i -s 20` database, alternating runs.
//!
//! Starts its own PostgreSQL 15 servers on 127.0.0.1 (the test harness of
//! qovery-dr-providers). Prints `pg_dump_ratio = <SDK time / by-hand time>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../qovery-dr-providers/tests/pg/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{PgServer, bin, pgbench_init_scale};
use qovery_dr_providers::postgres::PgDumpBackup;

const REPETITIONS: usize = 5;

fn by_hand(backup: &PgDumpBackup, out: &std::path::Path) -> Duration {
    let t0 = Instant::now();
    let ok = Command::new(bin("pg_dump"))
        .args(backup.dump_args(out))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new(bin("pg_restore"))
        .args(backup.restore_args(out))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let source = PgServer::primary();
    let target = PgServer::primary();
    pgbench_init_scale(&source, 20);
    let dir = std::env::temp_dir().join(format!("qdr-bench-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let backup =
        PgDumpBackup::new(source.endpoint(), target.endpoint(), &dir).jobs(4).bin_dir(bin("pg_dump").parent().unwrap());
    // Warm-up (caches), then alternate.
    let _ = by_hand(&backup, &dir.join("warmup"));
    let (mut sdk, mut hand) = (Vec::new(), Vec::new());
    for i in 0..REPETITIONS {
        // Alternate which goes first, so neither always runs on a warmer cache.
        let sdk_run = || async {
            let t0 = Instant::now();
            let record = backup.backup().await.unwrap();
            backup.restore(&record).await.unwrap();
            t0.elapsed()
        };
        if i % 2 == 0 {
            sdk.push(sdk_run().await);
            hand.push(by_hand(&backup, &dir.join(format!("by-hand-{i}"))));
        } else {
            hand.push(by_hand(&backup, &dir.join(format!("by-hand-{i}"))));
            sdk.push(sdk_run().await);
        }
    }
    let v = backup.verify(false).await.unwrap();
    assert!(v.ok(), "the restored copy matches");
    let (s, h) = (median(sdk), median(hand));
    println!("pgbench_scale = 20");
    println!("jobs = 4");
    println!("repetitions = {REPETITIONS}");
    println!("sdk_ms = {:.0}", s.as_secs_f64() * 1e3);
    println!("by_hand_ms = {:.0}", h.as_secs_f64() * 1e3);
    println!("pg_dump_ratio = {:.3}", s.as_secs_f64() / h.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}
