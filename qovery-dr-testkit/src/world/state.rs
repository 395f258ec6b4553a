//! The simulated world's state. Time-dependent values (deployment phases, WAL
//! positions, DNS propagation) are computed from tokio's clock when read, so
//! nothing runs in the background and paused-time tests are deterministic.

use std::collections::BTreeMap;
use std::time::Duration;

use qovery_dr_core::provider::{ClusterState, DeploymentPhase, ReplicationMode, TargetHealth};
use qovery_dr_core::{
    ChangeId, ClusterId, DatabaseId, DeploymentId, Digest, DnsRecordId, DnsTarget, EnvironmentId, ImageRef, Lsn,
    ProjectId, ServiceId, Timestamp,
};
use tokio::time::Instant;

/// A variable in the world: secrets keep their value here (the world is the
/// platform), but providers never return it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VarSim {
    /// The value.
    pub value: String,
    /// Whether it is a secret.
    pub secret: bool,
}

/// A service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceConfig {
    /// Container image, if a container service.
    pub image: Option<ImageRef>,
    /// Service-scoped variables.
    pub variables: BTreeMap<String, VarSim>,
    /// Minimum instances.
    pub min_instances: u32,
    /// Maximum instances and resources, once a scale was set.
    #[serde(default)]
    pub scale: Option<qovery_dr_core::ServiceScale>,
}

/// A service.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServiceSim {
    /// Its name.
    pub name: String,
    /// Configuration as set (applies at the next deployment).
    pub desired: ServiceConfig,
    /// Configuration running (from the last successful deployment).
    pub running: Option<ServiceConfig>,
    /// Environment variables as they were at the last successful deployment.
    pub running_env_vars: std::collections::BTreeMap<String, VarSim>,
    /// The last deployment request covering this service.
    pub last_deployment: Option<DeploymentId>,
    /// What it is (a container unless said otherwise).
    #[serde(default)]
    pub kind: qovery_dr_core::provider::ServiceKind,
}

/// A deployment request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeploymentSim {
    /// The environment.
    pub environment: EnvironmentId,
    /// What it does.
    pub kind: DeploymentKind,
    /// The services it covers (all for environment-wide requests).
    pub services: Vec<ServiceId>,
    /// When it was requested.
    #[serde(with = "super::persist::instant")]
    pub requested_at: Instant,
    /// When it starts (leaves the queue).
    #[serde(with = "super::persist::instant")]
    pub starts_at: Instant,
    /// When it ends.
    #[serde(with = "super::persist::instant")]
    pub ends_at: Instant,
    /// Whether it ends in error.
    pub fails: bool,
    /// Whether its effect was applied to the environment.
    pub settled: bool,
    /// The configuration of each covered service when requested.
    pub configs: BTreeMap<ServiceId, ServiceConfig>,
    /// The environment variables when requested.
    pub env_vars: BTreeMap<String, VarSim>,
}

/// Deploy or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeploymentKind {
    /// Deploy / redeploy.
    Deploy,
    /// Stop.
    Stop,
}

impl DeploymentSim {
    /// The phase at `now`, with the raw Qovery-like state.
    pub fn phase(&self, now: Instant) -> (DeploymentPhase, &'static str) {
        if now < self.starts_at {
            (DeploymentPhase::Queued, "QUEUED")
        } else if now < self.ends_at {
            match self.kind {
                DeploymentKind::Deploy => (DeploymentPhase::InProgress, "DEPLOYING"),
                DeploymentKind::Stop => (DeploymentPhase::InProgress, "STOPPING"),
            }
        } else {
            match (self.kind, self.fails) {
                (DeploymentKind::Deploy, false) => (DeploymentPhase::Deployed, "DEPLOYED"),
                (DeploymentKind::Deploy, true) => (DeploymentPhase::Failed, "DEPLOYMENT_ERROR"),
                (DeploymentKind::Stop, false) => (DeploymentPhase::Stopped, "STOPPED"),
                (DeploymentKind::Stop, true) => (DeploymentPhase::Failed, "STOP_ERROR"),
            }
        }
    }
}

/// An environment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EnvironmentSim {
    /// Its name (unique per project).
    pub name: String,
    /// The cluster it runs on.
    pub cluster: ClusterId,
    /// Its project.
    pub project: ProjectId,
    /// Environment-scoped variables.
    pub variables: BTreeMap<String, VarSim>,
    /// Services by id.
    pub services: BTreeMap<ServiceId, ServiceSim>,
    /// Whether it serves traffic (last deploy succeeded and no stop since).
    pub running: bool,
    /// The last deployment request.
    pub last_deployment: Option<DeploymentId>,
    /// Make the next N deployments fail.
    pub fail_next_deployments: u32,
}

/// The condition of a database node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NodeCondition {
    /// Up and reachable.
    Up,
    /// Crashed: unreachable and accepting nothing.
    Down,
    /// Unreachable from the orchestrator, but still serving local clients
    /// (a network partition: the dangerous case).
    Partitioned,
}

/// A database node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NodeSim {
    /// Up, down, partitioned.
    pub condition: NodeCondition,
    /// Whether it is a primary (else it replays from the other node).
    pub is_primary: bool,
    /// Whether writes are refused by a fence.
    pub fenced: bool,
    /// Its WAL position at `history`'s last point (primaries), or replayed position (standbys).
    pub lsn: Lsn,
    /// (time, lsn) checkpoints while primary, to know the position at a past time.
    #[serde(with = "super::persist::history")]
    pub history: Vec<(Instant, Lsn)>,
    /// When `lsn` was last brought up to date.
    #[serde(with = "super::persist::instant")]
    pub updated_at: Instant,
    /// The newest heartbeat present on this node (sequence, wall time).
    pub last_heartbeat: Option<(u64, Timestamp)>,
    /// Failover epochs recorded on this node (the `qovery_dr.failover_epoch` rows).
    #[serde(default)]
    pub epochs: Vec<qovery_dr_core::FailoverEpoch>,
}

impl NodeSim {
    /// Whether clients can write to it now.
    pub fn writable(&self) -> bool {
        self.is_primary && !self.fenced && self.condition != NodeCondition::Down
    }

    /// The position this node had at time `t` (from its history).
    pub fn lsn_at(&self, t: Instant) -> Lsn {
        let mut at = Lsn::ZERO;
        for w in self.history.windows(2) {
            let ((t0, l0), (t1, l1)) = (w[0], w[1]);
            if t < t0 {
                return at;
            }
            if t <= t1 {
                let span = t1.duration_since(t0).as_secs_f64();
                if span == 0.0 || l1 == l0 {
                    return l0;
                }
                let frac = t.duration_since(t0).as_secs_f64() / span;
                return l0.advance((l1.bytes_since(l0) as f64 * frac) as u64);
            }
            at = l1;
        }
        match self.history.last() {
            Some((t_last, l_last)) if t >= *t_last => *l_last,
            Some(_) => at,
            None => self.lsn,
        }
    }
}

/// The replication link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinkSim {
    /// Streaming.
    Up,
    /// Receiver down.
    Down,
    /// Diverged (timeline fork).
    Broken,
}

/// A replicated database pair: node `a` is the original primary, `b` the standby.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatabaseSim {
    /// Replication mode.
    pub mode: ReplicationMode,
    /// The original primary.
    pub a: NodeSim,
    /// The original standby.
    pub b: NodeSim,
    /// Whether roles are reversed (after re-protection for failback: `b` primary, `a` standby).
    pub reversed: bool,
    /// The link.
    pub link: LinkSim,
    /// Replication delay when streaming.
    pub lag: Duration,
    /// Client write workload on the writable primary, in bytes per second.
    pub write_rate: u64,
    /// Heartbeats written on `a`: (sequence, wall time, lsn after the write).
    pub heartbeats_on_a: Vec<(u64, Timestamp, Lsn)>,
    /// Heartbeats written on `b`.
    pub heartbeats_on_b: Vec<(u64, Timestamp, Lsn)>,
    /// Next heartbeat sequence.
    pub next_heartbeat: u64,
    /// For the dump strategy: a dump every this long since `created_at`.
    pub dump_every: Option<Duration>,
    /// For the dump strategy: whether each dump's restore is verified as it is taken
    /// (readiness then sees a verified restore as old as the last dump).
    #[serde(default = "verified_by_default")]
    pub restores_verified: bool,
    /// For the dump strategy: a failed dump or restore check, as the provider records it.
    #[serde(default)]
    pub backup_failure: Option<qovery_dr_core::provider::BackupFailure>,
    /// When the database was created in the world.
    #[serde(with = "super::persist::instant")]
    pub created_at: Instant,
    /// Sequences to sync after a logical promotion.
    pub sequences: u32,
    /// Whether post-promotion fix-ups ran.
    pub fixed_up: bool,
}

/// A registry: tags and the digests they point to.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RegistrySim {
    /// (repository, tag) → digest.
    #[serde(with = "super::persist::pairs")]
    pub tags: BTreeMap<(String, String), Digest>,
    /// Image size by digest (sum of its blobs).
    pub sizes: BTreeMap<Digest, u64>,
}

/// Where a DNS target's health comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HealthSource {
    /// Fixed.
    Fixed(TargetHealth),
    /// Healthy iff this environment serves (deployed, running, cluster up).
    Environment(EnvironmentId),
    /// Alternates healthy/unhealthy every `period`, starting healthy at `since`.
    Flapping {
        /// Half-period.
        period: Duration,
        /// Start.
        #[serde(with = "super::persist::instant")]
        since: Instant,
    },
}

/// A DNS record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecordSim {
    /// Where it points.
    pub target: DnsTarget,
    /// Its TTL.
    pub ttl: Duration,
}

/// A DNS change.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChangeSim {
    /// When it is in sync.
    #[serde(with = "super::persist::instant")]
    pub in_sync_at: Instant,
}

/// A cluster being started: `Deploying` until `ready_at`, then `Running`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterStart {
    /// When it is up.
    #[serde(with = "super::persist::instant")]
    pub ready_at: Instant,
}

/// The whole state.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Clusters.
    pub clusters: BTreeMap<ClusterId, ClusterState>,
    /// Clusters being started.
    #[serde(default)]
    pub cluster_starts: BTreeMap<ClusterId, ClusterStart>,
    /// Environments.
    pub environments: BTreeMap<EnvironmentId, EnvironmentSim>,
    /// Deployment requests.
    pub deployments: BTreeMap<DeploymentId, DeploymentSim>,
    /// Databases.
    pub databases: BTreeMap<DatabaseId, DatabaseSim>,
    /// Registries by host.
    pub registries: BTreeMap<String, RegistrySim>,
    /// DNS records.
    pub records: BTreeMap<DnsRecordId, RecordSim>,
    /// DNS changes.
    pub changes: BTreeMap<ChangeId, ChangeSim>,
    /// Failover epochs published beside records (their `_qdr-epoch` TXT records).
    #[serde(default)]
    pub epochs: BTreeMap<DnsRecordId, u64>,
    /// Target health sources.
    pub health: BTreeMap<DnsTarget, HealthSource>,
    /// Counter for generated ids.
    pub next_id: u64,
}

fn verified_by_default() -> bool {
    true
}
