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
//! - drills: production's environments, DNS and database roles are not changed (the one
//!   write is the heartbeat row the lag measurement inserts on the primary); the clones
//!   are always deleted. A drill's RTO ends at the clones' health: no fence, promotion,
//!   DNS switch or TTL is in it.
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
mod builder;
mod context;
mod custom;
mod driver;
mod dry_run;
mod error;
mod events;
mod exec;
mod heartbeat;
mod interlock;
mod mode;
mod output;
mod report;
mod retry;
mod runbook;
mod safe_state;
mod state;
mod steps;

use std::sync::Arc;
use std::time::Duration;

pub use crate::clock::{Clock, SystemClock};
pub use crate::journal::validate_journal;
pub use crate::journal::{
    FileJournal, JOURNAL_SCHEMA, Journal, JournalEntry, JournalError, JournalEvent, MemoryJournal,
};
pub use crate::lock::{FailoverLock, FencingToken, FileLock, InProcessLock, LockError, LockGuard, LockHolder};
pub use crate::provider::Providers;
pub use crate::provider::ReadOnly;
pub use approval::{Approval, ApprovalDenied, ApprovalRequest, Approver, AutoApprove, DenyAll};
pub(crate) use builder::EngineParts;
pub use builder::{EngineBuilder, EngineOptions};
pub use context::current_step;
pub use custom::{ActionContext, CustomAction, CustomOutput, CustomStep, HookPoint};
pub use error::{EngineError, RunFailed};
pub use events::Event;
pub use heartbeat::HeartbeatWriter;
pub use interlock::{Interlock, Override};
pub use mode::RunMode;
pub use output::{
    ApprovalOutput, AuthoritativeCheck, CatchUpOutput, CloneOutput, DatabaseConnectionOutput, DeleteCloneOutput,
    DeployOutput, DrConfigurationOutput, EpochOutput, FenceOutput, FixupsOutput, HealthOutput, LockOutput, OutputKind,
    ParametersOutput, PreflightOutput, PromoteOutput, ReprotectOutput, RpoOutput, ServiceImageOutput,
    ServiceScaleOutput, StartClusterOutput, StepOutput, StopEnvironmentOutput, SwitchDnsOutput, SyncImageOutput,
    SyncImagesOutput, SyncedImage, VerifyDnsOutput, VerifyEnvironmentOutput,
};
pub use report::{Outcome, RunReport, StepReport, StepStatus};
pub use retry::RetryPolicy;
pub use runbook::{Assessment, EnvRef, LiveFacts, Runbook, Stage, StepKind, StepSpec, Timeouts};
pub use state::journaled_outputs;

use crate::plan::DrPlan;
use crate::provider::ClusterProvider;
use driver::{drive, journal_takeover, unfinished};
use dry_run::assess;
use exec::Run;
use tokio::sync::broadcast;

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
            custom: custom::CustomSteps::default(),
        }
    }

    /// Refuses when the engine's clock and the providers' disagree (set at build).
    fn check_clock(&self) -> Result<(), EngineError> {
        if let Some(problem) = &self.parts.custom.problem {
            return Err(EngineError::CustomStep(problem.clone()));
        }
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
            // A read: repeated as the run's retry policy says, in the one shared loop.
            let services = crate::resilience::retry(
                &retry,
                |_| true,
                |_| {
                    bounded(
                        Timeouts::from_rto(plan.objectives.rto).call,
                        "list_services",
                        providers.cluster.list_services(env),
                    )
                },
            )
            .await
            .map_err(|e| EngineError::NotReady {
                // No step runs yet: the runbook is being built from the services.
                step: "runbook".to_owned(),
                reason: format!("cannot list the services of {env} to build the runbook: {e}"),
            })?;
            facts.services.insert(env.clone(), services);
        }
        Ok(facts)
    }

    /// Dry run: the exact runbook a run would execute now, with preconditions
    /// and interlocks evaluated against live state. Makes no mutating call
    /// (providers are behind read-only guards).
    pub async fn plan(&self, mode: RunMode) -> Result<Runbook, EngineError> {
        self.check_clock()?;
        let ro = providers_for(&self.providers, mode).read_only();
        let facts = self.facts(&ro, mode).await?;
        let mut runbook = Runbook::build_with(&self.plan, mode, &facts, &self.parts.options, &self.parts.custom);
        let plan = if mode == RunMode::Failback { self.plan.reversed() } else { self.plan.clone() };
        runbook.assessments = assess(&plan, mode, &ro, &self.parts, None).await;
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
        let runbook = Runbook::build_with(&self.plan, mode, &facts, &self.parts.options, &self.parts.custom);
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
            .journal(JournalEvent::RunStarted {
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
        // Until the journal is read, nothing can be said of the run it holds but that this
        // resume changed nothing.
        self.check_clock().map_err(|e| self.resume_refused(e))?;
        let entries = self.parts.journal.entries().await.map_err(|e| self.resume_refused(e.into()))?;
        let Some((run_id, mode, journaled)) = entries.iter().rev().find_map(|e| match &e.event {
            JournalEvent::RunStarted { mode, runbook, .. } => Some((e.run_id.clone(), *mode, runbook.clone())),
            _ => None,
        }) else {
            let mut failed = self.early(None, EngineError::NothingToResume);
            failed.report.safe_state =
                Some("the journal holds no run: nothing to resume, nothing was changed".to_owned());
            return Err(failed);
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
                Ok(facts) => Runbook::build_with(&self.plan, mode, &facts, &self.parts.options, &self.parts.custom),
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
    async fn take_lock(&self, run_id: &str, mode: RunMode) -> Result<crate::lock::Taken, Box<RunFailed>> {
        let holder = LockHolder {
            run_id: run_id.to_owned(),
            owner: self.parts.options.operator.clone(),
            acquired_at: self.parts.clock.now(),
        };
        let takeover = self.parts.options.overrides.iter().any(|o| o.rule == Interlock::LockHeld);
        let (wait, poll) = (self.parts.options.lock_wait, self.parts.options.poll_interval);
        match crate::lock::take(self.parts.lock.as_ref(), &self.plan.name, &holder, takeover, wait, poll).await {
            Ok(taken) => Ok(taken),
            Err(crate::lock::TakeError::Lock(e)) => Err(self.early(Some(mode), e.into())),
            Err(crate::lock::TakeError::Held(evidence)) => Err(self.early(
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
        let providers = providers_for(&self.providers, mode);
        let spec = exec::RunSpec { run_id, mode, plan, runbook };
        Run::new(self.parts.clone(), providers, spec, entries, guard).map(Arc::new)
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

/// The providers a run in `mode` drives (a failback's replication manager is the reversed one).
fn providers_for(providers: &Providers, mode: RunMode) -> Providers {
    if mode == RunMode::Failback { providers.for_failback() } else { providers.clone() }
}
