//! Executing a runbook: stages in order, steps of a stage concurrently, each
//! step journaled before its action and after its verification.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::error::EngineError;
use super::events::Event;
use super::interlock::{Interlock, Override};
use super::mode::RunMode;
use super::runbook::{Runbook, StepKind, StepSpec};
use super::state::RunState;
use super::steps::{self, StepError};
use super::{EngineParts, Providers};
use crate::error::{ErrorKind, ProviderError};
use crate::journal::{JournalEntry, JournalError, JournalEvent};
use crate::lock::LockGuard;
use crate::plan::DrPlan;
use crate::resilience::Jitter;

/// One run in progress.
#[derive(Debug)]
pub(crate) struct Run {
    pub parts: EngineParts,
    pub providers: Providers,
    pub run_id: String,
    pub mode: RunMode,
    /// The effective plan (reversed for failback).
    pub plan: DrPlan,
    pub runbook: Runbook,
    pub state: Mutex<RunState>,
    /// The run's holding of the failover lock: every journal write shows it.
    guard: Mutex<Option<LockGuard>>,
    seq: AtomicU64,
    jitter: Mutex<Jitter>,
}

/// What a run is: its id, mode, effective plan and runbook.
#[derive(Debug)]
pub(crate) struct RunSpec {
    pub run_id: String,
    pub mode: RunMode,
    pub plan: DrPlan,
    pub runbook: Runbook,
}

impl Run {
    /// The run `spec` as its journal `entries` show it, holding `guard` (if it does).
    pub(crate) fn new(
        parts: EngineParts,
        providers: Providers,
        spec: RunSpec,
        entries: &[JournalEntry],
        guard: Option<LockGuard>,
    ) -> Result<Self, JournalError> {
        let RunSpec { run_id, mode, plan, runbook } = spec;
        let state = RunState::from_journal(&run_id, &runbook, entries)?;
        let seed =
            run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let next_seq = entries.iter().map(|e| e.seq + 1).max().unwrap_or(0);
        Ok(Self {
            parts,
            providers,
            run_id,
            mode,
            plan,
            runbook,
            state: Mutex::new(state),
            guard: Mutex::new(guard),
            seq: AtomicU64::new(next_seq),
            jitter: Mutex::new(Jitter::new(seed)),
        })
    }

    pub(crate) fn lock_state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends to the journal; durable when it returns.
    pub(crate) async fn journal(&self, event: JournalEvent) -> Result<(), EngineError> {
        let Some(guard) = self.guard.lock().unwrap_or_else(PoisonError::into_inner).clone() else {
            return Err(EngineError::Journal(JournalError::Refused(format!(
                "run {} does not hold the failover lock of plan {}: it cannot write the journal",
                self.run_id, self.plan.name
            ))));
        };
        let entry =
            JournalEntry::new(self.seq.fetch_add(1, Ordering::SeqCst), self.parts.clock.now(), &self.run_id, event);
        self.parts.journal.append(&guard, &entry).await?;
        Ok(())
    }

    /// The run's lock holding, renewed (the lock step re-takes it).
    pub(crate) fn set_guard(&self, guard: LockGuard) {
        *self.guard.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    }

    pub(crate) fn emit(&self, event: Event) {
        tracing::debug!(?event, "engine event");
        let _ = self.parts.events.send(event);
    }

    pub(crate) fn override_for(&self, rule: Interlock) -> Option<&Override> {
        self.parts.options.overrides.iter().find(|o| o.rule == rule)
    }

    /// Checks an interlock: passes, passes by override (journaled once), or refuses (journaled).
    pub(crate) async fn interlock(
        &self,
        step: &str,
        rule: Interlock,
        ok: bool,
        evidence: String,
    ) -> Result<(), StepError> {
        if ok {
            return Ok(());
        }
        if let Some(o) = self.override_for(rule) {
            let first = self.lock_state().overridden.insert((step.to_owned(), rule));
            if first {
                self.journal(JournalEvent::InterlockOverridden {
                    step: step.to_owned(),
                    rule,
                    reason: o.reason.clone(),
                    evidence: evidence.clone(),
                })
                .await
                .map_err(StepError::Engine)?;
                self.emit(Event::InterlockOverridden { step: step.to_owned(), rule, reason: o.reason.clone() });
                tracing::warn!(step, %rule, reason = %o.reason, %evidence, "interlock overridden by the operator");
            }
            return Ok(());
        }
        self.journal(JournalEvent::InterlockRefused { step: step.to_owned(), rule, evidence: evidence.clone() })
            .await
            .map_err(StepError::Engine)?;
        self.emit(Event::InterlockRefused { step: step.to_owned(), rule, evidence: evidence.clone() });
        tracing::warn!(step, %rule, %evidence, "interlock refused the step");
        Err(StepError::Refused { rule, evidence })
    }

    /// Journals an approved data-loss budget as an override of the lag rule.
    pub(crate) async fn journal_budget(&self, step: &str, reason: String, evidence: String) -> Result<(), StepError> {
        let first = self.lock_state().overridden.insert((step.to_owned(), Interlock::LagExceedsRpo));
        if first {
            self.journal(JournalEvent::InterlockOverridden {
                step: step.to_owned(),
                rule: Interlock::LagExceedsRpo,
                reason,
                evidence,
            })
            .await
            .map_err(StepError::Engine)?;
        }
        Ok(())
    }

    fn next_jitter(&self) -> f64 {
        self.jitter.lock().unwrap_or_else(PoisonError::into_inner).next()
    }

    /// Runs one stage: its steps concurrently (bounded), waiting for all of
    /// them even when one fails, so no action is left half-observed.
    pub(crate) async fn run_stage(self: &Arc<Self>, stage: &str, steps: &[StepSpec]) -> Result<(), EngineError> {
        self.emit(Event::StageStarted { stage: stage.to_owned(), steps: steps.len() });
        let permits = Arc::new(Semaphore::new(self.parts.options.max_concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (index, spec) in steps.iter().enumerate() {
            let run = Arc::clone(self);
            let spec = spec.clone();
            let permits = Arc::clone(&permits);
            let stage = stage.to_owned();
            let span = tracing::info_span!("step", step = %spec.id, stage = %stage, run = %self.run_id);
            set.spawn(
                async move {
                    let _permit = permits.acquire_owned().await;
                    let step = spec.id.clone();
                    (index, super::context::in_step(step, run.execute(&stage, &spec)).await)
                }
                .instrument(span),
            );
        }
        let mut first_error: Option<(usize, EngineError)> = None;
        while let Some(joined) = set.join_next().await {
            let (index, result) = match joined {
                Ok(r) => r,
                Err(e) => {
                    let err = EngineError::StepFailed {
                        step: stage.to_owned(),
                        stage: stage.to_owned(),
                        kind: None,
                        message: format!("step task ended abnormally: {e}"),
                        attempts: 0,
                    };
                    (usize::MAX, Err(err))
                }
            };
            if let Err(e) = result {
                // Keep the error of the earliest step in runbook order: deterministic.
                if first_error.as_ref().is_none_or(|(i, _)| index < *i) {
                    first_error = Some((index, e));
                }
            }
        }
        match first_error {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs one step with its retries, journaling intent and outcome.
    pub(crate) async fn execute(self: &Arc<Self>, stage: &str, spec: &StepSpec) -> Result<(), EngineError> {
        let always = matches!(spec.kind, StepKind::AcquireLock);
        if !always && self.lock_state().done(&spec.id) {
            self.emit(Event::StepSkipped { step: spec.id.clone(), reason: "already done (journal)".to_owned() });
            return Ok(());
        }
        // A step that started without an outcome may have acted: check the state first.
        let (mut reconcile, mut attempt) = {
            let st = self.lock_state();
            (st.started.contains(&spec.id), st.attempts.get(&spec.id).copied().unwrap_or(0))
        };
        let started_at = tokio::time::Instant::now();
        // Attempts and the backoffs between them share one budget (by default the step's
        // timeout times its attempts): a long Retry-After cannot stretch a step past it.
        let budget =
            spec.retry.total_budget.unwrap_or_else(|| spec.timeout.saturating_mul(spec.retry.max_attempts.max(1)));
        let deadline = started_at.checked_add(budget).unwrap_or_else(|| started_at + spec.timeout);
        self.emit(Event::StepStarted { step: spec.id.clone() });
        let mut attempts_here = 0u32;
        loop {
            attempt += 1;
            attempts_here += 1;
            self.journal(JournalEvent::StepStarted { step: spec.id.clone(), attempt }).await?;
            self.lock_state().started.insert(spec.id.clone());
            let limit = spec.timeout.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let result = match tokio::time::timeout(limit, steps::run(self, spec, reconcile)).await {
                Ok(r) => r,
                Err(_) => Err(StepError::Provider(ProviderError::new(
                    ErrorKind::Timeout,
                    "engine",
                    spec.id.as_str(),
                    format!("attempt exceeded its time limit of {}", humantime::format_duration(limit)),
                ))),
            };
            match result {
                Ok(output) => {
                    let took = started_at.elapsed();
                    self.journal(JournalEvent::StepFinished {
                        step: spec.id.clone(),
                        output: output.to_json(),
                        attempts: attempt,
                        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                    })
                    .await?;
                    self.lock_state().finished.insert(spec.id.clone(), output);
                    self.emit(Event::StepFinished { step: spec.id.clone(), attempts: attempt, took });
                    tracing::info!(attempts = attempt, took_ms = took.as_millis() as u64, "step finished");
                    return Ok(());
                }
                Err(StepError::Provider(e)) => {
                    let delay = spec.retry.backoff(attempts_here, e.retry_after(), self.next_jitter());
                    let in_budget = tokio::time::Instant::now() + delay < deadline;
                    let will_retry = spec.retry.should_retry(attempts_here, &e) && in_budget;
                    let e = if spec.retry.should_retry(attempts_here, &e) && !in_budget {
                        let message = format!(
                            "{} (not retried: waiting {} would pass the step's budget of {})",
                            e.message(),
                            humantime::format_duration(delay),
                            humantime::format_duration(budget)
                        );
                        ProviderError::new(e.kind(), e.provider(), e.operation(), message)
                    } else {
                        e
                    };
                    self.journal(JournalEvent::StepAttemptFailed {
                        step: spec.id.clone(),
                        attempt,
                        kind: e.kind(),
                        message: e.to_string(),
                        will_retry,
                    })
                    .await?;
                    self.emit(Event::AttemptFailed {
                        step: spec.id.clone(),
                        attempt,
                        kind: e.kind(),
                        message: e.to_string(),
                    });
                    tracing::warn!(attempt, kind = %e.kind(), error = %e, will_retry, "step attempt failed");
                    if !will_retry {
                        self.journal(JournalEvent::StepFailed {
                            step: spec.id.clone(),
                            kind: Some(e.kind()),
                            message: e.to_string(),
                        })
                        .await?;
                        return Err(EngineError::StepFailed {
                            step: spec.id.clone(),
                            stage: stage.to_owned(),
                            kind: Some(e.kind()),
                            message: e.to_string(),
                            attempts: attempt,
                        });
                    }
                    self.emit(Event::Retrying { step: spec.id.clone(), attempt: attempt + 1, after: delay });
                    tokio::time::sleep(delay).await;
                    // After an error that may have been applied, read the state before acting again.
                    reconcile = reconcile || e.kind().needs_reconcile() || e.kind() == ErrorKind::Conflict;
                }
                Err(StepError::Refused { rule, evidence }) => {
                    return Err(EngineError::Refused { step: spec.id.clone(), rule, evidence });
                }
                Err(StepError::NotReady(reason)) => {
                    self.journal(JournalEvent::StepFailed {
                        step: spec.id.clone(),
                        kind: None,
                        message: reason.clone(),
                    })
                    .await?;
                    return Err(EngineError::NotReady { step: spec.id.clone(), reason });
                }
                Err(StepError::Engine(e)) => {
                    if let EngineError::Denied(d) = &e {
                        self.journal(JournalEvent::ApprovalDenied { reason: d.to_string() }).await?;
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Sleeps for the poll interval (a helper for waiting loops).
pub(crate) async fn pause(interval: Duration) {
    tokio::time::sleep(interval).await;
}
