//! Crash and resume: for every journal position k of a full run, kill the run
//! right after entry k is durable, resume with a fresh engine from the first
//! k entries, and compare with an uninterrupted run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{
    AutoApprove, Journal, JournalEntry, JournalError, LockGuard, MemoryJournal, Outcome, RunMode,
};
use qovery_dr_testkit::PlanWorld;

use super::common::*;

/// A journal that accepts `limit` appends, then never answers: the process
/// "dies" right after entry `limit` became durable.
#[derive(Debug, Clone)]
struct Dying<J> {
    inner: J,
    limit: usize,
    appended: Arc<AtomicUsize>,
}

type DyingJournal = Dying<MemoryJournal>;
type DyingFile = Dying<qovery_dr_core::engine::FileJournal>;

#[async_trait]
impl<J: Journal + Clone> Journal for Dying<J> {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        if self.appended.fetch_add(1, Ordering::SeqCst) >= self.limit {
            std::future::pending::<()>().await;
        }
        self.inner.append(guard, entry).await
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        self.inner.entries().await
    }
}

/// The state a run must leave, without timings.
fn end_state(pw: &PlanWorld) -> String {
    pw.world.with_state(|s| {
        let dbs: BTreeMap<_, _> =
            s.databases.iter().map(|(k, d)| (k.clone(), (d.a.writable(), d.b.writable(), d.a.fenced))).collect();
        let dns: BTreeMap<_, _> = s.records.iter().map(|(k, r)| (k.clone(), r.target.clone())).collect();
        let envs: BTreeMap<_, _> = s
            .environments
            .iter()
            .map(|(k, e)| {
                let services: BTreeMap<_, _> = e
                    .services
                    .iter()
                    .map(|(id, svc)| {
                        (id.clone(), (svc.desired.image.clone(), svc.running.as_ref().map(|r| r.image.clone())))
                    })
                    .collect();
                let vars: BTreeMap<_, _> = e.variables.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
                (k.clone(), (e.running, services, vars))
            })
            .collect();
        format!("{dbs:?}\n{dns:?}\n{envs:?}")
    })
}

const NON_IDEMPOTENT: [&str; 5] = [
    "cluster.deploy_services",
    "cluster.deploy_environment",
    "cluster.clone_environment",
    "cluster.delete_environment",
    "replication.promote_standby",
];

fn counts(pw: &PlanWorld) -> BTreeMap<&'static str, usize> {
    NON_IDEMPOTENT.iter().map(|op| (*op, pw.world.recorder().applied_count(op))).collect()
}

async fn crash_and_resume_at_every_position(mode: RunMode) {
    crash_and_resume_from(mode, || async { aws() }).await;
}

/// What the post-promotion fix-ups journaled, if they ran.
fn fixups_output(journal: &MemoryJournal) -> Option<serde_json::Value> {
    journal.snapshot().into_iter().rev().find_map(|e| match e.event {
        qovery_dr_core::engine::JournalEvent::StepFinished { step, output, .. } if step == "post-promotion-fixups" => {
            Some(output)
        }
        _ => None,
    })
}

/// A world after a switchover and re-protection: where a failback starts.
async fn switched_over_and_reprotected() -> PlanWorld {
    let pw = aws();
    engine(&pw, MemoryJournal::new()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    pw.world.reprotect(&pw.plan.primary().database.id);
    tokio::time::sleep(Duration::from_secs(10)).await;
    pw
}

async fn crash_and_resume_from<F, Fut>(mode: RunMode, world: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = PlanWorld>,
{
    // The uninterrupted run.
    let reference = world().await;
    let full = MemoryJournal::new();
    let report = engine(&reference, full.clone()).run(mode).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let expected_state = end_state(&reference);
    let expected_counts = counts(&reference);
    let expected_steps: Vec<(String, String)> =
        report.steps.iter().map(|s| (s.stage.clone(), s.name.clone())).collect();
    let n = full.snapshot().len();
    assert!(n > 30, "a full {mode} journals every step ({n} entries)");
    let expected_fixups = fixups_output(&full);
    if mode != RunMode::Drill {
        let synced = expected_fixups.as_ref().and_then(|o| o.get("sequences_synced")).and_then(|v| v.as_u64());
        assert!(synced > Some(0), "the logical pair's sequences are synced: {expected_fixups:?}");
    }

    for k in 0..=n {
        let pw = world().await;
        let dying = DyingJournal { inner: MemoryJournal::new(), limit: k, appended: Arc::new(AtomicUsize::new(0)) };
        let first = pw
            .engine_builder()
            .journal(dying.clone())
            .approver(AutoApprove::new("oncall-sre"))
            .options(options())
            .build();
        // Killed: the run future (and its step tasks) are dropped mid-flight.
        let outcome = tokio::time::timeout(Duration::from_secs(6 * 3600), first.run(mode)).await;
        if k < n {
            assert!(outcome.is_err(), "k={k}: the run must hang on entry {} ", k + 1);
        }
        drop(first);
        let kept = dying.inner.snapshot();
        let fixups_started_before_crash = kept.iter().any(|e| {
            matches!(&e.event, qovery_dr_core::engine::JournalEvent::StepStarted { step, .. } if step == "post-promotion-fixups")
        });
        assert_eq!(kept.len(), k.min(n));
        let journal = MemoryJournal::with_entries(kept);
        let second = pw
            .engine_builder()
            .journal(journal.clone())
            .approver(AutoApprove::new("oncall-sre"))
            .options(options())
            .build();
        let resumed = if k == 0 { second.run(mode).await } else { second.resume().await };
        let report = resumed.unwrap_or_else(|f| panic!("k={k}: resume failed: {}\n{}", f.error, f.report.to_text()));
        assert_eq!(report.outcome, Outcome::Succeeded, "k={k}");
        assert_eq!(end_state(&pw), expected_state, "k={k}: the end state differs from an uninterrupted run");
        assert_eq!(counts(&pw), expected_counts, "k={k}: a non-idempotent action ran more (or less) than once");
        let steps: Vec<(String, String)> = report.steps.iter().map(|s| (s.stage.clone(), s.name.clone())).collect();
        assert_eq!(steps, expected_steps, "k={k}: the resumed report lists the steps the run ran");
        pw.world.recorder().assert_no_violations();
        // Fix-ups that had already acted before the crash find nothing left to do (idempotent);
        // otherwise they sync what the promotion state journaled before the crash names.
        if !fixups_started_before_crash {
            assert_eq!(
                fixups_output(&journal),
                expected_fixups,
                "k={k}: the fix-ups got the promotion state journaled before the crash"
            );
        }
        if mode != RunMode::Drill {
            assert_eq!(report.measured_rpo_ms, Some(0), "k={k}");
        }
        assert!(report.measured_rto_ms.is_some(), "k={k}: the RTO is measured from the journal across the crash");
    }
}

#[tokio::test(start_paused = true)]
async fn failover_survives_a_crash_after_every_journal_entry() {
    crash_and_resume_at_every_position(RunMode::Failover).await;
}

/// A switchover promoted the standby, then failed at DNS; a resume that stops before
/// continuing (the lock is held elsewhere) said "nothing in production was changed".
#[tokio::test(start_paused = true)]
async fn a_resume_that_stops_early_reports_what_the_journal_says_happened() {
    use qovery_dr_core::engine::{FailoverLock, InProcessLock, LockHolder};
    use qovery_dr_testkit::{FaultAction, Trigger};
    let pw = aws();
    pw.world.faults().inject(
        "dns.switch",
        Trigger::FirstN(10_000),
        FaultAction::Fail(qovery_dr_core::ErrorKind::PermissionDenied),
    );
    let journal = MemoryJournal::new();
    let failed = engine(&pw, journal.clone()).run(RunMode::Switchover).await.unwrap_err();
    let first = failed.report.safe_state.clone().unwrap_or_default();
    assert!(first.contains("the standby is promoted"), "{first}");
    let lock = InProcessLock::new();
    let other = LockHolder {
        run_id: "run-elsewhere".into(),
        owner: "someone@else".into(),
        acquired_at: qovery_dr_core::Timestamp::from_unix_millis(0),
    };
    lock.acquire(pw.plan.name(), &other).await.unwrap();
    let second = pw
        .engine_builder()
        .journal(journal.clone())
        .lock(lock)
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    let stopped = second.resume().await.unwrap_err();
    let safe = stopped.report.safe_state.clone().unwrap_or_default();
    assert!(!safe.contains("nothing in production was changed"), "{safe}");
    assert!(safe.contains("the standby is promoted"), "{safe}");
    assert_eq!(stopped.report.mode, Some(RunMode::Switchover));
    assert_eq!(stopped.report.steps.len(), failed.report.steps.len(), "the report lists the run's steps");
}

/// Resuming an empty journal reported mode "failover" (a placeholder) for a run that never was.
#[tokio::test(start_paused = true)]
async fn resuming_an_empty_journal_names_no_mode_and_changes_nothing() {
    let pw = aws();
    let before = end_state(&pw);
    let failed = engine(&pw, MemoryJournal::new()).resume().await.unwrap_err();
    assert!(matches!(failed.error, qovery_dr_core::engine::EngineError::NothingToResume), "{}", failed.error);
    assert_eq!(failed.report.mode, None, "no run, no mode");
    assert!(failed.report.to_text().starts_with("no run "), "{}", failed.report.to_text());
    assert_eq!(end_state(&pw), before);
}

/// A resume that cannot read its journal (a corrupt line) says so: it changed nothing,
/// but the run in the journal may have (never "nothing in production was changed").
#[tokio::test(start_paused = true)]
async fn a_resume_that_cannot_read_its_journal_does_not_claim_nothing_changed() {
    let dir = std::env::temp_dir().join(format!("qdr-unreadable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.jsonl");
    std::fs::write(&path, "{\"not\": \"an entry\"}\n{\"neither\": 1}\n").unwrap();
    let pw = aws();
    let failed = pw
        .engine_builder()
        .journal(qovery_dr_core::engine::FileJournal::new(&path))
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build()
        .resume()
        .await
        .unwrap_err();
    assert!(failed.error.to_string().contains("line 1"), "{}", failed.error);
    let safe = failed.report.safe_state.unwrap_or_default();
    assert!(!safe.contains("nothing in production was changed"), "{safe}");
    assert!(safe.contains("the journal was not read"), "{safe}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A journal whose entries break its rules is not resumed: the error names the entry and
/// the safe state says the state is unknown, never "nothing changed".
#[tokio::test(start_paused = true)]
async fn a_journal_that_breaks_its_rules_is_refused_naming_the_entry() {
    let pw = aws();
    let journal = MemoryJournal::new();
    engine(&pw, journal.clone()).run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    // Drop the StepStarted of the promotion: its StepFinished now comes first.
    let mut entries = journal.snapshot();
    let at = entries
        .iter()
        .position(|e| {
            matches!(&e.event, qovery_dr_core::engine::JournalEvent::StepStarted { step, .. } if step == "promote-database")
        })
        .unwrap();
    let removed = entries.remove(at).seq;
    // ...and cut the run's end, so that a resume reads the run back.
    entries.retain(|e| !matches!(e.event, qovery_dr_core::engine::JournalEvent::RunFinished { .. }));
    let failed = engine(&pw, MemoryJournal::with_entries(entries)).resume().await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("journal entry") && message.contains("promote-database"), "{message}");
    assert!(!message.contains(&format!("journal entry {removed} ")), "names the entry that breaks the rule");
    let safe = failed.report.safe_state.unwrap_or_default();
    assert!(safe.starts_with("UNKNOWN"), "{safe}");
}

#[tokio::test(start_paused = true)]
async fn switchover_survives_a_crash_after_every_journal_entry() {
    crash_and_resume_at_every_position(RunMode::Switchover).await;
}

#[tokio::test(start_paused = true)]
async fn failback_survives_a_crash_after_every_journal_entry() {
    crash_and_resume_from(RunMode::Failback, switched_over_and_reprotected).await;
}

#[tokio::test(start_paused = true)]
async fn drill_survives_a_crash_after_every_journal_entry() {
    crash_and_resume_at_every_position(RunMode::Drill).await;
}

#[tokio::test(start_paused = true)]
async fn a_file_journal_is_durable_and_resumable() {
    let dir = std::env::temp_dir().join(format!("qdr-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.jsonl");
    let _ = std::fs::remove_file(&path);
    let pw = aws();
    let journal = qovery_dr_core::engine::FileJournal::new(&path);
    let dying = DyingFile { inner: journal.clone(), limit: 20, appended: Arc::new(AtomicUsize::new(0)) };
    let first = pw.engine_builder().journal(dying).approver(AutoApprove::new("oncall-sre")).options(options()).build();
    assert!(tokio::time::timeout(Duration::from_secs(3600), first.run(RunMode::Switchover)).await.is_err());
    drop(first);
    // A torn last line (the crash hit mid-write) is ignored.
    let mut text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 20);
    text.push_str("{\"seq\":20,\"at\":\"2026-");
    std::fs::write(&path, &text).unwrap();
    let second = pw
        .engine_builder()
        .journal(qovery_dr_core::engine::FileJournal::new(&path))
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    let report = second.resume().await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_new_run_refuses_to_start_over_an_unfinished_one() {
    let pw = aws();
    let dying = DyingJournal { inner: MemoryJournal::new(), limit: 10, appended: Arc::new(AtomicUsize::new(0)) };
    let first =
        pw.engine_builder().journal(dying.clone()).approver(AutoApprove::new("oncall-sre")).options(options()).build();
    assert!(tokio::time::timeout(Duration::from_secs(3600), first.run(RunMode::Switchover)).await.is_err());
    let again = pw
        .engine_builder()
        .journal(dying.inner.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    let e = again.run(RunMode::Switchover).await.unwrap_err();
    assert!(e.error.to_string().contains("resume it"), "{}", e.error);
}
