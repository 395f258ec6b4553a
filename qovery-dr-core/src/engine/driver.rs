//! Driving a run: its stages, the drill clean-up, the lock's release and the report.

use std::sync::Arc;

use super::error::{EngineError, RunFailed};
use super::exec::Run;
use super::interlock::Interlock;
use super::report::{self, Outcome, RunReport};
use super::safe_state::safe_state;
use super::steps;
use crate::journal::{JournalEntry, JournalEvent};

/// Journals the operator's override that took the lock over (the lock step then re-enters it).
pub(super) async fn journal_takeover(run: &Run, evidence: String) -> Result<(), EngineError> {
    match run.interlock("lock", Interlock::LockHeld, false, evidence).await {
        Ok(()) => Ok(()),
        Err(steps::StepError::Engine(e)) => Err(e),
        Err(_) => Err(EngineError::NotReady {
            step: "lock".to_owned(),
            reason: "the LockHeld override was not found while journaling the takeover".to_owned(),
        }),
    }
}

pub(super) fn unfinished(entries: &[JournalEntry]) -> Option<String> {
    let last = entries.iter().rev().find_map(|e| match e.event {
        JournalEvent::RunStarted { .. } => Some(e.run_id.clone()),
        _ => None,
    })?;
    let done = entries
        .iter()
        .any(|e| e.run_id == last && matches!(e.event, JournalEvent::RunFinished { outcome: Outcome::Succeeded, .. }));
    (!done).then_some(last)
}

/// Runs the stages, the drill clean-up, and the report.
pub(super) async fn drive(run: Arc<Run>) -> Result<RunReport, Box<RunFailed>> {
    let mut failure: Option<EngineError> = None;
    let stages = run.runbook.stages.clone();
    for stage in &stages {
        if let Err(e) = run.run_stage(&stage.name, &stage.steps).await {
            failure = Some(e);
            break;
        }
    }
    // Drill clean-up runs whatever happened, as journaled steps.
    let mut cleanup_error = None;
    if !run.runbook.cleanup.is_empty() {
        let cleanup = run.runbook.cleanup.clone();
        if let Err(e) = run.run_stage("cleanup", &cleanup).await {
            cleanup_error = Some(e.to_string());
            if failure.is_none() {
                failure = Some(e);
            }
        }
    }
    let (outcome, safe_state) = match &failure {
        None => (Outcome::Succeeded, None),
        Some(e) => {
            let outcome = match e {
                EngineError::Refused { .. } => Outcome::Refused,
                EngineError::Denied(_) => Outcome::Denied,
                _ => Outcome::Failed,
            };
            (outcome, Some(safe_state(&run, cleanup_error.as_deref())))
        }
    };
    // Release the lock unless production is half-way: then only a resume of this run may continue.
    // The journal is written first: a shared journal accepts writes from the lock holder only.
    let (fenced, locked) = {
        let state = run.lock_state();
        (state.done("fence-primary"), state.done("lock"))
    };
    let halfway = failure.is_some() && run.mode.moves_production() && fenced;
    let release = !halfway && locked;
    if release {
        let _ = run.journal(JournalEvent::LockReleased).await;
    }
    let entries = match run.parts.journal.entries().await {
        Ok(e) => e,
        Err(e) => {
            let report = run_report(&run, &[], Outcome::Failed, None, None);
            return Err(Box::new(RunFailed { error: e.into(), report }));
        }
    };
    let report = run_report(&run, &entries, outcome, failure.as_ref().map(ToString::to_string), safe_state);
    let journaled = run.journal(JournalEvent::RunFinished { outcome, report: Box::new(report.clone()) }).await;
    if release && let Err(e) = run.parts.lock.release(&run.plan.name, &run.run_id).await {
        tracing::warn!(error = %e, "could not release the failover lock (a lease-backed lock expires by itself)");
    }
    match (failure, journaled) {
        (None, Ok(())) => Ok(report),
        (None, Err(e)) | (Some(e), _) => Err(Box::new(RunFailed { error: e, report })),
    }
}

/// The report of `run` from its journal `entries`, finished now.
pub(super) fn run_report(
    run: &Run,
    entries: &[JournalEntry],
    outcome: Outcome,
    error: Option<String>,
    safe_state: Option<String>,
) -> RunReport {
    let state = run.lock_state();
    report::build(report::ReportInput {
        run_id: &run.run_id,
        outputs: &state.finished,
        plan: &run.plan.name,
        mode: Some(run.mode),
        objectives: run.plan.objectives,
        runbook: &run.runbook,
        entries,
        outcome,
        finished_at: run.parts.clock.now(),
        error,
        safe_state,
        rto_stage: run.runbook.rto_stage(),
    })
}
