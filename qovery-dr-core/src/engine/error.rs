//! Engine errors: each names the step and, with the report, the safe state.

use super::approval::ApprovalDenied;
use super::interlock::Interlock;
use super::report::RunReport;
use crate::error::ErrorKind;
use crate::journal::JournalError;
use crate::lock::LockError;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The preflight found the DR site not ready.
    #[error("step {step}: not ready: {reason}")]
    NotReady {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// An interlock refused a step and no override was given.
    #[error(
        "step {step}: refused by interlock {rule}: {evidence}; override only with an explicit reason (`{rule}=<why it is safe>`)"
    )]
    Refused {
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// What was observed.
        evidence: String,
    },
    /// A step failed after its retries.
    #[error("step {step} (stage {stage}) failed after {attempts} attempt(s): {message}")]
    StepFailed {
        /// The step.
        step: String,
        /// Its stage.
        stage: String,
        /// The provider error kind, if it came from a provider.
        kind: Option<ErrorKind>,
        /// The error.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The approver refused.
    #[error("step approval: {0}")]
    Denied(#[from] ApprovalDenied),
    /// The journal could not be written or read: the run stops rather than act unrecorded.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The lock's backend failed.
    #[error("step lock: {0}")]
    Lock(#[from] LockError),
    /// `resume` found no run in the journal.
    #[error("the journal holds no run to resume")]
    NothingToResume,
    /// The engine's clock and the providers' clock disagreed when the engine was
    /// built, so every measured data loss (heartbeat time against the engine's
    /// time) would be wrong.
    #[error(
        "the engine's clock reads {engine} but the providers' clock reads {providers}: measured RPO and loss estimates compare the two, so nothing runs; build the engine without .clock(...) to use the providers' clock (the testkit world sets it), or give it the same clock"
    )]
    ClockMismatch {
        /// The engine's time.
        engine: crate::model::Timestamp,
        /// The providers' time.
        providers: crate::model::Timestamp,
    },
    /// A custom step was registered wrongly (a malformed or duplicate name): nothing runs.
    #[error("{0}; fix the EngineBuilder::custom_step calls")]
    CustomStep(String),
    /// `run` found an unfinished run in the journal.
    #[error("the journal holds unfinished run {run_id}: resume it, or start the new run with another journal")]
    UnfinishedRun {
        /// The unfinished run.
        run_id: String,
    },
}

impl EngineError {
    /// The step the error names, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            EngineError::NotReady { step, .. }
            | EngineError::Refused { step, .. }
            | EngineError::StepFailed { step, .. } => Some(step),
            EngineError::Denied(_) => Some("approval"),
            EngineError::Lock(_) => Some("lock"),
            _ => None,
        }
    }
}

/// A run that did not succeed: the error and the report (with its safe state).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunFailed {
    /// Why it stopped.
    #[source]
    pub error: EngineError,
    /// What was done, and the safe state it stopped in.
    pub report: RunReport,
}
