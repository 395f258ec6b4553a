//! The run report: outcome, measured RTO/RPO against the objectives, and
//! where the time went, step by step. Built from the journal, so a resumed
//! run reports the whole run.

use std::collections::BTreeMap;
use std::fmt;

use super::approval::Approval;
use super::interlock::Interlock;
use super::mode::RunMode;
use super::runbook::Runbook;
use crate::journal::{JournalEntry, JournalEvent};
use crate::model::{Objectives, Timestamp};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Every step succeeded.
    Succeeded,
    /// A step failed; see the error and the safe state.
    Failed,
    /// An interlock refused a step.
    Refused,
    /// The approval was refused.
    Denied,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Denied => "denied",
        })
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// Done.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Refused by an interlock.
    Refused,
    /// Never reached.
    NotRun,
}

/// One step in the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepReport {
    /// The step's id.
    pub name: String,
    /// Its stage.
    pub stage: String,
    /// What happened.
    pub status: StepStatus,
    /// Time from its first start to its end, in milliseconds.
    pub duration_ms: u64,
    /// Attempts used.
    pub attempts: u32,
    /// The last error, if any.
    pub error: Option<String>,
    /// What the step says about what it did, for a human: why a step that succeeded did
    /// not do its work (a fence skipped because the old primary is unreachable: it was NOT
    /// fenced), a custom step's summary, what a re-protection discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// It succeeded without doing its work (its note says why).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// The outcome of a run with measured RTO and RPO.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// The run.
    pub run_id: String,
    /// The plan.
    pub plan: String,
    /// The mode (`None` when no run was found, e.g. a resume of an empty journal).
    pub mode: Option<RunMode>,
    /// How it ended.
    pub outcome: Outcome,
    /// The plan's objectives.
    pub objectives: Objectives,
    /// The trigger.
    pub started_at: Timestamp,
    /// The end.
    pub finished_at: Timestamp,
    /// Trigger → DR verified healthy and DNS in sync (drills: the clone verified).
    pub measured_rto_ms: Option<u64>,
    /// Data lost, in time: 0 when the standby provably replayed the final
    /// LSN; otherwise the heartbeat bound. `None` when it could not be measured.
    pub measured_rpo_ms: Option<u64>,
    /// How the RPO was measured.
    pub rpo_evidence: Option<String>,
    /// Whether the measured RTO is within the objective.
    pub rto_met: Option<bool>,
    /// Whether the measured RPO is within the objective.
    pub rpo_met: Option<bool>,
    /// Every step of the runbook.
    pub steps: Vec<StepReport>,
    /// The approval, if given.
    pub approval: Option<Approval>,
    /// Interlocks overridden, with the operator's reasons.
    pub overrides: Vec<(Interlock, String)>,
    /// The error that stopped the run.
    pub error: Option<String>,
    /// Where the run stopped and what to do next, when it did not succeed.
    pub safe_state: Option<String>,
}

pub(crate) struct ReportInput<'a> {
    pub run_id: &'a str,
    pub plan: &'a str,
    pub mode: Option<RunMode>,
    pub objectives: Objectives,
    pub runbook: &'a Runbook,
    /// The typed outputs of the steps that finished (from the run's state).
    pub outputs: &'a std::collections::HashMap<String, super::output::StepOutput>,
    pub entries: &'a [JournalEntry],
    pub outcome: Outcome,
    pub finished_at: Timestamp,
    pub error: Option<String>,
    pub safe_state: Option<String>,
    pub rto_stage: &'a str,
}

pub(crate) fn build(input: ReportInput<'_>) -> RunReport {
    let entries: Vec<&JournalEntry> = input.entries.iter().filter(|e| e.run_id == input.run_id).collect();
    let started_at =
        entries.iter().find(|e| matches!(e.event, JournalEvent::RunStarted { .. })).map_or(input.finished_at, |e| e.at);
    let mut first_start: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut attempts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut finished: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut failed: BTreeMap<&str, (Timestamp, String)> = BTreeMap::new();
    let mut refused: BTreeMap<&str, String> = BTreeMap::new();
    let mut approval = None;
    let mut overrides = Vec::new();
    for e in &entries {
        match &e.event {
            JournalEvent::StepStarted { step, attempt } => {
                first_start.entry(step).or_insert(e.at);
                let a = attempts.entry(step).or_insert(0);
                *a = (*a).max(*attempt);
            }
            JournalEvent::StepFinished { step, .. } => {
                finished.insert(step, e.at);
            }
            JournalEvent::StepFailed { step, message, .. } => {
                failed.insert(step, (e.at, message.clone()));
            }
            JournalEvent::InterlockRefused { step, rule, evidence } => {
                refused.insert(step, format!("{rule}: {evidence}"));
            }
            JournalEvent::InterlockOverridden { rule, reason, .. } => overrides.push((*rule, reason.clone())),
            JournalEvent::ApprovalGranted { approval: a } => approval = Some(a.clone()),
            _ => {}
        }
    }
    let mut steps = Vec::new();
    let mut rto_end: Option<Timestamp> = None;
    let cleanup = super::runbook::Stage { name: "cleanup".to_owned(), steps: input.runbook.cleanup.clone() };
    for stage in input.runbook.stages.iter().chain(std::iter::once(&cleanup)) {
        for step in &stage.steps {
            let id = step.id.as_str();
            let start = first_start.get(id).copied();
            let (status, end, error) = if let Some(end) = finished.get(id) {
                (StepStatus::Succeeded, Some(*end), None)
            } else if let Some((end, msg)) = failed.get(id) {
                (StepStatus::Failed, Some(*end), Some(msg.clone()))
            } else if let Some(why) = refused.get(id) {
                (StepStatus::Refused, None, Some(why.clone()))
            } else {
                (StepStatus::NotRun, None, None)
            };
            if stage.name == input.rto_stage && status == StepStatus::Succeeded {
                rto_end = rto_end.max(end);
            }
            let duration_ms = match (start, end) {
                (Some(s), Some(e)) => millis(e.saturating_since(s)),
                _ => 0,
            };
            steps.push(StepReport {
                name: id.to_owned(),
                stage: stage.name.clone(),
                status,
                duration_ms,
                attempts: attempts.get(id).copied().unwrap_or(0),
                error,
                note: input.outputs.get(id).and_then(|o| o.note()).map(str::to_owned),
                skipped: input.outputs.get(id).is_some_and(|o| o.skipped()),
            });
        }
    }
    let complete = steps.iter().filter(|s| s.stage == input.rto_stage).all(|s| s.status == StepStatus::Succeeded);
    let measured_rto_ms = rto_end.filter(|_| complete).map(|end| millis(end.saturating_since(started_at)));
    // The figure the `record` step journaled; a drill stopped before it still reports what
    // its measurement step saw.
    let rpo = ["record", "measure-replication-lag"].iter().find_map(|id| match input.outputs.get(*id) {
        Some(super::output::StepOutput::Rpo(r)) => Some(r),
        _ => None,
    });
    let measured_rpo_ms = rpo.and_then(|r| r.rpo_ms);
    let rpo_evidence = rpo.and_then(|r| r.rpo_evidence.clone());
    RunReport {
        run_id: input.run_id.to_owned(),
        plan: input.plan.to_owned(),
        mode: input.mode,
        outcome: input.outcome,
        objectives: input.objectives,
        started_at,
        finished_at: input.finished_at,
        rto_met: measured_rto_ms.map(|ms| u128::from(ms) <= input.objectives.rto.as_millis()),
        rpo_met: measured_rpo_ms.map(|ms| u128::from(ms) <= input.objectives.rpo.as_millis()),
        measured_rto_ms,
        measured_rpo_ms,
        rpo_evidence,
        steps,
        approval,
        overrides,
        error: input.error,
        safe_state: input.safe_state,
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn fmt_ms(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => humantime::format_duration(std::time::Duration::from_millis(ms)).to_string(),
        None => "not measured".to_owned(),
    }
}

impl RunReport {
    /// A human-readable summary: outcome, RTO/RPO against the objectives, steps.
    pub fn to_text(&self) -> String {
        let verdict = |met: Option<bool>| match met {
            Some(true) => "within objective",
            Some(false) => "OVER OBJECTIVE",
            None => "n/a",
        };
        let mut out = format!(
            "{} {} of plan {}: {}\n  measured RTO {} (objective {}, {})\n  measured RPO {} (objective {}, {})\n",
            self.mode.map_or_else(|| "no run".to_owned(), |m| m.to_string()),
            self.run_id,
            self.plan,
            self.outcome,
            fmt_ms(self.measured_rto_ms),
            humantime::format_duration(self.objectives.rto),
            verdict(self.rto_met),
            fmt_ms(self.measured_rpo_ms),
            humantime::format_duration(self.objectives.rpo),
            verdict(self.rpo_met),
        );
        if let Some(ev) = &self.rpo_evidence {
            out.push_str(&format!("  RPO evidence: {ev}\n"));
        }
        if let Some(a) = &self.approval {
            out.push_str(&format!("  approved by {} at {}\n", a.approver, a.at));
        }
        for (rule, reason) in &self.overrides {
            out.push_str(&format!("  interlock {rule} overridden: {reason}\n"));
        }
        let w = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
        out.push_str(&format!("  {:<w$} {:<8} {:>12} {:>8}\n", "step", "status", "duration", "attempts"));
        for s in &self.steps {
            let status = match s.status {
                StepStatus::Succeeded if s.skipped => "skipped",
                StepStatus::Succeeded => "ok",
                StepStatus::Failed => "FAILED",
                StepStatus::Refused => "REFUSED",
                StepStatus::NotRun => "-",
            };
            out.push_str(&format!(
                "  {:<w$} {:<8} {:>12} {:>8}\n",
                s.name,
                status,
                fmt_ms(Some(s.duration_ms)),
                s.attempts
            ));
            if let Some(e) = &s.error {
                out.push_str(&format!("      {e}\n"));
            }
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if let Some(s) = &self.safe_state {
            out.push_str(&format!("  safe state: {s}\n"));
        }
        out
    }
}

#[cfg(test)]
impl RunReport {
    /// An empty report (tests).
    pub(crate) fn placeholder(plan: &str, mode: Option<RunMode>, at: Timestamp) -> Self {
        RunReport {
            run_id: String::new(),
            plan: plan.to_owned(),
            mode,
            outcome: Outcome::Failed,
            objectives: crate::model::Objectives::new(std::time::Duration::ZERO, std::time::Duration::ZERO),
            started_at: at,
            finished_at: at,
            measured_rto_ms: None,
            measured_rpo_ms: None,
            rpo_evidence: None,
            rto_met: None,
            rpo_met: None,
            steps: Vec::new(),
            approval: None,
            overrides: Vec::new(),
            error: None,
            safe_state: None,
        }
    }
}
