//! The plan rendered as the human runbook (Markdown with Mermaid diagrams),
//! generated from the same code that runs the failover.

use std::fmt::Write as _;

use super::escape::cell;
use crate::engine::{Runbook, StepKind, StepSpec};
use crate::plan::DrPlan;

fn id(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// How to check a step by hand, and how to undo it.
fn manual(plan: &DrPlan, step: &StepSpec) -> (String, String) {
    let dr_db = &plan.dr.database;
    let hosts = |site: &crate::model::Site| {
        site.databases().map(|d| format!("{}:{}", d.host, d.port)).collect::<Vec<_>>().join(", ")
    };
    let (primaries, standbys) = (hosts(&plan.primary), hosts(&plan.dr));
    match &step.kind {
        StepKind::Preflight => ("Open the Qovery console: the DR cluster is RUNNING; the DR environments exist.".into(), "Nothing to undo (read-only).".into()),
        StepKind::Approve => ("The approval is in the journal (`approval_granted`), with who and when.".into(), "Nothing to undo.".into()),
        StepKind::AcquireLock => ("The lock file or key names this run as holder.".into(), "Released at the end of the run; if the run died, resume it rather than releasing by hand.".into()),
        StepKind::VerifyDrConfiguration { environment } => (
            format!(
                "Every service of {environment} is DEPLOYED and up to date, on the DR registry's images, with the DR parameters: {}.",
                plan.dr.parameters.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            "Nothing to undo (read-only).".into(),
        ),
        StepKind::Custom { name, point } => (
            format!("The journal holds the output of `custom:{name}` ({}): {}.", point.stage(), cell(&step.description)),
            "As the team that registered this step documents it.".into(),
        ),
        StepKind::VerifyDatabaseConnection { environment } => (
            format!(
                "The variables of {environment} name the DR database {}:{} where the DR parameters do, and `psql` from the DR cluster reaches it.",
                dr_db.host, dr_db.port
            ),
            "Nothing to undo (read-only).".into(),
        ),
        StepKind::SetServiceScale { environment, service, scale } => (
            format!(
                "Service {service} of {environment} has min {} / max {} running instances in its settings.",
                scale.min_instances, scale.max_instances
            ),
            format!("Set {service} back to the primary site's scale (or the DR site's standby scale)."),
        ),
        StepKind::StartCluster { cluster } => (
            format!("Cluster {cluster} is RUNNING (DEPLOYED) in the Qovery console."),
            "Stop the cluster again if the run is abandoned before anything was deployed on it.".into(),
        ),
        StepKind::Reprotect => (
            format!("On {standbys}: `SELECT status FROM pg_stat_wal_receiver;` is `streaming` (physical), or the subscription to the current primary is enabled with every table ready (logical), or the fresh dump is restored (dump)."),
            "Not reversible: what the original primary wrote after the failover was discarded (the loss the failover reported). Redo the failover's re-protection by hand if it half-failed.".into(),
        ),
        StepKind::FencePrimary => (
            format!("On {primaries}: `SHOW default_transaction_read_only;` is `on`, and a test `INSERT` fails."),
            "`ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();` on the old primary — only if the standby was NOT promoted.".into(),
        ),
        StepKind::CatchUp => (
            format!("On {standbys}: `SELECT pg_last_wal_replay_lsn();` is at or past the primary's final `pg_current_wal_lsn()`."),
            "Nothing to undo (read-only).".into(),
        ),
        StepKind::PromoteDatabase => (
            format!("On {standbys}: `SELECT pg_is_in_recovery();` is `false`."),
            "Not reversible: this is the point of no return. Going back is a failback after re-protection.".into(),
        ),
        StepKind::RecordEpoch => (
            "`SELECT epoch, run_id FROM qovery_dr.failover_epoch ORDER BY epoch DESC LIMIT 1` on the promoted database shows this run's epoch (the step's output in the journal).".into(),
            "Nothing to undo: the epoch only moves forward (a failback increments it again).".into(),
        ),
        StepKind::PostPromotionFixups => ("Sequences on the promoted database are past the maximum ids of their tables.".into(), "Nothing to undo (sequences only move forward).".into()),
        StepKind::MeasureReplicationLag => ("The heartbeat row with the new sequence is visible on the standby.".into(), "Nothing to undo (one heartbeat row).".into()),
        StepKind::CloneEnvironment { source } => (format!("A `drill-…` clone of {source} exists on cluster {}.", plan.dr.cluster), "The clean-up step deletes it; delete it in the console if the clean-up failed.".into()),
        StepKind::SyncImages { images } => {
            let checks = images
                .iter()
                .map(|image| {
                    let dr = plan.registry_mapping.remap(image).map(|i| i.to_string()).unwrap_or_else(|_| "its DR reference".into());
                    format!("`skopeo inspect docker://{dr}` shows the same digest as `docker://{image}`")
                })
                .collect::<Vec<_>>()
                .join("; ");
            (format!("{checks}."), "Nothing to undo (extra images in the DR registry).".into())
        }
        StepKind::SyncImage { image } => {
            let dr = plan.registry_mapping.remap(image).map(|i| i.to_string()).unwrap_or_else(|_| "its DR reference".into());
            (format!("`skopeo inspect docker://{dr}` shows the same digest as `docker://{image}`."), "Nothing to undo (an extra image in the DR registry).".into())
        }
        StepKind::ApplyParameters { environment } => (
            format!("The variables of {environment} hold the DR values: {}.", plan.dr.parameters.keys().cloned().collect::<Vec<_>>().join(", ")),
            format!("Set the primary values back: {}.", plan.primary.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")),
        ),
        StepKind::SetServiceImage { environment, service, image } => (
            format!("Service {service} of {environment} points at {image}."),
            format!("Point {service} back at its primary-registry image."),
        ),
        StepKind::DeployServices { environment, services } => (format!("Services {} of {environment} are DEPLOYED (not OUT_OF_DATE).", services.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")), "Redeploy the previous version from the deployment history.".into()),
        StepKind::DeployService { environment, service } => (format!("Service {service} of {environment} is DEPLOYED (not OUT_OF_DATE)."), "Redeploy the previous version from the deployment history.".into()),
        StepKind::DeployEnvironment { environment } => (format!("Every service of {environment} is DEPLOYED."), "Stop the environment (drills: deleted by the clean-up).".into()),
        StepKind::StopEnvironment { environment } => (
            format!("Every service of {environment} on the old primary site is STOPPED."),
            format!("Redeploy {environment} once the data it would use is the DR database's (a failback), never before."),
        ),
        StepKind::VerifyEnvironment { environment } => (format!("Every service of {environment} is DEPLOYED and its health checks pass."), "Nothing to undo (read-only).".into()),
        StepKind::VerifyTargetHealth { target, .. } => (format!("The DNS provider's health check of {target} is healthy."), "Nothing to undo (read-only).".into()),
        StepKind::SwitchDns { record, from, to } => (
            format!("`dig +short {record} @<each authoritative server>` answers {to}."),
            format!("Switch {record} back to {from} (guarded: only if it still points at {to})."),
        ),
        StepKind::VerifyDns { record, target } => (format!("`dig +short {record}` answers {target} from several resolvers."), "Nothing to undo (read-only).".into()),
        StepKind::DrainTtl { ttl } => (format!("Wait {}: resolvers drop the old answer.", humantime::format_duration(*ttl)), "Nothing to undo.".into()),
        StepKind::Record => ("The journal ends with `run_finished` and the measured RTO/RPO.".into(), "Nothing to undo.".into()),
        StepKind::DeleteClone { source } => (format!("No `drill-…` clone of {source} remains."), "Nothing to undo.".into()),
    }
}

/// The runbook of `plan` for the mode of `runbook`, as Markdown.
pub fn runbook_markdown(plan: &DrPlan, runbook: &Runbook) -> String {
    let mut out = String::new();
    let (p, d) = (&plan.primary, &plan.dr);
    let _ = writeln!(out, "# DR runbook: {} ({})\n", cell(&plan.name), runbook.mode);
    if let Some(desc) = &plan.description {
        let _ = writeln!(out, "{}\n", cell(desc));
    }
    let _ = writeln!(
        out,
        "Generated by qovery-dr from the plan the engine runs: review it monthly, never edit it by hand.\n\n| | |\n|---|---|\n| tier | {} |\n| resilience | {} |\n| objectives | {} |\n| replication | {} |\n",
        plan.tier, plan.resilience, plan.objectives, plan.replication.mode
    );
    let _ = writeln!(out, "## Contacts and approval\n");
    if plan.approval.approvers.is_empty() {
        let _ = writeln!(out, "- Approvers: anyone the approver integration accepts.");
    } else {
        let _ = writeln!(
            out,
            "- Approvers: {}.",
            plan.approval.approvers.iter().map(|a| format!("**{}**", cell(a))).collect::<Vec<_>>().join(", ")
        );
    }
    let _ = writeln!(
        out,
        "- Approval required: {}; drills approved automatically: {}.\n- Nothing past the preflight happens without an approval; every override of an interlock is journaled with its reason.\n",
        if plan.approval.required { "yes" } else { "no" },
        if plan.approval.drill_auto_approve { "yes" } else { "no" }
    );
    let _ = writeln!(out, "## The two sites\n\n```mermaid\nflowchart LR");
    for (name, site) in [("primary", p), ("dr", d)] {
        let _ = writeln!(
            out,
            "  subgraph {name}[\"{} site: {} ({} {})\"]",
            if name == "primary" { "Primary" } else { "DR" },
            site.name,
            site.cloud,
            site.region
        );
        let _ = writeln!(out, "    {name}_cluster[\"cluster {}\"]", site.cluster);
        for e in &site.environments {
            let _ = writeln!(out, "    {name}_env_{}[\"environment {e}\"]", id(e.as_str()));
            let _ = writeln!(out, "    {name}_cluster --- {name}_env_{}", id(e.as_str()));
        }
        let _ =
            writeln!(out, "    {name}_db[(\"{} {}:{}\")]", site.database.id, site.database.host, site.database.port);
        for d in &site.additional_databases {
            let _ = writeln!(out, "    {name}_db_{}[(\"{} {}:{}\")]", id(d.id.as_str()), d.id, d.host, d.port);
        }
        let _ = writeln!(out, "    {name}_registry[[\"registry {}\"]]", site.registry.host);
        let _ = writeln!(out, "  end");
    }
    let _ = writeln!(out, "  primary_db -- \"{} replication\" --> dr_db", plan.replication.mode);
    for d in &plan.primary.additional_databases {
        let n = id(d.id.as_str());
        let _ = writeln!(out, "  primary_db_{n} -- \"{} replication\" --> dr_db_{n}", plan.replication.mode);
    }
    let _ = writeln!(out, "  primary_registry -- \"image sync (by digest)\" --> dr_registry");
    for r in &plan.dns {
        let rid = id(r.record.as_str());
        let _ = writeln!(out, "  dns_{rid}{{\"{} (TTL {}s, {})\"}}", r.record, r.ttl.as_secs(), r.strategy);
        let _ = writeln!(out, "  dns_{rid} -- today --> primary_cluster");
        let _ = writeln!(out, "  dns_{rid} -. after failover .-> dr_cluster");
    }
    let _ = writeln!(out, "```\n\n## The {} flow\n\n```mermaid\nflowchart TD", runbook.mode);
    let stages: Vec<&str> = runbook.stages.iter().map(|s| s.name.as_str()).collect();
    for (i, s) in stages.iter().enumerate() {
        let ponr = runbook.stages[i].steps.iter().any(|st| st.point_of_no_return);
        let _ = writeln!(out, "  s{i}[\"{s}{}\"]", if ponr { " — point of no return" } else { "" });
        if i > 0 {
            let _ = writeln!(out, "  s{} --> s{i}", i - 1);
        }
    }
    if !runbook.cleanup.is_empty() {
        let _ = writeln!(
            out,
            "  cleanup[\"cleanup — always, also after a failure\"]\n  s{} --> cleanup",
            stages.len().saturating_sub(1)
        );
    }
    let _ = writeln!(
        out,
        "```\n\n## Steps\n\nSteps of one stage run at the same time. For each: what it does, how to verify it by hand, how to roll it back.\n"
    );
    // A failback runs the plan the other way round: its steps' hosts are the reversed plan's.
    let reversed;
    let steps_plan = if runbook.mode == crate::engine::RunMode::Failback {
        reversed = plan.reversed();
        &reversed
    } else {
        plan
    };
    let mut n = 0;
    for stage in
        runbook.stages.iter().map(|s| (s.name.as_str(), &s.steps)).chain(std::iter::once(("cleanup", &runbook.cleanup)))
    {
        if stage.1.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### Stage `{}`\n", stage.0);
        for step in stage.1 {
            n += 1;
            let (verify, rollback) = manual(steps_plan, step);
            let _ = writeln!(
                out,
                "{n}. **`{}`**{} — {}.\n   - Verify by hand: {}\n   - Roll back: {}\n   - Timeout {}, up to {} attempt(s).\n",
                cell(&step.id),
                if step.point_of_no_return { " ⚠ point of no return" } else { "" },
                cell(&step.description),
                cell(&verify),
                cell(&rollback),
                humantime::format_duration(step.timeout),
                step.retry.max_attempts
            );
        }
    }
    let _ = writeln!(
        out,
        "## Interlocks\n\n- `primary-may-accept-writes`: never promote while the old primary may accept writes.\n- `lag-exceeds-rpo`: never promote when the measured loss exceeds the RPO ({}) unless an approver accepted it.\n- `unhealthy-dns-target`: never point DNS at an unhealthy target.\n- `lock-held`: one failover at a time.\n\nEach can be overridden only with a reason, which is journaled.",
        humantime::format_duration(plan.objectives.rpo)
    );
    static_stability(&mut out, plan);
    out
}

/// The static-stability lint of the plan's failover, per scenario: what would stop it,
/// and what to use instead.
fn static_stability(out: &mut String, plan: &DrPlan) {
    use crate::stability::{Impact, Scenario, StabilityReport};
    let report = StabilityReport::for_plan(plan);
    let _ = writeln!(
        out,
        "\n## Static stability

What the failover runbook depends on that the disaster may take down with it \
         (from each provider's declared planes; the plan is read, nothing is contacted). \
         **Blocks**: the step fails and the failover stops there. *Degrades*: the failover goes on without it.\n"
    );
    for scenario in Scenario::ALL {
        let _ = writeln!(out, "### `{scenario}`\n\n{}\n", report.summary(scenario));
        let findings = report.findings_for(scenario);
        if findings.is_empty() {
            continue;
        }
        let _ = writeln!(out, "| step | operation | needs | impact | instead |\n|---|---|---|---|---|");
        for f in findings {
            let impact = match f.impact {
                Impact::Blocks => "**blocks**",
                Impact::Degrades => "*degrades*",
            };
            let _ = writeln!(out, "| `{}` | `{}` | {} | {impact} | {} |", f.step, f.operation, f.plane, f.instead);
        }
        let _ = writeln!(out);
    }
    for (plane, steps) in &report.unplaced {
        let steps: Vec<String> = steps.iter().map(|s| format!("`{s}`")).collect();
        let _ = writeln!(
            out,
            "- Not placed: {plane}, needed by {}: make sure it is not in the primary's region.",
            steps.join(", ")
        );
    }
    for step in &report.undeclared {
        let _ = writeln!(out, "- Not checked: {step}.");
    }
}
