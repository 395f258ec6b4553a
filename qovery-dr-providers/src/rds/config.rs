//! What an [`RdsReplicationManager`](super::RdsReplicationManager) manages.

use std::time::Duration;

use qovery_dr_core::DatabaseId;

use crate::postgres::PgEndpoint;

/// One RDS for PostgreSQL instance: where its API is and how SQL reaches it.
#[derive(Debug, Clone)]
pub struct RdsInstance {
    /// Its AWS region (`eu-west-1`).
    pub region: String,
    /// Its `DBInstanceIdentifier`.
    pub identifier: String,
    /// Its SQL endpoint (the instance's endpoint address, or a proxy in front of it), with
    /// the orchestrator's role: status facts, the heartbeat, the logins fence, catch-up.
    pub sql: PgEndpoint,
}

impl RdsInstance {
    /// The instance `identifier` in `region`, reached over SQL at `sql`.
    pub fn new(region: impl Into<String>, identifier: impl Into<String>, sql: PgEndpoint) -> Self {
        Self { region: region.into(), identifier: identifier.into(), sql }
    }
}

/// How the old primary is fenced. RDS allows neither `ALTER SYSTEM` nor stopping the
/// server from SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RdsFence {
    /// Every login role but the orchestrator's and RDS's own loses its login and every
    /// other session is terminated, over SQL (as the PostgreSQL manager's `logins` fence;
    /// needs a role with `CREATEROLE`, e.g. the master user).
    Logins,
    /// `default_transaction_read_only = 1` set in the primary's DB parameter group
    /// (`ModifyDBParameterGroup`, applied immediately; the instance must use that custom
    /// group), other sessions terminated, then verified in a fresh session. As with
    /// PostgreSQL's `read-only` fence, a client that asks for a read-write transaction
    /// can still write.
    ParameterGroup {
        /// The DB parameter group the primary uses.
        name: String,
    },
}

/// How the two instances of an [`RdsConfig`] are related.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RdsTopology {
    /// The standby is a read replica of the primary (`CreateDBInstanceReadReplica`), in
    /// any region; promoted with `PromoteReadReplica`.
    ReadReplica,
    /// Both are instances of one Aurora PostgreSQL cluster (the cross-AZ level: the
    /// standby is a reader in another availability zone); the standby becomes the writer
    /// with `FailoverDBCluster`.
    AuroraCluster {
        /// The cluster's `DBClusterIdentifier`.
        identifier: String,
    },
}

/// A database whose primary is an RDS instance with a (cross-region) read replica, or
/// the writer of an Aurora cluster with a reader in another availability zone.
///
/// ```
/// use qovery_dr_providers::postgres::PgEndpoint;
/// use qovery_dr_providers::rds::{RdsConfig, RdsFence, RdsInstance};
/// let primary = RdsInstance::new("eu-west-1", "shop", PgEndpoint::new("shop.abc.eu-west-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let replica = RdsInstance::new("eu-central-1", "shop-dr", PgEndpoint::new("shop-dr.abc.eu-central-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let config = RdsConfig::new("shop-db", primary, replica).with_fence(RdsFence::ParameterGroup { name: "shop-pg15".into() });
/// assert_eq!(config.replica().identifier, "shop-dr");
///
/// // Aurora: the writer and a reader of one cluster, in another availability zone.
/// let writer = RdsInstance::new("eu-west-1", "shop-1", PgEndpoint::new("shop-1.abc.eu-west-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let reader = RdsInstance::new("eu-west-1", "shop-2", PgEndpoint::new("shop-2.abc.eu-west-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let aurora = RdsConfig::aurora("shop-db", "shop-cluster", writer, reader);
/// assert_eq!(aurora.cluster(), Some("shop-cluster"));
/// ```
#[derive(Debug, Clone)]
pub struct RdsConfig {
    pub(crate) database: DatabaseId,
    pub(crate) primary: RdsInstance,
    pub(crate) replica: RdsInstance,
    pub(crate) topology: RdsTopology,
    pub(crate) fence: RdsFence,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) promote_timeout: Duration,
    pub(crate) fence_timeout: Duration,
    pub(crate) poll_interval: Duration,
}

impl RdsConfig {
    /// `primary` replicated to `replica` (a read replica of it, in any region).
    pub fn new(database: impl Into<DatabaseId>, primary: RdsInstance, replica: RdsInstance) -> Self {
        Self {
            database: database.into(),
            primary,
            replica,
            topology: RdsTopology::ReadReplica,
            fence: RdsFence::Logins,
            endpoint_url: None,
            // RDS promotions take minutes (a reboot of the replica is part of it).
            promote_timeout: Duration::from_secs(30 * 60),
            fence_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(10),
        }
    }

    /// `writer` and `reader`, two instances of the Aurora cluster `cluster` (in its
    /// region): the reader becomes the writer with `FailoverDBCluster`. An Aurora failover
    /// takes about a minute; the promotion timeout is 10 minutes, polled every 5 s.
    pub fn aurora(
        database: impl Into<DatabaseId>,
        cluster: impl Into<String>,
        writer: RdsInstance,
        reader: RdsInstance,
    ) -> Self {
        let mut config = Self::new(database, writer, reader);
        config.topology = RdsTopology::AuroraCluster { identifier: cluster.into() };
        config.promote_timeout = Duration::from_secs(10 * 60);
        config.poll_interval = Duration::from_secs(5);
        config
    }

    /// The fence (default [`RdsFence::Logins`]).
    #[must_use]
    pub fn with_fence(mut self, fence: RdsFence) -> Self {
        self.fence = fence;
        self
    }

    /// Another RDS API endpoint (an emulator, a VPC endpoint), for both regions.
    #[must_use]
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// How long a promotion may take until the replica is `available` and writable
    /// (default 30 minutes), and how often it is polled (default 10 s).
    #[must_use]
    pub fn with_promote_timing(mut self, timeout: Duration, poll: Duration) -> Self {
        self.promote_timeout = timeout;
        self.poll_interval = poll.max(Duration::from_millis(10));
        self
    }

    /// How long the parameter-group fence waits for a new session to see the change
    /// (default 2 minutes).
    #[must_use]
    pub fn with_fence_timeout(mut self, timeout: Duration) -> Self {
        self.fence_timeout = timeout;
        self
    }

    /// The primary instance.
    pub fn primary(&self) -> &RdsInstance {
        &self.primary
    }

    /// The replica instance (for Aurora: the reader that becomes the writer).
    pub fn replica(&self) -> &RdsInstance {
        &self.replica
    }

    /// How the two instances are related.
    pub fn topology(&self) -> &RdsTopology {
        &self.topology
    }

    /// The Aurora cluster, if the instances are members of one.
    pub fn cluster(&self) -> Option<&str> {
        match &self.topology {
            RdsTopology::AuroraCluster { identifier } => Some(identifier),
            RdsTopology::ReadReplica => None,
        }
    }
}
