//! The dump strategy's overhead: the SDK's `PgDumpBackup` (backup, then
//! restore) against the very same `pg_dump` and `pg_restore` commands run by
//! hand, on a `pgbench -i -s 20` database, alternating which goes first.
//!
//! Before each side's restore the target is emptied, and after it the copy is
//! verified against the source (row counts and per-table checksums), for the
//! SDK's own dump and restore and for the by-hand one alike, in every
//! repetition; emptying and verifying are outside the timed part.
//!
//! Starts its own PostgreSQL 15 servers on 127.0.0.1 (the test harness of
//! qovery-dr-providers). Prints `pg_dump_ratio` = SDK time / by-hand time,
//! computed per repetition from the two measurements of that repetition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../qovery-dr-providers/tests/pg/cluster.rs"]
#[allow(dead_code)]
mod cluster;

#[path = "common/dump_sides.rs"]
mod dump_sides;

use std::time::Instant;

use cluster::{PgServer, bin, pgbench_init_scale};
use dump_sides::{by_hand, empty, verify};
use qovery_dr_benches::{a_first, figure, note, setting};
use qovery_dr_providers::postgres::PgDumpBackup;

const REPETITIONS: usize = 5;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let source = PgServer::primary();
    let target = PgServer::primary();
    pgbench_init_scale(&source, 20);
    let dir = std::env::temp_dir().join(format!("qdr-bench-dump-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let backup = PgDumpBackup::new(source.endpoint(), target.endpoint(), &dir)
        .with_jobs(4)
        .with_bin_dir(bin("pg_dump").parent().unwrap());
    // Warm-up (caches), not counted.
    let _ = by_hand(&backup, &dir.join("warmup"));
    let (mut sdk, mut hand, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut tables = 0;
    for rep in 0..REPETITIONS {
        let sdk_side = || async {
            empty(&target);
            let t0 = Instant::now();
            let record = backup.backup().await.unwrap();
            backup.restore(&record).await.unwrap();
            let took = t0.elapsed();
            let n = verify(&backup, "SDK", rep).await;
            let _ = std::fs::remove_dir_all(&record.path);
            (took, n)
        };
        let hand_side = || async {
            empty(&target);
            let out = dir.join(format!("by-hand-{rep}"));
            let took = by_hand(&backup, &out);
            let n = verify(&backup, "by hand", rep).await;
            let _ = std::fs::remove_dir_all(&out);
            (took, n)
        };
        let ((s, n1), (h, n2)) = if a_first(rep) {
            let s = sdk_side().await;
            (s, hand_side().await)
        } else {
            let h = hand_side().await;
            (sdk_side().await, h)
        };
        assert_eq!(n1, n2, "both sides restored the same tables");
        tables = n1;
        sdk.push(s.as_secs_f64() * 1e3);
        hand.push(h.as_secs_f64() * 1e3);
        ratio.push(s.as_secs_f64() / h.as_secs_f64());
    }
    note("real PostgreSQL 15 on 127.0.0.1; both sides dump and restore the same database with the same arguments");
    note("every restore, SDK and by hand, verified by row counts and checksums of every table in every repetition");
    setting("pgbench_scale", 20);
    setting("jobs", 4);
    setting("repetitions", REPETITIONS);
    setting("tables_verified_per_restore", tables);
    figure("sdk_ms", &sdk, 0);
    figure("by_hand_ms", &hand, 0);
    figure("pg_dump_ratio", &ratio, 3);
    let _ = std::fs::remove_dir_all(&dir);
}
