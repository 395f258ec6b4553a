//! The rules a journal read back must follow before a run is resumed or reported from it.

use std::collections::{HashMap, HashSet};

use super::{JOURNAL_SCHEMA, JournalEntry, JournalError, JournalEvent};
use crate::engine::Outcome;

/// Checks the journal's rules and names the first entry that breaks one:
/// - no entry has a schema newer than [`JOURNAL_SCHEMA`];
/// - sequence numbers increase;
/// - a run's entries follow its `RunStarted`;
/// - a step's attempt fails or finishes only after it started (in that run);
/// - after a run's `RunFinished`, the only entry of that run may be `RunResumed`, and
///   not after a success.
///
/// ```
/// use qovery_dr_core::engine::{JournalEntry, JournalEvent, validate_journal};
/// use qovery_dr_core::model::Timestamp;
/// let at = Timestamp::from_unix_millis(0);
/// let finished = JournalEvent::StepFinished { step: "fence-primary".into(), output: serde_json::json!({}), attempts: 1, duration_ms: 0 };
/// let bad = [JournalEntry::new(0, at, "r1", finished)];
/// let e = validate_journal(&bad).unwrap_err();
/// assert!(e.to_string().contains("journal entry 0"), "{e}");
/// ```
pub fn validate_journal(entries: &[JournalEntry]) -> Result<(), JournalError> {
    #[derive(Default)]
    struct RunSeen<'a> {
        started_steps: HashSet<&'a str>,
        finished: Option<Outcome>,
    }
    let mut runs: HashMap<&str, RunSeen<'_>> = HashMap::new();
    let mut previous: Option<u64> = None;
    for e in entries {
        let bad = |message: String| Err(JournalError::Invalid { seq: e.seq, message });
        if e.schema > JOURNAL_SCHEMA {
            return bad(format!(
                "it was written with journal schema {}, newer than the {JOURNAL_SCHEMA} this version reads",
                e.schema
            ));
        }
        if let Some(p) = previous
            && e.seq <= p
        {
            return bad(format!("it follows entry {p}: entries are out of order"));
        }
        previous = Some(e.seq);
        let run = e.run_id.as_str();
        match &e.event {
            // Recorded outside any run.
            JournalEvent::ActivityRecorded { .. } => continue,
            JournalEvent::RunStarted { .. } => {
                if runs.contains_key(run) {
                    return bad(format!("run {run} starts a second time"));
                }
                runs.insert(run, RunSeen::default());
                continue;
            }
            _ => {}
        }
        let Some(seen) = runs.get_mut(run) else {
            return bad(format!("run {run} has no RunStarted entry before it"));
        };
        // Journals written before RunResumed existed continue a stopped run without it.
        if e.schema == 0 && seen.finished.is_some_and(|o| o != Outcome::Succeeded) {
            seen.finished = None;
        }
        match (&e.event, seen.finished) {
            (JournalEvent::RunResumed { .. }, Some(Outcome::Succeeded)) => {
                return bad(format!("run {run} is resumed after it succeeded"));
            }
            (JournalEvent::RunResumed { .. }, _) => seen.finished = None,
            (_, Some(outcome)) => {
                return bad(format!(
                    "run {run} finished ({outcome:?}) before it; only a RunResumed entry may follow a run's end"
                ));
            }
            (JournalEvent::StepStarted { step, .. }, None) => {
                seen.started_steps.insert(step);
            }
            (
                JournalEvent::StepFinished { step, .. }
                | JournalEvent::StepAttemptFailed { step, .. }
                | JournalEvent::StepFailed { step, .. },
                None,
            ) if !seen.started_steps.contains(step.as_str()) => {
                return bad(format!("step {step} of run {run} ends before it started"));
            }
            (JournalEvent::RunFinished { outcome, .. }, None) => seen.finished = Some(*outcome),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunMode;
    use crate::model::Timestamp;

    fn at() -> Timestamp {
        Timestamp::from_unix_millis(0)
    }

    fn started(seq: u64) -> JournalEntry {
        JournalEntry::new(
            seq,
            at(),
            "r1",
            JournalEvent::RunStarted { mode: RunMode::Failover, plan: "p".into(), operator: "o".into(), runbook: None },
        )
    }

    fn step(seq: u64, event: JournalEvent) -> JournalEntry {
        JournalEntry::new(seq, at(), "r1", event)
    }

    fn finished(seq: u64, name: &str) -> JournalEntry {
        step(
            seq,
            JournalEvent::StepFinished {
                step: name.into(),
                output: serde_json::json!({}),
                attempts: 1,
                duration_ms: 0,
            },
        )
    }

    fn message(entries: &[JournalEntry]) -> String {
        validate_journal(entries).unwrap_err().to_string()
    }

    #[test]
    fn a_well_formed_run_passes() {
        let entries = [
            started(0),
            step(1, JournalEvent::StepStarted { step: "a".into(), attempt: 1 }),
            finished(2, "a"),
            step(3, JournalEvent::LockReleased),
        ];
        validate_journal(&entries).unwrap();
    }

    #[test]
    fn each_broken_rule_names_its_entry() {
        let m = message(&[started(0), finished(1, "a")]);
        assert!(m.contains("journal entry 1") && m.contains("step a of run r1 ends before it started"), "{m}");
        let m = message(&[started(0), step(0, JournalEvent::LockReleased)]);
        assert!(m.contains("out of order"), "{m}");
        let m = message(&[step(0, JournalEvent::LockReleased)]);
        assert!(m.contains("no RunStarted"), "{m}");
        let mut newer = started(0);
        newer.schema = JOURNAL_SCHEMA + 1;
        let m = message(&[newer]);
        assert!(m.contains("newer than"), "{m}");
        let m = message(&[started(0), started(1)]);
        assert!(m.contains("starts a second time"), "{m}");
    }

    #[test]
    fn only_a_resume_follows_a_runs_end_and_never_a_success() {
        let report = |outcome| {
            let mut r = crate::engine::RunReport::placeholder("p", Some(RunMode::Failover), at());
            r.outcome = outcome;
            Box::new(r)
        };
        let end = |seq, outcome| step(seq, JournalEvent::RunFinished { outcome, report: report(outcome) });
        let resumed = |seq| step(seq, JournalEvent::RunResumed { operator: "o".into() });
        let m = message(&[started(0), end(1, Outcome::Failed), step(2, JournalEvent::LockReleased)]);
        assert!(m.contains("only a RunResumed entry may follow"), "{m}");
        validate_journal(&[started(0), end(1, Outcome::Failed), resumed(2), step(3, JournalEvent::LockReleased)])
            .unwrap();
        let m = message(&[started(0), end(1, Outcome::Succeeded), resumed(2)]);
        assert!(m.contains("resumed after it succeeded"), "{m}");
    }
}
