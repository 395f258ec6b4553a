//! Drill cadence: which DR tests are due, from the journal history.
//!
//! The guide the project starts from asks for monthly restore tests,
//! quarterly partial drills, full failover drills twice a year, and a monthly
//! review of the runbook. Successful drills count as partial drills;
//! successful switchovers, failovers and failbacks as full failover drills;
//! restore tests and reviews are recorded with
//! [`JournalEvent::ActivityRecorded`](crate::engine::JournalEvent::ActivityRecorded).

use std::fmt;
use std::time::Duration;

use crate::engine::{JournalEntry, JournalEvent, Outcome, RunMode, RunReport};
use crate::model::Timestamp;

const DAY: u64 = 24 * 3600;

/// A recurring DR activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activity {
    /// Restore a backup and verify it (monthly).
    BackupRestoreTest,
    /// A drill on clones, production untouched (quarterly).
    PartialDrill,
    /// A real switchover/failover and failback (twice a year).
    FullFailoverDrill,
    /// Review the generated runbook with the team (monthly).
    RunbookReview,
}

impl Activity {
    /// All activities.
    pub const ALL: [Activity; 4] =
        [Activity::BackupRestoreTest, Activity::PartialDrill, Activity::FullFailoverDrill, Activity::RunbookReview];

    /// How often it is due.
    pub fn period(self) -> Duration {
        Duration::from_secs(match self {
            Activity::BackupRestoreTest | Activity::RunbookReview => 30 * DAY,
            Activity::PartialDrill => 91 * DAY,
            Activity::FullFailoverDrill => 182 * DAY,
        })
    }

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::BackupRestoreTest => "backup-restore-test",
            Activity::PartialDrill => "partial-drill",
            Activity::FullFailoverDrill => "full-failover-drill",
            Activity::RunbookReview => "runbook-review",
        }
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
            let last = history
                .iter()
                .filter_map(|e| match &e.event {
                    JournalEvent::ActivityRecorded { activity: a, .. } if *a == activity => Some(e.at),
                    JournalEvent::RunFinished { outcome: Outcome::Succeeded, report } => {
                        let kind = match report.mode? {
                            RunMode::Drill => Activity::PartialDrill,
                            _ => Activity::FullFailoverDrill,
                        };
                        (kind == activity).then_some(e.at)
                    }
                    _ => None,
                })
                .max();
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
