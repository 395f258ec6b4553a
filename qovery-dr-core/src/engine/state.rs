//! The state of one run, rebuilt from its journal in one place: which steps started and
//! finished, their typed outputs, the approval, the overrides. A step, the safe state and
//! the report read typed fields from here; an output the journal does not hold is an
//! error for whoever needs it, never a default.

use std::collections::{HashMap, HashSet};

use super::approval::Approval;
use super::interlock::Interlock;
use super::output::{CatchUpOutput, CloneOutput, FenceOutput, OutputKind, PreflightOutput, RpoOutput, StepOutput};
use super::runbook::Runbook;
use crate::journal::{JournalEntry, JournalError, JournalEvent};
use crate::model::{DatabaseId, EnvironmentId, Lsn, Timestamp};

/// The typed outputs of the steps `run_id` finished, read from a journal: what a run
/// did, for tools that read journals (audits, dashboards). Checks the journal's rules
/// first ([`validate_journal`](super::validate_journal)); an output that does not
/// decode as its step kind's type is an error naming its entry.
///
/// ```
/// use qovery_dr_core::engine::{JournalEntry, JournalEvent, RunMode, StepOutput, journaled_outputs};
/// use qovery_dr_core::model::Timestamp;
/// let at = Timestamp::from_unix_millis(0);
/// let start = JournalEvent::RunStarted { mode: RunMode::Failover, plan: "shop".into(), operator: "me".into(), runbook: None };
/// let lock = JournalEvent::StepStarted { step: "lock".into(), attempt: 1 };
/// let done = JournalEvent::StepFinished { step: "lock".into(), output: serde_json::json!({ "holder": "me" }), attempts: 1, duration_ms: 3 };
/// let entries: Vec<_> = [start, lock, done].into_iter().enumerate().map(|(i, e)| JournalEntry::new(i as u64, at, "run-1", e)).collect();
/// let outputs = journaled_outputs(&entries, "run-1").unwrap();
/// assert!(matches!(&outputs["lock"], StepOutput::Lock(l) if l.holder == "me"));
/// ```
pub fn journaled_outputs(
    entries: &[JournalEntry],
    run_id: &str,
) -> Result<std::collections::BTreeMap<String, StepOutput>, JournalError> {
    let runbook = entries
        .iter()
        .find_map(|e| match &e.event {
            JournalEvent::RunStarted { runbook: Some(r), .. } if e.run_id == run_id => Some((**r).clone()),
            _ => None,
        })
        .unwrap_or_else(|| Runbook::empty("", super::RunMode::Drill));
    Ok(RunState::from_journal(run_id, &runbook, entries)?.finished.into_iter().collect())
}

/// What the journal says about the run so far.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub finished: HashMap<String, StepOutput>,
    pub started: HashSet<String>,
    pub attempts: HashMap<String, u32>,
    pub approval: Option<Approval>,
    pub overridden: HashSet<(String, Interlock)>,
}

impl RunState {
    /// The state of `run_id` from the journal's `entries`. The type of each finished
    /// step's output comes from the runbook (or, for a step it does not list, from the
    /// step's id); one that does not decode names its entry.
    pub(crate) fn from_journal(
        run_id: &str,
        runbook: &Runbook,
        entries: &[JournalEntry],
    ) -> Result<Self, JournalError> {
        crate::journal::validate_journal(entries)?;
        let kinds: HashMap<&str, OutputKind> =
            runbook.steps().map(|s| (s.id.as_str(), OutputKind::of(&s.kind))).collect();
        let mut state = RunState::default();
        for e in entries.iter().filter(|e| e.run_id == run_id) {
            match &e.event {
                JournalEvent::StepStarted { step, attempt } => {
                    state.started.insert(step.clone());
                    let a = state.attempts.entry(step.clone()).or_insert(0);
                    *a = (*a).max(*attempt);
                }
                JournalEvent::StepFinished { step, output, .. } => {
                    let bad = |message: String| JournalError::Invalid { seq: e.seq, message };
                    let kind =
                        kinds.get(step.as_str()).copied().or_else(|| OutputKind::for_step_id(step)).ok_or_else(
                            || bad(format!("step {step} is neither in the run's runbook nor a known step")),
                        )?;
                    let typed = kind
                        .decode(output.clone())
                        .map_err(|err| bad(format!("the output of step {step} does not decode ({err})")))?;
                    state.finished.insert(step.clone(), typed);
                }
                JournalEvent::ApprovalGranted { approval } => state.approval = Some(approval.clone()),
                JournalEvent::InterlockOverridden { step, rule, .. } => {
                    state.overridden.insert((step.clone(), *rule));
                }
                _ => {}
            }
        }
        Ok(state)
    }

    /// Whether `step` finished.
    pub(crate) fn done(&self, step: &str) -> bool {
        self.finished.contains_key(step)
    }

    pub(crate) fn preflight(&self) -> Option<&PreflightOutput> {
        match self.finished.get("preflight") {
            Some(StepOutput::Preflight(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn fence(&self) -> Option<&FenceOutput> {
        match self.finished.get("fence-primary") {
            Some(StepOutput::Fence(f)) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn catch_up(&self) -> Option<&CatchUpOutput> {
        match self.finished.get("catch-up") {
            Some(StepOutput::CatchUp(c)) => Some(c),
            _ => None,
        }
    }

    /// The clone of `source` a drill created.
    pub(crate) fn clone_of(&self, source: &EnvironmentId) -> Option<&CloneOutput> {
        match self.finished.get(&format!("clone:{source}")) {
            Some(StepOutput::Clone(c)) => Some(c),
            _ => None,
        }
    }

    /// A data-loss figure journaled by `step` (the drill's measurement, or `record`).
    pub(crate) fn rpo(&self, step: &str) -> Option<&RpoOutput> {
        match self.finished.get(step) {
            Some(StepOutput::Rpo(r)) => Some(r),
            _ => None,
        }
    }

    /// What the fence step journaled for database `db` (`main` is the site's first
    /// database, journaled at the top of the output; the others are in `other_databases`).
    pub(crate) fn fence_of(&self, db: &DatabaseId, main: &DatabaseId) -> Option<&FenceOutput> {
        self.fence().and_then(|f| if db == main { Some(f) } else { f.other_databases.get(db) })
    }

    fn catch_up_of(&self, db: &DatabaseId, main: &DatabaseId) -> Option<&CatchUpOutput> {
        self.catch_up().and_then(|c| if db == main { Some(c) } else { c.other_databases.get(db) })
    }

    /// The final position the standby of `db` was proven to replay before promotion
    /// (planned catch-up, or the short catch-up after an unplanned run's fence): zero loss.
    pub(crate) fn proven_final_lsn_of(&self, db: &DatabaseId, main: &DatabaseId) -> Option<Lsn> {
        self.catch_up_of(db, main).map(|c| c.final_lsn).or_else(|| self.fence_of(db, main).and_then(|f| f.caught_up_to))
    }

    /// The last moment the old primary of `db` was known to accept writes: its fence, or
    /// the first time the run found it unreachable (the preflight's observation).
    pub(crate) fn rpo_end_of(&self, db: &DatabaseId, main: &DatabaseId) -> Option<Timestamp> {
        match self.fence_of(db, main) {
            Some(f) if f.fenced => Some(f.at),
            _ => self.preflight().map(|p| p.observed_at),
        }
    }
}
