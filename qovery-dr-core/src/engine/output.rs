//! What each kind of step leaves behind, typed.
//!
//! A step's output is journaled (as JSON, in [`JournalEvent::StepFinished`](super::JournalEvent::StepFinished))
//! when the step finishes, and read back when a later step, the safe state or the report
//! needs it: the fence's time and catch-up position for the promotion and the data-loss
//! figure, the drill clones' ids for the clean-up, the RPO evidence for the report.
//! Each step kind has one output type, decoded here and nowhere else; an output that does
//! not decode is an error naming the step, never a silent default.
//!
//! ```
//! use qovery_dr_core::engine::{OutputKind, StepOutput};
//! let json = serde_json::json!({ "final_lsn": "0/3000060", "replayed": "0/3000060" });
//! let out = OutputKind::CatchUp.decode(json).unwrap();
//! let StepOutput::CatchUp(c) = out else { unreachable!() };
//! assert_eq!(c.final_lsn.to_string(), "0/3000060");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    ChangeId, DatabaseId, DeploymentId, Digest, DnsTarget, EnvironmentId, ImageRef, Lsn, ServiceId, Timestamp,
};
use crate::provider::{Heartbeat, LinkState, PromoteOutcome, PromotionState, TargetHealth, Writability};

use super::runbook::StepKind;

/// What the preflight saw (the data-loss estimate of an unplanned run starts here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightOutput {
    /// Whether the primary accepted writes.
    pub primary: Writability,
    /// When it was observed (the engine's clock).
    pub observed_at: Timestamp,
    /// The replication link.
    pub link: LinkState,
    /// Bytes the standby was behind, if known.
    #[serde(default)]
    pub lag_bytes: Option<u64>,
    /// Replication lag in milliseconds, if known.
    #[serde(default)]
    pub lag_ms: Option<u64>,
    /// The newest heartbeat on the standby, if the manager writes heartbeats.
    #[serde(default)]
    pub standby_heartbeat: Option<Heartbeat>,
    /// The same for each of the site's additional databases, by id (empty for a site
    /// with one database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, PreflightOutput>,
}

/// Who approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalOutput {
    /// The approver (or `plan-policy`).
    pub approver: String,
}

/// Who took the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockOutput {
    /// The operator holding it.
    pub holder: String,
}

/// What the fence did to the old primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FenceOutput {
    /// Whether the old primary refuses writes (verified after fencing).
    pub fenced: bool,
    /// It was fenced already (a previous attempt).
    #[serde(default)]
    pub already: bool,
    /// When: the fence, or when the primary was found unreachable (the end of the
    /// data-loss window).
    pub at: Timestamp,
    /// Unplanned runs: the position the standby replayed in a short catch-up after the
    /// fence, proving zero loss.
    #[serde(default)]
    pub caught_up_to: Option<Lsn>,
    /// Why the fence was skipped (shown in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What was observed when the primary could not be fenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What the post-promotion fix-ups need, read once the primary was fenced (or found
    /// unreachable): journaled here so that a resumed run has it.
    #[serde(default, skip_serializing_if = "PromotionState::is_empty")]
    pub promotion: PromotionState,
    /// The same for each of the site's additional databases, by id (empty for a site
    /// with one database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, FenceOutput>,
}

/// The standby caught up with the fenced primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatchUpOutput {
    /// The fenced primary's final position.
    pub final_lsn: Lsn,
    /// What the standby replayed (at least `final_lsn`).
    pub replayed: Lsn,
    /// The same for each of the site's additional databases, by id (empty for a site
    /// with one database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, CatchUpOutput>,
}

/// The promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteOutput {
    /// Promoted now, or already primary.
    pub outcome: PromoteOutcome,
    /// When.
    pub at: Timestamp,
    /// The same for each of the site's additional databases, by id (empty for a site
    /// with one database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, PromoteOutput>,
}

/// The fix-ups after promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixupsOutput {
    /// Sequences advanced.
    pub sequences_synced: u32,
    /// Left for an operator.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The same for each of the site's additional databases, by id (empty for a site
    /// with one database).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, FixupsOutput>,
}

/// The failover epoch a run made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochOutput {
    /// The new epoch.
    pub epoch: u64,
    /// The newest one found before (in the databases and the environments' variable).
    pub previous: u64,
    /// The databases it was recorded in.
    pub recorded_in: Vec<DatabaseId>,
    /// Databases whose manager keeps no epoch (recorded nowhere there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_supported: Vec<DatabaseId>,
}

/// A data-loss figure and how it was obtained (the drill's lag measurement and the
/// `record` step of every mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpoOutput {
    /// The measured (or bounded) data loss in milliseconds; `None` when not measurable.
    #[serde(default)]
    pub rpo_ms: Option<u64>,
    /// How it was measured, or why it could not be.
    #[serde(default)]
    pub rpo_evidence: Option<String>,
}

/// A drill clone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneOutput {
    /// The clone's id.
    pub environment: EnvironmentId,
    /// Its name.
    pub name: String,
}

/// An image made present in the target registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncImageOutput {
    /// Whether it was copied (else it was there already).
    #[serde(default)]
    pub copied: bool,
    /// Its digest in the target registry.
    #[serde(default)]
    pub digest: Option<Digest>,
    /// Bytes copied.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Why nothing was done (shown in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One image of a [`SyncImagesOutput`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncedImage {
    /// The image, in the primary registry.
    pub image: ImageRef,
    /// Whether it was copied (else it was there already).
    #[serde(default)]
    pub copied: bool,
    /// Its digest in the target registry.
    pub digest: Digest,
    /// Bytes copied for it (a blob shared with an image before it in the batch counts there).
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// The images stage's batch: each image present in the target registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncImagesOutput {
    /// Each image, in the order of the step.
    #[serde(default)]
    pub images: Vec<SyncedImage>,
    /// Why nothing was done (shown in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The original primaries made standbys of the current ones again (a failback's
/// re-protection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReprotectOutput {
    /// What the replication manager did (method, whether it was needed, what it discarded).
    pub report: crate::provider::ReprotectReport,
    /// The link once the step was done waiting (`Streaming`, or `NotApplicable` for dumps).
    pub link: LinkState,
    /// The same for each of the site's additional databases, by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_databases: BTreeMap<DatabaseId, ReprotectOutput>,
}

/// An old primary environment stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopEnvironmentOutput {
    /// The stop deployment (`None`: it was stopped already, or could not be stopped).
    #[serde(default)]
    pub deployment: Option<DeploymentId>,
    /// Whether the environment is stopped now.
    pub stopped: bool,
    /// Why it was not stopped (a failover whose old site did not answer), shown in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The DR cluster running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartClusterOutput {
    /// Whether this step asked for the start (else the cluster was running already).
    pub started: bool,
    /// How long the cluster took to run, when started.
    #[serde(default)]
    pub waited_ms: Option<u64>,
}

/// A DR environment found serving the DR configuration (DNS-only failover).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrConfigurationOutput {
    /// Services checked (deployed, up to date, on the DR registry's images).
    pub services: usize,
    /// DR parameters found with their DR values.
    pub parameters: usize,
}

/// A drill clone's database parameters checked, and the DR database reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseConnectionOutput {
    /// The clone's variables that name the DR database (as the plan's DR parameters do).
    pub parameters: Vec<String>,
    /// What answered: the DR database's last heartbeat, as read through the replication
    /// manager (from the orchestrator, not from inside the cluster).
    pub reached: String,
    /// Why the check is partial, when it is (shown in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A service scaled to the DR site's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceScaleOutput {
    /// The service.
    pub service: ServiceId,
    /// The scale it has now.
    pub scale: crate::model::ServiceScale,
}

/// DR parameters written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParametersOutput {
    /// How many variables.
    pub variables: usize,
}

/// A service pointed at its DR image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceImageOutput {
    /// The service.
    pub service: ServiceId,
    /// The image it runs now.
    pub image: ImageRef,
}

/// A deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployOutput {
    /// The deployment requested (`None` when an earlier or another deployment already
    /// deployed the configuration).
    #[serde(default)]
    pub deployment: Option<DeploymentId>,
    /// How it was found deployed without a new request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<String>,
    /// Deployments of others waited for.
    #[serde(default)]
    pub waited_for_other_deployments: u32,
}

/// An environment verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyEnvironmentOutput {
    /// Services found deployed and up to date.
    pub services: usize,
}

/// A DNS target's health before the switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthOutput {
    /// What the DNS provider's checks said.
    pub health: TargetHealth,
    /// Why `unknown` was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Whether the authoritative servers were asked after a switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthoritativeCheck {
    /// Every authoritative server answered the new target.
    pub verified: bool,
    /// Why they were not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The servers asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// How long until the last one answered the new target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_servers_after_ms: Option<u64>,
}

/// A DNS switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchDnsOutput {
    /// The provider's change.
    pub change: ChangeId,
    /// When the provider said the change was in sync.
    pub provider_in_sync_at: Timestamp,
    /// When every check passed.
    pub in_sync_at: Timestamp,
    /// The authoritative servers' answers.
    pub authoritative: AuthoritativeCheck,
    /// The failover epoch published beside the record (`None`: the run made none, or
    /// the provider cannot publish one: see `epoch_note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// Why no epoch was published, when the run made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_note: Option<String>,
}

/// A record verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyDnsOutput {
    /// What it points at.
    pub target: DnsTarget,
}

/// A drill clone deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteCloneOutput {
    /// The clone deleted (`None`: none was found).
    #[serde(default)]
    pub deleted: Option<EnvironmentId>,
    /// It was gone already.
    #[serde(default)]
    pub already: bool,
}

/// A step kind's output. Serialized as the inner value (the step id and the runbook say
/// which kind it is).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum StepOutput {
    /// [`StepKind::Preflight`].
    Preflight(PreflightOutput),
    /// [`StepKind::Approve`].
    Approval(ApprovalOutput),
    /// [`StepKind::AcquireLock`].
    Lock(LockOutput),
    /// [`StepKind::FencePrimary`].
    Fence(FenceOutput),
    /// [`StepKind::CatchUp`].
    CatchUp(CatchUpOutput),
    /// [`StepKind::PromoteDatabase`].
    Promote(PromoteOutput),
    /// [`StepKind::PostPromotionFixups`].
    Fixups(FixupsOutput),
    /// [`StepKind::RecordEpoch`].
    Epoch(EpochOutput),
    /// [`StepKind::MeasureReplicationLag`] and [`StepKind::Record`].
    Rpo(RpoOutput),
    /// [`StepKind::CloneEnvironment`].
    Clone(CloneOutput),
    /// [`StepKind::SyncImages`].
    SyncImages(SyncImagesOutput),
    /// [`StepKind::StartCluster`].
    StartCluster(StartClusterOutput),
    /// [`StepKind::SetServiceScale`].
    ServiceScale(ServiceScaleOutput),
    /// [`StepKind::VerifyDatabaseConnection`].
    DatabaseConnection(DatabaseConnectionOutput),
    /// [`StepKind::Custom`].
    Custom(super::custom::CustomOutput),
    /// [`StepKind::VerifyDrConfiguration`].
    DrConfiguration(DrConfigurationOutput),
    /// [`StepKind::StopEnvironment`].
    StopEnvironment(StopEnvironmentOutput),
    /// [`StepKind::Reprotect`].
    Reprotect(ReprotectOutput),
    /// [`StepKind::SyncImage`].
    SyncImage(SyncImageOutput),
    /// [`StepKind::ApplyParameters`].
    Parameters(ParametersOutput),
    /// [`StepKind::SetServiceImage`].
    ServiceImage(ServiceImageOutput),
    /// The deploy kinds.
    Deploy(DeployOutput),
    /// [`StepKind::VerifyEnvironment`].
    VerifyEnvironment(VerifyEnvironmentOutput),
    /// [`StepKind::VerifyTargetHealth`].
    Health(HealthOutput),
    /// [`StepKind::SwitchDns`].
    SwitchDns(SwitchDnsOutput),
    /// [`StepKind::VerifyDns`].
    VerifyDns(VerifyDnsOutput),
    /// [`StepKind::DrainTtl`] (nothing to keep).
    Drained,
    /// [`StepKind::DeleteClone`].
    DeleteClone(DeleteCloneOutput),
}

impl StepOutput {
    /// The JSON journaled for it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            // A unit variant of an untagged enum serializes as null; journals hold `{}`.
            StepOutput::Drained => serde_json::Value::Object(serde_json::Map::new()),
            other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Whether the step succeeded without doing its work (its [`note`](Self::note) says why).
    pub fn skipped(&self) -> bool {
        match self {
            StepOutput::Fence(f) => f.skipped.is_some(),
            StepOutput::SyncImage(s) => s.skipped.is_some(),
            StepOutput::SyncImages(s) => s.skipped.is_some(),
            StepOutput::DatabaseConnection(s) => s.skipped.is_some(),
            StepOutput::StopEnvironment(s) => s.skipped.is_some(),
            _ => false,
        }
    }

    /// What the step says about what it did, for the report: why it did nothing, a custom
    /// step's summary, what a re-protection discarded.
    pub fn note(&self) -> Option<&str> {
        match self {
            StepOutput::Fence(f) => f.skipped.as_deref(),
            StepOutput::SyncImage(s) => s.skipped.as_deref(),
            StepOutput::SyncImages(s) => s.skipped.as_deref(),
            StepOutput::DatabaseConnection(s) => s.skipped.as_deref(),
            StepOutput::Custom(c) => Some(c.summary.as_str()),
            StepOutput::StopEnvironment(s) => s.skipped.as_deref(),
            // What the re-protection discarded is what an operator must read first.
            StepOutput::Reprotect(r) => r.report.notes.first().map(String::as_str),
            _ => None,
        }
    }
}

/// Which output type a step has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// [`PreflightOutput`].
    Preflight,
    /// [`ApprovalOutput`].
    Approval,
    /// [`LockOutput`].
    Lock,
    /// [`FenceOutput`].
    Fence,
    /// [`CatchUpOutput`].
    CatchUp,
    /// [`PromoteOutput`].
    Promote,
    /// [`FixupsOutput`].
    Fixups,
    /// [`EpochOutput`].
    Epoch,
    /// [`RpoOutput`].
    Rpo,
    /// [`CloneOutput`].
    Clone,
    /// [`SyncImagesOutput`].
    SyncImages,
    /// [`StartClusterOutput`].
    StartCluster,
    /// [`ServiceScaleOutput`].
    ServiceScale,
    /// [`DatabaseConnectionOutput`].
    DatabaseConnection,
    /// [`CustomOutput`](super::CustomOutput).
    Custom,
    /// [`DrConfigurationOutput`].
    DrConfiguration,
    /// [`StopEnvironmentOutput`].
    StopEnvironment,
    /// [`ReprotectOutput`].
    Reprotect,
    /// [`SyncImageOutput`].
    SyncImage,
    /// [`ParametersOutput`].
    Parameters,
    /// [`ServiceImageOutput`].
    ServiceImage,
    /// [`DeployOutput`].
    Deploy,
    /// [`VerifyEnvironmentOutput`].
    VerifyEnvironment,
    /// [`HealthOutput`].
    Health,
    /// [`SwitchDnsOutput`].
    SwitchDns,
    /// [`VerifyDnsOutput`].
    VerifyDns,
    /// No output.
    Drained,
    /// [`DeleteCloneOutput`].
    DeleteClone,
}

impl OutputKind {
    /// The output type of a step kind.
    pub fn of(kind: &StepKind) -> Self {
        match kind {
            StepKind::Preflight => Self::Preflight,
            StepKind::Approve => Self::Approval,
            StepKind::AcquireLock => Self::Lock,
            StepKind::FencePrimary => Self::Fence,
            StepKind::CatchUp => Self::CatchUp,
            StepKind::PromoteDatabase => Self::Promote,
            StepKind::PostPromotionFixups => Self::Fixups,
            StepKind::RecordEpoch => Self::Epoch,
            StepKind::MeasureReplicationLag | StepKind::Record => Self::Rpo,
            StepKind::CloneEnvironment { .. } => Self::Clone,
            StepKind::SyncImages { .. } => Self::SyncImages,
            StepKind::StartCluster { .. } => Self::StartCluster,
            StepKind::SetServiceScale { .. } => Self::ServiceScale,
            StepKind::VerifyDatabaseConnection { .. } => Self::DatabaseConnection,
            StepKind::Custom { .. } => Self::Custom,
            StepKind::VerifyDrConfiguration { .. } => Self::DrConfiguration,
            StepKind::StopEnvironment { .. } => Self::StopEnvironment,
            StepKind::Reprotect => Self::Reprotect,
            StepKind::SyncImage { .. } => Self::SyncImage,
            StepKind::ApplyParameters { .. } => Self::Parameters,
            StepKind::SetServiceImage { .. } => Self::ServiceImage,
            StepKind::DeployServices { .. } | StepKind::DeployService { .. } | StepKind::DeployEnvironment { .. } => {
                Self::Deploy
            }
            StepKind::VerifyEnvironment { .. } => Self::VerifyEnvironment,
            StepKind::VerifyTargetHealth { .. } => Self::Health,
            StepKind::SwitchDns { .. } => Self::SwitchDns,
            StepKind::VerifyDns { .. } => Self::VerifyDns,
            StepKind::DrainTtl { .. } => Self::Drained,
            StepKind::DeleteClone { .. } => Self::DeleteClone,
        }
    }

    /// The output type of a step from its id, for a step the runbook at hand does not
    /// list (a journal whose runbook could not be read back). Step ids are built by the
    /// runbook from their kind, so the prefix says it.
    pub fn for_step_id(id: &str) -> Option<Self> {
        let family = id.split_once(':').map_or(id, |(f, _)| f);
        Some(match family {
            "preflight" => Self::Preflight,
            "approval" => Self::Approval,
            "lock" => Self::Lock,
            "fence-primary" => Self::Fence,
            "catch-up" => Self::CatchUp,
            "promote-database" => Self::Promote,
            "post-promotion-fixups" => Self::Fixups,
            "failover-epoch" => Self::Epoch,
            "measure-replication-lag" | "record" => Self::Rpo,
            "clone" => Self::Clone,
            "sync-images" => Self::SyncImages,
            "start-cluster" => Self::StartCluster,
            "scale" => Self::ServiceScale,
            "check-database" => Self::DatabaseConnection,
            "custom" => Self::Custom,
            "verify-dr-config" => Self::DrConfiguration,
            "stop-old-primary" => Self::StopEnvironment,
            "reprotect" => Self::Reprotect,
            "sync" => Self::SyncImage,
            "parameters" => Self::Parameters,
            "image" => Self::ServiceImage,
            "deploy" => Self::Deploy,
            "verify" => Self::VerifyEnvironment,
            "health" => Self::Health,
            "dns" => Self::SwitchDns,
            "verify-dns" => Self::VerifyDns,
            "drain-ttl" => Self::Drained,
            "cleanup" => Self::DeleteClone,
            _ => return None,
        })
    }

    /// Decodes a journaled output of this kind.
    pub fn decode(self, value: serde_json::Value) -> Result<StepOutput, serde_json::Error> {
        use serde_json::from_value as de;
        Ok(match self {
            Self::Preflight => StepOutput::Preflight(de(value)?),
            Self::Approval => StepOutput::Approval(de(value)?),
            Self::Lock => StepOutput::Lock(de(value)?),
            Self::Fence => StepOutput::Fence(de(value)?),
            Self::CatchUp => StepOutput::CatchUp(de(value)?),
            Self::Promote => StepOutput::Promote(de(value)?),
            Self::Fixups => StepOutput::Fixups(de(value)?),
            Self::Epoch => StepOutput::Epoch(de(value)?),
            Self::Rpo => StepOutput::Rpo(de(value)?),
            Self::Clone => StepOutput::Clone(de(value)?),
            Self::SyncImages => StepOutput::SyncImages(de(value)?),
            Self::StartCluster => StepOutput::StartCluster(de(value)?),
            Self::ServiceScale => StepOutput::ServiceScale(de(value)?),
            Self::DatabaseConnection => StepOutput::DatabaseConnection(de(value)?),
            Self::Custom => StepOutput::Custom(de(value)?),
            Self::DrConfiguration => StepOutput::DrConfiguration(de(value)?),
            Self::StopEnvironment => StepOutput::StopEnvironment(de(value)?),
            Self::Reprotect => StepOutput::Reprotect(de(value)?),
            Self::SyncImage => StepOutput::SyncImage(de(value)?),
            Self::Parameters => StepOutput::Parameters(de(value)?),
            Self::ServiceImage => StepOutput::ServiceImage(de(value)?),
            Self::Deploy => StepOutput::Deploy(de(value)?),
            Self::VerifyEnvironment => StepOutput::VerifyEnvironment(de(value)?),
            Self::Health => StepOutput::Health(de(value)?),
            Self::SwitchDns => StepOutput::SwitchDns(de(value)?),
            Self::VerifyDns => StepOutput::VerifyDns(de(value)?),
            Self::Drained => StepOutput::Drained,
            Self::DeleteClone => StepOutput::DeleteClone(de(value)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_survives_the_journal() {
        let one = FenceOutput {
            fenced: false,
            already: false,
            at: Timestamp::from_unix_millis(5),
            caught_up_to: None,
            skipped: Some("unreachable: NOT fenced".into()),
            evidence: Some("gone".into()),
            promotion: PromotionState {
                sequence_floors: [("public.s".to_owned(), 7)].into(),
                replication_slots: vec!["dr_sub".into()],
                warnings: Vec::new(),
            },
            other_databases: BTreeMap::new(),
        };
        // One database: no `other_databases` key, as journals of earlier versions.
        assert!(StepOutput::Fence(one.clone()).to_json().get("other_databases").is_none());
        let mut two = one.clone();
        two.other_databases.insert(DatabaseId::new("billing"), FenceOutput { fenced: true, ..one.clone() });
        let fence = StepOutput::Fence(two);
        assert_eq!(OutputKind::Fence.decode(fence.to_json()).unwrap(), fence);
        assert_eq!(fence.note(), Some("unreachable: NOT fenced"));
        assert_eq!(OutputKind::Drained.decode(StepOutput::Drained.to_json()).unwrap(), StepOutput::Drained);
        let rpo = StepOutput::Rpo(RpoOutput { rpo_ms: None, rpo_evidence: Some("none".into()) });
        assert_eq!(OutputKind::Rpo.decode(rpo.to_json()).unwrap(), rpo);
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_default() {
        let e = OutputKind::Fence.decode(serde_json::json!({ "fenced": true })).unwrap_err();
        assert!(e.to_string().contains("missing field `at`"), "{e}");
        let e = OutputKind::CatchUp.decode(serde_json::json!({ "final_lsn": "nonsense" })).unwrap_err();
        assert!(e.to_string().contains("invalid LSN"), "{e}");
    }

    #[test]
    fn step_ids_name_their_output_kind() {
        assert_eq!(OutputKind::for_step_id("clone:env-1"), Some(OutputKind::Clone));
        assert_eq!(OutputKind::for_step_id("verify-dns:www.example.com"), Some(OutputKind::VerifyDns));
        assert_eq!(OutputKind::for_step_id("verify:env-1"), Some(OutputKind::VerifyEnvironment));
        assert_eq!(OutputKind::for_step_id("record"), Some(OutputKind::Rpo));
        assert_eq!(OutputKind::for_step_id("something-else"), None);
    }
}
