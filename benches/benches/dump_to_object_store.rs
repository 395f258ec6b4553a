//! Dumps through object storage against dumps on local disk: the SDK's `PgDumpBackup`
//! with an S3 store (moto on 127.0.0.1) — `pg_dump -Fd -j 4` staged locally, every file
//! streamed to the bucket, the staging removed; then every file streamed back and
//! `pg_restore -j 4` — against the same `pg_dump` and `pg_restore` commands run by hand
//! with the files left on local disk, on a `pgbench -i -s 20` database, alternating which
//! side goes first.
//!
//! The SDK side runs in a child process (this program, re-run), so that its peak resident
//! memory (`VmHWM`) is the SDK's own: the runtime, the uploads and downloads, not the
//! benchmark's PostgreSQL harness. `pg_dump` and `pg_restore` are separate processes on
//! both sides and are not counted in it.
//!
//! Before each side's restore the target is emptied; after it the copy is verified against
//! the source (row counts and per-table checksums), outside the timed part.
//!
//! Prints `dump_object_store_ratio` = SDK time / by-hand time, computed per repetition
//! from that repetition's two measurements, and `dump_peak_rss_mib`, the child's `VmHWM`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../qovery-dr-providers/tests/pg/cluster.rs"]
#[allow(dead_code)]
mod cluster;

#[path = "common/dump_sides.rs"]
mod dump_sides;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{PgServer, bin, pgbench_init_scale};
use dump_sides::{by_hand, empty, verify};
use qovery_dr_benches::{a_first, figure, note, setting};
use qovery_dr_providers::postgres::{DumpStore, DumpStoreOptions, PgDumpBackup, PgEndpoint};
use qovery_dr_testkit::local_stack::MotoServer;

const REPETITIONS: usize = 5;
const JOBS: u32 = 4;
const BUCKET: &str = "bench-dumps";

fn endpoint(port: &str) -> PgEndpoint {
    PgEndpoint::new("127.0.0.1", port.parse().unwrap(), "postgres", "postgres")
}

/// The SDK side, in the child: dump to the store, restore from it; prints the time and
/// the process's peak resident memory.
async fn child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let options = DumpStoreOptions::default()
        .with_region("us-east-1")
        .with_endpoint(var("QDR_BENCH_MOTO"))
        .with_credentials("AKIDBENCH", qovery_dr_core::SecretString::new("bench"));
    let store = DumpStore::from_url(&format!("s3://{BUCKET}/{}", var("QDR_BENCH_PREFIX")), &options).unwrap();
    let backup = PgDumpBackup::new(
        endpoint(&var("QDR_BENCH_SOURCE")),
        endpoint(&var("QDR_BENCH_TARGET")),
        var("QDR_BENCH_STAGING"),
    )
    .with_jobs(JOBS)
    .with_bin_dir(bin("pg_dump").parent().unwrap())
    .with_store(store);
    let t0 = Instant::now();
    let record = backup.backup().await.unwrap();
    backup.restore(&record).await.unwrap();
    let took = t0.elapsed();
    assert!(!record.path.exists(), "the staging folder is removed once uploaded");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    println!("ms={} hwm_kib={hwm_kib} bytes={}", took.as_millis(), record.size_bytes);
}

/// Runs the SDK side in a child process: (time, peak RSS in MiB, dump bytes).
fn sdk_side(
    moto: &MotoServer,
    source: &PgServer,
    target: &PgServer,
    staging: &std::path::Path,
    rep: usize,
) -> (Duration, f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("QDR_BENCH_CHILD", "1")
        .env("QDR_BENCH_MOTO", moto.url())
        .env("QDR_BENCH_PREFIX", format!("rep-{rep}"))
        .env("QDR_BENCH_SOURCE", source.port.to_string())
        .env("QDR_BENCH_TARGET", target.port.to_string())
        .env("QDR_BENCH_STAGING", staging)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "the SDK side failed: {}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| -> u64 {
        text.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
    };
    (Duration::from_millis(field("ms")), field("hwm_kib") as f64 / 1024.0, field("bytes"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("QDR_BENCH_CHILD").is_some() {
        return child().await;
    }
    let source = PgServer::primary();
    let target = PgServer::primary();
    let moto = MotoServer::start().unwrap();
    moto.create_bucket(BUCKET).await.unwrap();
    pgbench_init_scale(&source, 20);
    let dir = std::env::temp_dir().join(format!("qdr-bench-object-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // For the by-hand commands and the verification (source against target).
    let backup = PgDumpBackup::new(source.endpoint(), target.endpoint(), &dir)
        .with_jobs(JOBS)
        .with_bin_dir(bin("pg_dump").parent().unwrap());
    // Warm-up (caches, moto's first requests), not counted.
    let _ = by_hand(&backup, &dir.join("warmup"));
    let _ = sdk_side(&moto, &source, &target, &dir.join("staging"), 99);
    let (mut sdk, mut hand, mut ratio, mut rss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut tables, mut bytes) = (0, 0);
    for rep in 0..REPETITIONS {
        let run_sdk = || async {
            empty(&target);
            let (took, peak, size) = sdk_side(&moto, &source, &target, &dir.join("staging"), rep);
            let n = verify(&backup, "SDK through S3", rep).await;
            (took, peak, size, n)
        };
        let run_hand = || async {
            empty(&target);
            let out = dir.join(format!("by-hand-{rep}"));
            let took = by_hand(&backup, &out);
            let n = verify(&backup, "by hand", rep).await;
            let _ = std::fs::remove_dir_all(&out);
            (took, n)
        };
        let ((s, peak, size, n1), (h, n2)) = if a_first(rep) {
            let s = run_sdk().await;
            (s, run_hand().await)
        } else {
            let h = run_hand().await;
            (run_sdk().await, h)
        };
        assert_eq!(n1, n2, "both sides restored the same tables");
        (tables, bytes) = (n1, size);
        sdk.push(s.as_secs_f64() * 1e3);
        hand.push(h.as_secs_f64() * 1e3);
        ratio.push(s.as_secs_f64() / h.as_secs_f64());
        rss.push(peak);
    }
    note(
        "real PostgreSQL 15 and moto's S3 on 127.0.0.1; both sides run pg_dump and pg_restore with the same arguments",
    );
    note("SDK side: dump staged locally, streamed to S3, staging removed; streamed back, restored (a child process)");
    note("every restore, SDK and by hand, verified by row counts and checksums of every table in every repetition");
    note("dump_peak_rss_mib: the SDK child's VmHWM (pg_dump and pg_restore are other processes, not counted)");
    setting("pgbench_scale", 20);
    setting("jobs", JOBS);
    setting("repetitions", REPETITIONS);
    setting("tables_verified_per_restore", tables);
    setting("dump_mib", format!("{:.1}", bytes as f64 / (1024.0 * 1024.0)));
    figure("object_store_ms", &sdk, 0);
    figure("local_disk_ms", &hand, 0);
    figure("dump_object_store_ratio", &ratio, 3);
    figure("dump_peak_rss_mib", &rss, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
