//! Where a stopped run leaves production, said from what its journal shows.

use super::error::{EngineError, RunFailed};
use super::exec::Run;
use super::mode::RunMode;
use super::report::{self, Outcome};
use super::runbook::{Runbook, StepKind};
use super::{Engine, driver::run_report};
use crate::journal::JournalEntry;

impl Engine {
    /// A resume that stopped before driving its run: the report and the safe state come
    /// from the run's journal, as for a run that failed.
    pub(super) fn stopped_resume(&self, run: &Run, entries: &[JournalEntry], error: EngineError) -> Box<RunFailed> {
        let safe = if run.runbook.stages.is_empty() && run.lock_state().done("fence-primary") {
            "the journal shows the run fenced the primary, but its runbook could not be rebuilt: \
             read the journal before acting; resume this run once the error above is fixed"
                .to_owned()
        } else {
            safe_state(run, None)
        };
        let why = format!("the resume stopped before continuing the run: {error}");
        let report = run_report(run, entries, Outcome::Failed, Some(why), Some(safe));
        Box::new(RunFailed { error, report })
    }

    /// A resume whose journal does not read back as a run: nothing can be said of production
    /// but that the journal must be read by a person.
    pub(super) fn unreadable_journal(
        &self,
        mode: RunMode,
        run_id: &str,
        why: &str,
        error: EngineError,
    ) -> Box<RunFailed> {
        let safe = format!(
            "UNKNOWN: the journal of run {run_id} could not be read back ({why}); production may be \
             half-way through the {mode}. Read the journal and check the database roles and DNS by hand before acting"
        );
        let mut failed = self.early(Some(mode), error);
        failed.report.run_id = run_id.to_owned();
        failed.report.safe_state = Some(safe);
        failed
    }

    /// A resume refused before it read the journal: it changed nothing, and what the run
    /// it would continue left in production is in that journal, unread.
    pub(super) fn resume_refused(&self, error: EngineError) -> Box<RunFailed> {
        let mut failed = self.early(None, error);
        failed.report.safe_state = Some(
            "this resume changed nothing, but the journal was not read: what the interrupted run left in \
             production (it may be half-way) is in its journal; fix the error above and resume again, or read \
             the journal before acting"
                .to_owned(),
        );
        failed
    }

    /// A run that did not start (or a resume that found no run): nothing was changed.
    pub(super) fn early(&self, mode: Option<RunMode>, error: EngineError) -> Box<RunFailed> {
        let now = self.parts.clock.now();
        let runbook = Runbook::empty(&self.plan.name, mode.unwrap_or(RunMode::Drill));
        let none = std::collections::HashMap::new();
        let report = report::build(report::ReportInput {
            run_id: "",
            outputs: &none,
            plan: &self.plan.name,
            mode,
            objectives: self.plan.objectives,
            runbook: &runbook,
            entries: &[],
            outcome: Outcome::Failed,
            finished_at: now,
            error: Some(error.to_string()),
            safe_state: Some("nothing in production was changed (the run did not start)".to_owned()),
            rto_stage: runbook.rto_stage(),
        });
        Box::new(RunFailed { error, report })
    }
}

pub(super) fn safe_state(run: &Run, cleanup_error: Option<&str>) -> String {
    let lock = format!("the failover lock stays held by {} so that only `resume` continues it", run.run_id);
    if run.mode == RunMode::Drill {
        return match cleanup_error {
            None => "drill stopped; production services and DNS unchanged; the drill clones were deleted".to_owned(),
            Some(e) => {
                format!(
                    "drill stopped; production services and DNS unchanged; CLEAN-UP FAILED ({e}): delete the drill clones by hand"
                )
            }
        };
    }
    let state = run.lock_state();
    let done = |id: &str| state.done(id);
    let dns_all = run.runbook.steps().filter(|s| matches!(s.kind, StepKind::SwitchDns { .. })).all(|s| done(&s.id));
    let fence = state.fence();
    if fence.is_none() && state.started.contains("reprotect") && !done("reprotect") {
        format!(
            "the current primary is unchanged and serves; the re-protection of the original primary did not \
             complete: it may be stopped, rewound or half-subscribed, and what it wrote after the failover may be \
             discarded already. Resume this run to finish it, or re-protect it by hand; {lock}"
        )
    } else if fence.is_none()
        && !run.plan.primary.additional_databases.is_empty()
        && state.started.contains("fence-primary")
    {
        // Several databases are fenced side by side: an attempt that failed may have fenced some.
        format!(
            "the fence step did not complete: some of the old primaries may be fenced and refuse writes (the error names \
             those that are), and no standby is promoted. Resume this run to fence the rest and continue, or unfence \
             those fenced to return to the previous state; {lock}"
        )
    } else if fence.is_none() {
        "nothing in production was changed (stopped before fencing the primary)".to_owned()
    } else if !done("promote-database") && fence.is_some_and(|f| !f.fenced) {
        format!(
            "the old primary could not be fenced (unreachable) and the standby is NOT promoted: nothing was changed by this run. Resume this run once the old primary is proven down (override primary-may-accept-writes with the proof); {lock}"
        )
    } else if !done("promote-database") {
        format!(
            "the old primary is fenced (or recorded unreachable) and the standby is NOT promoted: writes are refused. Resume this run to continue, or unfence the primary to return to the previous state; {lock}"
        )
    } else if !dns_all {
        format!(
            "the standby is promoted and is the only primary; DNS still points (at least partly) at the old site. Resume this run to finish; never unfence the old primary; {lock}"
        )
    } else {
        format!("DNS points at the DR site; the final verification did not complete. Resume this run to verify; {lock}")
    }
}
