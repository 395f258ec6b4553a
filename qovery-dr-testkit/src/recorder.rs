//! Records every call made to the simulated world, and the invariant violations seen.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use qovery_dr_core::ErrorKind;

/// One call to a simulated provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Order of the call (0-based).
    pub seq: u64,
    /// `trait.method`.
    pub operation: String,
    /// The arguments, rendered (never secret values).
    pub detail: String,
    /// Whether the operation changes state.
    pub mutating: bool,
    /// Whether the call changed the state (a mutating call that succeeded and
    /// was not a no-op, e.g. not a promotion of an already promoted standby).
    pub applied: bool,
    /// The error kind returned, if any.
    pub error: Option<ErrorKind>,
    /// Simulated time since the world was created, when the call ended.
    pub at: Duration,
    /// When the call began (before any injected latency).
    pub started: Duration,
    /// The runbook step that made the call
    /// ([`current_step`](qovery_dr_core::engine::current_step)), `None` outside steps.
    pub step: Option<String>,
}

/// A broken safety invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time since the world was created.
    pub at: Duration,
    /// Which rule and the evidence.
    pub description: String,
}

/// The call log of a world.
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    violations: Mutex<Vec<Violation>>,
}

impl Recorder {
    pub(crate) fn record(&self, mut call: Call) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        call.seq = calls.len() as u64;
        calls.push(call);
    }

    pub(crate) fn violation(&self, at: Duration, description: String) {
        tracing::error!(%description, "invariant violated in the simulated world");
        self.violations.lock().unwrap_or_else(PoisonError::into_inner).push(Violation { at, description });
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Mutating calls so far (applied or not).
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.mutating).collect()
    }

    /// Calls of one operation.
    pub fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.operation == operation).collect()
    }

    /// How many times an operation changed the state.
    pub fn applied_count(&self, operation: &str) -> usize {
        self.calls_of(operation).iter().filter(|c| c.applied).count()
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Forgets the calls (not the violations).
    pub fn clear_calls(&self) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Asserts no mutating call was made, naming the first one otherwise.
    #[track_caller]
    pub fn assert_no_mutations(&self) {
        let m = self.mutating_calls();
        assert!(m.is_empty(), "expected no mutating call, got {} (first: {:?})", m.len(), m.first());
    }

    /// Asserts no invariant was violated, listing them otherwise.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "invariant violations: {v:#?}");
    }
}
