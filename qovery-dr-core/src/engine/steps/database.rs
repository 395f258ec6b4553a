//! The database pair: fence the old primary, wait for the standby, promote it, fix up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::super::events::Event;
use super::super::exec::Run;
use super::super::interlock::Interlock;
use super::super::mode::RunMode;
use super::super::output::{CatchUpOutput, FenceOutput, FixupsOutput, PromoteOutput, ReprotectOutput, StepOutput};
use super::super::runbook::StepSpec;
use super::rpo::{loss_estimate, standby_point};
use super::{StepError, StepResult, engine_error};
use crate::error::ErrorKind;
use crate::model::DatabaseId;
use crate::provider::{FenceOutcome, LinkState, PromoteOutcome, PromotionState, Writability};

/// Fences the old primary of every database of the site. A planned run first checks that
/// every standby can follow (link up, primary reachable) and refuses before fencing any.
pub(super) async fn fence(run: &Arc<Run>) -> StepResult {
    let ids = run.plan.primary.database_ids();
    if run.mode.is_planned() && ids.len() > 1 {
        for db in &ids {
            can_follow(run, db).await?;
        }
    }
    let results = each_database(run, &ids, |run, db| async move { fence_one(&run, &db).await }).await;
    let mut fenced = Vec::new();
    let mut failed = None;
    let mut outputs = Vec::new();
    for (db, r) in ids.iter().zip(results) {
        match r {
            Ok(f) => {
                if f.fenced {
                    fenced.push(db.to_string());
                }
                outputs.push((db.clone(), f));
            }
            Err(e) if failed.is_none() => failed = Some((db.clone(), e)),
            Err(e) => tracing::warn!(database = %db, error = ?e, "fence failed"),
        }
    }
    if let Some((db, e)) = failed {
        if ids.len() == 1 {
            return Err(e);
        }
        // Retried as a whole: fencing is idempotent, the fenced ones answer AlreadyFenced.
        let others = match fenced.as_slice() {
            [] => "no other database was fenced".to_owned(),
            f => format!("these ARE fenced and refuse writes: {}", f.join(", ")),
        };
        return Err(e.with_context(format!("fencing database {db} failed ({others})")));
    }
    let mut outputs = outputs.into_iter();
    let Some((_, mut main)) = outputs.next() else {
        return Err(StepError::NotReady("the plan names no database".to_owned()));
    };
    main.other_databases = outputs.collect();
    Ok(StepOutput::Fence(main))
}

/// A planned run fences production first and then waits for each standby: refuse while
/// nothing changed when one of them cannot follow.
async fn can_follow(run: &Arc<Run>, db: &DatabaseId) -> Result<(), StepError> {
    let p = &run.providers;
    if p.replication.primary_writability(db).await? == Writability::Unreachable {
        return Err(StepError::NotReady(format!(
            "the primary of {db} is unreachable: no database was fenced (a planned {} fences all of them or none)",
            run.mode
        )));
    }
    let status = p.replication.status(db).await?;
    if let LinkState::Down(why) | LinkState::Broken(why) = &status.link {
        return Err(StepError::NotReady(format!(
            "the standby of {db} cannot catch up ({why}): no database was fenced (a planned {} fences all of them or none)",
            run.mode
        )));
    }
    Ok(())
}

async fn fence_one(run: &Arc<Run>, db: &DatabaseId) -> Result<FenceOutput, StepError> {
    let p = &run.providers;
    let writability = p.replication.primary_writability(db).await?;
    if writability == Writability::Unreachable {
        if run.mode.is_planned() {
            return Err(StepError::NotReady(format!(
                "the primary of {db} became unreachable: cannot fence or drain it"
            )));
        }
        return Ok(FenceOutput {
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
            promotion: promotion_state(run, db).await,
            other_databases: BTreeMap::new(),
        });
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
            Ok(FenceOutput {
                fenced: true,
                already: outcome == FenceOutcome::AlreadyFenced,
                at,
                caught_up_to: caught_up,
                skipped: None,
                evidence: None,
                promotion: promotion_state(run, db).await,
                other_databases: BTreeMap::new(),
            })
        }
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(FenceOutput {
            fenced: false,
            already: false,
            at: run.parts.clock.now(),
            caught_up_to: None,
            skipped: None,
            evidence: Some(format!("the replication manager cannot fence: {e}")),
            promotion: promotion_state(run, db).await,
            other_databases: BTreeMap::new(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Runs `f` for every database of the site, side by side, and gives the results in the
/// site's order. One database is awaited in place.
async fn each_database<T, F, Fut>(run: &Arc<Run>, ids: &[DatabaseId], f: F) -> Vec<Result<T, StepError>>
where
    T: Send + 'static,
    F: Fn(Arc<Run>, DatabaseId) -> Fut,
    Fut: std::future::Future<Output = Result<T, StepError>> + Send + 'static,
{
    if let [one] = ids {
        return vec![f(Arc::clone(run), one.clone()).await];
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, db) in ids.iter().enumerate() {
        let fut = f(Arc::clone(run), db.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut results: Vec<Option<Result<T, StepError>>> = ids.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r);
                }
            }
            Err(e) => tracing::error!(error = %e, "a database task ended without an answer"),
        }
    }
    results
        .into_iter()
        .zip(ids)
        .map(|(r, db)| {
            r.unwrap_or_else(|| {
                Err(engine_error(
                    ErrorKind::Indeterminate,
                    "database",
                    format!("the task for {db} ended without an answer"),
                ))
            })
        })
        .collect()
}

/// The outputs of every database (the site's first at the top, the others under
/// `other_databases`), or the first error, naming its database when there are several.
fn gather<T>(
    ids: &[DatabaseId],
    results: Vec<Result<T, StepError>>,
    what: &str,
) -> Result<(T, BTreeMap<DatabaseId, T>), StepError> {
    let several = ids.len() > 1;
    let mut outputs = Vec::new();
    for (db, r) in ids.iter().zip(results) {
        match r {
            Ok(t) => outputs.push((db.clone(), t)),
            Err(e) if several => return Err(e.with_context(format!("{what} of database {db}"))),
            Err(e) => return Err(e),
        }
    }
    let mut outputs = outputs.into_iter();
    match outputs.next() {
        Some((_, main)) => Ok((main, outputs.collect())),
        None => Err(StepError::NotReady("the plan names no database".to_owned())),
    }
}

/// Waits until every standby replays its fenced primary's final LSN, side by side.
pub(super) async fn catch_up(run: &Arc<Run>, spec: &StepSpec) -> StepResult {
    let ids = run.plan.primary.database_ids();
    let spec = Arc::new(spec.clone());
    let results = each_database(run, &ids, |run, db| {
        let spec = Arc::clone(&spec);
        async move { catch_up_one(&run, &spec, &db).await }
    })
    .await;
    let (mut main, others) = gather(&ids, results, "the catch-up")?;
    main.other_databases = others;
    Ok(StepOutput::CatchUp(main))
}

async fn catch_up_one(run: &Arc<Run>, spec: &StepSpec, db: &DatabaseId) -> Result<CatchUpOutput, StepError> {
    let p = &run.providers;
    let status = p.replication.status(db).await?;
    let Some(final_lsn) = status.primary_lsn else {
        return Err(engine_error(
            ErrorKind::Transient,
            &spec.id,
            format!("the fenced primary of {db} did not report its final LSN"),
        ));
    };
    run.emit(Event::Waiting { step: spec.id.clone(), what: format!("standby of {db} to replay {final_lsn}") });
    // The provider's own wait ends first, so its reason (paused replay, how far it got)
    // reaches the report instead of the step's generic timeout.
    let budget = spec.timeout.saturating_sub(Duration::from_secs(2)).max(spec.timeout / 2);
    let reached = p.replication.wait_for_catch_up(db, &crate::provider::CatchUp::new(final_lsn, budget)).await?;
    Ok(CatchUpOutput { final_lsn, replayed: reached, other_databases: BTreeMap::new() })
}

/// Promotes every standby, once the interlocks of *all* of them pass: a run never promotes
/// one database and then refuses another.
pub(super) async fn promote(run: &Arc<Run>, id: &str) -> StepResult {
    let p = &run.providers;
    let ids = run.plan.primary.database_ids();
    let several = ids.len() > 1;
    let mut pending = Vec::new();
    for db in &ids {
        // Already promoted (an earlier attempt acted, then its answer was lost):
        // its interlocks passed then; promoting again would change nothing.
        let status = p.replication.status(db).await?;
        if status.standby_promoted {
            continue;
        }
        let checked = interlocks(run, id, db, &status).await;
        match checked {
            Err(e) if several => {
                return Err(e.with_context(format!("database {db} (no database was promoted by this attempt)")));
            }
            Err(e) => return Err(e),
            Ok(()) => pending.push(db.clone()),
        }
    }
    let results = each_database(run, &ids, |run, db| {
        let promote = pending.contains(&db);
        async move {
            let outcome = if promote {
                run.providers.replication.promote_standby(&db).await?
            } else {
                PromoteOutcome::AlreadyPrimary
            };
            Ok(PromoteOutput { outcome, at: run.parts.clock.now(), other_databases: BTreeMap::new() })
        }
    })
    .await;
    let (mut main, others) = gather(&ids, results, "the promotion")?;
    main.other_databases = others;
    Ok(StepOutput::Promote(main))
}

/// The two interlocks of a promotion, for database `db`.
async fn interlocks(
    run: &Arc<Run>,
    id: &str,
    db: &DatabaseId,
    status: &crate::provider::ReplicationStatus,
) -> Result<(), StepError> {
    let p = &run.providers;
    let main = &run.plan.primary.database.id;
    // The fence step precedes promotion in every runbook that promotes.
    let fence = run.lock_state().fence_of(db, main).cloned().ok_or_else(|| {
        StepError::NotReady(format!("the fence step's outcome for {db} is not in the journal: refusing to promote"))
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
        (state.proven_final_lsn_of(db, main).is_some(), state.rpo_end_of(db, main))
    };
    if !proven_zero {
        let point = standby_point(run, db).await?;
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
    Ok(())
}

/// What the fix-ups will need, read after the fence: a failure to read it is a warning in
/// it, never a reason to hold up the failover.
async fn promotion_state(run: &Arc<Run>, db: &DatabaseId) -> PromotionState {
    match run.providers.replication.promotion_state(db).await {
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

/// The fix-ups of every promoted database, each from the state its fence journaled.
pub(super) async fn fixups(run: &Arc<Run>) -> StepResult {
    let ids = run.plan.primary.database_ids();
    let results = each_database(run, &ids, |run, db| async move { fixups_one(&run, &db).await }).await;
    let (mut main, others) = gather(&ids, results, "the fix-ups")?;
    main.other_databases = others;
    Ok(StepOutput::Fixups(main))
}

async fn fixups_one(run: &Arc<Run>, db: &DatabaseId) -> Result<FixupsOutput, StepError> {
    // From the journal: a process that died after the promotion has it too.
    let state =
        run.lock_state().fence_of(db, &run.plan.primary.database.id).map(|f| f.promotion.clone()).ok_or_else(|| {
            StepError::NotReady(format!(
                "the fence step's outcome for {db} (with the promotion state) is not in the journal"
            ))
        })?;
    let r = run.providers.replication.post_promotion_fixups(db, &state).await?;
    for w in &r.warnings {
        tracing::warn!(database = %db, warning = %w, "post-promotion fix-up left something for an operator");
    }
    Ok(FixupsOutput { sequences_synced: r.sequences_synced, warnings: r.warnings, other_databases: BTreeMap::new() })
}

/// A failback's re-protection: every original primary made a standby of the current
/// primary by the replication manager, then followed until its link streams.
pub(super) async fn reprotect(run: &Arc<Run>, spec: &StepSpec) -> StepResult {
    let ids = run.plan.primary.database_ids();
    let spec = Arc::new(spec.clone());
    let results = each_database(run, &ids, |run, db| {
        let spec = Arc::clone(&spec);
        async move { reprotect_one(&run, &spec, &db).await }
    })
    .await;
    let (mut main, others) = gather(&ids, results, "the re-protection")?;
    main.other_databases = others;
    Ok(StepOutput::Reprotect(main))
}

async fn reprotect_one(run: &Arc<Run>, spec: &StepSpec, db: &DatabaseId) -> Result<ReprotectOutput, StepError> {
    let p = &run.providers;
    // Re-protected already (by hand, or by an attempt whose answer was lost): nothing to do.
    // (An original primary that is down cannot answer: that is no reason not to re-protect it.)
    if let Ok(before) = p.replication.status(db).await
        && before.link == LinkState::Streaming
    {
        let report = crate::provider::ReprotectReport::already("found following the current primary");
        return Ok(ReprotectOutput { report, link: before.link, other_databases: BTreeMap::new() });
    }
    let report = match p.replication.reprotect(db).await {
        Err(e) if e.kind() == ErrorKind::NotSupported => {
            return Err(StepError::NotReady(format!(
                "the replication manager cannot re-protect {db} ({e}): make the original primary a standby of \
                 the current one by hand, then resume or run the failback again (it goes on once it streams)"
            )));
        }
        other => other?,
    };
    for note in &report.notes {
        tracing::warn!(database = %db, %note, "re-protection");
    }
    run.emit(Event::Waiting { step: spec.id.clone(), what: format!("the original primary of {db} to follow") });
    let poll = run.parts.options.poll_interval;
    loop {
        // A server that is starting may refuse connections for a moment: the step's timeout
        // bounds the wait.
        let status = match p.replication.status(db).await {
            Ok(s) => s,
            Err(e) if e.is_retryable() => {
                super::super::exec::pause(poll).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match &status.link {
            LinkState::Streaming => {
                return Ok(ReprotectOutput { report, link: status.link, other_databases: BTreeMap::new() });
            }
            LinkState::NotApplicable
                if status.mode == crate::provider::ReplicationMode::Dump && status.last_backup.is_some() =>
            {
                return Ok(ReprotectOutput { report, link: status.link, other_databases: BTreeMap::new() });
            }
            LinkState::Broken(why) => {
                return Err(StepError::NotReady(format!(
                    "the re-protected original primary of {db} cannot follow ({why}): read the manager's notes ({}) and re-protect it by hand",
                    report.notes.join("; ")
                )));
            }
            _ => {}
        }
        super::super::exec::pause(poll).await;
    }
}
