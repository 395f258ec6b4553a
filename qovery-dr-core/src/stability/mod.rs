//! Static stability: a failover must not depend on the control plane of the site that
//! failed, nor on one global control plane that may be down on the same day.
//!
//! Each provider declares, per operation, the planes it needs ([`Planes`]: the trait
//! methods `planes()` of the real providers; [`catalogue`] holds the declarations by
//! provider kind). [`lint`] walks a runbook's steps, finds the operations each calls
//! and the planes they need, and reports, per failure [`Scenario`], which steps would
//! fail ([`Impact::Blocks`]) or go on without that part ([`Impact::Degrades`]: a
//! failover records an unreachable primary instead of fencing it), with what the plan
//! could use instead. The lint reads the plan only; it contacts nothing.
//!
//! ```
//! use qovery_dr_core::plan::DrPlan;
//! use qovery_dr_core::stability::{Scenario, StabilityReport};
//! # let text = include_str!("../../../examples/plans/aws-cross-region.toml");
//! let plan = DrPlan::parse(text, qovery_dr_core::plan::PlanFormat::Toml).unwrap();
//! let report = StabilityReport::for_plan(&plan);
//! // Every deploy goes through the Qovery API: the pre-deployed DR site is the way out.
//! let qovery_down = report.findings_for(Scenario::QoveryApiDown);
//! assert!(qovery_down.iter().any(|f| f.step.starts_with("deploy:") && f.instead.contains("dns_only")));
//! println!("{}", report.to_text());
//! ```

pub mod catalogue;
mod plane;
mod steps;

use std::fmt;

pub use catalogue::PlaneMap;
pub use plane::{Location, Plane, PlaneKind, Planes};

use crate::engine::{EngineOptions, LiveFacts, RunMode, Runbook, StepKind};
use crate::model::SiteRole;
use crate::plan::{DnsProviderPlan, DrPlan};
use crate::provider::SwitchStrategy;
use steps::Role;

/// A failure the plan's failover must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The primary site's region is down: its servers, its registry, its regional APIs,
    /// and any global control plane hosted there.
    PrimaryRegionDown,
    /// The Qovery API does not answer.
    QoveryApiDown,
    /// The DNS providers' update path is down (Route53's control plane, Cloudflare's API,
    /// the RFC 2136 primary server).
    DnsControlPlaneDown,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 3] =
        [Scenario::PrimaryRegionDown, Scenario::QoveryApiDown, Scenario::DnsControlPlaneDown];

    /// `primary-region-down`, `qovery-api-down`, `dns-control-plane-down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::PrimaryRegionDown => "primary-region-down",
            Scenario::QoveryApiDown => "qovery-api-down",
            Scenario::DnsControlPlaneDown => "dns-control-plane-down",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed dependency does to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// The step fails: the failover stops there.
    Blocks,
    /// The failover goes on without it (what is lost is said in `instead`).
    Degrades,
}

/// One step that depends on something the scenario takes down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The scenario.
    pub scenario: Scenario,
    /// The runbook step's id.
    pub step: String,
    /// The provider and operation (`qovery.deploy_services`).
    pub operation: String,
    /// The plane it needs.
    pub plane: Plane,
    /// Blocks or degrades.
    pub impact: Impact,
    /// What the plan could use instead (or why the failover copes).
    pub instead: String,
}

/// The lint of one plan's failover runbook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StabilityReport {
    /// The plan.
    pub plan: String,
    /// The runbook's mode (the lint reads the failover runbook: the unplanned case).
    pub mode: RunMode,
    /// The primary site's region.
    pub primary_region: String,
    /// Every finding, by scenario then step order.
    pub findings: Vec<Finding>,
    /// Planes the lint cannot place in a site (self-hosted endpoints), with the steps
    /// that need them: check by hand that none is in the primary's region.
    pub unplaced: Vec<(Plane, Vec<String>)>,
    /// Steps whose provider declares nothing (custom steps, providers without a
    /// declaration): not checked.
    pub undeclared: Vec<String>,
}

impl StabilityReport {
    /// The lint of `plan`'s failover runbook, with the declarations of the providers the
    /// plan names ([`PlaneMap::from_plan`]).
    ///
    /// Without live facts the services are unknown: the runbook is built as if each DR
    /// environment ran an image from the primary's registry (what a run then copies,
    /// `sync-images`). With DR environments already on the DR registry's images a run
    /// builds no such step: lint the runbook of a dry run with [`lint`] for the exact list.
    pub fn for_plan(plan: &DrPlan) -> StabilityReport {
        Self::with_planes(plan, &PlaneMap::from_plan(plan))
    }

    /// As [`for_plan`](Self::for_plan), with these declarations (e.g.
    /// [`PlaneMap::from_providers`] of the providers a run would use).
    pub fn with_planes(plan: &DrPlan, planes: &PlaneMap) -> StabilityReport {
        let mut facts = LiveFacts::default();
        let from = &plan.registry_mapping().from;
        let repository = match &from.prefix {
            Some(prefix) => format!("{prefix}/every-image"),
            None => "every-image".to_owned(),
        };
        let image = format!("{}/{repository}:current", from.host).parse::<crate::model::ImageRef>();
        if let (false, Ok(image)) = (plan.failover().dns_only, image) {
            for (i, env) in plan.dr().environments.iter().enumerate() {
                let mut service =
                    crate::provider::ServiceInfo::new(crate::model::ServiceId::new(format!("s{i}")), "each service");
                service.image = Some(image.clone());
                facts.services.insert(env.clone(), vec![service]);
            }
        }
        let runbook = Runbook::build(plan, RunMode::Failover, &facts, &EngineOptions::default());
        lint(plan, &runbook, planes)
    }

    /// One line per finding, `scenario impact step operation`: a compact form to compare.
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let impact = match f.impact {
                    Impact::Blocks => "blocks",
                    Impact::Degrades => "degrades",
                };
                format!("{} {impact} {} {}", f.scenario, f.step, f.operation)
            })
            .collect()
    }

    /// The findings of one scenario.
    pub fn findings_for(&self, scenario: Scenario) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.scenario == scenario).collect()
    }

    /// Whether some step would stop the failover in `scenario`.
    pub fn blocks(&self, scenario: Scenario) -> bool {
        self.findings.iter().any(|f| f.scenario == scenario && f.impact == Impact::Blocks)
    }

    /// One line per scenario: `primary-region-down: 2 steps blocked, 3 degraded`.
    pub fn summary(&self, scenario: Scenario) -> String {
        let of = self.findings_for(scenario);
        let mut steps = of.iter().filter(|f| f.impact == Impact::Blocks).map(|f| &f.step).collect::<Vec<_>>();
        steps.dedup();
        let degraded = of.iter().filter(|f| f.impact == Impact::Degrades).count();
        if steps.is_empty() && degraded == 0 {
            format!("{scenario}: the failover does not depend on it")
        } else if steps.is_empty() {
            format!("{scenario}: no step blocked, {degraded} degraded")
        } else {
            format!("{scenario}: {} step(s) blocked ({}), {degraded} degraded", steps.len(), join_short(&steps))
        }
    }

    /// The report for a terminal or a runbook document.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "static stability of plan {} ({} runbook; the primary in {}):\n",
            self.plan, self.mode, self.primary_region
        );
        for scenario in Scenario::ALL {
            out.push_str(&format!("  {}\n", self.summary(scenario)));
            let findings = self.findings_for(scenario);
            for (i, f) in findings.iter().enumerate() {
                let impact = match f.impact {
                    Impact::Blocks => "BLOCKS  ",
                    Impact::Degrades => "degrades",
                };
                out.push_str(&format!("    {impact} {} ({}): needs {}\n", f.step, f.operation, f.plane));
                // The advice once for a run of findings that share it.
                if findings.get(i + 1).is_none_or(|next| next.instead != f.instead) {
                    out.push_str(&format!("             instead: {}\n", f.instead));
                }
            }
        }
        for (plane, steps) in &self.unplaced {
            out.push_str(&format!(
                "  not placed: {plane}, needed by {}: make sure it is not in the primary's region\n",
                join_short(&steps.iter().collect::<Vec<_>>())
            ));
        }
        for step in &self.undeclared {
            out.push_str(&format!("  not checked: {step}\n"));
        }
        out
    }
}

pub(crate) fn join_short(steps: &[&String]) -> String {
    const SHOWN: usize = 4;
    let mut s = steps.iter().take(SHOWN).map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    if steps.len() > SHOWN {
        s.push_str(&format!(", and {} more", steps.len() - SHOWN));
    }
    s
}

/// Lints `runbook` (of `plan`) against the providers' declarations `planes`.
pub fn lint(plan: &DrPlan, runbook: &Runbook, planes: &PlaneMap) -> StabilityReport {
    let primary_region = plan.primary().region.clone();
    let same_region = plan.dr().region == primary_region;
    let dns_planes: Vec<&Plane> =
        planes.dns.values().flat_map(|p| p.operations().flat_map(|(_, v)| v.iter())).collect();
    let mut findings = Vec::new();
    let mut unplaced: Vec<(Plane, Vec<String>)> = Vec::new();
    let mut undeclared = Vec::new();
    let steps = runbook.stages.iter().flat_map(|s| s.steps.iter()).chain(runbook.cleanup.iter());
    for step in steps {
        if let StepKind::Custom { name, .. } = &step.kind {
            undeclared.push(format!("{} (custom step {name}: the embedder's own code)", step.id));
        }
        for (role, op) in steps::operations(&step.kind) {
            let providers: Vec<&Planes> = match &role {
                Role::Cluster => vec![&planes.cluster],
                Role::Replication => planes.replication.values().collect(),
                Role::Registry => vec![&planes.registry],
                Role::Dns(record) => planes.dns.get(record).into_iter().collect(),
                Role::State => vec![&planes.state],
            };
            for provider in providers {
                // Declared nothing, or not this operation: said, never taken as "depends on nothing".
                let missing = if !provider.is_declared() {
                    Some(format!("{} ({}.{op}: the provider declares no planes)", step.id, provider.provider))
                } else if provider.of(op).is_empty() {
                    Some(format!("{} ({}.{op} not declared)", step.id, provider.provider))
                } else {
                    None
                };
                if let Some(line) = missing {
                    if !undeclared.contains(&line) {
                        undeclared.push(line);
                    }
                    continue;
                }
                for plane in provider.of(op) {
                    if let Location::Endpoint { .. } = plane.location {
                        match unplaced.iter_mut().find(|(p, _)| p == plane) {
                            Some((_, steps)) if !steps.contains(&step.id) => steps.push(step.id.clone()),
                            Some(_) => {}
                            None => unplaced.push((plane.clone(), vec![step.id.clone()])),
                        }
                    }
                    for scenario in Scenario::ALL {
                        let hit = match scenario {
                            Scenario::PrimaryRegionDown => in_primary_region(plane, &primary_region, same_region),
                            Scenario::QoveryApiDown => plane.service == "Qovery API",
                            Scenario::DnsControlPlaneDown => dns_planes.contains(&plane),
                        };
                        if !hit {
                            continue;
                        }
                        let operation = format!("{}.{op}", provider.provider);
                        if findings.iter().any(|f: &Finding| {
                            f.scenario == scenario && f.step == step.id && f.plane == *plane && f.operation == operation
                        }) {
                            continue;
                        }
                        let (impact, instead) = advice(plan, runbook.mode, scenario, &step.kind, &role, plane);
                        findings.push(Finding {
                            scenario,
                            step: step.id.clone(),
                            operation,
                            plane: plane.clone(),
                            impact,
                            instead,
                        });
                    }
                }
            }
        }
    }
    findings.sort_by_key(|f| f.scenario);
    StabilityReport { plan: plan.name().to_owned(), mode: runbook.mode, primary_region, findings, unplaced, undeclared }
}

fn in_primary_region(plane: &Plane, primary_region: &str, same_region: bool) -> bool {
    match &plane.location {
        Location::Site { site: SiteRole::Primary } => true,
        Location::Site { site: SiteRole::Dr } => same_region,
        Location::Region { region } => region == primary_region,
        Location::Global { home: Some(home) } => home == primary_region,
        Location::Global { home: None } | Location::Endpoint { .. } | Location::Local => false,
    }
}

/// Whether the step copes, and what the plan could use instead.
fn advice(
    plan: &DrPlan,
    mode: RunMode,
    scenario: Scenario,
    kind: &StepKind,
    role: &Role,
    plane: &Plane,
) -> (Impact, String) {
    let failover = mode == RunMode::Failover;
    let on_primary = matches!(plane.location, Location::Site { site: SiteRole::Primary });
    match (scenario, kind, role) {
        (_, StepKind::FencePrimary | StepKind::CatchUp | StepKind::Preflight, Role::Replication) if failover => (
            Impact::Degrades,
            "a failover goes on without the old primary: it records it unreachable (after an operator's \
             proof that it is down) and loses what was not replicated (the measured RPO)"
                .into(),
        ),
        (_, StepKind::StopEnvironment { .. }, _) => (
            Impact::Degrades,
            "stopping the old primary's environments is best effort in a failover; stop them when the site returns"
                .into(),
        ),
        (Scenario::QoveryApiDown, _, Role::Cluster) if plan.failover().dns_only => (
            Impact::Blocks,
            "the DR site is pre-deployed (dns_only) but the verification reads it through the Qovery API: \
             verify the DR site by hand and override the interlock"
                .into(),
        ),
        (Scenario::QoveryApiDown, _, Role::Cluster) => (
            Impact::Blocks,
            "run the DR site pre-deployed (hot standby, failover.dns_only = true): the failover then only \
             promotes the database and switches DNS, without calling the Qovery API"
                .into(),
        ),
        (_, _, Role::Registry) => (
            Impact::Blocks,
            "mirror every release into the DR registry and point the DR environments at those images ahead \
             of time: the failover then has no image to copy and reads nothing from the primary's registry"
                .into(),
        ),
        (_, _, Role::Dns(record)) => dns_advice(plan, record, scenario),
        (Scenario::PrimaryRegionDown, _, Role::Replication) if on_primary => (
            Impact::Blocks,
            "this step needs the old primary's server: run a failover (which records it unreachable), not a switchover"
                .into(),
        ),
        (Scenario::PrimaryRegionDown, _, Role::Replication) => (
            Impact::Blocks,
            if plan.dr().region == plan.primary().region {
                "the DR database is in the primary's region (cross-AZ): it does not survive the region; \
                 a cross-region replica does"
                    .into()
            } else {
                format!("the promotion needs {}: use one in the DR site's region", plane.service)
            },
        ),
        (_, _, Role::State) => (
            Impact::Blocks,
            "keep the failover lock and journal outside the primary's region (etcd or PostgreSQL in a third \
             place, or a file on the orchestrator's machine)"
                .into(),
        ),
        _ => (Impact::Blocks, format!("do not depend on {} for a failover", plane.service)),
    }
}

fn dns_advice(plan: &DrPlan, record: &crate::model::DnsRecordId, scenario: Scenario) -> (Impact, String) {
    let Some(r) = plan.dns().iter().find(|r| &r.record == record) else {
        return (Impact::Blocks, "the record is not in the plan".into());
    };
    let data_plane_failover = r.health_check && r.strategy == SwitchStrategy::FailoverRouting;
    match (&r.provider, data_plane_failover) {
        (Some(DnsProviderPlan::Route53 { .. }), true) => (
            Impact::Degrades,
            "failover routing with health checks: Route53's data plane answers the DR target once the \
             primary's health check fails, with no API call (the switch itself waits for the control plane)"
                .into(),
        ),
        (Some(DnsProviderPlan::Route53 { .. }), false) => (
            Impact::Blocks,
            "use Route53 failover routing with health checks on both targets (strategy failover-routing, \
             health_check = true): its data plane then fails over without an API call"
                .into(),
        ),
        (Some(DnsProviderPlan::Cloudflare { .. }), _) if r.strategy == SwitchStrategy::LoadBalancerPool => (
            Impact::Degrades,
            "a Cloudflare load-balancer pool with health monitors fails over in Cloudflare's data plane \
             once the primary's pool is unhealthy"
                .into(),
        ),
        (Some(DnsProviderPlan::Cloudflare { .. }), _) => (
            Impact::Blocks,
            "use a Cloudflare load balancer with health monitors on both pools (strategy load-balancer-pool): \
             it fails over without an API call"
                .into(),
        ),
        (Some(DnsProviderPlan::Rfc2136 { server, .. }), _) => (
            Impact::Blocks,
            if scenario == Scenario::PrimaryRegionDown {
                format!("updates go to {server}: keep a primary DNS server outside the primary's region")
            } else {
                format!("updates go to {server} alone: keep a second server able to take them (a promotable secondary)")
            },
        ),
        _ => (Impact::Blocks, "name the record's DNS provider in the plan".into()),
    }
}
