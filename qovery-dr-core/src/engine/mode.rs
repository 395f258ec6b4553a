//! The four ways of running a runbook.

use std::fmt;
use std::str::FromStr;

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunMode {
    /// Planned: fence, drain, wait for the standby to replay the final LSN, then
    /// promote. Zero data loss, proven by LSN.
    Switchover,
    /// Unplanned: the primary is unreachable. Fence it or have an operator
    /// prove it down; the data loss is bounded by heartbeats and reported.
    Failover,
    /// Rehearsal: clone the environments onto the DR cluster, deploy and verify
    /// them, measure RTO/RPO, and always delete the clones. Production (DNS,
    /// database roles) is not touched.
    Drill,
    /// Back to the original primary after re-protection: a switchover in the
    /// reverse direction.
    Failback,
}

impl RunMode {
    /// All modes.
    pub const ALL: [RunMode; 4] = [RunMode::Switchover, RunMode::Failover, RunMode::Drill, RunMode::Failback];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Switchover => "switchover",
            RunMode::Failover => "failover",
            RunMode::Drill => "drill",
            RunMode::Failback => "failback",
        }
    }

    /// Whether the run changes which database is primary and where DNS points.
    pub fn moves_production(self) -> bool {
        self != RunMode::Drill
    }

    /// Whether the old primary is drained and the standby must replay its final LSN.
    pub fn is_planned(self) -> bool {
        matches!(self, RunMode::Switchover | RunMode::Failback)
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown mode {s:?}: expected switchover, failover, drill or failback"))
    }
}
