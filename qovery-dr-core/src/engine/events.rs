//! Typed progress events, for live display, tracing and metrics.

use std::time::Duration;

use super::interlock::Interlock;
use crate::error::ErrorKind;

/// Something the engine is doing. Subscribe with [`Engine::subscribe`](super::Engine::subscribe).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A stage began.
    StageStarted {
        /// Its name.
        stage: String,
        /// Its steps.
        steps: usize,
    },
    /// A step began.
    StepStarted {
        /// The step.
        step: String,
    },
    /// A step was already done (resumed run).
    StepSkipped {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// An attempt failed.
    AttemptFailed {
        /// The step.
        step: String,
        /// The attempt (1-based).
        attempt: u32,
        /// The kind.
        kind: ErrorKind,
        /// The error.
        message: String,
    },
    /// The step will retry after a delay.
    Retrying {
        /// The step.
        step: String,
        /// The next attempt.
        attempt: u32,
        /// The delay.
        #[serde(with = "crate::model::duration_serde")]
        after: Duration,
    },
    /// The step is waiting for something.
    Waiting {
        /// The step.
        step: String,
        /// For what.
        what: String,
    },
    /// A step finished.
    StepFinished {
        /// The step.
        step: String,
        /// Attempts used.
        attempts: u32,
        /// Time taken.
        #[serde(with = "crate::model::duration_serde")]
        took: Duration,
    },
    /// An interlock refused a step.
    InterlockRefused {
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// The evidence.
        evidence: String,
    },
    /// An interlock was overridden.
    InterlockOverridden {
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// The reason given.
        reason: String,
    },
    /// The approver is being asked.
    ApprovalRequested {
        /// The run.
        run_id: String,
    },
}
