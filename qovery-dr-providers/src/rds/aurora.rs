//! What the manager does differently for two instances of one Aurora cluster.

use qovery_dr_core::provider::{CatchUp, LinkState, PromoteOutcome, ReprotectReport};
use qovery_dr_core::{ErrorKind, Lsn, ProviderResult};

use super::manager::{RdsReplicationManager, err};

/// Cluster states in which the reader still serves and the volume is shared as usual.
const SERVING: &[&str] = &["available", "backing-up", "modifying", "maintenance", "storage-optimization"];

impl RdsReplicationManager {
    /// The link as the cluster's API shows it (`None`: nothing against it, the SQL facts
    /// decide), and whether the reader is the writer now.
    pub(super) async fn aurora_link(&self, cluster: &str) -> ProviderResult<(Option<LinkState>, bool)> {
        let standby = &self.config.replica.identifier;
        let c = self.primary_api.describe_cluster(cluster).await?;
        match c.is_writer(standby) {
            None => Ok((Some(LinkState::Broken(format!("{standby} is not a member of cluster {cluster}"))), false)),
            Some(true) => Ok((Some(LinkState::NotApplicable), true)),
            Some(false) if c.status == "failing-over" => {
                Ok((Some(LinkState::Down(format!("cluster {cluster} is failing over"))), false))
            }
            Some(false) if !SERVING.contains(&c.status.as_str()) => {
                Ok((Some(LinkState::Down(format!("cluster {cluster} is {}", c.status))), false))
            }
            Some(false) => {
                let i = self.primary_api.describe(standby).await?;
                let link = (!SERVING.contains(&i.status.as_str()))
                    .then(|| LinkState::Down(format!("the reader {standby} is {}", i.status)));
                Ok((link, false))
            }
        }
    }

    /// Nothing to replay: the reader shares the cluster's volume. Checked: it is an
    /// available reader of the cluster, so a failover to it can succeed.
    pub(super) async fn aurora_catch_up(&self, cluster: &str, request: &CatchUp) -> ProviderResult<Lsn> {
        const OP: &str = "wait_for_catch_up";
        match self.aurora_link(cluster).await? {
            (None, false) => Ok(request.target),
            (_, true) => Ok(request.target),
            (Some(LinkState::Down(why) | LinkState::Broken(why)), false) => {
                Err(err(ErrorKind::Conflict, OP, format!("{} cannot take over: {why}", self.config.replica.identifier)))
            }
            (Some(_), false) => Ok(request.target),
        }
    }

    /// `FailoverDBCluster` to the reader, unless it is the writer already; a lost answer is
    /// resolved by polling, never by a second request.
    pub(super) async fn aurora_promote(&self, cluster: &str) -> ProviderResult<PromoteOutcome> {
        const OP: &str = "promote_standby";
        let standby = &self.config.replica.identifier;
        let c = self.primary_api.describe_cluster(cluster).await?;
        match c.is_writer(standby) {
            Some(true) => {
                self.wait_promoted(OP).await?;
                return Ok(PromoteOutcome::AlreadyPrimary);
            }
            None => {
                return Err(err(
                    ErrorKind::NotFound,
                    OP,
                    format!("{standby} is not a member of cluster {cluster}: check the plan's instance identifiers"),
                ));
            }
            Some(false) => {}
        }
        match self.primary_api.failover_cluster(cluster, standby).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Indeterminate => {
                tracing::warn!(error = %e, "no answer to FailoverDBCluster; polling the cluster to see whether it applied");
            }
            Err(e) => return Err(e),
        }
        self.wait_promoted(OP).await?;
        Ok(PromoteOutcome::Promoted)
    }

    /// After a failover Aurora made the old writer a reader of the same volume: nothing to
    /// do once that is seen.
    pub(super) async fn aurora_reprotect(&self, cluster: &str) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        let (old, new) = (&self.config.primary.identifier, &self.config.replica.identifier);
        let c = self.primary_api.describe_cluster(cluster).await?;
        match (c.is_writer(new), c.is_writer(old)) {
            (Some(true), Some(false)) => Ok(ReprotectReport::already("aurora")
                .with_note(format!("Aurora made {old} a reader of cluster {cluster} when {new} became its writer"))),
            (Some(true), None) => Err(err(
                ErrorKind::Conflict,
                OP,
                format!("{old} is no longer a member of cluster {cluster}: add a reader (CreateDBInstance) to it"),
            )),
            _ => Err(err(
                ErrorKind::Conflict,
                OP,
                format!("nothing to re-protect: {new} is not the writer of cluster {cluster} (it was not promoted)"),
            )),
        }
    }
}
