//! What each step does: precondition and interlocks, action, verification.
//! Every action is safe to repeat after `reconcile` (a previous attempt may
//! have acted): it reads state first and does not redo what is done.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::approval::{Approval, ApprovalRequest};
use super::error::EngineError;
use super::events::Event;
use super::exec::{Run, pause};
use super::interlock::Interlock;
use super::journal::JournalEvent;
use super::lock::{LockError, LockHolder};
use super::mode::RunMode;
use super::runbook::{EnvRef, StepKind, StepSpec};
use crate::error::{ErrorKind, ProviderError};
use crate::model::{DnsRecordId, DnsTarget, EnvironmentId, ImageRef, Timestamp};
use crate::provider::{
    CloneRequest, DeploymentPhase, FenceOutcome, ImageParity, LinkState, Node, SwitchRequest, TargetHealth,
    VariableScope, VariableValue, Writability,
};

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

type StepResult = Result<Value, StepError>;

fn engine_error(kind: ErrorKind, op: &str, message: String) -> StepError {
    StepError::Provider(ProviderError::new(kind, "engine", op, message))
}

fn ts(v: &Value, key: &str) -> Option<Timestamp> {
    v.get(key).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

pub(crate) async fn run(run: &Arc<Run>, spec: &StepSpec, reconcile: bool) -> StepResult {
    let id = spec.id.as_str();
    match &spec.kind {
        StepKind::Preflight => preflight(run).await,
        StepKind::Approve => approve(run).await,
        StepKind::AcquireLock => acquire_lock(run, id).await,
        StepKind::FencePrimary => fence(run).await,
        StepKind::CatchUp => catch_up(run, spec).await,
        StepKind::PromoteDatabase => promote(run, id).await,
        StepKind::PostPromotionFixups => {
            let r = run.providers.replication.post_promotion_fixups(&run.plan.primary.database.id).await?;
            for w in &r.warnings {
                tracing::warn!(warning = %w, "post-promotion fix-up left something for an operator");
            }
            Ok(json!({ "sequences_synced": r.sequences_synced, "warnings": r.warnings }))
        }
        StepKind::MeasureReplicationLag => measure_lag(run, id).await,
        StepKind::CloneEnvironment { source } => clone_environment(run, source, reconcile).await,
        StepKind::SyncImage { image } => sync_image(run, image).await,
        StepKind::ApplyParameters { environment } => apply_parameters(run, environment).await,
        StepKind::SetServiceImage { environment, service, image } => set_image(run, environment, service, image).await,
        StepKind::DeployServices { environment, services } => {
            deploy(run, id, environment, Some(services.as_slice()), reconcile).await
        }
        StepKind::DeployService { environment, service } => {
            deploy(run, id, environment, Some(std::slice::from_ref(service)), reconcile).await
        }
        StepKind::DeployEnvironment { environment } => {
            let env = resolve(run, environment)?;
            deploy(run, id, &env, None, reconcile).await
        }
        StepKind::VerifyEnvironment { environment } => verify_environment(run, id, environment).await,
        StepKind::VerifyTargetHealth { record, target } => verify_health(run, id, record, target).await,
        StepKind::SwitchDns { record, from, to } => switch_dns(run, id, record, from, to).await,
        StepKind::VerifyDns { record, target } => {
            let cur = run.providers.dns.current(record).await?;
            if &cur.target != target {
                return Err(engine_error(
                    ErrorKind::Conflict,
                    id,
                    format!("{record} points at {}, expected {target}", cur.target),
                ));
            }
            Ok(json!({ "target": cur.target }))
        }
        StepKind::DrainTtl { ttl } => {
            run.emit(Event::Waiting {
                step: id.to_owned(),
                what: format!("old TTL of {}", humantime::format_duration(*ttl)),
            });
            tokio::time::sleep(*ttl).await;
            Ok(json!({}))
        }
        StepKind::Record => record(run).await,
        StepKind::DeleteClone { source } => delete_clone(run, source).await,
    }
}

fn resolve(run: &Run, env: &EnvRef) -> Result<EnvironmentId, StepError> {
    match env {
        EnvRef::Existing(e) => Ok(e.clone()),
        EnvRef::CloneOf(src) => run
            .output(&format!("clone:{src}"))
            .and_then(|o| o.get("environment").and_then(Value::as_str).map(EnvironmentId::new))
            .ok_or_else(|| StepError::NotReady(format!("the drill clone of {src} was not created"))),
    }
}

async fn preflight(run: &Arc<Run>) -> StepResult {
    let p = &run.providers;
    let plan = &run.plan;
    let db = &plan.primary.database.id;
    let dr = p.cluster.cluster_status(&plan.dr.cluster).await?;
    if !dr.is_healthy() {
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
        RunMode::Failback if status.link != LinkState::Streaming => {
            return Err(StepError::NotReady(format!(
                "failback needs re-protection first: the original primary must stream from the current one (link is {:?})",
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
    Ok(json!({
        "primary": writability,
        "observed_at": observed_at,
        "link": status.link,
        "lag_bytes": status.lag_bytes,
        "lag_ms": status.lag.map(|d| d.as_millis() as u64),
        "standby_heartbeat": heartbeat,
    }))
}

/// The data loss to expect if the standby were promoted now, and how it was estimated.
pub(crate) fn loss_estimate(
    rpo_end: Option<Timestamp>,
    heartbeat_at: Option<Timestamp>,
    lag: Option<Duration>,
) -> (Option<Duration>, String) {
    match (rpo_end, heartbeat_at, lag) {
        (Some(end), Some(hb), _) => (
            Some(end.saturating_since(hb)),
            format!(
                "the standby's newest heartbeat was written at {hb}; the primary was last known to accept writes at {end}"
            ),
        ),
        (_, _, Some(l)) => (Some(l), format!("replication lag measured at {}", humantime::format_duration(l))),
        _ => (
            None,
            "no heartbeat (or dump) on the standby and no lag measurement: the loss cannot be estimated".to_owned(),
        ),
    }
}

async fn approve(run: &Arc<Run>) -> StepResult {
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
            let pre = run.output("preflight").unwrap_or(Value::Null);
            let estimate = if run.mode.is_planned() {
                Some(Duration::ZERO)
            } else {
                let hb = pre.get("standby_heartbeat").and_then(|h| ts(h, "written_at"));
                let lag = pre.get("lag_ms").and_then(Value::as_u64).map(Duration::from_millis);
                loss_estimate(ts(&pre, "observed_at"), hb, lag).0
            };
            let request = ApprovalRequest {
                plan: run.plan.name.clone(),
                mode: run.mode,
                run_id: run.run_id.clone(),
                summary: run.runbook.to_table(),
                estimated_data_loss: estimate,
                foreseen_refusals: Vec::new(),
            };
            run.emit(Event::ApprovalRequested { run_id: run.run_id.clone() });
            let mut a = run.parts.approver.approve(&request).await.map_err(|d| StepError::Engine(d.into()))?;
            if !policy.approvers.is_empty() && !policy.approvers.contains(&a.approver) {
                return Err(StepError::Engine(EngineError::Denied(super::approval::ApprovalDenied {
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
    Ok(json!({ "approver": approval.approver }))
}

async fn acquire_lock(run: &Arc<Run>, id: &str) -> StepResult {
    let holder = LockHolder {
        run_id: run.run_id.clone(),
        owner: run.parts.options.operator.clone(),
        acquired_at: run.parts.clock.now(),
    };
    let plan = run.plan.name.clone();
    match run.parts.lock.acquire(&plan, &holder).await {
        Ok(()) => {}
        Err(LockError::Held { holder: other, .. }) => {
            let evidence =
                format!("run {} by {} holds the lock since {}", other.run_id, other.owner, other.acquired_at);
            run.interlock(id, Interlock::LockHeld, false, evidence).await?;
            // Overridden: take the lock over from a run the operator declared dead.
            run.parts.lock.release(&plan, &other.run_id).await.map_err(|e| StepError::Engine(e.into()))?;
            run.parts.lock.acquire(&plan, &holder).await.map_err(|e| StepError::Engine(e.into()))?;
        }
        Err(e) => return Err(StepError::Engine(e.into())),
    }
    if !run.lock_state().finished.contains_key(id) {
        run.journal(JournalEvent::LockAcquired { holder: holder.clone() }).await.map_err(StepError::Engine)?;
    }
    Ok(json!({ "holder": holder.owner }))
}

async fn fence(run: &Arc<Run>) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    let writability = p.replication.primary_writability(db).await?;
    if writability == Writability::Unreachable {
        if run.mode.is_planned() {
            return Err(StepError::NotReady(format!(
                "the primary of {db} became unreachable: cannot fence or drain it"
            )));
        }
        return Ok(json!({
            "fenced": false,
            "skipped": "unreachable: NOT fenced",
            "at": run.parts.clock.now(),
            "evidence": "the old primary is unreachable: it cannot be fenced from here and may still accept writes from clients that reach it",
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
                if p.replication.wait_for_catch_up(db, final_lsn, budget).await.is_ok() {
                    caught_up = Some(final_lsn);
                }
            }
            Ok(json!({
                "fenced": true,
                "already": outcome == FenceOutcome::AlreadyFenced,
                "at": at,
                "caught_up_to": caught_up,
            }))
        }
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(json!({
            "fenced": false,
            "at": run.parts.clock.now(),
            "evidence": format!("the replication manager cannot fence: {e}"),
        })),
        Err(e) => Err(e.into()),
    }
}

async fn catch_up(run: &Arc<Run>, spec: &StepSpec) -> StepResult {
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
    let reached = p.replication.wait_for_catch_up(db, final_lsn, budget).await?;
    Ok(json!({ "final_lsn": final_lsn, "replayed": reached }))
}

async fn promote(run: &Arc<Run>, id: &str) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    // Already promoted (an earlier attempt acted, then its answer was lost):
    // its interlocks passed then; promoting again would change nothing.
    let status = p.replication.status(db).await?;
    if status.standby_promoted {
        return Ok(json!({ "outcome": crate::provider::PromoteOutcome::AlreadyPrimary, "at": run.parts.clock.now() }));
    }
    let fence = run.output("fence-primary").unwrap_or(Value::Null);
    let fenced = fence.get("fenced").and_then(Value::as_bool).unwrap_or(false);
    // Interlock 1: the old primary must not accept writes.
    let (safe, evidence) = if fenced {
        (true, "the old primary is fenced".to_owned())
    } else {
        match p.replication.primary_writability(db).await? {
            Writability::ReadOnly => (true, "the old primary refuses writes".to_owned()),
            Writability::Writable => (false, "the old primary accepts writes and is not fenced".to_owned()),
            Writability::Unreachable => (
                false,
                fence
                    .get("evidence")
                    .and_then(Value::as_str)
                    .unwrap_or("the old primary is unreachable and not fenced: it may still accept writes")
                    .to_owned(),
            ),
        }
    };
    run.interlock(id, Interlock::PrimaryMayAcceptWrites, safe, evidence).await?;
    // Interlock 2: the data loss must fit the RPO (or an approved budget).
    let proven_zero = run.output("catch-up").is_some() || fence.get("caught_up_to").is_some_and(|v| !v.is_null());
    if !proven_zero {
        let point = standby_point(run).await?;
        let lag = status.lag;
        let end = rpo_end(run);
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
    Ok(json!({ "outcome": outcome, "at": run.parts.clock.now() }))
}

/// The newest point in time the promoted side holds: its newest heartbeat,
/// or for the dump strategy the last restored dump.
async fn standby_point(run: &Run) -> Result<Option<(Timestamp, String)>, StepError> {
    let db = &run.plan.primary.database.id;
    let p = &run.providers.replication;
    if run.plan.replication.mode == crate::provider::ReplicationMode::Dump {
        let s = p.status(db).await?;
        return Ok(s
            .last_backup
            .map(|b| (b.finished_at, format!("the last dump restored on the DR side finished at {}", b.finished_at))));
    }
    let asked = run.parts.clock.now();
    let heartbeat = p.last_heartbeat(db, Node::Standby).await;
    let answered = run.parts.clock.now();
    match heartbeat {
        Ok(h) => Ok(h.map(|h| on_our_clock(&h, asked, answered))),
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A heartbeat's write time on the engine's clock, and how it was obtained. With the
/// database's clock at the read (`read_at`), the offset between the two clocks is
/// measured on that very call and taken out, minus the call's whole duration (the read
/// happened somewhere inside it): the result is never later than the truth, so the
/// bound computed from it is never smaller.
fn on_our_clock(h: &crate::provider::Heartbeat, asked: Timestamp, answered: Timestamp) -> (Timestamp, String) {
    let Some(read_at) = h.read_at else {
        return (
            h.written_at,
            format!(
                "heartbeat {} (written {}, the database's clock, taken as ours) is the newest on the DR database",
                h.sequence, h.written_at
            ),
        );
    };
    // ours = theirs - (read_at - asked); the read was at most `answered` on our clock.
    let age = read_at.saturating_since(h.written_at);
    let ours = Timestamp::from_unix_millis(asked.unix_millis().saturating_sub(millis_u64(age)));
    let skew = i128::from(read_at.unix_millis()) - i128::from(asked.unix_millis());
    (
        ours,
        format!(
            "heartbeat {} is the newest on the DR database, written {} before the DR database's clock read {} \
             ({} on this orchestrator's clock; clocks {skew:+} ms apart, measured within {} ms)",
            h.sequence,
            humantime::format_duration(Duration::from_millis(millis_u64(age))),
            read_at,
            ours,
            millis_u64(answered.saturating_since(asked)),
        ),
    )
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The last moment the old primary was known to accept writes: the fence,
/// or the first time the run found it unreachable.
fn rpo_end(run: &Run) -> Option<Timestamp> {
    let fence = run.output("fence-primary");
    match fence {
        Some(f) if f.get("fenced").and_then(Value::as_bool) == Some(true) => ts(&f, "at"),
        _ => run.output("preflight").and_then(|p| ts(&p, "observed_at")),
    }
}

async fn measure_lag(run: &Arc<Run>, id: &str) -> StepResult {
    let p = &run.providers;
    let db = &run.plan.primary.database.id;
    if run.plan.replication.mode == crate::provider::ReplicationMode::Dump {
        let s = p.replication.status(db).await?;
        let now = run.parts.clock.now();
        return Ok(match s.last_backup {
            Some(b) => {
                let age = now.saturating_since(b.finished_at);
                json!({
                    "rpo_ms": age.as_millis() as u64,
                    "rpo_evidence": format!("the last successful dump finished at {} ({} ago): a failover now would lose the writes since", b.finished_at, humantime::format_duration(age)),
                })
            }
            None => json!({ "rpo_evidence": "no successful dump found: RPO not measurable" }),
        });
    }
    let hb = p.replication.write_heartbeat(db).await?;
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("heartbeat {} on the standby", hb.sequence) });
    let step = run.parts.options.poll_interval.min(Duration::from_millis(250));
    loop {
        if let Some(seen) = p.replication.last_heartbeat(db, Node::Standby).await?
            && seen.sequence >= hb.sequence
        {
            let lag = run.parts.clock.now().saturating_since(hb.written_at);
            return Ok(json!({
                "rpo_ms": lag.as_millis() as u64,
                "rpo_evidence": format!("heartbeat {} written at {} reached the standby within {}", hb.sequence, hb.written_at, humantime::format_duration(lag)),
            }));
        }
        pause(step).await;
    }
}

fn clone_name(run: &Run, source: &EnvironmentId) -> String {
    let short: String = run.run_id.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    let idx = run.plan.primary.environments.iter().position(|e| e == source).unwrap_or(0);
    format!("drill-{short}-{idx}")
}

async fn find_clone(run: &Run, source: &EnvironmentId) -> Result<Option<EnvironmentId>, StepError> {
    let Some(project) = run.plan.dr.project.clone().or_else(|| run.plan.primary.project.clone()) else {
        return Ok(None);
    };
    let name = clone_name(run, source);
    match run.providers.cluster.list_environments(&project).await {
        Ok(envs) => Ok(envs.into_iter().find(|e| e.name == name).map(|e| e.id)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn clone_environment(run: &Arc<Run>, source: &EnvironmentId, reconcile: bool) -> StepResult {
    if reconcile && let Some(existing) = find_clone(run, source).await? {
        return Ok(json!({ "environment": existing, "name": clone_name(run, source) }));
    }
    let request = CloneRequest {
        name: clone_name(run, source),
        target_cluster: run.plan.dr.cluster.clone(),
        project: run.plan.dr.project.clone().or_else(|| run.plan.primary.project.clone()),
    };
    match run.providers.cluster.clone_environment(source, &request).await {
        Ok(env) => Ok(json!({ "environment": env, "name": request.name })),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match find_clone(run, source).await? {
            Some(env) => Ok(json!({ "environment": env, "name": request.name })),
            None => Err(StepError::NotReady(format!(
                "an environment named {} exists but cannot be found to reuse (set the sites' project in the plan)",
                request.name
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

async fn delete_clone(run: &Arc<Run>, source: &EnvironmentId) -> StepResult {
    let created = run
        .output(&format!("clone:{source}"))
        .and_then(|o| o.get("environment").and_then(Value::as_str).map(EnvironmentId::new));
    let target = match created {
        Some(e) => Some(e),
        None => find_clone(run, source).await?,
    };
    let Some(env) = target else {
        return Ok(json!({ "deleted": null }));
    };
    match run.providers.cluster.delete_environment(&env).await {
        Ok(()) => Ok(json!({ "deleted": env })),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(json!({ "deleted": env, "already": true })),
        Err(e) => Err(e.into()),
    }
}

async fn sync_image(run: &Arc<Run>, image: &ImageRef) -> StepResult {
    let registry = if run.mode == RunMode::Failback {
        match &run.providers.registry_back {
            Some(r) => r,
            None => return Ok(json!({ "skipped": "no registry sync configured for the failback direction" })),
        }
    } else {
        &run.providers.registry
    };
    match registry.parity(image).await? {
        ImageParity::Present { digest } => Ok(json!({ "copied": false, "digest": digest })),
        ImageParity::Missing { .. } | ImageParity::DigestMismatch { .. } => {
            let report = registry.copy(image).await?;
            match registry.parity(image).await? {
                ImageParity::Present { digest } if digest == report.digest => {
                    Ok(json!({ "copied": true, "digest": digest, "bytes": report.bytes_copied }))
                }
                other => Err(engine_error(
                    ErrorKind::Transient,
                    "sync-image",
                    format!("after copying {image}, the DR registry shows {other:?}"),
                )),
            }
        }
    }
}

async fn apply_parameters(run: &Arc<Run>, env: &EnvRef) -> StepResult {
    let env = resolve(run, env)?;
    let scope = VariableScope::Environment(env);
    for (key, value) in &run.plan.dr.parameters {
        run.providers.cluster.set_variable(&scope, key, &VariableValue::Plain(value.clone())).await?;
    }
    Ok(json!({ "variables": run.plan.dr.parameters.len() }))
}

async fn set_image(run: &Arc<Run>, env: &EnvRef, service: &str, image: &ImageRef) -> StepResult {
    let env = resolve(run, env)?;
    let services = run.providers.cluster.list_services(&env).await?;
    let Some(svc) = services.iter().find(|s| s.name == service) else {
        return Err(StepError::NotReady(format!("service {service} is not in environment {env}")));
    };
    if svc.image.as_ref() != Some(image) {
        run.providers.cluster.set_service_image(&env, &svc.id, image).await?;
    }
    Ok(json!({ "service": svc.id, "image": image }))
}

async fn deploy(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    services: Option<&[crate::model::ServiceId]>,
    reconcile: bool,
) -> StepResult {
    let c = &run.providers.cluster;
    if reconcile {
        // A previous attempt may have started (or finished) the deployment: let it end.
        let status = wait_idle(run, id, env, "the deployment a previous attempt may have started").await?;
        if up_to_date(&status, services) {
            return Ok(json!({ "deployment": null, "reconciled": "already deployed" }));
        }
    }
    let mut waited_for_others = 0u32;
    loop {
        let started = match services {
            Some(list) => c.deploy_services(env, list).await,
            None => c.deploy_environment(env).await,
        };
        let deployment = match started {
            Ok(d) => d,
            // Another deployment of the environment runs (someone else's, or ours whose answer
            // was lost): wait for it to end, then deploy only if it did not deploy our configuration.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                waited_for_others += 1;
                let status =
                    wait_idle(run, id, env, &format!("another deployment of {env} to end (the platform said: {e})"))
                        .await?;
                if up_to_date(&status, services) {
                    return Ok(json!({
                        "deployment": null,
                        "reconciled": "deployed by the deployment that was in progress",
                        "waited_for_other_deployments": waited_for_others,
                    }));
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        run.emit(Event::Waiting { step: id.to_owned(), what: format!("deployment {deployment} of {env}") });
        wait_deployed(run, id, env, &deployment, services).await?;
        return Ok(json!({ "deployment": deployment, "waited_for_other_deployments": waited_for_others }));
    }
}

/// Whether every targeted service is deployed and runs its configured version.
fn up_to_date(status: &crate::provider::EnvironmentStatus, services: Option<&[crate::model::ServiceId]>) -> bool {
    let targets: Vec<_> =
        status.services.iter().filter(|s| services.is_none_or(|list| list.contains(&s.service))).collect();
    !targets.is_empty() && targets.iter().all(|s| s.phase == DeploymentPhase::Deployed && !s.out_of_date)
}

/// Polls the environment until no service of it is queued or deploying (a deployment
/// is environment-wide), and returns that status.
async fn wait_idle(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    what: &str,
) -> Result<crate::provider::EnvironmentStatus, StepError> {
    let c = &run.providers.cluster;
    let mut announced = false;
    loop {
        match c.environment_status(env).await {
            Ok(s) if s.services.iter().all(|svc| svc.phase.is_terminal()) => return Ok(s),
            Ok(_) => {
                if !announced {
                    run.emit(Event::Waiting { step: id.to_owned(), what: what.to_owned() });
                    announced = true;
                }
            }
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
        pause(run.parts.options.poll_interval).await;
    }
}

/// Waits for `deployment` to end; a deployment reported done is trusted only once the
/// environment shows its services deployed and up to date.
async fn wait_deployed(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    deployment: &crate::model::DeploymentId,
    services: Option<&[crate::model::ServiceId]>,
) -> Result<(), StepError> {
    let c = &run.providers.cluster;
    let poll = run.parts.options.poll_interval;
    let mut announced = false;
    loop {
        let status = match c.deployment_status(env, deployment).await {
            Ok(s) => s,
            Err(e) if e.is_retryable() => {
                pause(poll).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match status.phase {
            // A failed deployment is worth retrying: the retry requests a new one.
            DeploymentPhase::Failed | DeploymentPhase::Canceled => {
                return Err(engine_error(
                    ErrorKind::Transient,
                    id,
                    format!("deployment {deployment} of {env} ended {}", status.raw_state),
                ));
            }
            DeploymentPhase::Deployed => match c.environment_status(env).await {
                Ok(e) if up_to_date(&e, services) => return Ok(()),
                Ok(e) => {
                    if !announced {
                        let lagging: Vec<String> = e
                            .services
                            .iter()
                            .filter(|s| services.is_none_or(|l| l.contains(&s.service)))
                            .filter(|s| s.phase != DeploymentPhase::Deployed || s.out_of_date)
                            .map(|s| format!("{} {}", s.service, s.raw_state))
                            .collect();
                        run.emit(Event::Waiting {
                            step: id.to_owned(),
                            what: format!(
                                "{env}: deployment {deployment} says DEPLOYED but the environment shows {}",
                                lagging.join(", ")
                            ),
                        });
                        announced = true;
                    }
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e.into()),
            },
            _ => {}
        }
        pause(poll).await;
    }
}

async fn verify_environment(run: &Arc<Run>, id: &str, env: &EnvRef) -> StepResult {
    let env = resolve(run, env)?;
    let c = &run.providers.cluster;
    loop {
        let status = c.environment_status(&env).await?;
        let cluster = c.cluster_status(&status.cluster).await?;
        let bad: Vec<String> = status
            .services
            .iter()
            .filter(|s| s.phase != DeploymentPhase::Deployed || s.out_of_date)
            .map(|s| format!("{} is {}", s.service, s.raw_state))
            .collect();
        if cluster.is_healthy() && bad.is_empty() {
            return Ok(json!({ "services": status.services.len() }));
        }
        run.emit(Event::Waiting {
            step: id.to_owned(),
            what: if cluster.is_healthy() {
                bad.join(", ")
            } else {
                format!("cluster {} is {:?}", cluster.cluster, cluster.state)
            },
        });
        pause(run.parts.options.poll_interval).await;
    }
}

async fn verify_health(run: &Arc<Run>, id: &str, record: &DnsRecordId, target: &DnsTarget) -> StepResult {
    let dns = &run.providers.dns;
    let provider_checks = dns.capabilities_for(record).health_checks;
    // The plan can turn health checks off for a record (no health check exists for the
    // target): then "unknown" is the expected answer, as in the switch step's interlock.
    let planned = run.plan.dns.iter().find(|r| &r.record == record).is_none_or(|r| r.health_check);
    loop {
        match dns.target_health(target).await? {
            TargetHealth::Healthy => return Ok(json!({ "health": "healthy" })),
            TargetHealth::Unknown if !provider_checks => {
                return Ok(json!({ "health": "unknown", "note": "the DNS provider has no health checks" }));
            }
            TargetHealth::Unknown if !planned => {
                return Ok(json!({ "health": "unknown", "note": "health checks are off for this record in the plan" }));
            }
            h => {
                run.emit(Event::Waiting { step: id.to_owned(), what: format!("{target} to be healthy (now {h:?})") });
                pause(run.parts.options.poll_interval).await;
            }
        }
    }
}

async fn switch_dns(run: &Arc<Run>, id: &str, record: &DnsRecordId, from: &DnsTarget, to: &DnsTarget) -> StepResult {
    let dns = &run.providers.dns;
    let plan_record = run.plan.dns.iter().find(|r| &r.record == record);
    let strategy = plan_record.map_or(crate::provider::SwitchStrategy::RecordSwap, |r| r.strategy);
    let health = dns.target_health(to).await?;
    let checked = dns.capabilities_for(record).health_checks && plan_record.is_some_and(|r| r.health_check);
    let healthy = match health {
        TargetHealth::Healthy => true,
        TargetHealth::Unknown => !checked,
        TargetHealth::Unhealthy => false,
    };
    run.interlock(
        id,
        Interlock::UnhealthyDnsTarget,
        healthy,
        format!("DNS target {to} of {record} is {health:?} by the DNS provider's health checks"),
    )
    .await?;
    let request =
        SwitchRequest { record: record.clone(), strategy, expected_current: from.clone(), new_target: to.clone() };
    let change = match dns.switch(&request).await {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::Conflict => {
            let cur = dns.current(record).await?;
            return Err(StepError::NotReady(format!(
                "{record} points at {}, neither the primary target {from} nor the DR target {to}: another owner changed it; not overwriting",
                cur.target
            )));
        }
        Err(e) => return Err(e.into()),
    };
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("{record} change {change} to be in sync") });
    loop {
        match dns.change_status(&change).await {
            Ok(crate::provider::ChangeStatus::InSync) => break,
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
        pause(run.parts.options.poll_interval).await;
    }
    let provider_in_sync_at = run.parts.clock.now();
    let authoritative = authoritative_servers_serve(run, id, record, to).await?;
    Ok(json!({
        "change": change,
        "provider_in_sync_at": provider_in_sync_at,
        "in_sync_at": run.parts.clock.now(),
        "authoritative": authoritative,
    }))
}

/// Waits until every authoritative server of `record` answers `to` (asked directly,
/// through [`Providers::resolver`](super::Providers::resolver)); says so when nothing can ask.
async fn authoritative_servers_serve(run: &Arc<Run>, id: &str, record: &DnsRecordId, to: &DnsTarget) -> StepResult {
    use crate::provider::{PropagationOptions, verify_propagation};
    let Some(resolver) = &run.providers.resolver else {
        return Ok(
            json!({ "verified": false, "why": "no authoritative resolver: the DNS provider's change status only" }),
        );
    };
    match resolver.nameservers(record).await {
        Err(e) if e.kind() == ErrorKind::NotSupported => {
            return Ok(json!({ "verified": false, "why": e.message() }));
        }
        Err(e) => return Err(e.into()),
        Ok(servers) => run.emit(Event::Waiting {
            step: id.to_owned(),
            what: format!("every authoritative server of {record} ({}) to answer {to}", servers.join(", ")),
        }),
    }
    let options = PropagationOptions {
        poll_interval: run.parts.options.poll_interval,
        straggler_after: Duration::from_secs(10),
        // The step's own timeout bounds the wait; this only keeps the verifier from giving up first.
        deadline: Duration::from_secs(24 * 3600),
        wait_out_ttl: false,
    };
    let report = verify_propagation(resolver.as_ref(), record, to, Duration::ZERO, options).await?;
    Ok(json!({
        "verified": true,
        "servers": report.servers.iter().map(|s| s.server.clone()).collect::<Vec<_>>(),
        "all_servers_after_ms": u64::try_from(report.all_servers_after.as_millis()).unwrap_or(u64::MAX),
    }))
}

async fn record(run: &Arc<Run>) -> StepResult {
    if run.mode == RunMode::Drill {
        let m = run.output("measure-replication-lag").unwrap_or(Value::Null);
        return Ok(json!({ "rpo_ms": m.get("rpo_ms"), "rpo_evidence": m.get("rpo_evidence") }));
    }
    let fenced_catch_up =
        run.output("fence-primary").and_then(|f| f.get("caught_up_to").filter(|v| !v.is_null()).cloned());
    let final_lsn = run.output("catch-up").and_then(|c| c.get("final_lsn").cloned()).or(fenced_catch_up);
    if let Some(lsn) = final_lsn {
        let lsn = lsn.as_str().unwrap_or("?").to_owned();
        return Ok(json!({
            "rpo_ms": 0,
            "rpo_evidence": format!("zero data loss: the standby replayed the fenced primary's final LSN {lsn} before promotion"),
        }));
    }
    let point = standby_point(run).await?;
    let end = rpo_end(run);
    let unfenced = run.output("fence-primary").and_then(|f| f.get("fenced").and_then(Value::as_bool)) != Some(true);
    Ok(match (point, end) {
        (Some((at, what)), Some(end)) => {
            let bound = end.saturating_since(at);
            let mut evidence = if unfenced {
                format!(
                    "loss ≤ {}: {what}; the old primary was found unreachable at {end} (it may have accepted writes until then)",
                    humantime::format_duration(bound),
                )
            } else {
                format!("loss ≤ {}: {what}; the old primary was fenced at {end}", humantime::format_duration(bound))
            };
            if unfenced {
                evidence.push_str("; it was not fenced: writes it accepted afterwards are lost too");
            }
            json!({ "rpo_ms": bound.as_millis() as u64, "rpo_evidence": evidence })
        }
        _ => {
            json!({ "rpo_evidence": "no heartbeat on the promoted database: the data loss was not measurable; run the heartbeat writer" })
        }
    })
}
