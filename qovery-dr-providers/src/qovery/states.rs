//! Qovery's 29 deployment states, normalised.
//!
//! In progress: BUILDING, DEPLOYING, STOPPING, RESTARTING, DELETING,
//! CANCELING, EXECUTING, QUEUED, every `*_QUEUED` and every `WAITING_*`.
//! Success: DEPLOYED, STOPPED, RESTARTED, DELETED, CANCELED.
//! Error: BUILD_ERROR, DEPLOYMENT_ERROR, STOP_ERROR, RESTART_ERROR, DELETE_ERROR.
//!
//! The ambiguous three, decided:
//! - READY: built and ready but never deployed, or deployed then reset — not
//!   running: `Unknown`, so a waiter keeps waiting and readiness does not
//!   count it as serving.
//! - RECAP: a summary state between two steps of a pipeline: in progress.
//! - UNAVAILABLE: the status cannot be read right now: `Unknown`, never a
//!   success and never a failure by itself.

use qovery_dr_core::provider::{ClusterState, DeploymentPhase};

/// The phase of a Qovery deployment state.
pub fn phase(state: &str) -> DeploymentPhase {
    match state {
        "DEPLOYED" | "RESTARTED" => DeploymentPhase::Deployed,
        "STOPPED" | "DELETED" => DeploymentPhase::Stopped,
        "CANCELED" => DeploymentPhase::Canceled,
        "BUILD_ERROR" | "DEPLOYMENT_ERROR" | "STOP_ERROR" | "RESTART_ERROR" | "DELETE_ERROR" => DeploymentPhase::Failed,
        "QUEUED" => DeploymentPhase::Queued,
        s if s.ends_with("_QUEUED") => DeploymentPhase::Queued,
        "BUILDING" | "DEPLOYING" | "STOPPING" | "RESTARTING" | "DELETING" | "CANCELING" | "EXECUTING" | "RECAP" => {
            DeploymentPhase::InProgress
        }
        s if s.starts_with("WAITING_") => DeploymentPhase::InProgress,
        _ => DeploymentPhase::Unknown,
    }
}

/// A cluster's state from its deployment state.
pub fn cluster_state(state: &str) -> ClusterState {
    match phase(state) {
        DeploymentPhase::Deployed => ClusterState::Running,
        DeploymentPhase::Queued | DeploymentPhase::InProgress => ClusterState::Deploying,
        DeploymentPhase::Stopped | DeploymentPhase::Canceled => ClusterState::Stopped,
        DeploymentPhase::Failed => ClusterState::Error,
        _ => ClusterState::Unknown(state.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&str; 29] = [
        "BUILDING",
        "BUILD_ERROR",
        "CANCELED",
        "CANCELING",
        "DELETED",
        "DELETE_ERROR",
        "DELETE_QUEUED",
        "DELETING",
        "DEPLOYED",
        "DEPLOYING",
        "DEPLOYMENT_ERROR",
        "DEPLOYMENT_QUEUED",
        "EXECUTING",
        "QUEUED",
        "READY",
        "RECAP",
        "RESTARTED",
        "RESTARTING",
        "RESTART_ERROR",
        "RESTART_QUEUED",
        "STOPPED",
        "STOPPING",
        "STOP_ERROR",
        "STOP_QUEUED",
        "UNAVAILABLE",
        "WAITING_DELETING",
        "WAITING_RESTARTING",
        "WAITING_RUNNING",
        "WAITING_STOPPING",
    ];

    #[test]
    fn every_state_is_classified() {
        let count = |p: DeploymentPhase| ALL.iter().filter(|s| phase(s) == p).count();
        assert_eq!(count(DeploymentPhase::Failed), 5);
        assert_eq!(
            count(DeploymentPhase::Deployed) + count(DeploymentPhase::Stopped) + count(DeploymentPhase::Canceled),
            5
        );
        assert_eq!(count(DeploymentPhase::Unknown), 2, "READY and UNAVAILABLE");
        assert_eq!(count(DeploymentPhase::Queued), 5);
        assert_eq!(count(DeploymentPhase::InProgress), 12);
        assert_eq!(phase("WAITING_SOMETHING_NEW"), DeploymentPhase::InProgress, "the WAITING_ family by prefix");
        assert_eq!(cluster_state("DEPLOYED"), ClusterState::Running);
        assert_eq!(cluster_state("DEPLOYMENT_ERROR"), ClusterState::Error);
    }
}
