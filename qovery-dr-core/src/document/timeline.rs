//! A run's timeline, rebuilt from its journal entries.

use std::collections::BTreeMap;

use crate::engine::{Approval, Interlock, JournalEntry, JournalEvent, RunMode, RunReport, StepStatus};
use crate::model::Timestamp;

/// One step on the timeline (milliseconds from the trigger).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepSpan {
    /// The step.
    pub step: String,
    /// Its stage.
    pub stage: String,
    /// First start.
    pub start_ms: u64,
    /// End (finished or failed), if it ended.
    pub end_ms: Option<u64>,
    /// Attempts made.
    pub attempts: u32,
    /// Failed attempts: when, and why.
    pub failed_attempts: Vec<(u64, String)>,
    /// Outcome.
    pub status: StepStatus,
}

/// Something worth showing an auditor: approvals, refusals, overrides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEvent {
    /// An approval.
    Approved {
        /// Milliseconds from the trigger.
        at_ms: u64,
        /// The approval.
        approval: Approval,
    },
    /// An interlock refused a step.
    Refused {
        /// Milliseconds from the trigger.
        at_ms: u64,
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// The evidence.
        evidence: String,
    },
    /// An interlock was overridden.
    Overridden {
        /// Milliseconds from the trigger.
        at_ms: u64,
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// The reason.
        reason: String,
        /// The evidence.
        evidence: String,
    },
}

/// The timeline of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// The run.
    pub run_id: String,
    /// The plan.
    pub plan: String,
    /// The mode.
    pub mode: RunMode,
    /// The trigger.
    pub started_at: Timestamp,
    /// The end, if the run ended.
    pub finished_at: Option<Timestamp>,
    /// Steps in start order.
    pub steps: Vec<StepSpan>,
    /// Approvals, refusals and overrides in time order.
    pub audit: Vec<AuditEvent>,
    /// The report, if the run ended.
    pub report: Option<RunReport>,
}

/// The journal holds no such run.
#[derive(Debug, thiserror::Error)]
#[error("the journal holds no run{}", .0.as_ref().map(|r| format!(" {r}")).unwrap_or_default())]
pub struct NoSuchRun(pub Option<String>);

impl Timeline {
    /// The timeline of `run_id` (or of the last run) in `entries`.
    pub fn from_journal(entries: &[JournalEntry], run_id: Option<&str>) -> Result<Timeline, NoSuchRun> {
        let start = entries
            .iter()
            .rev()
            .find(|e| matches!(e.event, JournalEvent::RunStarted { .. }) && run_id.is_none_or(|r| r == e.run_id))
            .ok_or_else(|| NoSuchRun(run_id.map(str::to_owned)))?;
        let (mode, plan) = match &start.event {
            JournalEvent::RunStarted { mode, plan, .. } => (*mode, plan.clone()),
            _ => return Err(NoSuchRun(run_id.map(str::to_owned))),
        };
        let run = start.run_id.clone();
        let t0 = start.at;
        let ms = |t: Timestamp| u64::try_from(t.saturating_since(t0).as_millis()).unwrap_or(u64::MAX);
        let mine: Vec<&JournalEntry> = entries.iter().filter(|e| e.run_id == run).collect();
        let report = mine.iter().rev().find_map(|e| match &e.event {
            JournalEvent::RunFinished { report, .. } => Some((**report).clone()),
            _ => None,
        });
        let finished_at = mine.iter().rev().find(|e| matches!(e.event, JournalEvent::RunFinished { .. })).map(|e| e.at);
        let stage_of: BTreeMap<String, String> =
            report.iter().flat_map(|r| r.steps.iter().map(|s| (s.name.clone(), s.stage.clone()))).collect();
        let mut spans: BTreeMap<String, StepSpan> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut audit = Vec::new();
        for e in &mine {
            match &e.event {
                JournalEvent::StepStarted { step, attempt } => {
                    let span = spans.entry(step.clone()).or_insert_with(|| {
                        order.push(step.clone());
                        StepSpan {
                            step: step.clone(),
                            stage: stage_of.get(step).cloned().unwrap_or_else(|| "?".to_owned()),
                            start_ms: ms(e.at),
                            end_ms: None,
                            attempts: 0,
                            failed_attempts: Vec::new(),
                            status: StepStatus::NotRun,
                        }
                    });
                    span.attempts = span.attempts.max(*attempt);
                }
                JournalEvent::StepAttemptFailed { step, message, .. } => {
                    if let Some(s) = spans.get_mut(step) {
                        s.failed_attempts.push((ms(e.at), message.clone()));
                    }
                }
                JournalEvent::StepFinished { step, .. } => {
                    if let Some(s) = spans.get_mut(step) {
                        s.end_ms = Some(ms(e.at));
                        s.status = StepStatus::Succeeded;
                    }
                }
                JournalEvent::StepFailed { step, .. } => {
                    if let Some(s) = spans.get_mut(step) {
                        s.end_ms = Some(ms(e.at));
                        s.status = StepStatus::Failed;
                    }
                }
                JournalEvent::ApprovalGranted { approval } => {
                    audit.push(AuditEvent::Approved { at_ms: ms(e.at), approval: approval.clone() })
                }
                JournalEvent::InterlockRefused { step, rule, evidence } => {
                    if let Some(s) = spans.get_mut(step)
                        && s.status != StepStatus::Succeeded
                    {
                        s.status = StepStatus::Refused;
                        s.end_ms = Some(ms(e.at));
                    }
                    audit.push(AuditEvent::Refused {
                        at_ms: ms(e.at),
                        step: step.clone(),
                        rule: *rule,
                        evidence: evidence.clone(),
                    });
                }
                JournalEvent::InterlockOverridden { step, rule, reason, evidence } => {
                    audit.push(AuditEvent::Overridden {
                        at_ms: ms(e.at),
                        step: step.clone(),
                        rule: *rule,
                        reason: reason.clone(),
                        evidence: evidence.clone(),
                    })
                }
                _ => {}
            }
        }
        let steps = order.into_iter().filter_map(|s| spans.remove(&s)).collect();
        Ok(Timeline { run_id: run, plan, mode, started_at: t0, finished_at, steps, audit, report })
    }

    /// The span of the whole run in milliseconds.
    pub fn total_ms(&self) -> u64 {
        let last = self.steps.iter().filter_map(|s| s.end_ms).max().unwrap_or(0);
        let end = self
            .finished_at
            .map_or(0, |f| u64::try_from(f.saturating_since(self.started_at).as_millis()).unwrap_or(u64::MAX));
        last.max(end).max(1)
    }
}
