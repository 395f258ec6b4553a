//! Interlocks: safety rules checked before each step, refusable only with an
//! explicit, journaled override.

use std::fmt;
use std::str::FromStr;

/// A safety rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Interlock {
    /// Never promote while the old primary may still accept writes: fence it
    /// or prove it down first.
    PrimaryMayAcceptWrites,
    /// Never promote when the measured (or estimated) data loss exceeds the
    /// RPO, unless an approver accepted that loss.
    LagExceedsRpo,
    /// Never point DNS at an unhealthy target.
    UnhealthyDnsTarget,
    /// One failover at a time.
    LockHeld,
}

impl Interlock {
    /// All rules.
    pub const ALL: [Interlock; 4] = [
        Interlock::PrimaryMayAcceptWrites,
        Interlock::LagExceedsRpo,
        Interlock::UnhealthyDnsTarget,
        Interlock::LockHeld,
    ];

    /// The kebab-case name used in overrides and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Interlock::PrimaryMayAcceptWrites => "primary-may-accept-writes",
            Interlock::LagExceedsRpo => "lag-exceeds-rpo",
            Interlock::UnhealthyDnsTarget => "unhealthy-dns-target",
            Interlock::LockHeld => "lock-held",
        }
    }
}

impl fmt::Display for Interlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interlock {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interlock::ALL.into_iter().find(|i| i.as_str() == s).ok_or_else(|| {
            format!(
                "unknown interlock {s:?}: expected one of {}",
                Interlock::ALL.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// An operator's explicit override of one rule, with the reason (journaled).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Override {
    /// The rule.
    pub rule: Interlock,
    /// Why it is safe to proceed (e.g. "instance terminated in the AWS console").
    pub reason: String,
}

impl Override {
    /// An override of `rule` for `reason`.
    pub fn new(rule: Interlock, reason: impl Into<String>) -> Self {
        Self { rule, reason: reason.into() }
    }
}
