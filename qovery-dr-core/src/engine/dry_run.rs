//! The dry run's assessment: what a run would meet now, read through read-only providers.

use super::EngineParts;
use super::Providers;
use super::interlock::{Interlock, Override};
use super::mode::RunMode;
use super::runbook::Assessment;
use super::steps;
use crate::plan::DrPlan;
use crate::provider::LinkState;

/// What a run of `plan` in `mode` would meet now. `own_run`: the run asking (at its
/// approval), whose own hold of the lock is no obstacle.
pub(in crate::engine) async fn assess(
    plan: &DrPlan,
    mode: RunMode,
    p: &Providers,
    parts: &EngineParts,
    own_run: Option<&str>,
) -> Vec<Assessment> {
    let mut out = Vec::new();
    let mut add = |step: &str, verdict: &str, evidence: String| {
        out.push(Assessment { step: step.to_owned(), verdict: verdict.to_owned(), evidence })
    };
    match p.cluster.cluster_status(&plan.dr.cluster).await {
        Ok(s) if s.is_healthy() => add("preflight", "ok", format!("DR cluster {} is running", plan.dr.cluster)),
        Ok(s)
            if plan.failover.start_stopped_cluster
                && matches!(
                    s.state,
                    crate::provider::ClusterState::Stopped | crate::provider::ClusterState::Deploying
                ) =>
        {
            add(
                "start-cluster",
                "ok",
                format!("DR cluster {} is {:?}: it will be started and waited for first", plan.dr.cluster, s.state),
            )
        }
        Ok(s) => add("preflight", "would-refuse", format!("DR cluster {} is {:?}", plan.dr.cluster, s.state)),
        Err(e) => add("preflight", "would-refuse", format!("DR cluster: {e}")),
    }
    if let Ok(Some(h)) = parts.lock.holder(&plan.name).await
        && Some(h.run_id.as_str()) != own_run
    {
        let overridden = parts.options.overrides.iter().any(|o| o.rule == Interlock::LockHeld);
        add(
            "lock",
            if overridden { "warning" } else { "would-refuse" },
            format!("run {} by {} holds the lock since {}", h.run_id, h.owner, h.acquired_at),
        );
    }
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
    let ids = plan.primary.database_ids();
    for db in &ids {
        // With several databases, each line names its own.
        let of = if ids.len() > 1 { format!("database {db}: ") } else { String::new() };
        let writability = p.replication.primary_writability(db).await;
        let status = p.replication.status(db).await;
        match &writability {
            Ok(crate::provider::Writability::Unreachable) if mode.is_planned() => add(
                "preflight",
                "would-refuse",
                format!("{of}the primary is unreachable: a planned run needs it; use failover"),
            ),
            Ok(crate::provider::Writability::Unreachable) => add(
                "promote-database",
                if overridden(Interlock::PrimaryMayAcceptWrites) { "warning" } else { "would-refuse" },
                format!(
                    "{of}the old primary is unreachable: it cannot be fenced, so primary-may-accept-writes refuses promotion unless overridden with proof it is down"
                ),
            ),
            Ok(w) => add(
                "fence-primary",
                "ok",
                format!("{of}the primary is {w:?}: it will be fenced and verified read-only"),
            ),
            Err(e) => add("fence-primary", "warning", format!("{of}primary writability unknown: {e}")),
        }
        match &status {
            Ok(s) => {
                let lag = s.lag.map_or("unknown".to_owned(), |l| humantime::format_duration(l).to_string());
                let evidence = format!(
                    "{of}link {:?}, lag {lag}, {} bytes behind",
                    s.link,
                    s.lag_bytes.map_or("?".into(), |b| b.to_string())
                );
                let cannot_follow = match mode {
                    RunMode::Switchover => matches!(s.link, LinkState::Down(_) | LinkState::Broken(_)),
                    RunMode::Failback => s.link != LinkState::Streaming,
                    _ => false,
                };
                if cannot_follow && mode == RunMode::Failback && plan.failover.reprotect_on_failback {
                    let can = p.replication.capabilities().reprotect;
                    add(
                        "reprotect",
                        if can { "ok" } else { "would-refuse" },
                        if can {
                            format!(
                                "{evidence}: the original primary is re-protected first (what it wrote after the \
                                 failover is discarded)"
                            )
                        } else {
                            format!("{evidence}: the replication manager cannot re-protect; do it by hand first")
                        },
                    );
                } else if cannot_follow {
                    add(
                        "preflight",
                        "would-refuse",
                        format!(
                            "{evidence}: the standby cannot follow; a planned run would refuse before fencing any database"
                        ),
                    );
                } else if mode.is_planned() {
                    add("catch-up", "ok", format!("{evidence}; the standby must replay the final LSN"));
                } else {
                    let hb = p.replication.last_heartbeat(db, crate::provider::Node::Standby).await.ok().flatten();
                    let (estimate, how) =
                        steps::loss_estimate(Some(parts.clock.now()), hb.map(|h| h.written_at), s.lag);
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
            Err(e) => add("promote-database", "would-refuse", format!("{of}replication status unknown: {e}")),
        }
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
                        "sync-images",
                        "ok",
                        format!("{img} is not in the DR registry yet ({other:?}): will be copied"),
                    ),
                    Err(e) => add("sync-images", "would-refuse", format!("{img}: {e}")),
                }
            }
        }
    }
    out
}
