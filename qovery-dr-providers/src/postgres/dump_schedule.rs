//! The dump strategy's schedule: a dump every `dump_interval`, a restore check (the newest
//! dump restored into a scratch database and compared with what it saw) at the plan's
//! cadence, each outcome recorded beside the dumps, until told to stop.

use std::future::Future;
use std::time::Duration;

use qovery_dr_core::{ProviderError, ProviderResult};
use tokio::time::Instant;

use super::dump::{BackupRecord, PgDumpBackup, RestoreCheck};

/// When dumps are taken and restores checked.
///
/// ```
/// use std::time::Duration;
/// use qovery_dr_providers::postgres::DumpSchedule;
/// let s = DumpSchedule::new(Duration::from_secs(900))
///     .with_restore_checks(Duration::from_secs(86_400), "orders_restore_check");
/// assert_eq!(s.restore_check_interval, Some(Duration::from_secs(86_400)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpSchedule {
    /// Time between the starts of two dumps (a dump that overruns starts the next one late,
    /// never two at once).
    pub dump_interval: Duration,
    /// Time between two restore checks; `None`: no checks.
    pub restore_check_interval: Option<Duration>,
    /// The scratch database the checks restore into, on the DR server.
    pub scratch_database: String,
}

impl DumpSchedule {
    /// Dumps every `dump_interval`, no restore checks.
    pub fn new(dump_interval: Duration) -> Self {
        Self { dump_interval, restore_check_interval: None, scratch_database: String::new() }
    }

    /// Also checks a restore every `interval`, into `scratch_database`.
    #[must_use]
    pub fn with_restore_checks(mut self, interval: Duration, scratch_database: impl Into<String>) -> Self {
        self.restore_check_interval = Some(interval);
        self.scratch_database = scratch_database.into();
        self
    }
}

/// What a schedule ran before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleSummary {
    /// Dumps taken and recorded.
    pub dumps: u32,
    /// Dumps that failed (each recorded with its reason).
    pub dump_failures: u32,
    /// Restore checks that passed.
    pub restore_checks: u32,
    /// Restore checks that failed (each recorded with its reason).
    pub restore_check_failures: u32,
}

/// The two jobs a schedule runs; [`PgDumpBackup`] is the real one.
#[qovery_dr_core::async_trait]
pub trait DumpJobs: Send + Sync {
    /// Takes, stores and records a dump; records a failure with its reason.
    async fn dump(&self) -> ProviderResult<BackupRecord>;
    /// Restores the newest dump into `scratch` and verifies it; records the outcome.
    async fn check_restore(&self, scratch: &str) -> ProviderResult<RestoreCheck>;
}

#[qovery_dr_core::async_trait]
impl DumpJobs for PgDumpBackup {
    async fn dump(&self) -> ProviderResult<BackupRecord> {
        self.backup().await
    }
    async fn check_restore(&self, scratch: &str) -> ProviderResult<RestoreCheck> {
        PgDumpBackup::check_restore(self, scratch).await
    }
}

/// Runs `schedule` until `stop` completes: a dump at once and then every `dump_interval`;
/// a restore check after the first successful dump and then every
/// `restore_check_interval`. A failure is logged and recorded (by the job) and the schedule
/// goes on; what is in flight when `stop` completes is cancelled (its `pg_dump` or
/// `pg_restore` killed, nothing recorded).
pub async fn run_dump_schedule<J: DumpJobs + ?Sized>(
    jobs: &J,
    schedule: &DumpSchedule,
    stop: impl Future<Output = ()>,
) -> ScheduleSummary {
    let mut summary = ScheduleSummary::default();
    tokio::pin!(stop);
    let work = async {
        let mut next_dump = Instant::now();
        let mut next_check: Option<Instant> = None;
        let mut dumped = false;
        loop {
            let due = match next_check {
                Some(c) if c < next_dump => c,
                _ => next_dump,
            };
            tokio::time::sleep_until(due).await;
            if Instant::now() >= next_dump {
                next_dump = after(next_dump, schedule.dump_interval);
                match jobs.dump().await {
                    Ok(record) => {
                        summary.dumps += 1;
                        tracing::info!(dump = %record.name(), bytes = record.size_bytes, ms = record.duration_ms, "dump taken");
                        if !dumped {
                            dumped = true;
                            next_check = schedule.restore_check_interval.map(|_| Instant::now());
                        }
                    }
                    Err(e) => {
                        summary.dump_failures += 1;
                        failed("dump", &e);
                    }
                }
            }
            if let (Some(at), Some(every)) = (next_check, schedule.restore_check_interval)
                && Instant::now() >= at
            {
                next_check = Some(after(at, every));
                match jobs.check_restore(&schedule.scratch_database).await {
                    Ok(check) => {
                        summary.restore_checks += 1;
                        tracing::info!(dump = %check.dump, tables = check.tables, ms = check.restore_ms, "restore verified");
                    }
                    Err(e) => {
                        summary.restore_check_failures += 1;
                        failed("restore check", &e);
                    }
                }
            }
        }
    };
    tokio::select! {
        () = &mut stop => {}
        () = work => {}
    }
    summary
}

/// The next start after `last`: one interval on, or now when that is already past (a run
/// that overran is not followed by a burst of catch-up runs).
fn after(last: Instant, every: Duration) -> Instant {
    let next = last + every.max(Duration::from_millis(1));
    next.max(Instant::now())
}

fn failed(what: &str, e: &ProviderError) {
    tracing::warn!(error = %e, "{what} failed (recorded; the schedule goes on)");
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use qovery_dr_core::{ErrorKind, Timestamp};

    use super::*;

    /// Jobs that take `dump_takes` per dump, fail the dumps whose number is in `failing`,
    /// and log when each started (in paused time).
    struct Fake {
        start: Instant,
        dump_takes: Duration,
        failing: Vec<u32>,
        log: Mutex<Vec<(u64, &'static str)>>,
    }

    impl Fake {
        fn new(dump_takes: Duration, failing: Vec<u32>) -> Self {
            Self { start: Instant::now(), dump_takes, failing, log: Mutex::new(Vec::new()) }
        }
        fn note(&self, what: &'static str) -> usize {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push((self.start.elapsed().as_secs(), what));
            log.iter().filter(|(_, w)| *w == what).count()
        }
        fn log(&self) -> Vec<(u64, &'static str)> {
            self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    fn record() -> BackupRecord {
        BackupRecord {
            path: "dump-1".into(),
            finished_at: Timestamp::from_unix_millis(1),
            size_bytes: 1,
            duration_ms: 1,
            tables: 1,
            restore_verified: false,
            lsn: None,
            stored_at: None,
            contents: Vec::new(),
        }
    }

    #[qovery_dr_core::async_trait]
    impl DumpJobs for Fake {
        async fn dump(&self) -> ProviderResult<BackupRecord> {
            let n = u32::try_from(self.note("dump")).unwrap_or(u32::MAX);
            tokio::time::sleep(self.dump_takes).await;
            if self.failing.contains(&n) {
                return Err(ProviderError::new(ErrorKind::Transient, "fake", "pg_dump", "disk full"));
            }
            Ok(record())
        }
        async fn check_restore(&self, scratch: &str) -> ProviderResult<RestoreCheck> {
            assert_eq!(scratch, "scratch");
            self.note("check");
            Ok(RestoreCheck {
                dump: "dump-1".into(),
                dump_finished_at: Timestamp::from_unix_millis(1),
                verified_at: Timestamp::from_unix_millis(2),
                restore_ms: 1,
                tables: 1,
                checksums: false,
            })
        }
    }

    fn schedule() -> DumpSchedule {
        DumpSchedule::new(Duration::from_secs(60)).with_restore_checks(Duration::from_secs(180), "scratch")
    }

    #[tokio::test(start_paused = true)]
    async fn dumps_on_the_interval_and_checks_at_its_own_cadence() {
        let jobs = Fake::new(Duration::from_secs(5), Vec::new());
        let summary = run_dump_schedule(&jobs, &schedule(), tokio::time::sleep(Duration::from_secs(250))).await;
        // Dumps start at 0, 60, 120, 180, 240; checks after the first dump (5 s) and 180 s later.
        assert_eq!(
            jobs.log(),
            vec![(0, "dump"), (5, "check"), (60, "dump"), (120, "dump"), (180, "dump"), (185, "check"), (240, "dump")]
        );
        assert_eq!(
            summary,
            ScheduleSummary { dumps: 5, dump_failures: 0, restore_checks: 2, restore_check_failures: 0 }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_counted_and_the_schedule_goes_on() {
        let jobs = Fake::new(Duration::from_secs(1), vec![1, 3]);
        let summary = run_dump_schedule(&jobs, &schedule(), tokio::time::sleep(Duration::from_secs(200))).await;
        // No check before a dump succeeded: the first is after the second dump (60 + 1 s).
        assert_eq!(jobs.log(), vec![(0, "dump"), (60, "dump"), (61, "check"), (120, "dump"), (180, "dump")]);
        assert_eq!(summary.dumps, 2);
        assert_eq!(summary.dump_failures, 2);
        assert_eq!(summary.restore_checks, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dump_that_overruns_starts_the_next_late_never_two_at_once() {
        let jobs = Fake::new(Duration::from_secs(90), Vec::new());
        let summary = run_dump_schedule(
            &jobs,
            &DumpSchedule::new(Duration::from_secs(60)),
            tokio::time::sleep(Duration::from_secs(200)),
        )
        .await;
        assert_eq!(jobs.log(), vec![(0, "dump"), (90, "dump"), (180, "dump")]);
        // The third was in flight at 200 s: cancelled, not counted.
        assert_eq!(summary.dumps, 2);
    }
}
