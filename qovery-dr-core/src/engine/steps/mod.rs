//! What each step does: precondition and interlocks, action, verification.
//! Every action is safe to repeat after `reconcile` (a previous attempt may
//! have acted): it reads state first and does not redo what is done.
//!
//! One module per family: the gates before anything changes ([`gate`]), the
//! database ([`database`]), the data-loss figures ([`rpo`]), images ([`images`]),
//! the platform ([`platform`]), DNS ([`dns`]). Each returns its kind's typed
//! [`StepOutput`].

mod database;
mod dns;
mod epoch;
mod gate;
mod images;
mod platform;
mod rpo;

use std::sync::Arc;

use super::error::EngineError;
use super::exec::Run;
use super::interlock::Interlock;
use super::output::{StepOutput, VerifyDnsOutput};
use super::runbook::{EnvRef, StepKind, StepSpec};
use crate::error::{ErrorKind, ProviderError};
use crate::model::EnvironmentId;

pub(crate) use rpo::loss_estimate;

/// Why a step attempt failed.
#[derive(Debug)]
pub(crate) enum StepError {
    /// A provider error: retried if retryable.
    Provider(ProviderError),
    /// An interlock refused.
    Refused { rule: Interlock, evidence: String },
    /// A precondition that no retry will fix.
    NotReady(String),
    /// The engine itself (journal, approval, lock).
    Engine(EngineError),
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        StepError::Provider(e)
    }
}

impl StepError {
    /// The same error, its message prefixed with `context` (e.g. the database it is about);
    /// its kind, and so whether it is retried, unchanged.
    fn with_context(self, context: impl std::fmt::Display) -> Self {
        match self {
            StepError::Provider(e) => StepError::Provider(e.with_context(context)),
            StepError::Refused { rule, evidence } => {
                StepError::Refused { rule, evidence: format!("{context}: {evidence}") }
            }
            StepError::NotReady(m) => StepError::NotReady(format!("{context}: {m}")),
            StepError::Engine(e) => StepError::Engine(e),
        }
    }
}

type StepResult = Result<StepOutput, StepError>;

fn engine_error(kind: ErrorKind, op: &str, message: String) -> StepError {
    StepError::Provider(ProviderError::new(kind, "engine", op, message))
}

pub(crate) async fn run(run: &Arc<Run>, spec: &StepSpec, reconcile: bool) -> StepResult {
    let id = spec.id.as_str();
    match &spec.kind {
        StepKind::Preflight => gate::preflight(run).await,
        StepKind::Approve => gate::approve(run).await,
        StepKind::AcquireLock => gate::acquire_lock(run, id).await,
        StepKind::StartCluster { cluster } => platform::start_cluster(run, id, cluster).await,
        StepKind::SetServiceScale { environment, service, scale } => {
            platform::set_scale(run, environment, service, scale).await
        }
        StepKind::VerifyDatabaseConnection { environment } => {
            platform::verify_database_connection(run, environment).await
        }
        StepKind::Custom { name, .. } => custom_step(run, id, name, reconcile).await,
        StepKind::VerifyDrConfiguration { environment } => platform::verify_dr_configuration(run, environment).await,
        StepKind::Reprotect => database::reprotect(run, spec).await,
        StepKind::FencePrimary => database::fence(run).await,
        StepKind::CatchUp => database::catch_up(run, spec).await,
        StepKind::PromoteDatabase => database::promote(run, id).await,
        StepKind::PostPromotionFixups => database::fixups(run).await,
        StepKind::RecordEpoch => epoch::record(run).await,
        StepKind::MeasureReplicationLag => rpo::measure_lag(run, id).await,
        StepKind::Record => rpo::record(run).await,
        StepKind::CloneEnvironment { source } => platform::clone_environment(run, source, reconcile).await,
        StepKind::DeleteClone { source } => platform::delete_clone(run, source).await,
        StepKind::SyncImages { images } => images::sync_images(run, id, images).await,
        StepKind::SyncImage { image } => images::sync_image(run, image).await,
        StepKind::ApplyParameters { environment } => platform::apply_parameters(run, environment).await,
        StepKind::SetServiceImage { environment, service, image } => {
            platform::set_image(run, environment, service, image).await
        }
        StepKind::DeployServices { environment, services } => {
            platform::deploy(run, id, environment, Some(services.as_slice()), reconcile).await
        }
        StepKind::DeployService { environment, service } => {
            platform::deploy(run, id, environment, Some(std::slice::from_ref(service)), reconcile).await
        }
        StepKind::DeployEnvironment { environment } => {
            let env = resolve(run, environment)?;
            platform::deploy(run, id, &env, None, reconcile).await
        }
        StepKind::VerifyEnvironment { environment } => platform::verify_environment(run, id, environment).await,
        StepKind::StopEnvironment { environment } => {
            platform::stop_old_primary(run, id, environment, spec.timeout).await
        }
        StepKind::VerifyTargetHealth { record, target } => dns::verify_health(run, id, record, target).await,
        StepKind::SwitchDns { record, from, to } => dns::switch_dns(run, id, record, from, to).await,
        StepKind::VerifyDns { record, target } => {
            let cur = run.providers.dns.current(record).await?;
            if &cur.target != target {
                return Err(engine_error(
                    ErrorKind::Conflict,
                    id,
                    format!("{record} points at {}, expected {target}", cur.target),
                ));
            }
            Ok(StepOutput::VerifyDns(VerifyDnsOutput { target: cur.target }))
        }
        StepKind::DrainTtl { ttl } => dns::drain(run, id, *ttl).await,
    }
}

/// A step of the embedder's own: its registered action, given the run's context.
async fn custom_step(run: &Arc<Run>, id: &str, name: &str, reconcile: bool) -> StepResult {
    let Some(action) = run.parts.custom.actions.get(name).cloned() else {
        return Err(StepError::NotReady(format!(
            "custom step {name} is in this run's runbook but not registered with this engine: register it \
             (EngineBuilder::custom_step) as the engine that started the run did, then resume"
        )));
    };
    let environments = if run.mode == super::mode::RunMode::Drill {
        let state = run.lock_state();
        run.plan.primary.environments.iter().filter_map(|e| state.clone_of(e).map(|c| c.environment.clone())).collect()
    } else {
        run.plan.dr.environments.clone()
    };
    let ctx = super::custom::ActionContext {
        run_id: run.run_id.clone(),
        mode: run.mode,
        plan: run.plan.name.clone(),
        step: id.to_owned(),
        idempotency_key: format!("{}/{id}", run.run_id),
        reconcile,
        environments,
    };
    Ok(StepOutput::Custom(action.run(&ctx).await?))
}

/// The environment a step works on: an existing one, or the drill clone of one (whose id
/// the clone step journaled).
fn resolve(run: &Run, env: &EnvRef) -> Result<EnvironmentId, StepError> {
    match env {
        EnvRef::Existing(e) => Ok(e.clone()),
        EnvRef::CloneOf(src) => run.lock_state().clone_of(src).map(|c| c.environment.clone()).ok_or_else(|| {
            StepError::NotReady(format!("the drill clone of {src} has no journaled output: it was not created"))
        }),
    }
}

/// Milliseconds, saturating.
fn millis_u64(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
