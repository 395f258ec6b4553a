//! Recovery objectives, DR strategy tiers and resilience levels.

use std::fmt;
use std::time::Duration;

/// The two numbers that drive DR: how long the service may be down (RTO) and
/// how much data, measured in time, may be lost (RPO).
///
/// ```
/// use qovery_dr_core::Objectives;
/// use std::time::Duration;
/// let o = Objectives::new(Duration::from_secs(15 * 60), Duration::from_secs(60));
/// assert_eq!(o.to_string(), "RTO 15m, RPO 1m");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Objectives {
    /// Recovery time objective: maximum tolerated downtime.
    #[serde(with = "crate::model::duration_serde")]
    pub rto: Duration,
    /// Recovery point objective: maximum tolerated data loss, in time.
    #[serde(with = "crate::model::duration_serde")]
    pub rpo: Duration,
}

impl Objectives {
    /// Builds objectives from an RTO and an RPO.
    pub fn new(rto: Duration, rpo: Duration) -> Self {
        Self { rto, rpo }
    }
}

impl fmt::Display for Objectives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RTO {}, RPO {}", humantime::format_duration(self.rto), humantime::format_duration(self.rpo))
    }
}

/// An inclusive range of durations a tier can achieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The best (shortest) duration achievable.
    pub min: Duration,
    /// The worst (longest) duration typical of the tier.
    pub max: Duration,
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", humantime::format_duration(self.min), humantime::format_duration(self.max))
    }
}

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// DR strategy tiers, trading cost for RTO/RPO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Tier {
    /// Restore from backups into freshly provisioned infrastructure: hours.
    BackupRestore,
    /// Core pieces (database replica) running, the rest scaled to zero: tens of minutes.
    PilotLight,
    /// A scaled-down but running copy of production: minutes.
    WarmStandby,
    /// Both sites serve traffic: near zero.
    ActiveActive,
}

impl Tier {
    /// All tiers, cheapest first.
    pub const ALL: [Tier; 4] = [Tier::BackupRestore, Tier::PilotLight, Tier::WarmStandby, Tier::ActiveActive];

    /// The RTO this tier can achieve: objectives below `min` are unrealistic for it.
    pub fn achievable_rto(self) -> DurationRange {
        match self {
            Tier::BackupRestore => DurationRange { min: mins(60), max: mins(24 * 60) },
            Tier::PilotLight => DurationRange { min: mins(10), max: mins(60) },
            Tier::WarmStandby => DurationRange { min: mins(1), max: mins(15) },
            Tier::ActiveActive => DurationRange { min: Duration::ZERO, max: mins(1) },
        }
    }

    /// The RPO this tier can achieve: objectives below `min` are unrealistic for it.
    pub fn achievable_rpo(self) -> DurationRange {
        match self {
            Tier::BackupRestore => DurationRange { min: mins(60), max: mins(24 * 60) },
            Tier::PilotLight => DurationRange { min: Duration::from_secs(1), max: mins(15) },
            Tier::WarmStandby => DurationRange { min: Duration::from_secs(1), max: mins(5) },
            Tier::ActiveActive => DurationRange { min: Duration::ZERO, max: Duration::from_secs(1) },
        }
    }

    /// The kebab-case name used in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::BackupRestore => "backup-restore",
            Tier::PilotLight => "pilot-light",
            Tier::WarmStandby => "warm-standby",
            Tier::ActiveActive => "active-active",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far apart the two sites are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ResilienceLevel {
    /// Multiple availability zones of one region: survives a zone loss only.
    CrossAz,
    /// A standby Qovery cluster in another region of the same cloud.
    CrossRegion,
    /// A standby on another cloud provider; replication by periodic dumps.
    CrossCloud,
}

impl ResilienceLevel {
    /// The kebab-case name used in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            ResilienceLevel::CrossAz => "cross-az",
            ResilienceLevel::CrossRegion => "cross-region",
            ResilienceLevel::CrossCloud => "cross-cloud",
        }
    }
}

impl fmt::Display for ResilienceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_get_faster_as_they_get_costlier() {
        for pair in Tier::ALL.windows(2) {
            assert!(pair[0].achievable_rto().min > pair[1].achievable_rto().min);
            assert!(pair[0].achievable_rpo().min >= pair[1].achievable_rpo().min);
        }
    }

    #[test]
    fn ranges_are_well_formed() {
        for t in Tier::ALL {
            assert!(t.achievable_rto().min <= t.achievable_rto().max, "{t}");
            assert!(t.achievable_rpo().min <= t.achievable_rpo().max, "{t}");
        }
    }

    #[test]
    fn objectives_serialize_as_human_durations() {
        let o = Objectives::new(mins(15), Duration::from_secs(30));
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(json, r#"{"rto":"15m","rpo":"30s"}"#);
        let back: Objectives = serde_json::from_str(&json).unwrap();
        assert_eq!(back, o);
    }
}
