//! One readiness check's result.

use std::fmt;

/// Pass, warn or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine.
    Pass,
    /// Works, but worth fixing before the incident.
    Warn,
    /// Would make a failover fail or lose more than the objectives allow.
    Fail,
}

impl CheckStatus {
    /// 1 for pass, 0.5 for warn, 0 for fail (the Prometheus gauge value).
    pub fn score(self) -> f64 {
        match self {
            CheckStatus::Pass => 1.0,
            CheckStatus::Warn => 0.5,
            CheckStatus::Fail => 0.0,
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        })
    }
}

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckCategory {
    /// The DR cluster.
    Cluster,
    /// A DR environment's deployment.
    Environment,
    /// Images in the DR registry.
    Images,
    /// Replication or backups.
    Replication,
    /// DNS records and health checks.
    Dns,
    /// The single-flight lock.
    Lock,
    /// Configuration parity between the sites.
    Parity,
    /// Cross-AZ resilience.
    Resilience,
    /// Drill and review cadence.
    Cadence,
}

impl CheckCategory {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckCategory::Cluster => "cluster",
            CheckCategory::Environment => "environment",
            CheckCategory::Images => "images",
            CheckCategory::Replication => "replication",
            CheckCategory::Dns => "dns",
            CheckCategory::Lock => "lock",
            CheckCategory::Parity => "parity",
            CheckCategory::Resilience => "resilience",
            CheckCategory::Cadence => "cadence",
        }
    }
}

/// One check's outcome, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    /// Stable id, e.g. `replication:shop-db` or `image:api`.
    pub id: String,
    /// What it looks at.
    pub category: CheckCategory,
    /// The outcome.
    pub status: CheckStatus,
    /// What was observed.
    pub observed: String,
    /// The threshold or expectation.
    pub expected: String,
    /// A sentence for humans (what to do if not passing).
    pub detail: String,
}

impl CheckResult {
    pub(crate) fn new(
        id: impl Into<String>,
        category: CheckCategory,
        status: CheckStatus,
        observed: impl Into<String>,
        expected: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            category,
            status,
            observed: observed.into(),
            expected: expected.into(),
            detail: detail.into(),
        }
    }

    /// A failing check whose provider call itself failed: the error kind is what was observed.
    pub(crate) fn failed_call(
        id: impl Into<String>,
        category: CheckCategory,
        expected: impl Into<String>,
        error: &crate::error::ProviderError,
    ) -> Self {
        Self::new(id, category, CheckStatus::Fail, error.kind().as_str(), expected, error.to_string())
    }
}
