//! The failover engine: guarded runbooks with a crash-safe journal.
//!
//! An [`Engine`] turns a validated [`DrPlan`] plus the live state read
//! through the [`Providers`] into a [`Runbook`] of stages (steps of a stage run
//! concurrently) and executes it in one of four [`RunMode`]s:
//!
//! ```text
//! preflight → approval → lock → fence primary → catch-up (planned modes) → promote ✝
//!   → post-promotion fix-ups → sync images → apply DR parameters and images
//!   → deploy DR environments and wait → verify DR health → switch DNS and wait
//!   → verify → record RTO/RPO → drain old TTL          (✝ point of no return)
//! ```
//!
//! Safety:
//! - **Interlocks** ([`Interlock`]) are checked before the steps they guard and
//!   refuse unless overridden with an explicit reason ([`Override`]), which is
//!   journaled: never promote while the old primary may accept writes, never
//!   promote past the RPO (an approver may accept a measured loss), never point
//!   DNS at an unhealthy target, one failover at a time.
//! - **Journal** ([`Journal`]): every step is journaled (and fsynced for
//!   [`FileJournal`]) before its action and after its verification. A run
//!   killed anywhere [`resumes`](Engine::resume): completed steps are skipped,
//!   a step that started without an outcome is reconciled against the live
//!   state before it acts again.
//! - **Dry run** ([`Engine::plan`]) goes through read-only guards: no provider
//!   receives a mutating call, whatever its own code does.
//!
//! Where a run stops (the report's `safe_state`):
//! - before the fence: nothing in production changed;
//! - fenced, not promoted: the old primary refuses writes; resume to continue;
//! - promoted, DNS not switched: the DR database is the only primary; resume;
//! - DNS switched, not verified: resume to verify;
//! - drills: production untouched; the clones are always deleted.
//!
//! ```
//! use qovery_dr_core::engine::{AutoApprove, Outcome, RunMode};
//! use qovery_dr_core::plan::DrPlan;
//! use qovery_dr_testkit::World;
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let plan = DrPlan::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml")).await.unwrap();
//! let sim = World::from_plan(&plan); // the testkit's simulated world; use real providers in production
//! let engine = sim.engine_builder().approver(AutoApprove::new("oncall-sre")).build();
//!
//! let runbook = engine.plan(RunMode::Switchover).await.unwrap(); // dry run: no mutating call
//! assert!(!runbook.would_refuse());
//! let report = engine.run(RunMode::Switchover).await.unwrap();
//! assert_eq!(report.outcome, Outcome::Succeeded);
//! assert_eq!(report.measured_rpo_ms, Some(0)); // proven by LSN
//! println!("{}", report.to_text());
//! # });
//! ```

mod approval;
mod clock;
mod context;
mod error;
mod events;
mod exec;
mod heartbeat;
mod interlock;
mod journal;
mod journal_rules;
mod lock;
mod mode;
mod output;
mod readonly;
mod report;
mod retry;
mod runbook;
mod state;
mod steps;

use std::sync::Arc;
use std::time::Duration;

pub use approval::{Approval, ApprovalDenied, ApprovalRequest, Approver, AutoApprove, DenyAll};
pub use clock::{Clock, SystemClock};
pub use context::current_step;
pub use error::{EngineError, RunFailed};
pub use events::Event;
pub use heartbeat::HeartbeatWriter;
pub use interlock::{Interlock, Override};
pub use journal::{FileJournal, JOURNAL_SCHEMA, Journal, JournalEntry, JournalError, JournalEvent, MemoryJournal};
pub use journal_rules::validate_journal;
pub use lock::{FailoverLock, FencingToken, FileLock, InProcessLock, LockError, LockGuard, LockHolder};
pub use mode::RunMode;
pub use output::{
    ApprovalOutput, AuthoritativeCheck, CatchUpOutput, CloneOutput, DeleteCloneOutput, DeployOutput, FenceOutput,
    FixupsOutput, HealthOutput, LockOutput, OutputKind, ParametersOutput, PreflightOutput, PromoteOutput, RpoOutput,
    ServiceImageOutput, StepOutput, SwitchDnsOutput, SyncImageOutput, VerifyDnsOutput, VerifyEnvironmentOutput,
};
pub use readonly::ReadOnly;
pub use report::{Outcome, RunReport, StepReport, StepStatus};
pub use retry::RetryPolicy;
pub use runbook::{Assessment, EnvRef, LiveFacts, Runbook, Stage, StepKind, StepSpec, Timeouts};
pub use state::journaled_outputs;

use crate::plan::DrPlan;
use crate::provider::{ClusterProvider, DnsSwitcher, RegistrySync, ReplicationManager};
use exec::Run;
use tokio::sync::broadcast;

/// The providers a run drives.
#[derive(Debug, Clone)]
pub struct Providers {
    /// The platform (Qovery).
    pub cluster: Arc<dyn ClusterProvider>,
    /// DNS.
    pub dns: Arc<dyn DnsSwitcher>,
    /// The database pair.
    pub replication: Arc<dyn ReplicationManager>,
    /// Primary registry → DR registry.
    pub registry: Arc<dyn RegistrySync>,
    /// DR registry → primary registry, for failback (images are not synced back without it).
    pub registry_back: Option<Arc<dyn RegistrySync>>,
    /// The database pair the other way round, for failback: the DR database as the primary
    /// and the original primary as its standby (once re-protected). `None` when
    /// `replication` serves both directions (a manager that follows the roles, like the
    /// testkit's); a manager bound to fixed endpoints (PostgreSQL's) needs it, or a
    /// failback would fence and promote the wrong servers.
    pub replication_back: Option<Arc<dyn ReplicationManager>>,
    /// The clock these providers stamp time with (heartbeats), when it is not the
    /// system's: the testkit's simulated world sets its own. An engine or a readiness
    /// evaluation over these providers uses it unless told otherwise, and an engine
    /// given a clock that disagrees with it refuses to run (see [`EngineError::ClockMismatch`]),
    /// since every data-loss figure compares the two. `None` for real providers.
    pub clock: Option<Arc<dyn Clock>>,
    /// Asks each authoritative server of a record what it answers: the DNS step is done
    /// only when every one serves the new target (a provider's own "in sync" is not
    /// enough). `None`, or `NotSupported` for a record, leaves that record verified by
    /// the provider's change status alone, and the step's output says so.
    pub resolver: Option<Arc<dyn crate::provider::AuthoritativeResolver>>,
}

impl Providers {
    /// The same providers behind read-only guards (dry runs).
    pub fn read_only(&self) -> Providers {
        Providers {
            cluster: Arc::new(ReadOnly(Arc::clone(&self.cluster))),
            dns: Arc::new(ReadOnly(Arc::clone(&self.dns))),
            replication: Arc::new(ReadOnly(Arc::clone(&self.replication))),
            registry: Arc::new(ReadOnly(Arc::clone(&self.registry))),
            registry_back: self
                .registry_back
                .as_ref()
                .map(|r| Arc::new(ReadOnly(Arc::clone(r))) as Arc<dyn RegistrySync>),
            replication_back: self
                .replication_back
                .as_ref()
                .map(|r| Arc::new(ReadOnly(Arc::clone(r))) as Arc<dyn ReplicationManager>),
            clock: self.clock.clone(),
            resolver: self.resolver.clone(),
        }
    }
}

impl Providers {
    /// The providers a run in `mode` drives: for a failback, [`replication_back`](Self::replication_back)
    /// (when set) is the replication manager.
    pub fn for_mode(&self, mode: RunMode) -> Providers {
        let mut p = self.clone();
        if mode == RunMode::Failback
            && let Some(back) = &self.replication_back
        {
            p.replication = Arc::clone(back);
        }
        p
    }
}

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
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    plan: DrPlan,
    providers: Providers,
    journal: Arc<dyn Journal>,
    lock: Arc<dyn FailoverLock>,
    approver: Arc<dyn Approver>,
    clock: Option<Arc<dyn Clock>>,
    options: EngineOptions,
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

    /// The approver (default: [`DenyAll`]).
    pub fn approver(mut self, approver: impl Approver) -> Self {
        self.approver = Arc::new(approver);
        self
    }

    /// The wall clock (default: the providers' clock, [`Providers::clock`], else the
    /// system clock). One that disagrees with the providers' clock by more than a
    /// second makes every run refuse with [`EngineError::ClockMismatch`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The options.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
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
            },
        }
    }
}

/// Runs DR runbooks for one plan. See the [module docs](self).
#[derive(Debug)]
pub struct Engine {
    plan: DrPlan,
    providers: Providers,
    /// (engine, providers) readings when the two clocks disagreed at build: every run refuses.
    clock_mismatch: Option<(crate::model::Timestamp, crate::model::Timestamp)>,
    parts: EngineParts,
}

impl Engine {
    /// A builder with an in-memory journal, an in-process lock, the providers'
    /// clock (the system clock for real providers), and an approver that refuses
    /// everything.
    pub fn builder(plan: DrPlan, providers: Providers) -> EngineBuilder {
        EngineBuilder {
            plan,
            providers,
            journal: Arc::new(MemoryJournal::new()),
            lock: Arc::new(InProcessLock::new()),
            approver: Arc::new(DenyAll),
            clock: None,
            options: EngineOptions::default(),
        }
    }

    /// Refuses when the engine's clock and the providers' disagree (set at build).
    fn check_clock(&self) -> Result<(), EngineError> {
        match self.clock_mismatch {
            Some((engine, providers)) => Err(EngineError::ClockMismatch { engine, providers }),
            None => Ok(()),
        }
    }

    /// Progress events of the runs of this engine (slow receivers may miss some).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.parts.events.subscribe()
    }

    /// The plan.
    pub fn plan_definition(&self) -> &DrPlan {
        &self.plan
    }

    async fn facts(&self, providers: &Providers, mode: RunMode) -> Result<LiveFacts, EngineError> {
        let plan = if mode == RunMode::Failback { self.plan.reversed() } else { self.plan.clone() };
        let envs = if mode == RunMode::Drill { &plan.primary.environments } else { &plan.dr.environments };
        let mut facts =
            LiveFacts { deploy_services: providers.cluster.capabilities().deploy_services, ..LiveFacts::default() };
        let retry = self.parts.options.retry;
        for env in envs {
            let mut attempt = 1;
            let services = loop {
                match bounded(
                    Timeouts::from_rto(plan.objectives.rto).call,
                    "list_services",
                    providers.cluster.list_services(env),
                )
                .await
                {
                    Ok(s) => break s,
                    Err(e) if retry.should_retry(attempt, &e) => {
                        tokio::time::sleep(retry.backoff(attempt, e.retry_after(), 0.5)).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        // No step runs yet: the runbook is being built from the services.
                        return Err(EngineError::NotReady {
                            step: "runbook".to_owned(),
                            reason: format!("cannot list the services of {env} to build the runbook: {e}"),
                        });
                    }
                }
            };
            facts.services.insert(env.clone(), services);
        }
        Ok(facts)
    }

    /// Dry run: the exact runbook a run would execute now, with preconditions
    /// and interlocks evaluated against live state. Makes no mutating call
    /// (providers are behind read-only guards).
    pub async fn plan(&self, mode: RunMode) -> Result<Runbook, EngineError> {
        self.check_clock()?;
        let ro = self.providers.for_mode(mode).read_only();
        let facts = self.facts(&ro, mode).await?;
        let mut runbook = Runbook::build(&self.plan, mode, &facts, &self.parts.options);
        let plan = if mode == RunMode::Failback { self.plan.reversed() } else { self.plan.clone() };
        runbook.assessments = assess(&plan, mode, &ro, &self.parts).await;
        Ok(runbook)
    }

    /// Starts a new run. Refuses if the journal's last run did not succeed:
    /// a run that stopped (failed, refused, denied) is continued with
    /// [`resume`](Self::resume), never restarted from scratch.
    pub async fn run(&self, mode: RunMode) -> Result<RunReport, Box<RunFailed>> {
        self.check_clock().map_err(|e| self.early(Some(mode), e))?;
        let entries = self.parts.journal.entries().await.map_err(|e| self.early(Some(mode), e.into()))?;
        if let Some(run_id) = unfinished(&entries) {
            // Someone may be driving it right now (a shared journal): name them.
            if let Ok(Some(other)) = self.parts.lock.holder(&self.plan.name).await {
                let evidence = format!(
                    "run {} by {} holds the lock since {} (the journal's unfinished run is {run_id}: wait for \
                     it, or resume it once its holder is gone)",
                    other.run_id, other.owner, other.acquired_at
                );
                return Err(self.early(
                    Some(mode),
                    EngineError::Refused { step: "lock".to_owned(), rule: Interlock::LockHeld, evidence },
                ));
            }
            return Err(self.early(Some(mode), EngineError::UnfinishedRun { run_id }));
        }
        let run_id = format!("run-{}", self.parts.clock.now().unix_millis());
        let facts = self.facts(&self.providers, mode).await.map_err(|e| self.early(Some(mode), e))?;
        let runbook = Runbook::build(&self.plan, mode, &facts, &self.parts.options);
        // The lock before the first journal write: a shared journal is written by its holder only.
        let taken = self.take_lock(&run_id, mode).await?;
        let run = match self.new_run(run_id.clone(), mode, runbook, &entries, Some(taken.guard)) {
            Ok(run) => run,
            Err(e) => {
                let _ = self.parts.lock.release(&self.plan.name, &run_id).await;
                return Err(self.early(Some(mode), e.into()));
            }
        };
        if let Err(e) = run
            .journal(journal::JournalEvent::RunStarted {
                mode,
                plan: self.plan.name.clone(),
                operator: self.parts.options.operator.clone(),
                runbook: Some(Box::new(run.runbook.clone())),
            })
            .await
        {
            let _ = self.parts.lock.release(&self.plan.name, &run.run_id).await;
            return Err(self.early(Some(mode), e));
        }
        if let Some(evidence) = taken.took_over {
            journal_takeover(&run, evidence).await.map_err(|e| self.early(Some(mode), e))?;
        }
        drive(run).await
    }

    /// Resumes the journal's last run: completed steps are skipped, a step
    /// that started without an outcome is reconciled against live state.
    /// Returns the recorded report if that run already succeeded.
    ///
    /// The run goes on with the runbook journaled when it started (so the resumed
    /// report lists every step that ran); a journal written before runbooks were
    /// journaled rebuilds it from live state. A resume that stops before it can
    /// continue (lock held elsewhere, journal unreadable) reports the safe state the
    /// journal shows, never "nothing changed" for a run that changed production.
    pub async fn resume(&self) -> Result<RunReport, Box<RunFailed>> {
        self.check_clock().map_err(|e| self.early(None, e))?;
        let entries = self.parts.journal.entries().await.map_err(|e| self.early(None, e.into()))?;
        let Some((run_id, mode, journaled)) = entries.iter().rev().find_map(|e| match &e.event {
            JournalEvent::RunStarted { mode, runbook, .. } => Some((e.run_id.clone(), *mode, runbook.clone())),
            _ => None,
        }) else {
            return Err(self.early(None, EngineError::NothingToResume));
        };
        // A run that succeeded is over; one that stopped (refused, failed, denied) continues.
        if let Some(report) = entries.iter().rev().find_map(|e| match &e.event {
            JournalEvent::RunFinished { report, outcome: Outcome::Succeeded } if e.run_id == run_id => {
                Some(report.clone())
            }
            _ => None,
        }) {
            return Ok(*report);
        }
        // Until the resume drives the run, an error reports what the journal says happened
        // (never "nothing changed" for a run that promoted a standby).
        let stopped = |e: EngineError, entries: &[JournalEntry], runbook: Option<Runbook>| {
            let runbook = runbook.unwrap_or_else(|| Runbook::empty(&self.plan.name, mode));
            match self.new_run(run_id.clone(), mode, runbook, entries, None) {
                Ok(run) => self.stopped_resume(&run, entries, e),
                Err(invalid) => self.unreadable_journal(mode, &run_id, &invalid.to_string(), e),
            }
        };
        // Only the lock holder continues the run (and writes the journal); a holder that died
        // keeps it until its lease expires (see `EngineOptions::lock_wait`).
        let journaled = journaled.map(|r| *r);
        let taken = match self.take_lock(&run_id, mode).await {
            Ok(t) => t,
            Err(f) => return Err(stopped(f.error, &entries, journaled)),
        };
        // The journal as it is now that we hold the lock (the previous holder may have written more).
        let entries = match self.parts.journal.entries().await {
            Ok(e) => e,
            Err(e) => return Err(stopped(e.into(), &entries, journaled)),
        };
        // The runbook the run started with; journals that predate it rebuild it the same way.
        let runbook = match journaled {
            Some(r) => r,
            None => match self.facts(&self.providers, mode).await {
                Ok(facts) => Runbook::build(&self.plan, mode, &facts, &self.parts.options),
                Err(e) => return Err(stopped(e, &entries, None)),
            },
        };
        tracing::info!(%run_id, %mode, entries = entries.len(), "resuming from the journal");
        let run = match self.new_run(run_id.clone(), mode, runbook, &entries, Some(taken.guard)) {
            Ok(run) => run,
            Err(invalid) => {
                let why = invalid.to_string();
                return Err(self.unreadable_journal(mode, &run_id, &why, invalid.into()));
            }
        };
        let resumed = JournalEvent::RunResumed { operator: self.parts.options.operator.clone() };
        run.journal(resumed).await.map_err(|e| self.stopped_resume(&run, &entries, e))?;
        if let Some(evidence) = taken.took_over {
            journal_takeover(&run, evidence).await.map_err(|e| self.stopped_resume(&run, &entries, e))?;
        }
        drive(run).await
    }

    /// Takes the failover lock for `run_id`, waiting up to `lock_wait` while someone else
    /// holds it. A `LockHeld` override takes it over from a holder the operator declared
    /// dead: the evidence is returned, to journal with the override once the run has started.
    async fn take_lock(&self, run_id: &str, mode: RunMode) -> Result<lock::Taken, Box<RunFailed>> {
        let holder = LockHolder {
            run_id: run_id.to_owned(),
            owner: self.parts.options.operator.clone(),
            acquired_at: self.parts.clock.now(),
        };
        let takeover = self.parts.options.overrides.iter().any(|o| o.rule == Interlock::LockHeld);
        let (wait, poll) = (self.parts.options.lock_wait, self.parts.options.poll_interval);
        match lock::take(self.parts.lock.as_ref(), &self.plan.name, &holder, takeover, wait, poll).await {
            Ok(taken) => Ok(taken),
            Err(lock::TakeError::Lock(e)) => Err(self.early(Some(mode), e.into())),
            Err(lock::TakeError::Held(evidence)) => Err(self.early(
                Some(mode),
                EngineError::Refused { step: "lock".to_owned(), rule: Interlock::LockHeld, evidence },
            )),
        }
    }

    fn new_run(
        &self,
        run_id: String,
        mode: RunMode,
        runbook: Runbook,
        entries: &[JournalEntry],
        guard: Option<LockGuard>,
    ) -> Result<Arc<Run>, JournalError> {
        let plan = if mode == RunMode::Failback { self.plan.reversed() } else { self.plan.clone() };
        let providers = self.providers.for_mode(mode);
        let spec = exec::RunSpec { run_id, mode, plan, runbook };
        Run::new(self.parts.clone(), providers, spec, entries, guard).map(Arc::new)
    }

    /// A resume that stopped before driving its run: the report and the safe state come
    /// from the run's journal, as for a run that failed.
    fn stopped_resume(&self, run: &Run, entries: &[JournalEntry], error: EngineError) -> Box<RunFailed> {
        let safe = if run.runbook.stages.is_empty() && run.lock_state().done("fence-primary") {
            "the journal shows the run fenced the primary, but its runbook could not be rebuilt: \
             read the journal before acting; resume this run once the error above is fixed"
                .to_owned()
        } else {
            safe_state(run, None)
        };
        let why = format!("the resume stopped before continuing the run: {error}");
        let report = run_report(run, entries, Outcome::Failed, Some(why), Some(safe));
        Box::new(RunFailed { error, report })
    }

    /// A resume whose journal does not read back as a run: nothing can be said of production
    /// but that the journal must be read by a person.
    fn unreadable_journal(&self, mode: RunMode, run_id: &str, why: &str, error: EngineError) -> Box<RunFailed> {
        let safe = format!(
            "UNKNOWN: the journal of run {run_id} could not be read back ({why}); production may be \
             half-way through the {mode}. Read the journal and check the database roles and DNS by hand before acting"
        );
        let mut failed = self.early(Some(mode), error);
        failed.report.run_id = run_id.to_owned();
        failed.report.safe_state = Some(safe);
        failed
    }

    /// A run that did not start (or a resume that found no run): nothing was changed.
    fn early(&self, mode: Option<RunMode>, error: EngineError) -> Box<RunFailed> {
        let now = self.parts.clock.now();
        let runbook = Runbook::empty(&self.plan.name, mode.unwrap_or(RunMode::Drill));
        let none = std::collections::HashMap::new();
        let report = report::build(report::ReportInput {
            run_id: "",
            outputs: &none,
            plan: &self.plan.name,
            mode,
            objectives: self.plan.objectives,
            runbook: &runbook,
            entries: &[],
            outcome: Outcome::Failed,
            finished_at: now,
            error: Some(error.to_string()),
            safe_state: Some("nothing in production was changed (the run did not start)".to_owned()),
            rto_stage: runbook.rto_stage(),
        });
        Box::new(RunFailed { error, report })
    }
}

/// Journals the operator's override that took the lock over (the lock step then re-enters it).
async fn journal_takeover(run: &Run, evidence: String) -> Result<(), EngineError> {
    match run.interlock("lock", Interlock::LockHeld, false, evidence).await {
        Ok(()) => Ok(()),
        Err(steps::StepError::Engine(e)) => Err(e),
        Err(_) => Err(EngineError::NotReady {
            step: "lock".to_owned(),
            reason: "the LockHeld override was not found while journaling the takeover".to_owned(),
        }),
    }
}

/// A provider call with a deadline: a hung call becomes a retryable `Timeout`.
pub(crate) async fn bounded<T>(
    limit: Duration,
    operation: &str,
    call: impl std::future::Future<Output = crate::ProviderResult<T>>,
) -> crate::ProviderResult<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(crate::ProviderError::new(
            crate::ErrorKind::Timeout,
            "engine",
            operation,
            format!("no answer within {}", humantime::format_duration(limit)),
        )),
    }
}

fn unfinished(entries: &[JournalEntry]) -> Option<String> {
    let last = entries.iter().rev().find_map(|e| match e.event {
        JournalEvent::RunStarted { .. } => Some(e.run_id.clone()),
        _ => None,
    })?;
    let done = entries
        .iter()
        .any(|e| e.run_id == last && matches!(e.event, JournalEvent::RunFinished { outcome: Outcome::Succeeded, .. }));
    (!done).then_some(last)
}

/// Runs the stages, the drill clean-up, and the report.
async fn drive(run: Arc<Run>) -> Result<RunReport, Box<RunFailed>> {
    let mut failure: Option<EngineError> = None;
    let stages = run.runbook.stages.clone();
    for stage in &stages {
        if let Err(e) = run.run_stage(&stage.name, &stage.steps).await {
            failure = Some(e);
            break;
        }
    }
    // Drill clean-up runs whatever happened, as journaled steps.
    let mut cleanup_error = None;
    if !run.runbook.cleanup.is_empty() {
        let cleanup = run.runbook.cleanup.clone();
        if let Err(e) = run.run_stage("cleanup", &cleanup).await {
            cleanup_error = Some(e.to_string());
            if failure.is_none() {
                failure = Some(e);
            }
        }
    }
    let (outcome, safe_state) = match &failure {
        None => (Outcome::Succeeded, None),
        Some(e) => {
            let outcome = match e {
                EngineError::Refused { .. } => Outcome::Refused,
                EngineError::Denied(_) => Outcome::Denied,
                _ => Outcome::Failed,
            };
            (outcome, Some(safe_state(&run, cleanup_error.as_deref())))
        }
    };
    // Release the lock unless production is half-way: then only a resume of this run may continue.
    // The journal is written first: a shared journal accepts writes from the lock holder only.
    let (fenced, locked) = {
        let state = run.lock_state();
        (state.done("fence-primary"), state.done("lock"))
    };
    let halfway = failure.is_some() && run.mode.moves_production() && fenced;
    let release = !halfway && locked;
    if release {
        let _ = run.journal(JournalEvent::LockReleased).await;
    }
    let entries = match run.parts.journal.entries().await {
        Ok(e) => e,
        Err(e) => {
            let report = run_report(&run, &[], Outcome::Failed, None, None);
            return Err(Box::new(RunFailed { error: e.into(), report }));
        }
    };
    let report = run_report(&run, &entries, outcome, failure.as_ref().map(ToString::to_string), safe_state);
    let journaled = run.journal(JournalEvent::RunFinished { outcome, report: Box::new(report.clone()) }).await;
    if release && let Err(e) = run.parts.lock.release(&run.plan.name, &run.run_id).await {
        tracing::warn!(error = %e, "could not release the failover lock (a lease-backed lock expires by itself)");
    }
    match (failure, journaled) {
        (None, Ok(())) => Ok(report),
        (None, Err(e)) | (Some(e), _) => Err(Box::new(RunFailed { error: e, report })),
    }
}

/// The report of `run` from its journal `entries`, finished now.
fn run_report(
    run: &Run,
    entries: &[JournalEntry],
    outcome: Outcome,
    error: Option<String>,
    safe_state: Option<String>,
) -> RunReport {
    let state = run.lock_state();
    report::build(report::ReportInput {
        run_id: &run.run_id,
        outputs: &state.finished,
        plan: &run.plan.name,
        mode: Some(run.mode),
        objectives: run.plan.objectives,
        runbook: &run.runbook,
        entries,
        outcome,
        finished_at: run.parts.clock.now(),
        error,
        safe_state,
        rto_stage: run.runbook.rto_stage(),
    })
}

fn safe_state(run: &Run, cleanup_error: Option<&str>) -> String {
    let lock = format!("the failover lock stays held by {} so that only `resume` continues it", run.run_id);
    if run.mode == RunMode::Drill {
        return match cleanup_error {
            None => "drill stopped; production untouched; the drill clones were deleted".to_owned(),
            Some(e) => {
                format!("drill stopped; production untouched; CLEAN-UP FAILED ({e}): delete the drill clones by hand")
            }
        };
    }
    let state = run.lock_state();
    let done = |id: &str| state.done(id);
    let dns_all = run.runbook.steps().filter(|s| matches!(s.kind, StepKind::SwitchDns { .. })).all(|s| done(&s.id));
    let fence = state.fence();
    if fence.is_none() {
        "nothing in production was changed (stopped before fencing the primary)".to_owned()
    } else if !done("promote-database") && fence.is_some_and(|f| !f.fenced) {
        format!(
            "the old primary could not be fenced (unreachable) and the standby is NOT promoted: nothing was changed by this run. Resume this run once the old primary is proven down (override primary-may-accept-writes with the proof); {lock}"
        )
    } else if !done("promote-database") {
        format!(
            "the old primary is fenced (or recorded unreachable) and the standby is NOT promoted: writes are refused. Resume this run to continue, or unfence the primary to return to the previous state; {lock}"
        )
    } else if !dns_all {
        format!(
            "the standby is promoted and is the only primary; DNS still points (at least partly) at the old site. Resume this run to finish; never unfence the old primary; {lock}"
        )
    } else {
        format!("DNS points at the DR site; the final verification did not complete. Resume this run to verify; {lock}")
    }
}

async fn assess(plan: &DrPlan, mode: RunMode, p: &Providers, parts: &EngineParts) -> Vec<Assessment> {
    let mut out = Vec::new();
    let mut add = |step: &str, verdict: &str, evidence: String| {
        out.push(Assessment { step: step.to_owned(), verdict: verdict.to_owned(), evidence })
    };
    let db = &plan.primary.database.id;
    match p.cluster.cluster_status(&plan.dr.cluster).await {
        Ok(s) if s.is_healthy() => add("preflight", "ok", format!("DR cluster {} is running", plan.dr.cluster)),
        Ok(s) => add("preflight", "would-refuse", format!("DR cluster {} is {:?}", plan.dr.cluster, s.state)),
        Err(e) => add("preflight", "would-refuse", format!("DR cluster: {e}")),
    }
    if let Ok(Some(h)) = parts.lock.holder(&plan.name).await {
        let overridden = parts.options.overrides.iter().any(|o| o.rule == Interlock::LockHeld);
        add(
            "lock",
            if overridden { "warning" } else { "would-refuse" },
            format!("run {} by {} holds the lock since {}", h.run_id, h.owner, h.acquired_at),
        );
    }
    let writability = p.replication.primary_writability(db).await;
    let status = p.replication.status(db).await;
    if mode == RunMode::Drill {
        add(
            "clone",
            if p.cluster.capabilities().clone_environment { "ok" } else { "would-refuse" },
            format!(
                "{} environment(s) cloned onto {}, deleted afterwards",
                plan.primary.environments.len(),
                plan.dr.cluster
            ),
        );
        return out;
    }
    let overridden = |rule| parts.options.overrides.iter().any(|o: &Override| o.rule == rule);
    match &writability {
        Ok(crate::provider::Writability::Unreachable) if mode.is_planned() => {
            add("preflight", "would-refuse", "the primary is unreachable: a planned run needs it; use failover".into())
        }
        Ok(crate::provider::Writability::Unreachable) => add(
            "promote-database",
            if overridden(Interlock::PrimaryMayAcceptWrites) { "warning" } else { "would-refuse" },
            "the old primary is unreachable: it cannot be fenced, so primary-may-accept-writes refuses promotion unless overridden with proof it is down".into(),
        ),
        Ok(w) => add("fence-primary", "ok", format!("the primary is {w:?}: it will be fenced and verified read-only")),
        Err(e) => add("fence-primary", "warning", format!("primary writability unknown: {e}")),
    }
    match &status {
        Ok(s) => {
            let lag = s.lag.map_or("unknown".to_owned(), |l| humantime::format_duration(l).to_string());
            let evidence = format!(
                "link {:?}, lag {lag}, {} bytes behind",
                s.link,
                s.lag_bytes.map_or("?".into(), |b| b.to_string())
            );
            if mode.is_planned() {
                add("catch-up", "ok", format!("{evidence}; the standby must replay the final LSN"));
            } else {
                let hb = p.replication.last_heartbeat(db, crate::provider::Node::Standby).await.ok().flatten();
                let (estimate, how) = steps::loss_estimate(Some(parts.clock.now()), hb.map(|h| h.written_at), s.lag);
                let within = estimate.is_some_and(|l| l <= plan.objectives.rpo);
                add(
                    "promote-database",
                    if within || overridden(Interlock::LagExceedsRpo) { "ok" } else { "would-refuse" },
                    format!(
                        "estimated data loss {} against RPO {} ({how})",
                        estimate.map_or("unknown".to_owned(), |l| humantime::format_duration(l).to_string()),
                        humantime::format_duration(plan.objectives.rpo)
                    ),
                );
            }
        }
        Err(e) => add("promote-database", "would-refuse", format!("replication status unknown: {e}")),
    }
    for r in &plan.dns {
        match p.dns.current(&r.record).await {
            Ok(cur) if cur.target == r.primary_target => {}
            Ok(cur) if cur.target == r.dr_target => {
                add(&format!("dns:{}", r.record), "ok", "already points at the DR target".into())
            }
            Ok(cur) => add(
                &format!("dns:{}", r.record),
                "would-refuse",
                format!(
                    "{} points at {}, not at the plan's primary target {}: another owner",
                    r.record, cur.target, r.primary_target
                ),
            ),
            Err(e) => add(&format!("dns:{}", r.record), "would-refuse", format!("cannot read {}: {e}", r.record)),
        }
        match p.dns.target_health(&r.dr_target).await {
            Ok(crate::provider::TargetHealth::Healthy) => {}
            Ok(h) => add(
                &format!("health:{}", r.record),
                "warning",
                format!(
                    "{} is {h:?} now; the DR environment is deployed first and health is re-checked before the switch",
                    r.dr_target
                ),
            ),
            Err(e) => add(&format!("health:{}", r.record), "warning", format!("health of {}: {e}", r.dr_target)),
        }
    }
    let registry = if mode == RunMode::Failback { p.registry_back.as_ref() } else { Some(&p.registry) };
    if let Some(registry) = registry {
        for env in &plan.dr.environments {
            for svc in p.cluster.list_services(env).await.unwrap_or_default() {
                let Some(img) = svc.image.filter(|i| plan.registry_mapping.remap(i).is_ok()) else { continue };
                match registry.parity(&img).await {
                    Ok(crate::provider::ImageParity::Present { .. }) => {}
                    Ok(other) => add(
                        &format!("sync:{img}"),
                        "ok",
                        format!("not in the DR registry yet ({other:?}): will be copied"),
                    ),
                    Err(e) => add(&format!("sync:{img}"), "would-refuse", format!("{e}")),
                }
            }
        }
    }
    out
}
