//! Journals written by this version (schema 1) stay loadable: these files were written by
//! real runs on the simulated world and are checked in. Regenerate them only when the
//! schema changes on purpose (`QDR_WRITE_GOLDEN=1 cargo test -p qovery-dr-testkit --test engine golden
//! -- --test-threads=1`), and then keep the old ones too.

use std::path::{Path, PathBuf};

use qovery_dr_core::engine::{
    AutoApprove, FailoverLock, FileJournal, InProcessLock, Journal, JournalEvent, LockHolder, Outcome, RunMode,
    StepOutput, journaled_outputs, validate_journal,
};
use qovery_dr_core::{ErrorKind, Timestamp};
use qovery_dr_testkit::{FaultAction, Trigger};

use super::common::*;

const SWITCHOVER: &str = "journal-v1-switchover-succeeded.jsonl";
const STOPPED: &str = "journal-v1-switchover-stopped-at-dns.jsonl";
const DRILL: &str = "journal-v1-drill-succeeded.jsonl";

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

/// A copy to read (a file journal may cut a torn last line: never touch the golden file).
fn copy(name: &str) -> FileJournal {
    let dir = std::env::temp_dir().join(format!("qdr-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join(name);
    std::fs::copy(golden(name), &to).unwrap_or_else(|e| panic!("{}: {e}", golden(name).display()));
    FileJournal::new(to)
}

async fn write_golden() {
    for name in [SWITCHOVER, STOPPED, DRILL] {
        let _ = std::fs::remove_file(golden(name));
    }
    let pw = aws();
    engine_on(&pw, FileJournal::new(golden(SWITCHOVER))).run(RunMode::Switchover).await.unwrap();
    let pw = aws();
    pw.world.faults().inject("dns.switch", Trigger::FirstN(10_000), FaultAction::Fail(ErrorKind::PermissionDenied));
    engine_on(&pw, FileJournal::new(golden(STOPPED))).run(RunMode::Switchover).await.unwrap_err();
    let pw = aws();
    engine_on(&pw, FileJournal::new(golden(DRILL))).run(RunMode::Drill).await.unwrap();
}

fn engine_on(pw: &qovery_dr_testkit::PlanWorld, journal: FileJournal) -> qovery_dr_core::engine::Engine {
    pw.engine_builder().journal(journal).approver(AutoApprove::new("oncall-sre")).options(options()).build()
}

fn run_id(entries: &[qovery_dr_core::engine::JournalEntry]) -> String {
    entries.iter().find(|e| matches!(e.event, JournalEvent::RunStarted { .. })).unwrap().run_id.clone()
}

#[tokio::test(start_paused = true)]
async fn journals_of_schema_1_still_load_validate_and_decode() {
    if std::env::var_os("QDR_WRITE_GOLDEN").is_some() {
        write_golden().await;
    }
    for name in [SWITCHOVER, STOPPED, DRILL] {
        let entries = copy(name).entries().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(entries.len() > 30, "{name}: {} entries", entries.len());
        assert!(entries.iter().all(|e| e.schema == 1), "{name}: written with schema 1");
        validate_journal(&entries).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outputs = journaled_outputs(&entries, &run_id(&entries)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fence = outputs.get("fence-primary");
        if name == DRILL {
            assert!(matches!(outputs.get("record"), Some(StepOutput::Rpo(r)) if r.rpo_ms.is_some()), "{name}");
            assert!(outputs.keys().any(|k| k.starts_with("clone:")), "{name}: the clone ids");
        } else {
            assert!(matches!(fence, Some(StepOutput::Fence(f)) if f.fenced), "{name}: {fence:?}");
            assert!(matches!(outputs.get("catch-up"), Some(StepOutput::CatchUp(_))), "{name}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_golden_finished_run_reports_and_a_stopped_one_resumes_from_its_journal() {
    // The succeeded switchover: a resume returns its recorded report.
    let pw = aws();
    let report = engine_on(&pw, copy(SWITCHOVER)).resume().await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.measured_rpo_ms, Some(0));
    // The stopped switchover, resumed while someone else holds the lock: the report and the
    // safe state come from the golden journal (typed outputs decoded, runbook journaled).
    let pw = aws();
    let lock = InProcessLock::new();
    let other =
        LockHolder { run_id: "x".into(), owner: "else@where".into(), acquired_at: Timestamp::from_unix_millis(0) };
    lock.acquire(pw.plan.name(), &other).await.unwrap();
    let journal = copy(STOPPED);
    let entries = journal.entries().await.unwrap();
    let ran = entries.iter().filter(|e| matches!(e.event, JournalEvent::StepFinished { .. })).count();
    let stopped = pw
        .engine_builder()
        .journal(journal)
        .lock(lock)
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build()
        .resume()
        .await
        .unwrap_err();
    let safe = stopped.report.safe_state.clone().unwrap_or_default();
    assert!(safe.contains("the standby is promoted"), "{safe}");
    assert_eq!(stopped.report.mode, Some(RunMode::Switchover));
    let succeeded = stopped.report.steps.iter().filter(|s| s.status == qovery_dr_core::engine::StepStatus::Succeeded);
    assert_eq!(succeeded.count(), ran, "every step the journal shows finished is reported so");
}
