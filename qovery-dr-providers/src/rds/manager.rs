//! [`RdsReplicationManager`]: an RDS for PostgreSQL primary and its read replica.

use std::time::Duration;

use qovery_dr_core::provider::{
    CatchUp, FenceKind, FenceOutcome, FixupReport, Heartbeat, LinkState, Node, PromoteOutcome, PromotionState,
    ReplicationCapabilities, ReplicationManager, ReplicationMode, ReplicationStatus, ReprotectReport, Writability,
};
use qovery_dr_core::{DatabaseId, ErrorKind, Lsn, ProviderError, ProviderResult, async_trait};

use super::api::{PROVIDER, RdsApi};
use super::config::{RdsConfig, RdsFence};
use crate::postgres::PostgresReplicationManager;
use crate::postgres::endpoint::pg_error;

/// An RDS for PostgreSQL primary with a read replica (in another region or the same):
/// status from the RDS API combined with SQL facts, the fence RDS allows, promotion with
/// `PromoteReadReplica`.
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
#[derive(Debug)]
pub struct RdsReplicationManager {
    config: RdsConfig,
    primary_api: RdsApi,
    replica_api: RdsApi,
    sql: PostgresReplicationManager,
}

fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
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

    fn check(&self, database: &DatabaseId, op: &str) -> ProviderResult<()> {
        if database == &self.config.database {
            Ok(())
        } else {
            Err(err(ErrorKind::NotFound, op, format!("this manager manages {}, not {database}", self.config.database)))
        }
    }

    /// Whether a fresh session on the replica is out of recovery (`None`: unreachable).
    async fn replica_writable(&self, op: &str) -> Option<bool> {
        let c = self.config.replica.sql.connect(op).await.ok()?;
        let row = c.query_one("SELECT pg_is_in_recovery()", &[]).await.ok()?;
        row.try_get::<_, bool>(0).ok().map(|recovery| !recovery)
    }

    /// The parameter-group fence: the group changed, other sessions ended, verified.
    async fn fence_by_parameter_group(&self, group: &str) -> ProviderResult<FenceOutcome> {
        const OP: &str = "fence_primary";
        let sql = &self.config.primary.sql;
        async fn read_only(c: tokio_postgres::Client, label: &str) -> ProviderResult<bool> {
            let row = c
                .query_one("SELECT current_setting('default_transaction_read_only')", &[])
                .await
                .map_err(|e| pg_error("fence_primary", label, e))?;
            Ok(row.try_get::<_, String>(0).map(|v| v == "on").unwrap_or(false))
        }
        let label = sql.label();
        let first = sql.connect(OP).await.map_err(|e| {
            err(e.kind(), OP, format!("{} cannot be reached, so it is NOT fenced: {}", sql.label(), e.message()))
        })?;
        if read_only(first, &label).await? {
            return Ok(FenceOutcome::AlreadyFenced);
        }
        self.primary_api.set_parameter(group, "default_transaction_read_only", "1").await?;
        // RDS applies a dynamic parameter within seconds; new sessions read it.
        let deadline = tokio::time::Instant::now() + self.config.fence_timeout;
        loop {
            if read_only(sql.connect(OP).await?, &label).await? {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::Timeout,
                    OP,
                    format!(
                        "parameter group {group} says default_transaction_read_only = 1, but a new session on {} still \
                         writes after {:?}: is {} using that group? It is NOT fenced",
                        sql.label(),
                        self.config.fence_timeout,
                        self.config.primary.identifier
                    ),
                ));
            }
            tokio::time::sleep(self.config.poll_interval.min(Duration::from_secs(2))).await;
        }
        // Sessions opened before the change keep writing: end them.
        let c = sql.connect(OP).await?;
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND pid <> pg_backend_pid() AND usename <> current_user AND usename NOT LIKE 'rds%'",
            &[],
        )
        .await
        .map_err(|e| pg_error(OP, &sql.label(), e))?;
        Ok(FenceOutcome::Fenced)
    }

    async fn wait_promoted(&self, op: &str) -> ProviderResult<()> {
        let id = &self.config.replica.identifier;
        let deadline = tokio::time::Instant::now() + self.config.promote_timeout;
        let mut last;
        loop {
            match self.replica_api.describe(id).await {
                Ok(f) if f.status == "available" && f.source.is_none() => {
                    if self.replica_writable(op).await == Some(true) {
                        return Ok(());
                    }
                    last = "available, but a new SQL session is still in recovery (or cannot connect)".into();
                }
                Ok(f) => {
                    last = format!(
                        "{} {}",
                        f.status,
                        f.source.map_or_else(String::new, |s| format!("(still a replica of {s})"))
                    );
                }
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
        ReplicationCapabilities::default().with_physical(true).with_fencing(true).with_heartbeat(true)
    }

    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        const OP: &str = "status";
        self.check(database, OP)?;
        let facts = self.replica_api.describe(&self.config.replica.identifier).await?;
        let api_link = facts.link();
        let promoted = facts.source.is_none();
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
            RdsFence::ParameterGroup { name } => self.fence_by_parameter_group(name).await,
        }
    }

    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn> {
        self.sql.wait_for_catch_up(database, request).await
    }

    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        const OP: &str = "promote_standby";
        self.check(database, OP)?;
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

    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        self.check(database, OP)?;
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
