//! Drill cadence: which DR tests are due, from the journal history.
//!
//! The guide the project starts from asks for monthly restore tests,
//! quarterly partial drills, full failover drills twice a year, and a monthly
//! review of the runbook. Successful drills count as partial drills;
//! successful switchovers, failovers and failbacks as full failover drills;
//! restore tests and reviews are recorded with
//! [`JournalEvent::ActivityRecorded`](crate::journal::JournalEvent::ActivityRecorded).

use crate::engine::{Outcome, RunReport};
use crate::journal::{JournalEntry, JournalEvent};
use crate::model::{Activity, Timestamp};

/// Where one activity stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CadenceItem {
    /// The activity.
    pub activity: Activity,
    /// When it was last done.
    pub last: Option<Timestamp>,
    /// When it is next due.
    pub due_at: Option<Timestamp>,
    /// Whether it is overdue (or was never done).
    pub overdue: bool,
}

/// The cadence of every activity at `now`, from one or more journals' entries.
pub fn cadence(history: &[JournalEntry], now: Timestamp) -> Vec<CadenceItem> {
    Activity::ALL
        .into_iter()
        .map(|activity| {
            let last = history.iter().filter(|e| e.completed_activity() == Some(activity)).map(|e| e.at).max();
            let due_at = last.map(|l| l.plus(activity.period()));
            let overdue = due_at.is_none_or(|d| d < now);
            CadenceItem { activity, last, due_at, overdue }
        })
        .collect()
}

/// The most recent successful drill (of any mode), for its age and measured RTO/RPO.
pub fn last_drill(history: &[JournalEntry]) -> Option<(Timestamp, RunReport)> {
    history
        .iter()
        .filter_map(|e| match &e.event {
            JournalEvent::RunFinished { outcome: Outcome::Succeeded, report } => Some((e.at, (**report).clone())),
            _ => None,
        })
        .max_by_key(|(at, _)| *at)
}
