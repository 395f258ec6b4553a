//! Recurring DR activities (drills, restore tests, runbook reviews), recorded in the
//! journal and due on a cadence.

use std::fmt;
use std::time::Duration;

const DAY: u64 = 24 * 3600;

/// A recurring DR activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Activity {
    /// Restore a backup and verify it (monthly).
    BackupRestoreTest,
    /// A drill on clones, production's services and DNS unchanged (quarterly).
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
