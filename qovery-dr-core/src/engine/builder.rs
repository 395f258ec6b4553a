//! Building an [`Engine`]: options, journal, lock, approver, clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::approval::Approver;
use super::events::Event;
use super::interlock::{Interlock, Override};
use super::retry::RetryPolicy;
use super::{Engine, Providers};
use crate::clock::{Clock, SystemClock};
use crate::journal::Journal;
use crate::lock::FailoverLock;
use crate::plan::DrPlan;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Who runs it (journaled as lock holder), e.g. `alice@laptop`.
    pub operator: String,
    /// Interlock overrides, each with the operator's reason.
    pub overrides: Vec<Override>,
    /// How often waits poll.
    pub poll_interval: Duration,
    /// Steps of one stage running at once (1 = one at a time).
    pub max_concurrency: usize,
    /// Retries of each step.
    pub retry: RetryPolicy,
    /// Whether the run ends by waiting out the old DNS TTL (so resolvers have
    /// moved clients). Only simulations and tests should turn it off.
    pub drain_ttl: bool,
    /// How long a run or resume waits for a failover lock held by someone else before
    /// refusing (default: not at all). Set it above a distributed lock's lease TTL to take
    /// over a run whose holder died: its lease expires, the lock frees, and the resume
    /// continues from the shared journal.
    pub lock_wait: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            operator: "unknown-operator".to_owned(),
            overrides: Vec::new(),
            poll_interval: Duration::from_secs(5),
            max_concurrency: 32,
            retry: RetryPolicy::default(),
            drain_ttl: true,
            lock_wait: Duration::ZERO,
        }
    }
}

/// What every run of an engine shares.
#[derive(Debug, Clone)]
pub(crate) struct EngineParts {
    pub journal: Arc<dyn Journal>,
    pub lock: Arc<dyn FailoverLock>,
    pub approver: Arc<dyn Approver>,
    pub clock: Arc<dyn Clock>,
    pub options: EngineOptions,
    pub events: broadcast::Sender<Event>,
    pub custom: Arc<super::custom::CustomSteps>,
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    pub(super) plan: DrPlan,
    pub(super) providers: Providers,
    pub(super) journal: Arc<dyn Journal>,
    pub(super) lock: Arc<dyn FailoverLock>,
    pub(super) approver: Arc<dyn Approver>,
    pub(super) clock: Option<Arc<dyn Clock>>,
    pub(super) options: EngineOptions,
    pub(super) custom: super::custom::CustomSteps,
}

/// How far apart the engine's clock and the providers' clock may be.
const CLOCK_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(1);

impl EngineBuilder {
    /// The journal (default: in memory, no resume across processes).
    pub fn journal(mut self, journal: impl Journal) -> Self {
        self.journal = Arc::new(journal);
        self
    }

    /// The single-flight lock (default: in-process).
    pub fn lock(mut self, lock: impl FailoverLock) -> Self {
        self.lock = Arc::new(lock);
        self
    }

    /// The approver (default: [`DenyAll`](super::DenyAll)).
    pub fn approver(mut self, approver: impl Approver) -> Self {
        self.approver = Arc::new(approver);
        self
    }

    /// The wall clock (default: the providers' clock, [`Providers::clock`], else the
    /// system clock). One that disagrees with the providers' clock by more than a
    /// second makes every run refuse with [`EngineError::ClockMismatch`](super::EngineError::ClockMismatch).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The options.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a step of your own at `step.point` of every runbook of the modes it names
    /// (see [`CustomStep`](super::CustomStep)). Names must be unique: a duplicate or
    /// malformed name makes every run refuse with [`EngineError::CustomStep`](super::EngineError::CustomStep).
    /// A run resumed from a journal finds its custom steps by name: register the same
    /// ones on the engine that resumes it.
    pub fn custom_step(mut self, step: super::CustomStep, action: impl super::CustomAction) -> Self {
        self.custom.add(step, Arc::new(action));
        self
    }

    /// Adds an interlock override.
    pub fn override_interlock(mut self, rule: Interlock, reason: impl Into<String>) -> Self {
        self.options.overrides.push(Override::new(rule, reason));
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        let (events, _) = broadcast::channel(1024);
        let (clock, clock_mismatch) = match (self.clock, self.providers.clock.clone()) {
            (Some(engine), Some(providers)) => {
                let (e, p) = (engine.now(), providers.now());
                let apart = e.saturating_since(p).max(p.saturating_since(e));
                let mismatch = (apart > CLOCK_TOLERANCE).then_some((e, p));
                (engine, mismatch)
            }
            (Some(engine), None) => (engine, None),
            (None, Some(providers)) => (providers, None),
            (None, None) => (Arc::new(SystemClock) as Arc<dyn Clock>, None),
        };
        Engine {
            plan: self.plan,
            providers: self.providers,
            clock_mismatch,
            parts: EngineParts {
                journal: self.journal,
                lock: self.lock,
                approver: self.approver,
                clock,
                options: self.options,
                events,
                custom: Arc::new(self.custom),
            },
        }
    }
}
