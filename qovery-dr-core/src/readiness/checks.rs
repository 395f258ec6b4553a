//! The checks. Every provider call goes through the throttle and a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use humantime::format_duration as human;

use super::check::{CheckCategory as Cat, CheckResult, CheckStatus as S};
use super::metrics::ReadinessMetrics;
use super::throttle::Throttle;
use crate::clock::Clock;
use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::journal::JournalEntry;
use crate::lock::FailoverLock;
use crate::model::{ImageRef, Tier, Timestamp};
use crate::plan::DrPlan;
use crate::provider::Providers;
use crate::provider::{
    BackupInfo, ClusterState, DeploymentPhase, ImageParity, LinkState, ReplicationMode, ServiceInfo, TargetHealth,
    VariableScope,
};

pub(crate) type BoxFut = Pin<Box<dyn Future<Output = Outcome> + Send>>;

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub checks: Vec<CheckResult>,
    pub metrics: ReadinessMetrics,
}

impl Outcome {
    pub(crate) fn single(c: CheckResult) -> Self {
        Self { checks: vec![c], metrics: ReadinessMetrics::default() }
    }
}

#[derive(Debug)]
pub(crate) struct Ctx {
    pub plan: DrPlan,
    pub providers: Providers,
    pub throttle: Throttle,
    pub timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Ctx {
    async fn call<T>(&self, op: &str, fut: impl Future<Output = ProviderResult<T>>) -> ProviderResult<T> {
        self.throttle
            .run(async {
                match tokio::time::timeout(self.timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(ProviderError::new(
                        ErrorKind::Timeout,
                        "readiness",
                        op,
                        format!("no answer within {}", human(self.timeout)),
                    )),
                }
            })
            .await
    }
}

pub(crate) async fn cluster(ctx: Arc<Ctx>) -> Outcome {
    let id = format!("cluster:{}", ctx.plan.dr.cluster);
    let expected = "Running";
    let mut out = Outcome::default();
    let c = match ctx.call("cluster_status", ctx.providers.cluster.cluster_status(&ctx.plan.dr.cluster)).await {
        Ok(s) => {
            let (status, detail) = match &s.state {
                ClusterState::Running => (S::Pass, "the DR cluster can take deployments".to_owned()),
                ClusterState::Deploying => {
                    (S::Warn, "the DR cluster is being updated; a failover now would wait for it".to_owned())
                }
                ClusterState::Stopped if ctx.plan.failover.start_stopped_cluster => (
                    S::Warn,
                    "the DR cluster is stopped; the plan starts it during a failover, which adds its start-up time to the RTO"
                        .to_owned(),
                ),
                other => (S::Fail, format!("the DR cluster is {other:?}: a failover would not deploy")),
            };
            out.metrics.dr_cluster_up = status == S::Pass;
            CheckResult::new(id, Cat::Cluster, status, format!("{:?}", s.state), expected, detail)
        }
        Err(e) => CheckResult::failed_call(id, Cat::Cluster, expected, &e),
    };
    out.checks.push(c);
    out
}

/// Whether the DR site, at the scale the plan sets during a failover, can carry the
/// primary's load as the plan states it (the primary's minimum instances). From the plan
/// alone: no call is made.
pub(crate) async fn capacity(ctx: Arc<Ctx>) -> Outcome {
    let (primary, dr) = (&ctx.plan.primary.scale, &ctx.plan.dr.scale);
    let mut out = Outcome::default();
    if !primary.is_stated() {
        return out;
    }
    let named: std::collections::BTreeSet<&str> =
        primary.services.keys().chain(dr.services.keys()).map(String::as_str).collect();
    for name in std::iter::once(None).chain(named.into_iter().map(Some)) {
        let (p, d) = match name {
            Some(n) => (primary.for_service(n), dr.for_service(n)),
            None => (primary.default, dr.default),
        };
        let Some(p) = p else { continue };
        let label = name.unwrap_or("every service");
        let id = format!("capacity:{label}");
        let expected = format!("at least {} instances on the DR site", p.min_instances);
        let c = match d {
            None => CheckResult::new(
                id,
                Cat::Parity,
                S::Warn,
                "no DR scale stated".to_owned(),
                expected,
                format!(
                    "the primary runs {label} at {}–{} instances; the plan sets no DR scale, so a failover keeps the DR site's current (standby) size",
                    p.min_instances, p.max_instances
                ),
            ),
            Some(d) if d.max_instances < p.min_instances => CheckResult::new(
                id,
                Cat::Parity,
                S::Warn,
                format!("at most {} instances", d.max_instances),
                expected,
                format!(
                    "after a failover {label} can run at most {} instances on the DR site, the primary runs at least {}: it cannot carry the primary's load",
                    d.max_instances, p.min_instances
                ),
            ),
            Some(d) => CheckResult::new(
                id,
                Cat::Parity,
                S::Pass,
                format!("{}–{} instances", d.min_instances, d.max_instances),
                expected,
                "the DR site is scaled up to carry the primary's load during a failover".to_owned(),
            ),
        };
        out.checks.push(c);
    }
    out
}

/// The replication of the site's `index`th database (`0` is `database`).
pub(crate) async fn replication(ctx: Arc<Ctx>, index: usize) -> Outcome {
    let Some(db) = ctx.plan.primary.databases().nth(index).map(|d| d.id.clone()) else { return Outcome::default() };
    let db = &db;
    let rpo = ctx.plan.objectives.rpo;
    let id = format!("replication:{db}");
    let mut out = Outcome::default();
    let status = match ctx.call("replication_status", ctx.providers.replication.status(db)).await {
        Ok(s) => s,
        Err(e) => {
            out.checks.push(CheckResult::failed_call(id, Cat::Replication, "a replication status", &e));
            return out;
        }
    };
    out.metrics.replication_lag_bytes = status.lag_bytes;
    out.metrics.replication_lag_seconds = status.lag.map(|l| l.as_secs_f64());
    let expected = format!("within the RPO ({})", human(rpo));
    let mut restore = None;
    let c = if ctx.plan.replication.mode == ReplicationMode::Dump || status.mode == ReplicationMode::Dump {
        let now = ctx.clock.now();
        if let Some(b) = &status.last_backup {
            out.metrics.last_backup_age_seconds = Some(now.saturating_since(b.finished_at).as_secs_f64());
        }
        restore = Some(restore_check(&ctx.plan, db, status.last_backup.as_ref(), now));
        dump_freshness(id, rpo, status.last_backup.as_ref(), now)
    } else {
        match (&status.link, status.lag) {
            (LinkState::Streaming, Some(lag)) if lag <= rpo => CheckResult::new(
                id,
                Cat::Replication,
                S::Pass,
                format!(
                    "streaming, lag {} / {} bytes",
                    human(trim(lag)),
                    status.lag_bytes.map_or("?".into(), |b| b.to_string())
                ),
                expected,
                "the standby is within the RPO",
            ),
            (LinkState::Streaming, Some(lag)) => CheckResult::new(
                id,
                Cat::Replication,
                S::Fail,
                format!("streaming, lag {}", human(trim(lag))),
                expected,
                "the standby lags more than the RPO: a failover now loses more than allowed",
            ),
            (LinkState::Streaming, None) => CheckResult::new(
                id,
                Cat::Replication,
                S::Warn,
                "streaming, lag unknown",
                expected,
                "no heartbeat-based lag: run the heartbeat writer so the RPO can be measured",
            ),
            (LinkState::NotApplicable, _) => CheckResult::new(
                id,
                Cat::Replication,
                S::Warn,
                "no replication link (standby promoted?)",
                "a streaming standby",
                "the DR database is not a standby: re-protect before the next failover",
            ),
            (LinkState::Down(why) | LinkState::Broken(why), _) => CheckResult::new(
                id,
                Cat::Replication,
                S::Fail,
                format!("{:?}: {why}", status.link).chars().take(80).collect::<String>(),
                "a streaming standby",
                "the replication link is not working: the standby falls further behind every second",
            ),
        }
    };
    out.checks.push(c);
    out.checks.extend(restore);
    out
}

/// The dump strategy's freshness: the last successful dump against the RPO, and a failed
/// attempt since then (a Warn while the last success still holds, with the reason).
fn dump_freshness(id: String, rpo: Duration, backup: Option<&BackupInfo>, now: Timestamp) -> CheckResult {
    let expected = format!("within the RPO ({})", human(rpo));
    let Some(b) = backup else {
        return CheckResult::new(
            id,
            Cat::Replication,
            S::Fail,
            "no successful dump",
            expected,
            "no successful backup was found",
        );
    };
    let age = now.saturating_since(b.finished_at);
    let mut observed = format!("last dump {} old", human(Duration::from_secs(age.as_secs())));
    let failed = b.last_failure.as_ref().filter(|f| f.stage == "dump" && f.at > b.finished_at);
    if let Some(f) = failed {
        observed.push_str(&format!("; {f}"));
    }
    match (age <= rpo, failed) {
        (true, None) => {
            CheckResult::new(id, Cat::Replication, S::Pass, observed, expected, "the last dump is within the RPO")
        }
        (true, Some(_)) => CheckResult::new(
            id,
            Cat::Replication,
            S::Warn,
            observed,
            expected,
            "the last dump is within the RPO, but the latest attempt failed: fix it before the last good dump ages past the RPO",
        ),
        (false, _) => CheckResult::new(
            id,
            Cat::Replication,
            S::Fail,
            observed,
            expected,
            "the last successful dump is older than the RPO: a failover now loses more than allowed",
        ),
    }
}

/// The dump strategy's restore checks: when a restore of a dump was last verified, against
/// the plan's cadence (plus one dump interval, the newest dump's age), and a failed check
/// since then. Without a cadence in the plan, a dump never verified is a Warn.
fn restore_check(
    plan: &DrPlan,
    db: &crate::model::DatabaseId,
    backup: Option<&BackupInfo>,
    now: Timestamp,
) -> CheckResult {
    let id = format!("restore-check:{db}");
    let cadence = plan.replication.restore_check_interval;
    let allowed = cadence.map(|c| c + plan.replication.dump_interval.unwrap_or_default());
    let expected = allowed.map_or_else(
        || "a verified restore (set replication.restore_check_interval for a cadence)".to_owned(),
        |a| format!("a verified restore within {}", human(a)),
    );
    let verified = backup.and_then(|b| b.last_verified_restore_at);
    let failed = backup
        .and_then(|b| b.last_failure.as_ref())
        .filter(|f| f.stage == "restore-check" && verified.is_none_or(|v| f.at > v));
    let mut observed = verified.map_or_else(
        || "no restore was ever verified".to_owned(),
        |v| format!("last verified restore {} ago", human(Duration::from_secs(now.saturating_since(v).as_secs()))),
    );
    if let Some(f) = failed {
        observed.push_str(&format!("; {f}"));
    }
    let (status, message) = match (verified, allowed, failed) {
        (_, _, Some(_)) => (S::Fail, "the latest restore check failed: the dumps may not restore; see the reason"),
        (None, Some(_), None) => {
            (S::Fail, "no dump was ever restored and verified: a backup never restored is a hope, not a backup")
        }
        (None, None, None) => {
            (S::Warn, "no dump was ever restored and verified: run the dump schedule with restore checks")
        }
        (Some(v), Some(a), None) if now.saturating_since(v) > a => {
            (S::Fail, "the last verified restore is older than the plan's cadence: is the dump schedule running?")
        }
        (Some(_), _, None) => (S::Pass, "a restore of a recent dump was verified"),
    };
    CheckResult::new(id, Cat::Replication, status, observed, expected, message)
}

fn trim(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) async fn dns(ctx: Arc<Ctx>, index: usize) -> Outcome {
    let mut out = Outcome::default();
    let Some(r) = ctx.plan.dns.get(index) else { return out };
    out.metrics.dns_checked = 1;
    let id = format!("dns:{}", r.record);
    let rto = ctx.plan.objectives.rto;
    let current = ctx.call("dns_current", ctx.providers.dns.current(&r.record)).await;
    let h_primary = ctx.call("dns_target_health", ctx.providers.dns.target_health(&r.primary_target)).await;
    let h_dr = ctx.call("dns_target_health", ctx.providers.dns.target_health(&r.dr_target)).await;
    let expected = format!("present, TTL ≤ half the RTO ({}), health checks on both targets", human(rto / 2));
    let c = match current {
        Err(e) if e.kind() == ErrorKind::NotFound => CheckResult::new(
            id,
            Cat::Dns,
            S::Fail,
            "record missing",
            expected,
            "the record does not exist at the DNS provider",
        ),
        Err(e) => CheckResult::failed_call(id, Cat::Dns, expected, &e),
        Ok(cur) => {
            let observed = format!("-> {} TTL {}", cur.target, human(cur.ttl));
            let mut problems: Vec<(S, String)> = Vec::new();
            if cur.ttl > rto {
                problems.push((
                    S::Fail,
                    format!(
                        "TTL {} exceeds the RTO {}: resolvers keep clients on the failed site",
                        human(cur.ttl),
                        human(rto)
                    ),
                ));
            } else if cur.ttl * 2 > rto {
                problems.push((
                    S::Warn,
                    format!(
                        "TTL {} is more than half the RTO {}: after the switch, clients may keep the old \
                         address for the TTL, leaving little time for promotion and deployment",
                        human(cur.ttl),
                        human(rto)
                    ),
                ));
            }
            if cur.target != r.primary_target && cur.target != r.dr_target {
                problems.push((
                    S::Warn,
                    format!("points at {}, neither target of the plan: someone else owns it", cur.target),
                ));
            }
            for (which, target, h) in [("primary", &r.primary_target, &h_primary), ("DR", &r.dr_target, &h_dr)] {
                match h {
                    Ok(TargetHealth::Unknown) if r.health_check => {
                        problems.push((S::Warn, format!("no health check on the {which} target {target}")));
                    }
                    Ok(TargetHealth::Unhealthy) if which == "DR" => {
                        problems.push((S::Warn, format!("the DR target {target} is unhealthy now")));
                    }
                    Err(e) => problems.push((S::Warn, format!("health of {target}: {e}"))),
                    _ => {}
                }
            }
            let status = problems.iter().map(|(s, _)| *s).max().unwrap_or(S::Pass);
            let detail = if problems.is_empty() {
                "ready to switch".to_owned()
            } else {
                problems.into_iter().map(|(_, p)| p).collect::<Vec<_>>().join("; ")
            };
            CheckResult::new(id, Cat::Dns, status, observed, expected, detail)
        }
    };
    if c.status == S::Fail {
        out.metrics.dns_failing = 1;
    }
    out.checks.push(c);
    out
}

/// The per-environment checks: deployment, images, parity, resilience.
pub(crate) async fn environment(ctx: Arc<Ctx>, index: usize) -> Outcome {
    let mut out = Outcome::default();
    let Some(env) = ctx.plan.dr.environments.get(index).cloned() else { return out };
    // Paired by the plan's statement, never by list position.
    let primary_env = ctx.plan.primary_counterpart(&env).cloned();
    let p = &ctx.providers;
    // 1. Deployed or deployable, and up to date.
    let expect_running = matches!(ctx.plan.tier, Tier::WarmStandby | Tier::ActiveActive);
    let id = format!("environment:{env}");
    let expected = if expect_running { "deployed, up to date" } else { "deployable (deployed or stopped)" };
    out.checks.push(match ctx.call("environment_status", p.cluster.environment_status(&env)).await {
        Ok(s) => {
            let stale: Vec<String> = s.services.iter().filter(|x| x.out_of_date).map(|x| x.service.to_string()).collect();
            let failed = s.phase == DeploymentPhase::Failed || s.services.iter().any(|x| x.phase == DeploymentPhase::Failed);
            if failed {
                CheckResult::new(id, Cat::Environment, S::Fail, s.raw_state.clone(), expected, "the last deployment of the DR environment failed: fix it before you need it")
            } else if !stale.is_empty() {
                CheckResult::new(id, Cat::Environment, S::Warn, format!("OUT_OF_DATE: {}", stale.join(", ")), expected, "the DR environment runs an older configuration: redeploy it so a failover does not start by catching up")
            } else if s.phase == DeploymentPhase::Deployed {
                CheckResult::new(id, Cat::Environment, S::Pass, s.raw_state.clone(), expected, "deployed and up to date")
            } else if expect_running {
                CheckResult::new(id, Cat::Environment, S::Warn, s.raw_state.clone(), expected, format!("tier {} expects the DR environment running", ctx.plan.tier))
            } else {
                CheckResult::new(id, Cat::Environment, S::Pass, s.raw_state.clone(), expected, "deployable on failover")
            }
        }
        Err(e) => CheckResult::failed_call(id, Cat::Environment, expected, &e),
    });
    let dr_services = match ctx.call("list_services", p.cluster.list_services(&env)).await {
        Ok(s) => s,
        Err(e) => {
            out.checks.push(CheckResult::failed_call(format!("images:{env}"), Cat::Images, "the DR services", &e));
            return out;
        }
    };
    // 2. Images in the DR registry, by digest.
    let images: BTreeSet<ImageRef> = dr_services.iter().filter_map(|s| s.image.clone()).collect();
    for img in images {
        let id = format!("image:{}", img.familiar());
        let expected = "present in the DR registry with the primary's digest";
        let source = if ctx.plan.registry_mapping.remap(&img).is_ok() {
            img.clone()
        } else if img.registry() == ctx.plan.registry_mapping.to.host {
            // Already a DR reference: parity is checked from its primary counterpart when known.
            out.checks.push(CheckResult::new(
                id,
                Cat::Images,
                S::Pass,
                "a DR registry reference",
                expected,
                "the service already uses the DR registry",
            ));
            continue;
        } else {
            out.checks.push(CheckResult::new(
                id,
                Cat::Images,
                S::Warn,
                format!("registry {}", img.registry()),
                expected,
                "the image is in neither registry of the plan: a failover will pull it from there",
            ));
            continue;
        };
        out.checks.push(match ctx.call("registry_parity", p.registry.parity(&source)).await {
            Ok(ImageParity::Present { digest }) => CheckResult::new(
                id,
                Cat::Images,
                S::Pass,
                format!("present {}", short(&digest.to_string())),
                expected,
                "in parity",
            ),
            Ok(ImageParity::Missing { primary }) => {
                out.metrics.images_missing += 1;
                CheckResult::new(
                    id,
                    Cat::Images,
                    S::Fail,
                    "missing",
                    expected,
                    format!(
                        "copy {} ({}) to the DR registry: the DR deployment would fail",
                        img.familiar(),
                        short(&primary.to_string())
                    ),
                )
            }
            Ok(ImageParity::DigestMismatch { primary, dr }) => {
                out.metrics.images_missing += 1;
                CheckResult::new(
                    id,
                    Cat::Images,
                    S::Fail,
                    format!("digest {} ≠ {}", short(&dr.to_string()), short(&primary.to_string())),
                    expected,
                    "the tag moved: re-sync the image",
                )
            }
            Err(e) => CheckResult::failed_call(id, Cat::Images, expected, &e),
        });
    }
    // 3. Cross-AZ resilience.
    let single: Vec<&str> = dr_services.iter().filter(|s| s.min_instances < 2).map(|s| s.name.as_str()).collect();
    let id = format!("resilience:{env}");
    out.checks.push(if single.is_empty() {
        CheckResult::new(
            id,
            Cat::Resilience,
            S::Pass,
            format!("{} services with ≥ 2 instances", dr_services.len()),
            "≥ 2 instances per service",
            "survives the loss of a zone",
        )
    } else {
        CheckResult::new(
            id,
            Cat::Resilience,
            S::Warn,
            format!("single instance: {}", single.join(", ")),
            "≥ 2 instances per service",
            "a zone loss in the DR region takes these services down",
        )
    });
    // 4. Parity with production.
    if let Some(primary_env) = primary_env {
        out.checks.extend(parity(&ctx, &primary_env, &env, &dr_services).await);
    }
    out
}

fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

async fn parity(
    ctx: &Ctx,
    primary: &crate::model::EnvironmentId,
    dr: &crate::model::EnvironmentId,
    dr_services: &[ServiceInfo],
) -> Vec<CheckResult> {
    let p = &ctx.providers;
    let mut out = Vec::new();
    let overrides: BTreeSet<&String> =
        ctx.plan.primary.parameters.keys().chain(ctx.plan.dr.parameters.keys()).collect();
    let id = format!("parity-variables:{dr}");
    let expected = "the same variable and secret names on both sites (minus the plan's per-site parameters)";
    let prod = ctx.call("list_variables", p.cluster.list_variables(&VariableScope::Environment(primary.clone()))).await;
    let drv = ctx.call("list_variables", p.cluster.list_variables(&VariableScope::Environment(dr.clone()))).await;
    match (prod, drv) {
        (Ok(prod), Ok(drv)) => {
            let names = |v: &[crate::provider::Variable]| -> BTreeMap<String, bool> {
                v.iter().filter(|x| !overrides.contains(&x.key)).map(|x| (x.key.clone(), x.secret)).collect()
            };
            let (a, b) = (names(&prod), names(&drv));
            let missing_in_dr: Vec<String> =
                a.iter().filter(|(k, _)| !b.contains_key(*k)).map(|(k, s)| kind(k, *s)).collect();
            let only_in_dr: Vec<String> =
                b.iter().filter(|(k, _)| !a.contains_key(*k)).map(|(k, s)| kind(k, *s)).collect();
            out.push(if !missing_in_dr.is_empty() {
                CheckResult::new(id, Cat::Parity, S::Fail, format!("missing in DR: {}", missing_in_dr.join(", ")), expected, "the DR environment would start without these: add them (declare per-site values as plan parameters)")
            } else if !only_in_dr.is_empty() {
                CheckResult::new(id, Cat::Parity, S::Warn, format!("only in DR: {}", only_in_dr.join(", ")), expected, "declare per-site values as plan parameters, or remove them")
            } else {
                CheckResult::new(id, Cat::Parity, S::Pass, format!("{} name{} in parity", a.len(), if a.len() == 1 { "" } else { "s" }), expected, "in parity")
            });
        }
        (Err(e), _) | (_, Err(e)) => out.push(CheckResult::new(
            id,
            Cat::Parity,
            S::Warn,
            e.kind().as_str(),
            expected,
            format!("cannot compare: {e}"),
        )),
    }
    let id = format!("parity-services:{dr}");
    let expected = "the same services, on the same image tags";
    match ctx.call("list_services", p.cluster.list_services(primary)).await {
        Ok(prod) => {
            let dr_by_name: BTreeMap<&str, &ServiceInfo> = dr_services.iter().map(|s| (s.name.as_str(), s)).collect();
            let missing: Vec<&str> =
                prod.iter().filter(|s| !dr_by_name.contains_key(s.name.as_str())).map(|s| s.name.as_str()).collect();
            let tags: Vec<String> = prod
                .iter()
                .filter_map(|s| {
                    let d = dr_by_name.get(s.name.as_str())?;
                    let (pt, dt) = (s.image.as_ref()?.tag(), d.image.as_ref()?.tag());
                    (pt != dt).then(|| format!("{} {}≠{}", s.name, pt.unwrap_or("-"), dt.unwrap_or("-")))
                })
                .collect();
            out.push(if !missing.is_empty() {
                CheckResult::new(
                    id,
                    Cat::Parity,
                    S::Fail,
                    format!("missing in DR: {}", missing.join(", ")),
                    expected,
                    "these services would not run after a failover",
                )
            } else if !tags.is_empty() {
                CheckResult::new(
                    id,
                    Cat::Parity,
                    S::Warn,
                    format!("tags differ: {}", tags.join(", ")),
                    expected,
                    "the DR site would run other versions",
                )
            } else {
                CheckResult::new(
                    id,
                    Cat::Parity,
                    S::Pass,
                    format!("{} services in parity", prod.len()),
                    expected,
                    "in parity",
                )
            });
        }
        Err(e) => out.push(CheckResult::new(
            id,
            Cat::Parity,
            S::Warn,
            e.kind().as_str(),
            expected,
            format!("cannot compare: {e}"),
        )),
    }
    out
}

fn kind(name: &str, secret: bool) -> String {
    if secret { format!("{name} (secret)") } else { name.to_owned() }
}

pub(crate) async fn lock(lock: Option<&dyn FailoverLock>, plan: &DrPlan) -> CheckResult {
    let id = "lock".to_owned();
    match lock {
        None => {
            CheckResult::new(id, Cat::Lock, S::Pass, "not configured", "free", "no lock configured for this evaluation")
        }
        Some(l) => match l.holder(&plan.name).await {
            Ok(None) => CheckResult::new(id, Cat::Lock, S::Pass, "free", "free", "no failover in progress"),
            Ok(Some(h)) => CheckResult::new(
                id,
                Cat::Lock,
                S::Fail,
                format!("held by {} ({})", h.run_id, h.owner),
                "free",
                format!("a failover is in progress since {}: resume or finish it first", h.acquired_at),
            ),
            Err(e) => CheckResult::new(id, Cat::Lock, S::Warn, "unknown", "free", e.to_string()),
        },
    }
}

pub(crate) fn cadence(history: &[JournalEntry], now: Timestamp) -> Vec<CheckResult> {
    super::cadence::cadence(history, now)
        .into_iter()
        .map(|item| {
            let id = format!("cadence:{}", item.activity);
            let expected = format!("every {} days", item.activity.period().as_secs() / 86400);
            match (item.last, item.overdue) {
                (None, _) => CheckResult::new(
                    id,
                    Cat::Cadence,
                    S::Warn,
                    "never",
                    expected,
                    format!("no {} on record", item.activity),
                ),
                (Some(last), true) => CheckResult::new(
                    id,
                    Cat::Cadence,
                    S::Warn,
                    format!("last {last}"),
                    expected,
                    format!("{} is overdue since {}", item.activity, item.due_at.map_or("?".into(), |d| d.to_string())),
                ),
                (Some(last), false) => CheckResult::new(
                    id,
                    Cat::Cadence,
                    S::Pass,
                    format!("last {last}"),
                    expected,
                    format!("next due {}", item.due_at.map_or("?".into(), |d| d.to_string())),
                ),
            }
        })
        .collect()
}

/// `terraform-drift` (plans with `[terraform]` only): the plan's fields against their
/// Terraform outputs now. Fails on drift in a field the failover uses, warns on other
/// drift and on outputs that could not be read.
pub(crate) async fn terraform_drift(plan: &DrPlan, timeout: std::time::Duration) -> Option<CheckResult> {
    plan.terraform()?;
    let id = "terraform-drift";
    let expected = "the plan and Terraform's outputs agree";
    let report = match tokio::time::timeout(timeout, plan.terraform_drift()).await {
        Ok(r) => r,
        Err(_) => {
            return Some(CheckResult::new(
                id,
                Cat::Parity,
                S::Warn,
                "unknown",
                expected,
                format!("the outputs were not read within {timeout:?}"),
            ));
        }
    };
    let critical: Vec<String> = report.drifts.iter().filter(|d| d.failover_critical).map(|d| d.to_string()).collect();
    let other: Vec<String> = report.drifts.iter().filter(|d| !d.failover_critical).map(|d| d.to_string()).collect();
    let observed = format!("{} of {} field(s) differ", report.drifts.len(), report.compared);
    Some(if !critical.is_empty() {
        CheckResult::new(
            id,
            Cat::Parity,
            S::Fail,
            observed,
            expected,
            format!(
                "the failover would use values Terraform no longer has: {}; load the plan again (its tf: fields follow \
                 Terraform) or correct the plan or the infrastructure",
                critical.join("; ")
            ),
        )
    } else if !other.is_empty() {
        CheckResult::new(id, Cat::Parity, S::Warn, observed, expected, other.join("; "))
    } else if !report.errors.is_empty() {
        CheckResult::new(
            id,
            Cat::Parity,
            S::Warn,
            "not read",
            expected,
            format!("drift unknown: {}", report.errors.join("; ")),
        )
    } else {
        CheckResult::new(id, Cat::Parity, S::Pass, observed, expected, "every field tied to an output agrees")
    })
}
