//! Records every call made through a [`RecordingLayer`] (every call to the simulated
//! world, or to any provider wrapped in one), and the invariant violations seen.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use qovery_dr_core::ErrorKind;
use qovery_dr_core::provider::{CallFuture, CallInfo, Layer, Next};
use tokio::time::Instant;

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

/// The call log of a world (or of any providers wrapped in a [`RecordingLayer`]).
#[derive(Debug)]
pub struct Recorder {
    origin: Instant,
    calls: Mutex<Vec<Call>>,
    violations: Mutex<Vec<Violation>>,
}

impl Default for Recorder {
    /// A recorder whose times count from now.
    fn default() -> Self {
        Self::starting_at(Instant::now())
    }
}

impl Recorder {
    /// A recorder whose times ([`Call::at`], [`Call::started`]) count from `origin`.
    pub fn starting_at(origin: Instant) -> Self {
        Self { origin, calls: Mutex::new(Vec::new()), violations: Mutex::new(Vec::new()) }
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

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

tokio::task_local! {
    /// Whether the call being recorded changed anything, as the innermost party that
    /// knows says (the simulated world; else the fault layer; else success of a write).
    static APPLIED: Cell<Option<bool>>;
}

/// Reports whether the call in progress changed anything; the innermost report wins.
/// Outside a [`RecordingLayer`] it does nothing.
pub(crate) fn report_applied(applied: bool) {
    let _ = APPLIED.try_with(|cell| {
        if cell.get().is_none() {
            cell.set(Some(applied));
        }
    });
}

/// A [`Layer`] that records every call of the provider it wraps into a shared
/// [`Recorder`]: operation, arguments, outcome, whether it changed anything, timing and
/// the runbook step that made it. A call cancelled before it answered (a hang cut by
/// a timeout) is recorded as a `Timeout`.
///
/// ```
/// use std::sync::Arc;
/// use qovery_dr_core::provider::{ClusterProvider, Layered};
/// use qovery_dr_core::ClusterId;
/// use qovery_dr_testkit::memory::InMemoryCluster;
/// use qovery_dr_testkit::{Recorder, RecordingLayer, World};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let recorder = Arc::new(Recorder::default());
/// let cluster = Layered::new(InMemoryCluster::new(&World::new()), RecordingLayer::new(Arc::clone(&recorder)));
/// let _ = cluster.cluster_status(&ClusterId::new("c1")).await;
/// assert_eq!(recorder.calls_of("cluster.cluster_status").len(), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RecordingLayer {
    recorder: Arc<Recorder>,
}

impl RecordingLayer {
    /// A layer recording into `recorder`.
    pub fn new(recorder: Arc<Recorder>) -> Self {
        Self { recorder }
    }

    /// The log.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

/// Records a call that was dropped before it answered.
struct Unanswered<'a> {
    recorder: &'a Recorder,
    call: Option<Call>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(mut call) = self.call.take() {
            call.at = self.recorder.elapsed();
            self.recorder.record(call);
        }
    }
}

impl Layer for RecordingLayer {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        Box::pin(async move {
            let mut entry = Call {
                seq: 0,
                operation: call.operation.to_owned(),
                detail: format!("{:?}", call.args),
                mutating: call.mutating,
                applied: false,
                error: Some(ErrorKind::Timeout),
                at: Duration::ZERO,
                started: self.recorder.elapsed(),
                step: qovery_dr_core::engine::current_step(),
            };
            let mut pending = Unanswered { recorder: &self.recorder, call: Some(entry.clone()) };
            let (result, applied) = APPLIED
                .scope(Cell::new(None), async {
                    let result = next().await;
                    (result, APPLIED.with(Cell::get))
                })
                .await;
            pending.call = None;
            entry.applied = applied.unwrap_or(call.mutating && result.is_ok());
            entry.error = result.as_ref().err().map(qovery_dr_core::ProviderError::kind);
            entry.at = self.recorder.elapsed();
            self.recorder.record(entry);
            result
        })
    }
}
