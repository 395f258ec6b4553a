//! Which provider operations each kind of runbook step calls.

use crate::engine::StepKind;
use crate::model::DnsRecordId;

/// The provider a step calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Cluster,
    /// Every database pair's replication manager.
    Replication,
    Registry,
    Dns(DnsRecordId),
    State,
}

/// The operations `kind` calls, each with its provider.
pub(crate) fn operations(kind: &StepKind) -> Vec<(Role, &'static str)> {
    use Role::*;
    match kind {
        StepKind::Preflight => {
            vec![(Cluster, "cluster_status"), (Cluster, "environment_status"), (Replication, "status")]
        }
        StepKind::Approve | StepKind::DrainTtl { .. } | StepKind::Custom { .. } => Vec::new(),
        StepKind::AcquireLock => vec![(State, "acquire")],
        StepKind::Record => vec![(State, "append")],
        StepKind::VerifyDatabaseConnection { .. } => vec![(Cluster, "list_variables"), (Replication, "status")],
        StepKind::StartCluster { .. } => vec![(Cluster, "start_cluster"), (Cluster, "cluster_status")],
        StepKind::VerifyDrConfiguration { .. } => {
            vec![(Cluster, "environment_status"), (Cluster, "list_variables"), (Cluster, "list_services")]
        }
        StepKind::Reprotect => vec![(Replication, "reprotect")],
        StepKind::FencePrimary => vec![(Replication, "fence_primary")],
        StepKind::CatchUp => vec![(Replication, "wait_for_catch_up")],
        StepKind::PromoteDatabase => vec![(Replication, "promote_standby"), (Replication, "promotion_state")],
        StepKind::PostPromotionFixups => vec![(Replication, "post_promotion_fixups")],
        // The variable is read best effort: only the databases can stop this step.
        StepKind::RecordEpoch => vec![(Replication, "failover_epoch"), (Replication, "record_failover_epoch")],
        StepKind::MeasureReplicationLag => vec![(Replication, "write_heartbeat"), (Replication, "last_heartbeat")],
        StepKind::CloneEnvironment { .. } => vec![(Cluster, "clone_environment")],
        StepKind::DeleteClone { .. } => vec![(Cluster, "delete_environment")],
        StepKind::SyncImages { .. } | StepKind::SyncImage { .. } => vec![(Registry, "copy_all")],
        StepKind::ApplyParameters { .. } => vec![(Cluster, "set_variable")],
        StepKind::SetServiceImage { .. } => vec![(Cluster, "set_service_image")],
        StepKind::SetServiceScale { .. } => vec![(Cluster, "set_service_scale")],
        StepKind::DeployServices { .. } | StepKind::DeployService { .. } => {
            vec![(Cluster, "deploy_services"), (Cluster, "deployment_status")]
        }
        StepKind::DeployEnvironment { .. } => vec![(Cluster, "deploy_environment"), (Cluster, "deployment_status")],
        StepKind::StopEnvironment { .. } => vec![(Cluster, "stop_environment")],
        StepKind::VerifyEnvironment { .. } => vec![(Cluster, "environment_status")],
        StepKind::VerifyTargetHealth { record, .. } => vec![(Dns(record.clone()), "target_health")],
        StepKind::SwitchDns { record, .. } => {
            vec![(Dns(record.clone()), "switch"), (Dns(record.clone()), "change_status")]
        }
        // The DNS step asks the authoritative servers themselves (data plane).
        StepKind::VerifyDns { .. } => Vec::new(),
    }
}
