//! The dump strategy's schedule for a plan with `replication.mode = "dump"`: a dump of
//! every database every `dump_interval`, kept where the plan's `dump_location` says (an
//! S3 bucket, an S3-compatible store, or a folder), and a restore of the newest dump into
//! a scratch database on the DR server, verified against what the dump saw, every
//! `restore_check_interval`. Each outcome, failures with their reason, is recorded beside
//! the dumps, where readiness reads it.
//!
//! ```text
//! cargo run -p qovery-dr-examples --features live --example dump_schedule -- --plan PATH \
//!     [--dump-dir DIR] [--pg-bin DIR] [--once]
//! ```
//! `--dump-dir`: where dumps are staged (or kept, without a `dump_location`);
//! `--pg-bin`: where `pg_dump` and `pg_restore` are; `--once`: one dump and one restore
//! check per database, then exit (for cron, or to try a plan). Otherwise it runs until
//! SIGTERM or Ctrl-C, cancelling what is in flight. Exit code: 0, or 1 when `--once` saw a
//! failure, 2 on a usage or plan error.

use std::path::PathBuf;
use std::process::ExitCode;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_providers::connect::{ConnectOptions, dump_backups};
use qovery_dr_providers::postgres::{DumpSchedule, run_dump_schedule};

fn usage(why: &str) -> ExitCode {
    eprintln!("error: {why}");
    eprintln!("usage: dump_schedule --plan PATH [--dump-dir DIR] [--pg-bin DIR] [--once]");
    ExitCode::from(2)
}

/// The plan's scratch database, else the DR database's name with `_restore_check`.
fn scratch_database(plan: &DrPlan, backup: &qovery_dr_providers::postgres::PgDumpBackup) -> String {
    plan.replication()
        .restore_check_database
        .clone()
        .unwrap_or_else(|| format!("{}_restore_check", backup.target().dbname))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (mut plan_path, mut dump_dir, mut pg_bin, mut once) = (None, None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plan" => plan_path = args.next(),
            "--dump-dir" => dump_dir = args.next().map(PathBuf::from),
            "--pg-bin" => pg_bin = args.next().map(PathBuf::from),
            "--once" => once = true,
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(plan_path) = plan_path else { return usage("--plan is required") };
    let plan = match DrPlan::load(&plan_path).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut options = ConnectOptions::new();
    if let Some(d) = dump_dir {
        options = options.with_dump_dir(d);
    }
    if let Some(b) = pg_bin {
        options = options.with_pg_bin_dir(b);
    }
    let backups = match dump_backups(&plan, &options).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let replication = plan.replication();
    let Some(interval) = replication.dump_interval else { return usage("the plan has no dump_interval") };
    let mut failed = false;
    for (db, backup) in &backups {
        let scratch = scratch_database(&plan, backup);
        println!("{db}: dumps every {} into {}", humantime::format_duration(interval), backup.location());
        if once {
            match backup.backup().await {
                Ok(r) => println!("{db}: dump {} taken ({} bytes, {} ms)", r.name(), r.size_bytes, r.duration_ms),
                Err(e) => {
                    println!("{db}: dump failed: {e}");
                    failed = true;
                    continue;
                }
            }
            match backup.check_restore(&scratch).await {
                Ok(c) => println!("{db}: restore of {} verified into {scratch} ({} tables)", c.dump, c.tables),
                Err(e) => {
                    println!("{db}: restore check failed: {e}");
                    failed = true;
                }
            }
        }
    }
    if once {
        return if failed { ExitCode::from(1) } else { ExitCode::SUCCESS };
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut runs = tokio::task::JoinSet::new();
    for (db, backup) in backups {
        let mut schedule = DumpSchedule::new(interval);
        if let Some(every) = replication.restore_check_interval {
            let scratch = scratch_database(&plan, &backup);
            schedule = schedule.with_restore_checks(every, scratch);
        }
        let mut stop = stop_tx.subscribe();
        runs.spawn(async move {
            let summary = run_dump_schedule(&backup, &schedule, async move {
                let _ = stop.recv().await;
            })
            .await;
            (db, summary)
        });
    }
    qovery_dr_examples::stop_signal().await;
    println!("stopping: what is in flight is cancelled");
    let _ = stop_tx.send(());
    while let Some(done) = runs.join_next().await {
        if let Ok((db, s)) = done {
            println!(
                "{db}: {} dumps ({} failed), {} restore checks ({} failed)",
                s.dumps, s.dump_failures, s.restore_checks, s.restore_check_failures
            );
        }
    }
    ExitCode::SUCCESS
}
