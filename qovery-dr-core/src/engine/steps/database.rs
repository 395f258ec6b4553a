//! The database pair: fence the old primary, wait for the standby, promote it, fix up.

use std::sync::Arc;
use std::time::Duration;

use super::super::events::Event;
use super::super::exec::Run;
use super::super::interlock::Interlock;
use super::super::mode::RunMode;
use super::super::output::{CatchUpOutput, FenceOutput, FixupsOutput, PromoteOutput, StepOutput};
use super::super::runbook::StepSpec;
use super::rpo::{loss_estimate, standby_point};
use super::{StepError, StepResult, engine_error};
use crate::error::ErrorKind;
use crate::provider::{FenceOutcome, PromoteOutcome, PromotionState, Writability};

pub(super) async fn fence(run: &Arc<Run>) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    let writability = p.replication.primary_writability(db).await?;
    if writability == Writability::Unreachable {
        if run.mode.is_planned() {
            return Err(StepError::NotReady(format!(
                "the primary of {db} became unreachable: cannot fence or drain it"
            )));
        }
        return Ok(StepOutput::Fence(FenceOutput {
            fenced: false,
            already: false,
            at: run.parts.clock.now(),
            caught_up_to: None,
            skipped: Some("unreachable: NOT fenced".to_owned()),
            evidence: Some(
                "the old primary is unreachable: it cannot be fenced from here and may still accept writes from \
                 clients that reach it"
                    .to_owned(),
            ),
            promotion: promotion_state(run).await,
        }));
    }
    if run.mode == RunMode::Failover && writability == Writability::Writable && p.replication.capabilities().heartbeat {
        // A last heartbeat right before the fence tightens the measured RPO.
        if let Err(e) = p.replication.write_heartbeat(db).await {
            tracing::warn!(error = %e, "could not write the pre-fence heartbeat");
        }
    }
    match p.replication.fence_primary(db).await {
        Ok(outcome) => {
            let verified = p.replication.primary_writability(db).await?;
            if verified == Writability::Writable {
                return Err(engine_error(
                    ErrorKind::Transient,
                    "fence-primary",
                    "the primary still accepts writes after fencing".into(),
                ));
            }
            let at = run.parts.clock.now();
            // Unplanned, but the primary answered: a short, bounded catch-up can
            // still prove zero loss. Never long: the outage clock is running.
            let mut caught_up = None;
            if run.mode == RunMode::Failover
                && let Ok(s) = p.replication.status(db).await
                && let Some(final_lsn) = s.primary_lsn
            {
                let budget = Duration::from_secs(30).min(run.plan.objectives.rto / 10);
                if p.replication.wait_for_catch_up(db, &crate::provider::CatchUp::new(final_lsn, budget)).await.is_ok()
                {
                    caught_up = Some(final_lsn);
                }
            }
            Ok(StepOutput::Fence(FenceOutput {
                fenced: true,
                already: outcome == FenceOutcome::AlreadyFenced,
                at,
                caught_up_to: caught_up,
                skipped: None,
                evidence: None,
                promotion: promotion_state(run).await,
            }))
        }
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(StepOutput::Fence(FenceOutput {
            fenced: false,
            already: false,
            at: run.parts.clock.now(),
            caught_up_to: None,
            skipped: None,
            evidence: Some(format!("the replication manager cannot fence: {e}")),
            promotion: promotion_state(run).await,
        })),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn catch_up(run: &Arc<Run>, spec: &StepSpec) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    let status = p.replication.status(db).await?;
    let Some(final_lsn) = status.primary_lsn else {
        return Err(engine_error(
            ErrorKind::Transient,
            &spec.id,
            "the fenced primary did not report its final LSN".into(),
        ));
    };
    run.emit(Event::Waiting { step: spec.id.clone(), what: format!("standby to replay {final_lsn}") });
    // The provider's own wait ends first, so its reason (paused replay, how far it got)
    // reaches the report instead of the step's generic timeout.
    let budget = spec.timeout.saturating_sub(Duration::from_secs(2)).max(spec.timeout / 2);
    let reached = p.replication.wait_for_catch_up(db, &crate::provider::CatchUp::new(final_lsn, budget)).await?;
    Ok(StepOutput::CatchUp(CatchUpOutput { final_lsn, replayed: reached }))
}

pub(super) async fn promote(run: &Arc<Run>, id: &str) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    // Already promoted (an earlier attempt acted, then its answer was lost):
    // its interlocks passed then; promoting again would change nothing.
    let status = p.replication.status(db).await?;
    if status.standby_promoted {
        return Ok(StepOutput::Promote(PromoteOutput {
            outcome: PromoteOutcome::AlreadyPrimary,
            at: run.parts.clock.now(),
        }));
    }
    // The fence step precedes promotion in every runbook that promotes.
    let fence = run.lock_state().fence().cloned().ok_or_else(|| {
        StepError::NotReady("the fence step's outcome is not in the journal: refusing to promote".to_owned())
    })?;
    let fenced = fence.fenced;
    // Interlock 1: the old primary must not accept writes.
    let (safe, evidence) = if fenced {
        (true, "the old primary is fenced".to_owned())
    } else {
        match p.replication.primary_writability(db).await? {
            Writability::ReadOnly => (true, "the old primary refuses writes".to_owned()),
            Writability::Writable => (false, "the old primary accepts writes and is not fenced".to_owned()),
            Writability::Unreachable => (
                false,
                fence.evidence.clone().unwrap_or_else(|| {
                    "the old primary is unreachable and not fenced: it may still accept writes".to_owned()
                }),
            ),
        }
    };
    run.interlock(id, Interlock::PrimaryMayAcceptWrites, safe, evidence).await?;
    // Interlock 2: the data loss must fit the RPO (or an approved budget).
    let (proven_zero, end) = {
        let state = run.lock_state();
        (state.proven_final_lsn().is_some(), state.rpo_end())
    };
    if !proven_zero {
        let point = standby_point(run).await?;
        let lag = status.lag;
        let (estimate, how) = loss_estimate(end, point.map(|(t, _)| t), lag);
        let rpo = run.plan.objectives.rpo;
        match estimate {
            Some(loss) if loss <= rpo => {}
            _ => {
                let evidence = match estimate {
                    Some(loss) => format!(
                        "estimated data loss {} exceeds the RPO {} ({how})",
                        humantime::format_duration(loss),
                        humantime::format_duration(rpo)
                    ),
                    None => format!("{how}; the RPO {} cannot be shown to hold", humantime::format_duration(rpo)),
                };
                let approval = run.lock_state().approval.clone();
                let budget = approval.as_ref().and_then(|a| a.accepted_data_loss.map(|b| (a.approver.clone(), b)));
                match (budget, estimate) {
                    (Some((who, b)), Some(loss)) if loss <= b => {
                        run.journal_budget(
                            id,
                            format!("approved data-loss budget of {} by {who}", humantime::format_duration(b)),
                            evidence,
                        )
                        .await?;
                    }
                    _ => run.interlock(id, Interlock::LagExceedsRpo, false, evidence).await?,
                }
            }
        }
    }
    let outcome = p.replication.promote_standby(db).await?;
    Ok(StepOutput::Promote(PromoteOutput { outcome, at: run.parts.clock.now() }))
}

/// What the fix-ups will need, read after the fence: a failure to read it is a warning in
/// it, never a reason to hold up the failover.
async fn promotion_state(run: &Arc<Run>) -> PromotionState {
    match run.providers.replication.promotion_state(&run.plan.primary.database.id).await {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!(error = %e, "could not read what the post-promotion fix-ups need");
            PromotionState {
                warnings: vec![format!("the promotion state could not be read: {e}")],
                ..Default::default()
            }
        }
    }
}

pub(super) async fn fixups(run: &Arc<Run>) -> StepResult {
    // From the journal: a process that died after the promotion has it too.
    let state = run.lock_state().fence().map(|f| f.promotion.clone()).ok_or_else(|| {
        StepError::NotReady("the fence step's outcome (with the promotion state) is not in the journal".to_owned())
    })?;
    let r = run.providers.replication.post_promotion_fixups(&run.plan.primary.database.id, &state).await?;
    for w in &r.warnings {
        tracing::warn!(warning = %w, "post-promotion fix-up left something for an operator");
    }
    Ok(StepOutput::Fixups(FixupsOutput { sequences_synced: r.sequences_synced, warnings: r.warnings }))
}
