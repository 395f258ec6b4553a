//! The failover epoch: incremented once per promoting run, recorded in each promoted
//! database, set as a variable by the configure stage, published beside each switched
//! DNS record by the DNS step.

use std::sync::Arc;

use super::super::exec::Run;
use super::super::output::{EpochOutput, StepOutput};
use super::{StepResult, engine_error};
use crate::error::ErrorKind;
use crate::model::FailoverEpoch;
use crate::provider::{Node, Variable, VariableScope};

/// How long reading the environments' variables may take in all: the platform's API being
/// down must not hold a failover up (a DNS-only plan needs it nowhere else).
const VARIABLE_READ: std::time::Duration = std::time::Duration::from_secs(10);

/// The step's id in the runbook.
pub(crate) const STEP: &str = "failover-epoch";

/// The epoch this run made, from its journaled output (`None` before the step ran, or in
/// a run without one).
pub(super) fn of_run(run: &Arc<Run>) -> Option<FailoverEpoch> {
    let state = run.lock_state();
    match state.finished.get(STEP) {
        Some(StepOutput::Epoch(o)) => {
            Some(FailoverEpoch::new(o.epoch, run.run_id.clone(), run.mode.to_string(), run.parts.clock.now()))
        }
        _ => None,
    }
}

/// The newest epoch the environments' variable holds, on either site (best effort: the
/// variable is read through the platform's API, which a failover must not wait for).
async fn from_variables(run: &Arc<Run>) -> u64 {
    let mut newest = 0;
    let deadline = tokio::time::Instant::now() + VARIABLE_READ;
    for env in run.plan.dr.environments.iter().chain(run.plan.primary.environments.iter()) {
        let scope = VariableScope::Environment(env.clone());
        let read = run.providers.cluster.list_variables(&scope);
        match tokio::time::timeout_at(deadline, read).await.unwrap_or_else(|_| {
            Err(crate::error::ProviderError::new(
                ErrorKind::Timeout,
                "engine",
                STEP,
                format!("no answer within {}s for the variables", VARIABLE_READ.as_secs()),
            ))
        }) {
            Ok(vars) => newest = newest.max(Variable::failover_epoch_in(&vars)),
            Err(e) => tracing::warn!(environment = %env, error = %e, "cannot read the epoch variable; going on"),
        }
    }
    newest
}

pub(super) async fn record(run: &Arc<Run>) -> StepResult {
    let repl = &run.providers.replication;
    let ids = run.plan.primary.database_ids();
    let (mut previous, mut ours, mut not_supported) = (from_variables(run).await, None, Vec::new());
    for db in &ids {
        match repl.failover_epoch(db, Node::Standby).await {
            // A previous attempt of this run recorded it: the same epoch, never a second one.
            Ok(Some(e)) if e.run_id == run.run_id => ours = Some(e.epoch),
            Ok(Some(e)) => previous = previous.max(e.epoch),
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::NotSupported => not_supported.push(db.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    let epoch = match ours {
        Some(e) if e <= previous => {
            return Err(engine_error(
                ErrorKind::Conflict,
                STEP,
                format!("this run recorded epoch {e}, but epoch {previous} was recorded since by another run"),
            ));
        }
        Some(e) => e,
        None => previous + 1,
    };
    let record = FailoverEpoch::new(epoch, run.run_id.clone(), run.mode.to_string(), run.parts.clock.now());
    let mut recorded_in = Vec::new();
    for db in ids.iter().filter(|d| !not_supported.contains(d)) {
        repl.record_failover_epoch(db, &record).await?;
        recorded_in.push(db.clone());
    }
    tracing::info!(epoch, previous, "failover epoch recorded");
    Ok(StepOutput::Epoch(EpochOutput { epoch, previous, recorded_in, not_supported }))
}
