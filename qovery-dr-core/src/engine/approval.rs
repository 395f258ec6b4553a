//! The approval gate: nothing past preflight happens without one.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use super::mode::RunMode;
use crate::model::Timestamp;

/// What the approver is asked to approve.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRequest {
    /// The plan.
    pub plan: String,
    /// The mode.
    pub mode: RunMode,
    /// The run.
    pub run_id: String,
    /// A human summary of what will happen (the dry-run table).
    pub summary: String,
    /// The data loss expected if the run proceeds, when measurable.
    #[serde(with = "crate::model::duration_serde::option")]
    pub estimated_data_loss: Option<Duration>,
    /// Refusals the dry run foresees now (`step: evidence`): what would stop the run if
    /// it were approved as things stand, evaluated against live state at approval time.
    pub foreseen_refusals: Vec<String>,
    /// Warnings the dry run foresees now (`step: evidence`): what would not stop the run
    /// but the approver should know (an override in force, a DR target not healthy yet).
    #[serde(default)]
    pub foreseen_warnings: Vec<String>,
}

/// A granted approval (journaled).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// Who approved.
    pub approver: String,
    /// When.
    pub at: Timestamp,
    /// Their words.
    pub comment: String,
    /// Data loss the approver accepts ("approved data-loss budget"): a
    /// promotion whose estimated loss is within it is not refused for lag.
    #[serde(with = "crate::model::duration_serde::option")]
    pub accepted_data_loss: Option<Duration>,
}

/// The approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approval refused by {by}: {reason}")]
pub struct ApprovalDenied {
    /// Who refused.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// Asks a human (or a policy) to approve a run.
#[async_trait]
pub trait Approver: Send + Sync + Debug + 'static {
    /// Approves or refuses. May wait for a human.
    async fn approve(&self, request: &ApprovalRequest) -> Result<Approval, ApprovalDenied>;
}

/// A shared approver (e.g. one the embedding tool also reads from) approves as it does.
#[async_trait]
impl<T: Approver + ?Sized> Approver for std::sync::Arc<T> {
    async fn approve(&self, request: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        (**self).approve(request).await
    }
}

/// Approves everything, as `who` (drills, tests, `--yes`).
#[derive(Debug, Clone)]
pub struct AutoApprove {
    /// Recorded as the approver.
    pub who: String,
    /// Data loss accepted.
    pub accepted_data_loss: Option<Duration>,
}

impl AutoApprove {
    /// Approves as `who`, accepting no data loss beyond the RPO.
    pub fn new(who: impl Into<String>) -> Self {
        Self { who: who.into(), accepted_data_loss: None }
    }
}

#[async_trait]
impl Approver for AutoApprove {
    async fn approve(&self, _request: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        Ok(Approval {
            approver: self.who.clone(),
            at: Timestamp::now(),
            comment: "approved automatically".to_owned(),
            accepted_data_loss: self.accepted_data_loss,
        })
    }
}

/// Refuses everything (the default when no approver is configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

#[async_trait]
impl Approver for DenyAll {
    async fn approve(&self, _request: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        Err(ApprovalDenied { by: "engine".to_owned(), reason: "no approver is configured".to_owned() })
    }
}
