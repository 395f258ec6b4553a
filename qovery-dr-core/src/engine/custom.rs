//! Steps of the embedder's own (smoke tests, an HTTP check of the application, a cache
//! warm-up, a script, a notification) at named points of the runbook. They run as any
//! step does: with a timeout per attempt and retries, their output journaled and shown
//! in the report, and their failure stopping the run in a safe state. The built-in
//! steps do not change.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::mode::RunMode;
use super::retry::RetryPolicy;
use crate::error::ProviderError;
use crate::model::EnvironmentId;

/// Where in the runbook a custom step runs. Each point is a stage of its own
/// (`custom-<point>`), so its steps run side by side and the next stage waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HookPoint {
    /// After the lock, before anything changes (a notification that the run starts, a
    /// check of the embedder's own that should refuse the run).
    BeforeChanges,
    /// After the database is promoted and fixed up (not in drills).
    AfterPromotion,
    /// When the DR site serves (deployed and verified), before DNS moves: smoke tests of
    /// the DR site. In drills: on the clones, before they are recorded.
    BeforeSwitch,
    /// After DNS is verified on the DR site (not in drills): a check from outside.
    AfterSwitch,
    /// After the RTO and RPO are recorded: a notification, a cache warm-up.
    AtEnd,
}

impl HookPoint {
    /// Every point, in runbook order.
    pub const ALL: [HookPoint; 5] =
        [Self::BeforeChanges, Self::AfterPromotion, Self::BeforeSwitch, Self::AfterSwitch, Self::AtEnd];

    /// The stage its steps form.
    pub fn stage(self) -> &'static str {
        match self {
            Self::BeforeChanges => "custom-before-changes",
            Self::AfterPromotion => "custom-after-promotion",
            Self::BeforeSwitch => "custom-before-switch",
            Self::AfterSwitch => "custom-after-switch",
            Self::AtEnd => "custom-at-end",
        }
    }
}

/// What a custom step is given when it runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActionContext {
    /// The run.
    pub run_id: String,
    /// Its mode.
    pub mode: RunMode,
    /// The plan's name.
    pub plan: String,
    /// The step's id (`custom:<name>`).
    pub step: String,
    /// The same for every attempt and every resume of this step in this run: hand it to
    /// anything that must act once (a ticket, a notification, a payment of a warm-up).
    pub idempotency_key: String,
    /// A previous attempt may have acted and its outcome is unknown: look before acting.
    pub reconcile: bool,
    /// The environments the run brings up on the DR site: the DR environments, or in a
    /// drill their clones (once cloned; empty before).
    pub environments: Vec<EnvironmentId>,
}

/// What a custom step reports: journaled, its summary shown in the run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CustomOutput {
    /// One line for the report.
    pub summary: String,
    /// Anything else worth keeping (journaled as it is).
    #[serde(default)]
    pub details: serde_json::Value,
}

impl CustomOutput {
    /// An output with `summary` and no details.
    pub fn new(summary: impl Into<String>) -> Self {
        Self { summary: summary.into(), details: serde_json::Value::Null }
    }

    /// The same output with `details`.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The action of a custom step.
///
/// Return a [`ProviderError`] to fail the attempt: its kind decides whether it is
/// retried (`Transient`, `Timeout`, `RateLimited`, `Indeterminate`) or stops the run
/// (any other), exactly as for the built-in steps.
///
/// ```
/// use qovery_dr_core::engine::{ActionContext, CustomAction, CustomOutput};
/// use qovery_dr_core::{ErrorKind, ProviderError, async_trait};
///
/// #[derive(Debug)]
/// struct Smoke;
///
/// #[async_trait]
/// impl CustomAction for Smoke {
///     async fn run(&self, ctx: &ActionContext) -> Result<CustomOutput, ProviderError> {
///         if ctx.environments.is_empty() {
///             return Err(ProviderError::new(ErrorKind::InvalidInput, "smoke", "run", "nothing to test"));
///         }
///         Ok(CustomOutput::new(format!("{} environment(s) answer", ctx.environments.len())))
///     }
/// }
/// ```
#[async_trait]
pub trait CustomAction: Send + Sync + Debug + 'static {
    /// One attempt. Must be safe to repeat (see [`ActionContext::idempotency_key`] and
    /// [`ActionContext::reconcile`]).
    async fn run(&self, ctx: &ActionContext) -> Result<CustomOutput, ProviderError>;
}

/// A custom step: its name, where it runs, its budget.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CustomStep {
    /// Unique among the engine's custom steps: lowercase letters, digits and `-`. The
    /// step's id is `custom:<name>`, and a resumed run finds its action by it.
    pub name: String,
    /// Where it runs.
    pub point: HookPoint,
    /// One sentence for the runbook and the report.
    pub description: String,
    /// The longest one attempt may take (default 1 minute).
    pub timeout: Duration,
    /// Its retries (default: the engine's).
    pub retry: Option<RetryPolicy>,
    /// The modes it runs in (default: every mode that reaches its point).
    pub modes: Vec<RunMode>,
    /// Whether it changes anything (default: yes), as the runbook shows it.
    pub mutating: bool,
}

impl CustomStep {
    /// A step `name` at `point`, described by `description`, with the defaults.
    pub fn new(name: impl Into<String>, point: HookPoint, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            point,
            description: description.into(),
            timeout: Duration::from_secs(60),
            retry: None,
            modes: RunMode::ALL.to_vec(),
            mutating: true,
        }
    }

    /// The same step with another timeout per attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same step with its own retries.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The same step, run only in `modes`.
    pub fn with_modes(mut self, modes: &[RunMode]) -> Self {
        self.modes = modes.to_vec();
        self
    }

    /// The same step, declared read-only.
    pub fn read_only(mut self) -> Self {
        self.mutating = false;
        self
    }

    /// Why the name cannot be a step's, if it cannot.
    pub(crate) fn name_problem(&self) -> Option<String> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        (!ok).then(|| {
            format!(
                "custom step name {:?}: expected 1 to 64 lowercase letters, digits or '-' (it becomes the step id custom:<name>)",
                self.name
            )
        })
    }
}

/// The custom steps an engine was built with, and their actions.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomSteps {
    pub steps: Vec<CustomStep>,
    pub actions: BTreeMap<String, Arc<dyn CustomAction>>,
    /// Why the registrations are invalid (a duplicate or malformed name): every run refuses.
    pub problem: Option<String>,
}

impl CustomSteps {
    pub(crate) fn add(&mut self, step: CustomStep, action: Arc<dyn CustomAction>) {
        if let Some(p) = step.name_problem() {
            self.problem.get_or_insert(p);
        } else if self.actions.contains_key(&step.name) {
            self.problem.get_or_insert(format!("custom step {:?} is registered twice", step.name));
        }
        self.actions.insert(step.name.clone(), action);
        self.steps.push(step);
    }

    /// The steps at `point` for `mode`, in registration order.
    pub(crate) fn at(&self, point: HookPoint, mode: RunMode) -> impl Iterator<Item = &CustomStep> {
        self.steps.iter().filter(move |s| s.point == point && s.modes.contains(&mode))
    }
}
