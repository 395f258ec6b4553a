//! The gates before anything in production changes: preflight, approval, lock.

use std::sync::Arc;
use std::time::Duration;

use super::super::approval::{Approval, ApprovalRequest};
use super::super::dry_run::assess;
use super::super::error::EngineError;
use super::super::events::Event;
use super::super::exec::Run;
use super::super::interlock::Interlock;
use super::super::mode::RunMode;
use super::super::output::{ApprovalOutput, LockOutput, PreflightOutput, StepOutput};
use super::{StepError, StepResult, millis_u64, rpo::loss_estimate};
use crate::error::ErrorKind;
use crate::journal::JournalEvent;
use crate::lock::{LockHolder, TakeError, take};
use crate::model::DatabaseId;
use crate::provider::{ClusterState, LinkState, Node, Writability};

pub(super) async fn preflight(run: &Arc<Run>) -> StepResult {
    let p = &run.providers;
    let plan = &run.plan;
    let dr = p.cluster.cluster_status(&plan.dr.cluster).await?;
    let startable = matches!(dr.state, ClusterState::Stopped | ClusterState::Deploying);
    if plan.failover.start_stopped_cluster && startable {
        // The start-cluster stage starts it and waits, before anything else changes.
    } else if !dr.is_healthy() {
        return Err(StepError::NotReady(format!(
            "DR cluster {} is {:?}{}",
            plan.dr.cluster,
            dr.state,
            dr.message.map(|m| format!(": {m}")).unwrap_or_default()
        )));
    }
    for env in &plan.dr.environments {
        p.cluster.environment_status(env).await?;
    }
    // Every image the run will point services at must be usable by the platform, checked
    // now: set_service_image comes after the promotion, past the point of no return.
    let sources = if run.mode == RunMode::Drill { &plan.primary.environments } else { &plan.dr.environments };
    let mut checked = std::collections::BTreeSet::new();
    for env in sources {
        for svc in p.cluster.list_services(env).await? {
            let Some(image) = svc.image else { continue };
            let Ok(target) = plan.registry_mapping.remap(&image) else { continue };
            if !checked.insert(target.registry().to_owned()) {
                continue;
            }
            if let Err(e) = p.cluster.image_source_ready(&target).await {
                if e.is_retryable() {
                    return Err(e.into());
                }
                return Err(StepError::NotReady(format!(
                    "services of {env} will run images from {} ({target}), which {} cannot use: {e}",
                    target.registry(),
                    p.cluster.name()
                )));
            }
        }
    }
    // Every database of the site, before anything changes: a planned run that would fence
    // one and then find another cannot follow refuses here, with none fenced.
    let ids = plan.primary.database_ids();
    let mut outputs = Vec::new();
    for db in &ids {
        let out = database_preflight(run, db).await;
        match out {
            Ok(o) => outputs.push(o),
            Err(e) if ids.len() > 1 => {
                return Err(e.with_context(format!("database {db} of {} (nothing was fenced)", ids.len())));
            }
            Err(e) => return Err(e),
        }
    }
    let mut outputs = ids.iter().cloned().zip(outputs);
    let Some((_, mut main)) = outputs.next() else {
        return Err(StepError::NotReady("the plan names no database".to_owned()));
    };
    main.other_databases = outputs.collect();
    Ok(StepOutput::Preflight(main))
}

/// What the preflight reads of one database, and the refusals it implies.
async fn database_preflight(run: &Arc<Run>, db: &DatabaseId) -> Result<PreflightOutput, StepError> {
    let p = &run.providers;
    let status = p.replication.status(db).await?;
    let writability = p.replication.primary_writability(db).await?;
    let observed_at = run.parts.clock.now();
    match run.mode {
        RunMode::Switchover | RunMode::Failback if writability == Writability::Unreachable => {
            return Err(StepError::NotReady(format!(
                "the primary of {db} is unreachable: a planned {} needs it to drain and fence; use failover mode",
                run.mode
            )));
        }
        // A planned switch fences production first, then waits for the standby: one that
        // cannot catch up (paused replay, no receiver, another timeline) would leave
        // production fenced until the step gave up. Refuse while nothing has changed.
        RunMode::Switchover if matches!(status.link, LinkState::Down(_) | LinkState::Broken(_)) => {
            let why = match &status.link {
                LinkState::Down(w) | LinkState::Broken(w) => w.clone(),
                _ => String::new(),
            };
            return Err(StepError::NotReady(format!(
                "the standby of {db} cannot catch up ({why}): a switchover would fence the primary and then wait; \
                 fix the link first (e.g. SELECT pg_wal_replay_resume() on a paused standby), or use failover mode \
                 if the primary is lost"
            )));
        }
        RunMode::Failback if status.link != LinkState::Streaming && !run.plan.failover.reprotect_on_failback => {
            return Err(StepError::NotReady(format!(
                "failback needs re-protection first: the original primary must stream from the current one (link is \
                 {:?}); re-protect it by hand, or set failover.reprotect_on_failback to have the run do it",
                status.link
            )));
        }
        _ => {}
    }
    let heartbeat = match p.replication.last_heartbeat(db, Node::Standby).await {
        Ok(h) => h,
        Err(e) if e.kind() == ErrorKind::NotSupported => None,
        Err(e) => return Err(e.into()),
    };
    Ok(PreflightOutput {
        primary: writability,
        observed_at,
        link: status.link,
        lag_bytes: status.lag_bytes,
        lag_ms: status.lag.map(millis_u64),
        standby_heartbeat: heartbeat,
        other_databases: std::collections::BTreeMap::new(),
    })
}

pub(super) async fn approve(run: &Arc<Run>) -> StepResult {
    let policy = &run.plan.approval;
    let auto = if !policy.required {
        Some("policy: the plan does not require approval")
    } else if run.mode == RunMode::Drill && policy.drill_auto_approve {
        Some("policy: drills are approved automatically")
    } else {
        None
    };
    let approval = match auto {
        Some(why) => Approval {
            approver: "plan-policy".into(),
            at: run.parts.clock.now(),
            comment: why.into(),
            accepted_data_loss: None,
        },
        None => {
            let estimate = if run.mode.is_planned() {
                Some(Duration::ZERO)
            } else {
                // The approver is shown the loss the preflight estimated: without it there is
                // nothing honest to show, so the run stops rather than ask with a blank.
                let pre = run.lock_state().preflight().cloned().ok_or_else(|| {
                    StepError::NotReady(
                        "the preflight's observations are not in the journal: the approval cannot show an \
                         estimated data loss"
                            .to_owned(),
                    )
                })?;
                // The worst of the site's databases; unknown if any one's is.
                std::iter::once(&pre)
                    .chain(pre.other_databases.values())
                    .map(|d| {
                        let hb = d.standby_heartbeat.as_ref().map(|h| h.written_at);
                        loss_estimate(Some(d.observed_at), hb, d.lag_ms.map(Duration::from_millis)).0
                    })
                    .collect::<Option<Vec<Duration>>>()
                    .and_then(|v| v.into_iter().max())
            };
            // What the dry run foresees now, read through read-only providers (this run's own
            // hold of the lock is not a refusal).
            let foreseen = assess(&run.plan, run.mode, &run.providers.read_only(), &run.parts, Some(&run.run_id)).await;
            let verdicts = |verdict: &str| {
                foreseen
                    .iter()
                    .filter(|a| a.verdict == verdict)
                    .map(|a| format!("{}: {}", a.step, a.evidence))
                    .collect::<Vec<_>>()
            };
            let request = ApprovalRequest {
                plan: run.plan.name.clone(),
                mode: run.mode,
                run_id: run.run_id.clone(),
                summary: run.runbook.to_table(),
                estimated_data_loss: estimate,
                foreseen_refusals: verdicts("would-refuse"),
                foreseen_warnings: verdicts("warning"),
            };
            run.emit(Event::ApprovalRequested { run_id: run.run_id.clone() });
            let mut a = run.parts.approver.approve(&request).await.map_err(|d| StepError::Engine(d.into()))?;
            if !policy.approvers.is_empty() && !policy.approvers.contains(&a.approver) {
                return Err(StepError::Engine(EngineError::Denied(super::super::approval::ApprovalDenied {
                    by: a.approver.clone(),
                    reason: format!(
                        "{} is not an approver of this plan (approvers: {})",
                        a.approver,
                        policy.approvers.join(", ")
                    ),
                })));
            }
            a.comment = a.comment.trim().to_owned();
            // Stamped by the engine's clock, like every journal entry.
            a.at = run.parts.clock.now();
            a
        }
    };
    run.journal(JournalEvent::ApprovalGranted { approval: approval.clone() }).await.map_err(StepError::Engine)?;
    run.lock_state().approval = Some(approval.clone());
    Ok(StepOutput::Approval(ApprovalOutput { approver: approval.approver }))
}

/// Re-takes the run's lock (the engine took it before the run's first journal entry; a
/// lease-backed lock may have been lost since) through the one function that takes locks,
/// and journals who holds it.
pub(super) async fn acquire_lock(run: &Arc<Run>, id: &str) -> StepResult {
    let holder = LockHolder {
        run_id: run.run_id.clone(),
        owner: run.parts.options.operator.clone(),
        acquired_at: run.parts.clock.now(),
    };
    let takeover = run.override_for(Interlock::LockHeld).is_some();
    let poll = run.parts.options.poll_interval;
    let taken = match take(run.parts.lock.as_ref(), &run.plan.name, &holder, takeover, Duration::ZERO, poll).await {
        Ok(taken) => taken,
        Err(TakeError::Held(evidence)) => {
            run.interlock(id, Interlock::LockHeld, false, evidence.clone()).await?;
            return Err(StepError::NotReady(evidence));
        }
        Err(TakeError::Lock(e)) => return Err(StepError::Engine(e.into())),
    };
    run.set_guard(taken.guard);
    if let Some(evidence) = taken.took_over {
        run.interlock(id, Interlock::LockHeld, false, evidence).await?;
    }
    if !run.lock_state().done(id) {
        run.journal(JournalEvent::LockAcquired { holder: holder.clone() }).await.map_err(StepError::Engine)?;
    }
    Ok(StepOutput::Lock(LockOutput { holder: holder.owner }))
}
