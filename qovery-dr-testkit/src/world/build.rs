//! Building and scripting a world.

use std::collections::BTreeMap;
use std::time::Duration;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{ClusterState, Node, ReplicationMode, TargetHealth};
use qovery_dr_core::{
    ClusterId, DatabaseId, Digest, DnsRecordId, DnsTarget, EnvironmentId, ImageRef, Lsn, ProjectId, ServiceId,
};
use tokio::time::Instant;

use super::state::{DatabaseSim, EnvironmentSim, NodeSim, RecordSim, ServiceConfig, ServiceSim, VarSim};
use super::{HealthSource, LinkSim, NodeCondition, World};

/// A service to add to an environment.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Its id.
    pub id: ServiceId,
    /// Its name.
    pub name: String,
    /// Its image, for container services.
    pub image: Option<ImageRef>,
    /// Minimum instances.
    pub min_instances: u32,
    /// What it is.
    pub kind: qovery_dr_core::provider::ServiceKind,
}

/// An environment to add.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    /// Its id.
    pub id: EnvironmentId,
    /// Its name.
    pub name: String,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its project.
    pub project: ProjectId,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Plain environment variables.
    pub variables: BTreeMap<String, String>,
    /// Secret environment variables.
    pub secrets: BTreeMap<String, String>,
    /// Whether it starts deployed and serving.
    pub deployed: bool,
}

/// A replicated database to add.
#[derive(Debug, Clone)]
pub struct DatabaseSpec {
    /// Its id.
    pub id: DatabaseId,
    /// Replication mode.
    pub mode: ReplicationMode,
    /// Replication delay when streaming.
    pub lag: Duration,
    /// Client writes in bytes per second on the writable primary.
    pub write_rate: u64,
    /// For mode dump: a dump every this long.
    pub dump_every: Option<Duration>,
    /// Sequences to fix up after a logical promotion.
    pub sequences: u32,
}

impl DatabaseSpec {
    /// A streaming pair with 200 ms of lag and 1 MiB/s of writes.
    pub fn streaming(id: &str, mode: ReplicationMode) -> Self {
        Self {
            id: DatabaseId::new(id),
            mode,
            lag: Duration::from_millis(200),
            write_rate: 1 << 20,
            dump_every: None,
            sequences: 3,
        }
    }
}

/// A digest derived from a name, for test images (deterministic, not a real hash of content).
pub fn digest_of(seed: &str) -> Digest {
    // FNV-1a, four rounds, spread over 32 bytes.
    let mut out = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0u8..4 {
        for b in seed.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out[usize::from(round) * 8..usize::from(round) * 8 + 8].copy_from_slice(&h.to_be_bytes());
    }
    Digest::from_sha256(out)
}

fn node(is_primary: bool, now: Instant) -> NodeSim {
    NodeSim {
        condition: NodeCondition::Up,
        is_primary,
        fenced: false,
        lsn: Lsn(0x0100_0000),
        history: vec![(now, Lsn(0x0100_0000))],
        updated_at: now,
        last_heartbeat: None,
        epochs: Vec::new(),
    }
}

impl World {
    /// Adds (or replaces) a cluster.
    pub fn add_cluster(&self, id: impl Into<ClusterId>, state: ClusterState) {
        let id = id.into();
        self.with_state(|s| {
            s.clusters.insert(id, state);
        });
    }

    /// Sets a cluster's state (e.g. `Error` to simulate a regional outage).
    pub fn set_cluster_state(&self, id: &ClusterId, state: ClusterState) {
        self.with_state(|s| {
            s.clusters.insert(id.clone(), state);
        });
    }

    /// Adds an environment.
    pub fn add_environment(&self, spec: EnvironmentSpec) {
        self.with_state(|s| {
            let services = spec
                .services
                .into_iter()
                .map(|svc| {
                    let config = ServiceConfig {
                        image: svc.image,
                        variables: BTreeMap::new(),
                        min_instances: svc.min_instances,
                        scale: None,
                    };
                    let running = spec.deployed.then(|| config.clone());
                    (
                        svc.id,
                        ServiceSim {
                            name: svc.name,
                            desired: config,
                            running,
                            running_env_vars: BTreeMap::new(),
                            last_deployment: None,
                            kind: svc.kind,
                        },
                    )
                })
                .collect();
            let mut variables: BTreeMap<String, VarSim> =
                spec.variables.into_iter().map(|(k, v)| (k, VarSim { value: v, secret: false })).collect();
            variables.extend(spec.secrets.into_iter().map(|(k, v)| (k, VarSim { value: v, secret: true })));
            let mut services: BTreeMap<ServiceId, ServiceSim> = services;
            if spec.deployed {
                for svc in services.values_mut() {
                    svc.running_env_vars = variables.clone();
                }
            }
            s.environments.insert(
                spec.id,
                EnvironmentSim {
                    name: spec.name,
                    cluster: spec.cluster,
                    project: spec.project,
                    variables,
                    services,
                    running: spec.deployed,
                    last_deployment: None,
                    fail_next_deployments: 0,
                },
            );
        });
    }

    /// Makes the next `n` deployments of an environment end in error.
    pub fn fail_next_deployments(&self, environment: &EnvironmentId, n: u32) {
        self.with_state(|s| {
            if let Some(e) = s.environments.get_mut(environment) {
                e.fail_next_deployments = n;
            }
        });
    }

    /// Adds a replicated pair: a writable primary and a streaming standby.
    pub fn add_database(&self, spec: DatabaseSpec) {
        let now = Instant::now();
        self.with_state(|s| {
            s.databases.insert(
                spec.id,
                DatabaseSim {
                    mode: spec.mode,
                    a: node(true, now),
                    b: node(false, now),
                    reversed: false,
                    link: LinkSim::Up,
                    lag: spec.lag,
                    write_rate: spec.write_rate,
                    heartbeats_on_a: Vec::new(),
                    heartbeats_on_b: Vec::new(),
                    next_heartbeat: 1,
                    dump_every: spec.dump_every,
                    restores_verified: true,
                    backup_failure: None,
                    created_at: now,
                    sequences: spec.sequences,
                    fixed_up: false,
                },
            );
        });
    }

    /// Adds a service to an existing environment (a job, a database the platform runs, or
    /// another container), running its configuration already when the environment is
    /// deployed.
    pub fn add_service(&self, environment: &EnvironmentId, spec: ServiceSpec) {
        self.with_state(|s| {
            if let Some(env) = s.environments.get_mut(environment) {
                let config = ServiceConfig {
                    image: spec.image,
                    variables: BTreeMap::new(),
                    min_instances: spec.min_instances,
                    scale: None,
                };
                let deployed = env.services.values().any(|svc| svc.running.is_some());
                env.services.insert(
                    spec.id,
                    ServiceSim {
                        name: spec.name,
                        desired: config.clone(),
                        running: deployed.then_some(config),
                        running_env_vars: if deployed { env.variables.clone() } else { BTreeMap::new() },
                        last_deployment: None,
                        kind: spec.kind,
                    },
                );
            }
        });
    }

    /// Sets the condition of a database node. `Node::Primary` is the original
    /// primary, `Node::Standby` the original standby.
    pub fn set_node_condition(&self, db: &DatabaseId, which: Node, condition: NodeCondition) {
        self.with_state(|s| {
            if let Some(d) = s.databases.get_mut(db) {
                match which {
                    Node::Primary => d.a.condition = condition,
                    Node::Standby => d.b.condition = condition,
                }
            }
        });
    }

    /// Sets the replication link.
    pub fn set_link(&self, db: &DatabaseId, link: LinkSim) {
        self.with_state(|s| {
            if let Some(d) = s.databases.get_mut(db) {
                d.link = link;
            }
        });
    }

    /// Sets the replication delay and the write workload.
    pub fn set_replication_load(&self, db: &DatabaseId, lag: Duration, write_rate: u64) {
        self.with_state(|s| {
            if let Some(d) = s.databases.get_mut(db) {
                d.lag = lag;
                d.write_rate = write_rate;
            }
        });
    }

    /// Re-protection after a failover: the old primary becomes a streaming
    /// standby of the promoted one (unfenced, reachable), ready for failback.
    pub fn reprotect(&self, db: &DatabaseId) {
        let now = Instant::now();
        self.with_state(|s| {
            if let Some(d) = s.databases.get_mut(db) {
                let (new_primary, old) = if d.reversed { (&mut d.a, &mut d.b) } else { (&mut d.b, &mut d.a) };
                if new_primary.is_primary {
                    old.is_primary = false;
                    old.fenced = false;
                    old.condition = NodeCondition::Up;
                    old.lsn = new_primary.lsn;
                    old.history = vec![(now, old.lsn)];
                    old.last_heartbeat = new_primary.last_heartbeat;
                    d.reversed = !d.reversed;
                    d.link = LinkSim::Up;
                    d.fixed_up = false;
                }
            }
        });
    }

    /// Adds an image (tag → digest) to a registry, creating the registry if needed.
    pub fn add_image(&self, image: &ImageRef, digest: Digest, size: u64) {
        self.with_state(|s| {
            let reg = s.registries.entry(image.registry().to_owned()).or_default();
            reg.tags.insert((image.repository().to_owned(), image.reference()), digest.clone());
            reg.sizes.insert(digest, size);
        });
    }

    /// Creates an empty registry.
    pub fn add_registry(&self, host: &str) {
        self.with_state(|s| {
            s.registries.entry(host.to_owned()).or_default();
        });
    }

    /// Adds (or replaces) a DNS record.
    pub fn add_record(&self, record: impl Into<DnsRecordId>, target: impl Into<DnsTarget>, ttl: Duration) {
        let (record, target) = (record.into(), target.into());
        self.with_state(|s| {
            s.records.insert(record, RecordSim { target, ttl });
        });
    }

    /// Where a record points now (for assertions).
    pub fn record_target(&self, record: &DnsRecordId) -> Option<DnsTarget> {
        self.with_state(|s| s.records.get(record).map(|r| r.target.clone()))
    }

    /// Sets where a target's health comes from.
    pub fn set_target_health(&self, target: impl Into<DnsTarget>, source: HealthSource) {
        let target = target.into();
        self.with_state(|s| {
            s.health.insert(target, source);
        });
    }

    /// Makes a target's health alternate every `period`.
    pub fn set_target_flapping(&self, target: impl Into<DnsTarget>, period: Duration) {
        self.set_target_health(target, HealthSource::Flapping { period, since: Instant::now() });
    }

    /// Builds a healthy world for a plan: both clusters running, the primary
    /// environments deployed, the DR ones deployed for warm standby and
    /// active-active (stopped otherwise), each of the plan's replicated databases, every image in
    /// both registries, DNS records on the primary targets with health bound to
    /// the environments.
    pub fn from_plan(plan: &DrPlan) -> PlanWorld {
        let world = World::new();
        world.add_cluster(plan.primary().cluster.clone(), ClusterState::Running);
        world.add_cluster(plan.dr().cluster.clone(), ClusterState::Running);
        let dr_deployed = matches!(plan.tier(), qovery_dr_core::Tier::WarmStandby | qovery_dr_core::Tier::ActiveActive);
        let services = ["api", "web", "worker"];
        let from = &plan.registry_mapping().from;
        let mut images = Vec::new();
        for name in services {
            let path = match &from.prefix {
                Some(p) => format!("{}/{p}/{name}:v1", from.host),
                None => format!("{}/{name}:v1", from.host),
            };
            if let Ok(img) = path.parse::<ImageRef>() {
                images.push(img);
            }
        }
        for img in &images {
            let digest = digest_of(&img.to_string());
            world.add_image(img, digest.clone(), 50 << 20);
            if let Ok(dr) = plan.registry_mapping().remap(img) {
                world.add_image(&dr, digest, 50 << 20);
            }
        }
        for site in [&plan.primary(), &plan.dr()] {
            let deployed = site.role == qovery_dr_core::SiteRole::Primary || dr_deployed;
            for (n, env) in site.environments.iter().enumerate() {
                world.add_environment(EnvironmentSpec {
                    id: env.clone(),
                    name: format!("{}-{}-{n}", plan.name(), site.role),
                    cluster: site.cluster.clone(),
                    project: site.project.clone().unwrap_or_else(|| ProjectId::new("project")),
                    services: images
                        .iter()
                        .zip(services)
                        .map(|(img, name)| ServiceSpec {
                            id: ServiceId::new(format!("{env}-{name}")),
                            name: name.to_owned(),
                            // Qovery does not remap registries: both sites start on the primary's images.
                            image: Some(img.clone()),
                            min_instances: 2,
                            kind: qovery_dr_core::provider::ServiceKind::Container,
                        })
                        .collect(),
                    variables: site.parameters.clone(),
                    secrets: BTreeMap::from([("DATABASE_PASSWORD".to_owned(), "sim-secret".to_owned())]),
                    deployed,
                });
            }
        }
        for db in plan.primary().databases() {
            world.add_database(DatabaseSpec {
                dump_every: plan.replication().dump_interval,
                ..DatabaseSpec::streaming(db.id.as_str(), plan.replication().mode)
            });
        }
        for record in plan.dns() {
            world.add_record(record.record.clone(), record.primary_target.clone(), record.ttl);
            for (site, target) in [(&plan.primary(), &record.primary_target), (&plan.dr(), &record.dr_target)] {
                match site.environments.first() {
                    Some(env) => world.set_target_health(target.clone(), HealthSource::Environment(env.clone())),
                    None => world.set_target_health(target.clone(), HealthSource::Fixed(TargetHealth::Unknown)),
                }
            }
        }
        PlanWorld { world, plan: plan.clone() }
    }
}

/// A world built from a plan, with shortcuts to script incidents on it.
#[derive(Debug, Clone)]
pub struct PlanWorld {
    /// The world.
    pub world: World,
    /// The plan it was built from.
    pub plan: DrPlan,
}

impl PlanWorld {
    /// In-memory providers over this world, for the plan's sites (including
    /// the failback registry direction).
    pub fn providers(&self) -> qovery_dr_core::engine::Providers {
        use crate::memory::{InMemoryCluster, InMemoryDns, InMemoryRegistry, InMemoryReplication};
        let back = qovery_dr_core::provider::RegistryMapping::new(
            self.plan.registry_mapping().to.clone(),
            self.plan.registry_mapping().from.clone(),
        );
        qovery_dr_core::engine::Providers {
            cluster: std::sync::Arc::new(InMemoryCluster::new(&self.world)),
            dns: std::sync::Arc::new(InMemoryDns::new(&self.world)),
            replication: std::sync::Arc::new(InMemoryReplication::new(&self.world)),
            registry: std::sync::Arc::new(InMemoryRegistry::new(&self.world, self.plan.registry_mapping().clone())),
            registry_back: Some(std::sync::Arc::new(InMemoryRegistry::new(&self.world, back))),
            // The in-memory manager follows the roles: one serves both directions.
            replication_back: None,
            clock: Some(std::sync::Arc::new(self.world.clone())),
            resolver: None,
        }
    }

    /// An engine over this world's providers and clock, with the given journal.
    pub fn engine_builder(&self) -> qovery_dr_core::engine::EngineBuilder {
        qovery_dr_core::engine::Engine::builder(self.plan.clone(), self.providers())
    }

    /// Replaces the services of the first DR environment by `count` container services
    /// (`svc-0`… named `svc0`…) running images of the primary registry, already deployed,
    /// and puts those images (with the same digests) in both registries. Returns the images.
    ///
    /// ```
    /// use qovery_dr_testkit::World;
    /// # let plan = qovery_dr_core::plan::DrPlan::parse(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/plans/aws-cross-region.toml")).unwrap(), qovery_dr_core::plan::PlanFormat::Toml).unwrap();
    /// let pw = World::from_plan(&plan);
    /// assert_eq!(pw.with_dr_services(5).len(), 5);
    /// ```
    pub fn with_dr_services(&self, count: usize) -> Vec<ImageRef> {
        let Some(dr_env) = self.plan.dr().environments.first().cloned() else { return Vec::new() };
        let from = &self.plan.registry_mapping().from;
        let images: Vec<ImageRef> = (0..count)
            .filter_map(|i| format!("{}/{}/svc{i}:v1", from.host, from.prefix.clone().unwrap_or_default()).parse().ok())
            .collect();
        for img in &images {
            self.world.add_image(img, digest_of(&img.to_string()), 1 << 20);
            if let Ok(dr) = self.plan.registry_mapping().remap(img) {
                self.world.add_image(&dr, digest_of(&img.to_string()), 1 << 20);
            }
        }
        self.world.with_state(|s| {
            if let Some(env) = s.environments.get_mut(&dr_env) {
                env.services.clear();
                for (i, img) in images.iter().enumerate() {
                    let config = ServiceConfig {
                        image: Some(img.clone()),
                        variables: BTreeMap::new(),
                        min_instances: 2,
                        scale: None,
                    };
                    env.services.insert(
                        ServiceId::new(format!("svc-{i}")),
                        ServiceSim {
                            name: format!("svc{i}"),
                            desired: config.clone(),
                            running: Some(config),
                            running_env_vars: env.variables.clone(),
                            last_deployment: None,
                            kind: qovery_dr_core::provider::ServiceKind::Container,
                        },
                    );
                }
            }
        });
        images
    }

    /// A regional outage of the primary site: its cluster in error and every
    /// database node of the site down (crashed, accepting nothing).
    pub fn primary_outage(&self) {
        self.world.set_cluster_state(&self.plan.primary().cluster, ClusterState::Error);
        for db in self.plan.primary().databases() {
            self.world.set_node_condition(&db.id, Node::Primary, NodeCondition::Down);
        }
    }

    /// A network partition: the primary site's databases are unreachable from the
    /// orchestrator but still accept writes from their local clients.
    pub fn primary_partitioned(&self) {
        self.world.set_cluster_state(&self.plan.primary().cluster, ClusterState::Error);
        for db in self.plan.primary().databases() {
            self.world.set_node_condition(&db.id, Node::Primary, NodeCondition::Partitioned);
        }
    }
}
