//! The runbook: stages of steps, built from a validated plan and the live
//! state read through the providers. Steps of one stage run concurrently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::custom::{CustomSteps, HookPoint};
use super::mode::RunMode;
use super::retry::RetryPolicy;
use crate::model::{ClusterId, DnsRecordId, DnsTarget, EnvironmentId, ImageRef, ServiceId};
use crate::plan::DrPlan;
use crate::provider::ServiceInfo;

/// An environment a step acts on: a real one, or the drill clone of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvRef {
    /// An existing environment.
    Existing(EnvironmentId),
    /// The drill clone of this (primary) environment, created by the run.
    CloneOf(EnvironmentId),
}

impl std::fmt::Display for EnvRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvRef::Existing(e) => write!(f, "{e}"),
            EnvRef::CloneOf(e) => write!(f, "clone-of-{e}"),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepKind {
    /// Read-only readiness checks; records what resuming needs.
    Preflight,
    /// The approval gate.
    Approve,
    /// The single-flight lock.
    AcquireLock,
    /// A step of the embedder's own ([`CustomStep`](super::CustomStep)), found by name
    /// among the engine's registered actions.
    Custom {
        /// Its name.
        name: String,
        /// Where it runs.
        point: HookPoint,
    },
    /// Drill: check that an environment's variables name the DR database where the plan's
    /// DR parameters do, and that the DR database answers.
    VerifyDatabaseConnection {
        /// The environment (a drill clone).
        environment: EnvRef,
    },
    /// Start the DR cluster if it is stopped, and wait until it runs (the plan's
    /// `failover.start_stopped_cluster`).
    StartCluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// Verify that a DR environment already serves the DR configuration (deployed and up
    /// to date, the DR parameters set, the DR registry's images): the precondition of a
    /// DNS-only failover, which changes none of it.
    VerifyDrConfiguration {
        /// The DR environment.
        environment: EnvironmentId,
    },
    /// Failback: make each original primary a standby of the current primary again (the
    /// replication manager's re-protection), and wait until it follows. Discards what the
    /// original primary wrote after the failover's fork.
    Reprotect,
    /// Fence the old primary (failover: or record it unreachable).
    FencePrimary,
    /// Wait until the standby replays the fenced primary's final LSN.
    CatchUp,
    /// Promote the standby. Past the point of no return.
    PromoteDatabase,
    /// Sequences and other fix-ups after promotion.
    PostPromotionFixups,
    /// Increment the failover epoch and record it in each promoted database (the
    /// journal has it in the step's output; the configure stage sets it as a variable,
    /// the DNS step publishes it beside each switched record).
    RecordEpoch,
    /// Drill: write a heartbeat and time its arrival on the standby.
    MeasureReplicationLag,
    /// Drill: clone an environment onto the DR cluster.
    CloneEnvironment {
        /// The source.
        source: EnvironmentId,
    },
    /// Make these images present in the DR registry: those out of parity are copied in
    /// one batch ([`RegistrySync::copy_all`](crate::provider::RegistrySync::copy_all)),
    /// so blobs they share move once.
    SyncImages {
        /// The images, in the primary registry.
        images: Vec<ImageRef>,
    },
    /// Make one image present in the DR registry (copy if missing). No longer built
    /// (the images stage is one batch, [`StepKind::SyncImages`]); kept so that
    /// runbooks of earlier versions still run.
    SyncImage {
        /// The image, in the primary registry.
        image: ImageRef,
    },
    /// Set the DR site's parameters as environment variables.
    ApplyParameters {
        /// The environment.
        environment: EnvRef,
    },
    /// Point a service at its image in the DR registry.
    SetServiceImage {
        /// The environment.
        environment: EnvRef,
        /// The service's name.
        service: String,
        /// The reference in the DR registry.
        image: ImageRef,
    },
    /// Set a service's instance counts (and resources) to the DR site's, before the deploy.
    SetServiceScale {
        /// The environment.
        environment: EnvRef,
        /// The service's name.
        service: String,
        /// The scale the plan states for the DR site.
        scale: crate::model::ServiceScale,
    },
    /// Deploy these services of one environment in one request and wait until
    /// they are deployed (the platform runs one deployment per environment at a time).
    DeployServices {
        /// The environment.
        environment: EnvironmentId,
        /// The services.
        services: Vec<ServiceId>,
    },
    /// Deploy one service and wait until it is deployed. No longer built (an
    /// environment is deployed in one request, [`StepKind::DeployServices`]);
    /// kept so that runbooks of earlier versions still run.
    DeployService {
        /// The environment.
        environment: EnvironmentId,
        /// The service.
        service: ServiceId,
    },
    /// Deploy a whole environment and wait until it is deployed.
    DeployEnvironment {
        /// The environment.
        environment: EnvRef,
    },
    /// Stop an environment of the old primary site after the switch (the plan's
    /// `failover.stop_old_primary`). In a failover the old site may be down: a stop that
    /// cannot be made is reported, not a failure of the run.
    StopEnvironment {
        /// The environment.
        environment: EnvironmentId,
    },
    /// Verify an environment serves (deployed, cluster healthy).
    VerifyEnvironment {
        /// The environment.
        environment: EnvRef,
    },
    /// Wait until a DNS target is healthy by the DNS provider's checks.
    VerifyTargetHealth {
        /// The record it serves.
        record: DnsRecordId,
        /// The target.
        target: DnsTarget,
    },
    /// Switch a record to the DR target (guarded) and wait until in sync.
    SwitchDns {
        /// The record.
        record: DnsRecordId,
        /// The value it must have now.
        from: DnsTarget,
        /// The DR target.
        to: DnsTarget,
    },
    /// Verify a record points at the DR target.
    VerifyDns {
        /// The record.
        record: DnsRecordId,
        /// The expected target.
        target: DnsTarget,
    },
    /// Wait out the longest old TTL, so resolvers have moved clients.
    DrainTtl {
        /// How long.
        #[serde(with = "crate::model::duration_serde")]
        ttl: Duration,
    },
    /// Measure and record the RPO.
    Record,
    /// Drill clean-up: delete a clone.
    DeleteClone {
        /// The clone's source.
        source: EnvironmentId,
    },
}

/// One step of the runbook.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepSpec {
    /// Unique, stable id (journal key), e.g. `deploy:env-1/api`.
    pub id: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
    /// One sentence for humans.
    pub description: String,
    /// The longest one attempt may take (waits included).
    #[serde(with = "crate::model::duration_serde")]
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Whether the step cannot be undone.
    pub point_of_no_return: bool,
    /// Whether it changes anything.
    pub mutating: bool,
}

/// Steps that run concurrently.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// Its name.
    pub name: String,
    /// Its steps.
    pub steps: Vec<StepSpec>,
}

/// What a dry run found for a step, evaluated against live state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assessment {
    /// The step.
    pub step: String,
    /// `ok`, `would-refuse` or `warning`.
    pub verdict: String,
    /// What was observed.
    pub evidence: String,
}

/// The runbook of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Runbook {
    /// The plan.
    pub plan: String,
    /// The mode.
    pub mode: RunMode,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Drill clean-up steps (always run at the end of a drill).
    pub cleanup: Vec<StepSpec>,
    /// Dry-run evaluation of preconditions and interlocks.
    pub assessments: Vec<Assessment>,
}

/// Per-step-kind timeouts, derived from the objectives: every wait has a
/// deadline so a lagging replica cannot silently stretch the outage.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeouts {
    /// Quick API calls.
    #[serde(with = "crate::model::duration_serde")]
    pub call: Duration,
    /// Standby catch-up.
    #[serde(with = "crate::model::duration_serde")]
    pub catch_up: Duration,
    /// A deployment.
    #[serde(with = "crate::model::duration_serde")]
    pub deploy: Duration,
    /// DNS propagation or target health.
    #[serde(with = "crate::model::duration_serde")]
    pub dns: Duration,
    /// An approval (a human may take a while).
    #[serde(with = "crate::model::duration_serde")]
    pub approval: Duration,
}

impl Timeouts {
    /// Budgets from the RTO: catch-up ¼, deploy ½, DNS ¼ (each at least 30 s).
    pub fn from_rto(rto: Duration) -> Self {
        let floor = Duration::from_secs(30);
        Self {
            call: Duration::from_secs(60),
            catch_up: (rto / 4).max(floor),
            deploy: (rto / 2).max(floor),
            dns: (rto / 4).max(floor),
            approval: Duration::from_secs(3600),
        }
    }
}

/// The live facts a runbook is built from.
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {
    /// Services of each environment the run deploys (DR environments; for a
    /// drill, the primary environments it clones).
    pub services: BTreeMap<EnvironmentId, Vec<ServiceInfo>>,
    /// Whether the cluster provider deploys single services.
    pub deploy_services: bool,
}

struct Builder<'a> {
    plan: &'a DrPlan,
    timeouts: Timeouts,
    retry: RetryPolicy,
    stages: Vec<Stage>,
}

impl Builder<'_> {
    fn step(&self, id: String, kind: StepKind, description: String, timeout: Duration, mutating: bool) -> StepSpec {
        let point_of_no_return = matches!(kind, StepKind::PromoteDatabase | StepKind::Reprotect);
        let retry = match kind {
            StepKind::Approve | StepKind::AcquireLock => RetryPolicy::never(),
            _ => self.retry,
        };
        StepSpec { id, kind, description, timeout, retry, point_of_no_return, mutating }
    }

    /// The custom steps registered at `point` for `mode`, as a stage of their own.
    fn custom(&mut self, custom: &CustomSteps, point: HookPoint, mode: RunMode) {
        let steps = custom
            .at(point, mode)
            .map(|c| {
                let mut spec = self.step(
                    format!("custom:{}", c.name),
                    StepKind::Custom { name: c.name.clone(), point },
                    c.description.clone(),
                    c.timeout,
                    c.mutating,
                );
                if let Some(retry) = c.retry {
                    spec.retry = retry;
                }
                spec
            })
            .collect();
        self.stage(point.stage(), steps);
    }

    fn stage(&mut self, name: &str, steps: Vec<StepSpec>) {
        if !steps.is_empty() {
            self.stages.push(Stage { name: name.to_owned(), steps });
        }
    }

    fn remappable(&self, image: &ImageRef) -> bool {
        self.plan.registry_mapping.remap(image).is_ok()
    }

    /// Images the target environments run that live in the primary registry.
    fn images(&self, envs: &[EnvironmentId], facts: &LiveFacts) -> Vec<ImageRef> {
        let set: BTreeSet<ImageRef> = envs
            .iter()
            .filter_map(|e| facts.services.get(e))
            .flatten()
            .filter_map(|s| s.image.clone())
            .filter(|i| self.remappable(i))
            .collect();
        set.into_iter().collect()
    }

    /// The "images" stage (sync every remappable image the environments run)
    /// and the "configure" stage (DR parameters, DR image references).
    /// `sources` are the environments whose services are known; `targets` the
    /// environments configured (the same, or their drill clones).
    fn images_and_configure(&mut self, sources: &[EnvironmentId], targets: &[EnvRef], facts: &LiveFacts) {
        let t = self.timeouts;
        let images = self.images(sources, facts);
        let step = (!images.is_empty()).then(|| {
            let description = match images.as_slice() {
                [one] => format!("make {one} present in the DR registry"),
                many => format!(
                    "make {} images present in the DR registry in one batch: {}",
                    many.len(),
                    many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            };
            self.step("sync-images".to_owned(), StepKind::SyncImages { images }, description, t.deploy, true)
        });
        self.stage("images", step.into_iter().collect());
        self.configure(targets, facts, |r| match r {
            EnvRef::CloneOf(e) | EnvRef::Existing(e) => e.clone(),
        });
    }

    fn configure(&mut self, envs: &[EnvRef], facts: &LiveFacts, source_of: impl Fn(&EnvRef) -> EnvironmentId) {
        let t = self.timeouts;
        let mut steps = Vec::new();
        for env in envs {
            steps.push(self.step(
                format!("parameters:{env}"),
                StepKind::ApplyParameters { environment: env.clone() },
                format!("set the DR parameters ({} variables) on {env}", self.plan.dr.parameters.len()),
                t.call,
                true,
            ));
            for svc in facts.services.get(&source_of(env)).into_iter().flatten() {
                // Scaled up before the deploy: pilot light and warm standby run the DR site small.
                if let Some(scale) = self.plan.dr.scale.for_service(&svc.name).filter(|_| svc.kind.scales()) {
                    steps.push(self.step(
                        format!("scale:{env}/{}", svc.name),
                        StepKind::SetServiceScale { environment: env.clone(), service: svc.name.clone(), scale },
                        format!(
                            "scale {} of {env} to {}–{} instances{}",
                            svc.name,
                            scale.min_instances,
                            scale.max_instances,
                            match (scale.cpu_millicores, scale.memory_mib) {
                                (None, None) => String::new(),
                                (cpu, mem) => format!(
                                    " ({}{})",
                                    cpu.map(|c| format!("{c}m CPU ")).unwrap_or_default(),
                                    mem.map(|m| format!("{m} MiB")).unwrap_or_default()
                                ),
                            }
                        ),
                        t.call,
                        true,
                    ));
                }
                let Some(dr) = svc.image.as_ref().and_then(|i| self.plan.registry_mapping.remap(i).ok()) else {
                    continue;
                };
                steps.push(self.step(
                    format!("image:{env}/{}", svc.name),
                    StepKind::SetServiceImage {
                        environment: env.clone(),
                        service: svc.name.clone(),
                        image: dr.clone(),
                    },
                    format!("point {} of {env} at {dr}", svc.name),
                    t.call,
                    true,
                ));
            }
        }
        self.stage("configure", steps);
    }
}

impl Runbook {
    /// A runbook with no steps (a run that never started, or whose runbook is unknown).
    pub(crate) fn empty(plan: &str, mode: RunMode) -> Runbook {
        Runbook { plan: plan.to_owned(), mode, stages: Vec::new(), cleanup: Vec::new(), assessments: Vec::new() }
    }

    /// The default runbook for `mode` (for failback, pass the plan as is: the
    /// runbook reverses it).
    pub fn build(plan: &DrPlan, mode: RunMode, facts: &LiveFacts, options: &super::EngineOptions) -> Runbook {
        Self::build_with(plan, mode, facts, options, &CustomSteps::default())
    }

    /// The runbook with the engine's custom steps at their points.
    pub(crate) fn build_with(
        plan: &DrPlan,
        mode: RunMode,
        facts: &LiveFacts,
        options: &super::EngineOptions,
        custom: &CustomSteps,
    ) -> Runbook {
        let retry = options.retry;
        let reversed;
        let plan = if mode == RunMode::Failback {
            reversed = plan.reversed();
            &reversed
        } else {
            plan
        };
        let timeouts = Timeouts::from_rto(plan.objectives.rto);
        let t = timeouts;
        let mut b = Builder { plan, timeouts, retry, stages: Vec::new() };
        // Every database of the site is fenced, caught up and promoted by the same steps.
        let db = plan.primary.database_ids().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let (the_primary, the_standby, replays) = if plan.primary.additional_databases.is_empty() {
            ("the old primary", "the standby", "replays")
        } else {
            ("the old primaries", "the standbys", "replay")
        };
        b.stage(
            "preflight",
            vec![b.step("preflight".into(), StepKind::Preflight, "read-only readiness checks".into(), t.call, false)],
        );
        b.stage(
            "approval",
            vec![b.step("approval".into(), StepKind::Approve, "ask the approver".into(), t.approval, false)],
        );
        b.stage(
            "lock",
            vec![b.step("lock".into(), StepKind::AcquireLock, "take the single-flight lock".into(), t.call, true)],
        );
        if plan.failover.start_stopped_cluster {
            // Before anything else changes: a cluster that does not come up stops the run
            // with the primary untouched.
            b.stage(
                "start-cluster",
                vec![b.step(
                    "start-cluster".into(),
                    StepKind::StartCluster { cluster: plan.dr.cluster.clone() },
                    format!("start DR cluster {} if it is stopped, and wait until it runs", plan.dr.cluster),
                    t.deploy,
                    true,
                )],
            );
        }
        if mode == RunMode::Failback && plan.failover.reprotect_on_failback {
            // Before the preflight's catch-up checks matter and before anything of the current
            // primary changes: the original primaries (this reversed plan's DR site) follow again.
            b.stage(
                "reprotect",
                vec![b.step(
                    "reprotect".into(),
                    StepKind::Reprotect,
                    format!(
                        "re-protect: make the databases of {} ({db}) standbys of the current primaries again, \
                         discarding what they wrote after the failover, and wait until they follow",
                        plan.dr.name
                    ),
                    t.catch_up + t.deploy,
                    true,
                )],
            );
        }
        let mut cleanup = Vec::new();
        if mode == RunMode::Drill {
            b.custom(custom, HookPoint::BeforeChanges, mode);
            b.stage(
                "replication",
                vec![b.step(
                    "measure-replication-lag".into(),
                    StepKind::MeasureReplicationLag,
                    format!("write a heartbeat on {db} and time its arrival on the standby"),
                    t.catch_up,
                    true,
                )],
            );
            let sources = plan.primary.environments.clone();
            let clones: Vec<StepSpec> = sources
                .iter()
                .map(|e| {
                    b.step(
                        format!("clone:{e}"),
                        StepKind::CloneEnvironment { source: e.clone() },
                        format!("clone {e} onto DR cluster {}", plan.dr.cluster),
                        t.call,
                        true,
                    )
                })
                .collect();
            b.stage("clone", clones);
            let refs: Vec<EnvRef> = sources.iter().map(|e| EnvRef::CloneOf(e.clone())).collect();
            b.images_and_configure(&sources, &refs, facts);
            let deploys = refs
                .iter()
                .map(|r| {
                    b.step(
                        format!("deploy:{r}"),
                        StepKind::DeployEnvironment { environment: r.clone() },
                        format!("deploy {r} and wait"),
                        t.deploy,
                        true,
                    )
                })
                .collect();
            b.stage("deploy", deploys);
            let mut verify: Vec<StepSpec> = refs
                .iter()
                .map(|r| {
                    b.step(
                        format!("verify:{r}"),
                        StepKind::VerifyEnvironment { environment: r.clone() },
                        format!("verify {r} serves"),
                        t.deploy,
                        false,
                    )
                })
                .collect();
            // A clone that is deployed but points at the wrong database proves nothing.
            verify.extend(refs.iter().map(|r| {
                b.step(
                    format!("check-database:{r}"),
                    StepKind::VerifyDatabaseConnection { environment: r.clone() },
                    format!("check that {r}'s parameters name the DR database, and that it answers"),
                    t.call,
                    false,
                )
            }));
            b.stage("verify-dr", verify);
            b.custom(custom, HookPoint::BeforeSwitch, mode);
            b.stage(
                "record",
                vec![b.step("record".into(), StepKind::Record, "measure and record RTO/RPO".into(), t.call, false)],
            );
            b.custom(custom, HookPoint::AtEnd, mode);
            cleanup = sources
                .iter()
                .map(|e| {
                    b.step(
                        format!("cleanup:{e}"),
                        StepKind::DeleteClone { source: e.clone() },
                        format!("delete the drill clone of {e}"),
                        t.call,
                        true,
                    )
                })
                .collect();
        } else {
            if plan.failover.dns_only {
                // A DNS-only failover changes no variable and deploys nothing: the DR site
                // must already serve the DR configuration, checked before anything changes.
                let checks = plan
                    .dr
                    .environments
                    .iter()
                    .map(|e| {
                        b.step(
                            format!("verify-dr-config:{e}"),
                            StepKind::VerifyDrConfiguration { environment: e.clone() },
                            format!(
                                "verify {e} already serves the DR configuration (a DNS-only failover changes none)"
                            ),
                            t.call,
                            false,
                        )
                    })
                    .collect();
                b.stage("verify-dr-config", checks);
            }
            b.custom(custom, HookPoint::BeforeChanges, mode);
            b.stage(
                "fence",
                vec![b.step(
                    "fence-primary".into(),
                    StepKind::FencePrimary,
                    format!("fence {the_primary} of {db}"),
                    t.catch_up,
                    true,
                )],
            );
            if mode.is_planned() {
                b.stage(
                    "catch-up",
                    vec![b.step(
                        "catch-up".into(),
                        StepKind::CatchUp,
                        format!("wait until {the_standby} of {db} {replays} the final LSN"),
                        t.catch_up,
                        false,
                    )],
                );
            }
            b.stage(
                "promote",
                vec![b.step(
                    "promote-database".into(),
                    StepKind::PromoteDatabase,
                    format!("promote {the_standby} of {db}"),
                    t.catch_up,
                    true,
                )],
            );
            b.stage(
                "post-promotion",
                vec![b.step(
                    "post-promotion-fixups".into(),
                    StepKind::PostPromotionFixups,
                    "sync sequences and other fix-ups".into(),
                    t.call,
                    true,
                )],
            );
            b.stage(
                "epoch",
                vec![b.step(
                    "failover-epoch".into(),
                    StepKind::RecordEpoch,
                    "increment the failover epoch and record it in the promoted database".into(),
                    t.call,
                    true,
                )],
            );
            b.custom(custom, HookPoint::AfterPromotion, mode);
            let envs = plan.dr.environments.clone();
            let refs: Vec<EnvRef> = envs.iter().map(|e| EnvRef::Existing(e.clone())).collect();
            if !plan.failover.dns_only {
                b.images_and_configure(&envs, &refs, facts);
            }
            let mut deploys = Vec::new();
            for env in envs.iter().filter(|_| !plan.failover.dns_only) {
                // Databases the platform runs are facts, never deployed by a failover.
                let deployable: Option<Vec<&ServiceInfo>> = facts
                    .services
                    .get(env)
                    .map(|all| all.iter().filter(|s| s.kind.is_deployed_by_a_failover()).collect());
                match deployable {
                    // One request per environment: platforms (Qovery among them) refuse a
                    // second deployment of an environment while one runs.
                    Some(services) if facts.deploy_services && !services.is_empty() => deploys.push(b.step(
                        format!("deploy:{env}"),
                        StepKind::DeployServices {
                            environment: env.clone(),
                            services: services.iter().map(|s| s.id.clone()).collect(),
                        },
                        format!(
                            "deploy {} of {env} in one request and wait",
                            services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                        t.deploy,
                        true,
                    )),
                    _ => deploys.push(b.step(
                        format!("deploy:{env}"),
                        StepKind::DeployEnvironment { environment: EnvRef::Existing(env.clone()) },
                        format!("deploy {env} and wait"),
                        t.deploy,
                        true,
                    )),
                }
            }
            b.stage("deploy", deploys);
            let mut verify: Vec<StepSpec> = envs
                .iter()
                .map(|e| {
                    b.step(
                        format!("verify:{e}"),
                        StepKind::VerifyEnvironment { environment: EnvRef::Existing(e.clone()) },
                        format!("verify {e} serves"),
                        t.deploy,
                        false,
                    )
                })
                .collect();
            for r in &plan.dns {
                verify.push(b.step(
                    format!("health:{}", r.record),
                    StepKind::VerifyTargetHealth { record: r.record.clone(), target: r.dr_target.clone() },
                    format!("wait until {} is healthy", r.dr_target),
                    t.dns,
                    false,
                ));
            }
            b.stage("verify-dr", verify);
            b.custom(custom, HookPoint::BeforeSwitch, mode);
            let switches = plan
                .dns
                .iter()
                .map(|r| {
                    b.step(
                        format!("dns:{}", r.record),
                        StepKind::SwitchDns {
                            record: r.record.clone(),
                            from: r.primary_target.clone(),
                            to: r.dr_target.clone(),
                        },
                        format!(
                            "switch {} from {} to {} ({}) and wait until in sync",
                            r.record, r.primary_target, r.dr_target, r.strategy
                        ),
                        t.dns,
                        true,
                    )
                })
                .collect();
            b.stage("dns", switches);
            let checks = plan
                .dns
                .iter()
                .map(|r| {
                    b.step(
                        format!("verify-dns:{}", r.record),
                        StepKind::VerifyDns { record: r.record.clone(), target: r.dr_target.clone() },
                        format!("verify {} points at {}", r.record, r.dr_target),
                        t.call,
                        false,
                    )
                })
                .collect();
            b.stage("verify", checks);
            b.custom(custom, HookPoint::AfterSwitch, mode);
            if plan.failover.stop_old_primary && matches!(mode, RunMode::Failover | RunMode::Switchover) {
                let stops = plan
                    .primary
                    .environments
                    .iter()
                    .map(|e| {
                        b.step(
                            format!("stop-old-primary:{e}"),
                            StepKind::StopEnvironment { environment: e.clone() },
                            format!(
                                "stop {e} on the old primary site, so that nothing there writes to the old database or serves stale data"
                            ),
                            t.deploy,
                            true,
                        )
                    })
                    .collect();
                b.stage("stop-old-primary", stops);
            }
            b.stage(
                "record",
                vec![b.step("record".into(), StepKind::Record, "measure and record RTO/RPO".into(), t.call, false)],
            );
            b.custom(custom, HookPoint::AtEnd, mode);
            if let Some(ttl) = plan.dns.iter().map(|r| r.ttl).max().filter(|t| !t.is_zero() && options.drain_ttl) {
                b.stage(
                    "drain",
                    vec![b.step(
                        "drain-ttl".into(),
                        StepKind::DrainTtl { ttl },
                        format!("wait out the old TTL ({}) so resolvers move clients", humantime::format_duration(ttl)),
                        ttl + t.call,
                        false,
                    )],
                );
            }
        }
        Runbook { plan: plan.name.clone(), mode, stages: b.stages, cleanup, assessments: Vec::new() }
    }

    /// Every step, in order (stages, then clean-up).
    pub fn steps(&self) -> impl Iterator<Item = &StepSpec> {
        self.stages.iter().flat_map(|s| s.steps.iter()).chain(self.cleanup.iter())
    }

    /// The stage whose completion ends the measured RTO.
    pub fn rto_stage(&self) -> &'static str {
        if self.mode == RunMode::Drill { "verify-dr" } else { "verify" }
    }

    /// The runbook as a human-readable table, with the dry-run assessments.
    pub fn to_table(&self) -> String {
        let mut out = format!("runbook: {} of plan {}\n", self.mode, self.plan);
        let w = self.steps().map(|s| s.id.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "  {:<4} {:<16} {:<w$} {:<4} what", "#", "stage", "step", "PONR");
        let mut n = 0;
        for stage in &self.stages {
            for step in &stage.steps {
                n += 1;
                let ponr = if step.point_of_no_return { "yes" } else { "" };
                let _ = writeln!(out, "  {n:<4} {:<16} {:<w$} {ponr:<4} {}", stage.name, step.id, step.description);
            }
        }
        for step in &self.cleanup {
            n += 1;
            let _ = writeln!(
                out,
                "  {n:<4} {:<16} {:<w$} {:<4} {} (always, also after a failure)",
                "cleanup", step.id, "", step.description
            );
        }
        if !self.assessments.is_empty() {
            let _ = writeln!(out, "preconditions and interlocks, evaluated now:");
            for a in &self.assessments {
                let _ = writeln!(out, "  [{}] {}: {}", a.verdict, a.step, a.evidence);
            }
        }
        out
    }

    /// Whether the dry run foresees a refusal.
    pub fn would_refuse(&self) -> bool {
        self.assessments.iter().any(|a| a.verdict == "would-refuse")
    }
}
