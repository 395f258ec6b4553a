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

/// A database whose primary is an RDS instance with a (cross-region) read replica.
///
/// ```
/// use qovery_dr_providers::postgres::PgEndpoint;
/// use qovery_dr_providers::rds::{RdsConfig, RdsFence, RdsInstance};
/// let primary = RdsInstance::new("eu-west-1", "shop", PgEndpoint::new("shop.abc.eu-west-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let replica = RdsInstance::new("eu-central-1", "shop-dr", PgEndpoint::new("shop-dr.abc.eu-central-1.rds.amazonaws.com", 5432, "qdr", "shop"));
/// let config = RdsConfig::new("shop-db", primary, replica).with_fence(RdsFence::ParameterGroup { name: "shop-pg15".into() });
/// assert_eq!(config.replica().identifier, "shop-dr");
/// ```
#[derive(Debug, Clone)]
pub struct RdsConfig {
    pub(crate) database: DatabaseId,
    pub(crate) primary: RdsInstance,
    pub(crate) replica: RdsInstance,
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
            fence: RdsFence::Logins,
            endpoint_url: None,
            // RDS promotions take minutes (a reboot of the replica is part of it).
            promote_timeout: Duration::from_secs(30 * 60),
            fence_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(10),
        }
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

    /// The replica instance.
    pub fn replica(&self) -> &RdsInstance {
        &self.replica
    }
}
