//! [`RdsReplicationManager`]: an RDS for PostgreSQL primary and its read replica.

use qovery_dr_core::provider::{
    CatchUp, FenceKind, FenceOutcome, FixupReport, Heartbeat, LinkState, Node, PromoteOutcome, PromotionState,
    ReplicationCapabilities, ReplicationManager, ReplicationMode, ReplicationStatus, ReprotectReport, Writability,
};
use qovery_dr_core::{DatabaseId, ErrorKind, Lsn, ProviderError, ProviderResult, async_trait};

use super::api::{PROVIDER, RdsApi};
use super::config::{RdsConfig, RdsFence};
use super::fence::{self, Side, Timing};
use crate::postgres::PostgresReplicationManager;

/// An RDS for PostgreSQL primary with a read replica (in another region or the same):
/// status from the RDS API combined with SQL facts, the fence RDS allows, promotion with
/// `PromoteReadReplica`. Or, with [`RdsConfig::aurora`], the writer and a reader of one
/// Aurora cluster, the reader made the writer with `FailoverDBCluster` (see below).
///
/// - **Status**: `DescribeDBInstances` of the replica (its state, its source, its `read
///   replication` status info) decides whether the link is down, broken or gone (promoted);
///   LSNs, bytes and the heartbeat-based lag come over SQL when the endpoints answer (the
///   API's `ReplicaLag` is a CloudWatch metric, not read here). When SQL does not answer,
///   the API's view is reported with the lag unknown.
/// - **Fence**: [`RdsFence::Logins`] over SQL (RDS has no `ALTER SYSTEM`, and the server
///   cannot be stopped from SQL), or [`RdsFence::ParameterGroup`]; both verified.
/// - **Catch-up** over SQL, as a physical PostgreSQL standby (RDS read replicas stream WAL).
/// - **Promotion**: `PromoteReadReplica`, then polled until the instance is `available`
///   without a source and a fresh SQL session is out of recovery. A lost answer to the
///   promotion is not an error by itself: the polling decides.
///
/// What RDS does not let it do: re-protection (an RDS instance cannot become a replica of
/// another; a failback needs a new read replica of the promoted instance, created with
/// `CreateDBInstanceReadReplica`, which takes as long as a copy of the data), a fence that
/// holds against a client asking for read-write without the logins fence, and reading
/// `ReplicaLag` (CloudWatch).
///
/// **Aurora** (the cross-AZ level; a global database across regions is not done here):
/// the status comes from `DescribeDBClusters` (is the reader still a member, is it the
/// writer, is the cluster failing over) and the reader's instance state, with SQL facts
/// as above when they answer. The cluster's instances share one storage volume, so every
/// committed write is on the reader's side: the catch-up checks that the reader is an
/// available member and has nothing to wait for. The promotion is `FailoverDBCluster`
/// with the reader as target, polled until the cluster is `available`, the reader is its
/// writer and a fresh SQL session on it is out of recovery; Aurora turns the old writer
/// into a reader of the same volume, so re-protection has nothing to do (`already`) once
/// that is seen. Logins revoked by the logins fence are the cluster's (roles live in the
/// shared volume): the post-promotion fix-ups give them back on the new writer.
#[derive(Debug)]
pub struct RdsReplicationManager {
    pub(super) config: RdsConfig,
    pub(super) primary_api: RdsApi,
    pub(super) replica_api: RdsApi,
    pub(super) sql: PostgresReplicationManager,
}

pub(super) fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

impl RdsReplicationManager {
    /// With the standard AWS credential chain and configuration.
    pub async fn from_env(config: RdsConfig) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk, config)
    }

    /// With an AWS configuration you loaded (credentials, retries, timeouts); each
    /// instance's region is its own.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, config: RdsConfig) -> Self {
        let url = config.endpoint_url.as_deref();
        let primary_api = RdsApi::new(sdk, &config.primary.region, url);
        let replica_api = RdsApi::new(sdk, &config.replica.region, url);
        let sql = PostgresReplicationManager::physical(
            config.database.clone(),
            config.primary.sql.clone(),
            config.replica.sql.clone(),
        )
        .with_fence(FenceKind::Logins);
        Self { config, primary_api, replica_api, sql }
    }

    /// The same manager with the PostgreSQL manager's options (heartbeat schema, …) set
    /// on its SQL side.
    #[must_use]
    pub fn with_sql(
        mut self,
        configure: impl FnOnce(PostgresReplicationManager) -> PostgresReplicationManager,
    ) -> Self {
        self.sql = configure(self.sql);
        self
    }

    pub(super) fn check(&self, database: &DatabaseId, op: &str) -> ProviderResult<()> {
        if database == &self.config.database {
            Ok(())
        } else {
            Err(err(ErrorKind::NotFound, op, format!("this manager manages {}, not {database}", self.config.database)))
        }
    }

    /// Whether a fresh session on the replica is out of recovery (`None`: unreachable).
    pub(super) async fn replica_writable(&self, op: &str) -> Option<bool> {
        let c = self.config.replica.sql.connect(op).await.ok()?;
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await.ok()?;
        row.try_get::<_, bool>(0).ok().map(|recovery| !recovery)
    }

    /// Whether the API shows the promotion complete: `Err` says what it shows instead.
    async fn api_shows_promoted(&self) -> ProviderResult<Result<(), String>> {
        let standby = &self.config.replica.identifier;
        if let Some(cluster) = self.config.cluster() {
            let c = self.primary_api.describe_cluster(cluster).await?;
            return Ok(match c.is_writer(standby) {
                Some(true) if c.status == "available" => Ok(()),
                Some(true) => Err(format!("{standby} is the writer, the cluster is {}", c.status)),
                Some(false) => Err(format!("{standby} is still a reader, the cluster is {}", c.status)),
                None => Err(format!("{standby} is not a member of cluster {cluster}")),
            });
        }
        let f = self.replica_api.describe(standby).await?;
        Ok(match f.source {
            None if f.status == "available" => Ok(()),
            None => Err(f.status),
            Some(source) => Err(format!("{} (still a replica of {source})", f.status)),
        })
    }

    /// Polls until the API shows the promotion complete and a fresh SQL session on the
    /// standby is out of recovery, at most the promotion timeout.
    pub(super) async fn wait_promoted(&self, op: &str) -> ProviderResult<()> {
        let id = &self.config.replica.identifier;
        let deadline = tokio::time::Instant::now() + self.config.promote_timeout;
        let mut last;
        loop {
            match self.api_shows_promoted().await {
                Ok(Ok(())) => {
                    if self.replica_writable(op).await == Some(true) {
                        return Ok(());
                    }
                    last = "available, but a new SQL session is still in recovery (or cannot connect)".into();
                }
                Ok(Err(seen)) => last = seen,
                // Reads are retried until the deadline; what failed is reported then.
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::Timeout,
                    op,
                    format!(
                        "{id} was asked to promote but is not a writable primary after {:?}; last seen: {last}",
                        self.config.promote_timeout
                    ),
                ));
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

#[async_trait]
impl ReplicationManager for RdsReplicationManager {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> ReplicationCapabilities {
        ReplicationCapabilities::default()
            .with_physical(true)
            .with_fencing(true)
            .with_heartbeat(true)
            .with_reprotect(self.config.cluster().is_some())
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        use qovery_dr_core::stability::catalogue;
        let database = self.config.database.as_str();
        match self.config.cluster() {
            Some(_) => catalogue::aurora(database, &self.config.replica.region),
            None => catalogue::rds_replica(database, &self.config.primary.region, &self.config.replica.region),
        }
    }

    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        const OP: &str = "status";
        self.check(database, OP)?;
        let (api_link, promoted) = match self.config.cluster() {
            Some(cluster) => self.aurora_link(cluster).await?,
            None => {
                let facts = self.replica_api.describe(&self.config.replica.identifier).await?;
                (facts.link(), facts.source.is_none())
            }
        };
        match self.sql.status(database).await {
            Ok(mut s) => {
                if let Some(link) = api_link {
                    s.link = link;
                }
                s.standby_promoted = s.standby_promoted || promoted;
                Ok(s)
            }
            // SQL does not answer: what the API says, the lag unknown.
            Err(e) => {
                tracing::warn!(error = %e, "RDS status without SQL facts");
                let link = api_link.unwrap_or(LinkState::Streaming);
                let mut s = ReplicationStatus::new(database.clone(), ReplicationMode::Physical, link);
                s.standby_promoted = promoted;
                Ok(s)
            }
        }
    }

    async fn primary_writability(&self, database: &DatabaseId) -> ProviderResult<Writability> {
        self.sql.primary_writability(database).await
    }

    async fn fence_primary(&self, database: &DatabaseId) -> ProviderResult<FenceOutcome> {
        self.check(database, "fence_primary")?;
        match &self.config.fence {
            RdsFence::Logins => self.sql.fence_primary(database).await,
            RdsFence::ParameterGroup { name } => {
                let (primary, replica) = (&self.config.primary, &self.config.replica);
                fence::by_parameter_group(
                    Side { api: &self.primary_api, identifier: &primary.identifier, sql: &primary.sql },
                    Side { api: &self.replica_api, identifier: &replica.identifier, sql: &replica.sql },
                    name,
                    Timing { timeout: self.config.fence_timeout, poll: self.config.poll_interval },
                )
                .await
            }
        }
    }

    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn> {
        match self.config.cluster() {
            Some(cluster) => {
                self.check(database, "wait_for_catch_up")?;
                self.aurora_catch_up(cluster, request).await
            }
            None => self.sql.wait_for_catch_up(database, request).await,
        }
    }

    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        const OP: &str = "promote_standby";
        self.check(database, OP)?;
        if let Some(cluster) = self.config.cluster() {
            return self.aurora_promote(cluster).await;
        }
        let id = &self.config.replica.identifier;
        let facts = self.replica_api.describe(id).await?;
        if facts.source.is_none() {
            self.wait_promoted(OP).await?;
            return Ok(PromoteOutcome::AlreadyPrimary);
        }
        match self.replica_api.promote(id).await {
            Ok(()) => {}
            // The request may have been applied: the polling below tells.
            Err(e) if e.kind() == ErrorKind::Indeterminate => {
                tracing::warn!(error = %e, "no answer to PromoteReadReplica; polling the instance to see whether it applied");
            }
            Err(e) => return Err(e),
        }
        self.wait_promoted(OP).await?;
        Ok(PromoteOutcome::Promoted)
    }

    async fn promotion_state(&self, database: &DatabaseId) -> ProviderResult<PromotionState> {
        self.sql.promotion_state(database).await
    }

    async fn post_promotion_fixups(
        &self,
        database: &DatabaseId,
        state: &PromotionState,
    ) -> ProviderResult<FixupReport> {
        self.sql.post_promotion_fixups(database, state).await
    }

    async fn write_heartbeat(&self, database: &DatabaseId) -> ProviderResult<Heartbeat> {
        self.sql.write_heartbeat(database).await
    }

    async fn last_heartbeat(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<Heartbeat>> {
        self.sql.last_heartbeat(database, node).await
    }

    /// In the database, over SQL, as the PostgreSQL manager keeps it.
    async fn failover_epoch(
        &self,
        database: &DatabaseId,
        node: Node,
    ) -> ProviderResult<Option<qovery_dr_core::FailoverEpoch>> {
        self.sql.failover_epoch(database, node).await
    }

    async fn record_failover_epoch(
        &self,
        database: &DatabaseId,
        epoch: &qovery_dr_core::FailoverEpoch,
    ) -> ProviderResult<()> {
        self.sql.record_failover_epoch(database, epoch).await
    }

    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        self.check(database, OP)?;
        if let Some(cluster) = self.config.cluster() {
            return self.aurora_reprotect(cluster).await;
        }
        Err(err(
            ErrorKind::NotSupported,
            OP,
            format!(
                "RDS cannot make {} a replica of {}: create a new read replica of the promoted instance in {} \
                 (CreateDBInstanceReadReplica) and point the plan at it",
                self.config.primary.identifier, self.config.replica.identifier, self.config.primary.region
            ),
        ))
    }
}
