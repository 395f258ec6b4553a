//! [`ReplicationRouter`]: one [`ReplicationManager`] over several, each database sent to
//! the manager of its own pair, for a site with several databases (two PostgreSQL
//! clusters, or PostgreSQL beside a managed database).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::replication::{
    CatchUp, FenceOutcome, FixupReport, Heartbeat, Node, PromoteOutcome, PromotionState, ReplicationCapabilities,
    ReplicationManager, ReplicationStatus, ReprotectReport, Writability,
};
use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{DatabaseId, Lsn};

const NAME: &str = "replication-router";

/// Routes each database to the replication manager of its pair.
///
/// Its [`capabilities`](ReplicationManager::capabilities) are what *every* routed manager
/// can do: the engine relies on one (fencing, heartbeats) for all the databases of a run.
///
/// ```
/// use std::sync::Arc;
/// use qovery_dr_core::provider::{ReplicationManager, ReplicationRouter};
/// # use qovery_dr_core::provider::*;
/// # use qovery_dr_core::{async_trait, DatabaseId, ErrorKind, Lsn, ProviderError, ProviderResult};
/// # #[derive(Debug)] struct Pg(&'static str);
/// # #[async_trait] impl ReplicationManager for Pg {
/// #   fn name(&self) -> &str { self.0 }
/// #   fn capabilities(&self) -> ReplicationCapabilities { ReplicationCapabilities::default().with_fencing(true) }
/// #   async fn status(&self, d: &DatabaseId) -> ProviderResult<ReplicationStatus> { Err(ProviderError::new(ErrorKind::NotFound, self.0, "status", d.to_string())) }
/// #   async fn primary_writability(&self, _: &DatabaseId) -> ProviderResult<Writability> { Ok(Writability::Writable) }
/// #   async fn fence_primary(&self, _: &DatabaseId) -> ProviderResult<FenceOutcome> { Ok(FenceOutcome::Fenced) }
/// #   async fn wait_for_catch_up(&self, _: &DatabaseId, c: &CatchUp) -> ProviderResult<Lsn> { Ok(c.target) }
/// #   async fn promote_standby(&self, _: &DatabaseId) -> ProviderResult<PromoteOutcome> { Ok(PromoteOutcome::Promoted) }
/// #   async fn post_promotion_fixups(&self, _: &DatabaseId, _: &PromotionState) -> ProviderResult<FixupReport> { Ok(FixupReport::default()) }
/// #   async fn write_heartbeat(&self, d: &DatabaseId) -> ProviderResult<Heartbeat> { Err(ProviderError::new(ErrorKind::NotSupported, self.0, "write_heartbeat", d.to_string())) }
/// #   async fn last_heartbeat(&self, _: &DatabaseId, _: Node) -> ProviderResult<Option<Heartbeat>> { Ok(None) }
/// # }
/// let router = ReplicationRouter::new()
///     .route("orders", Arc::new(Pg("orders-cluster")))
///     .route("billing", Arc::new(Pg("billing-cluster")));
/// assert_eq!(router.manager_for(&"billing".into()).unwrap().name(), "billing-cluster");
/// assert!(router.manager_for(&"other".into()).is_err());
/// assert!(router.capabilities().fencing);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReplicationRouter {
    managers: BTreeMap<DatabaseId, Arc<dyn ReplicationManager>>,
}

impl ReplicationRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends every call about `database` to `manager`.
    pub fn route(mut self, database: impl Into<DatabaseId>, manager: Arc<dyn ReplicationManager>) -> Self {
        self.managers.insert(database.into(), manager);
        self
    }

    /// The databases routed, in id order.
    pub fn databases(&self) -> impl Iterator<Item = &DatabaseId> {
        self.managers.keys()
    }

    /// The manager of `database`; `NotFound` naming the routed databases otherwise.
    pub fn manager_for(&self, database: &DatabaseId) -> ProviderResult<&Arc<dyn ReplicationManager>> {
        self.managers.get(database).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                NAME,
                "route",
                format!(
                    "no replication manager serves database {database}; routed databases: {}",
                    self.managers.keys().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

#[async_trait]
impl ReplicationManager for ReplicationRouter {
    fn name(&self) -> &str {
        NAME
    }

    fn capabilities(&self) -> ReplicationCapabilities {
        let mut all = self.managers.values().map(|m| m.capabilities());
        let Some(first) = all.next() else { return ReplicationCapabilities::default() };
        all.fold(first, |a, c| ReplicationCapabilities {
            physical: a.physical && c.physical,
            logical: a.logical && c.logical,
            dump: a.dump && c.dump,
            fencing: a.fencing && c.fencing,
            heartbeat: a.heartbeat && c.heartbeat,
            reprotect: a.reprotect && c.reprotect,
        })
    }

    fn planes_for(&self, database: &DatabaseId) -> crate::stability::Planes {
        match self.manager_for(database) {
            Ok(m) => m.planes_for(database),
            Err(_) => crate::stability::Planes::undeclared(format!("{NAME} (no manager for {database})")),
        }
    }

    async fn failover_epoch(
        &self,
        database: &DatabaseId,
        node: Node,
    ) -> ProviderResult<Option<crate::model::FailoverEpoch>> {
        self.manager_for(database)?.failover_epoch(database, node).await
    }

    async fn record_failover_epoch(
        &self,
        database: &DatabaseId,
        epoch: &crate::model::FailoverEpoch,
    ) -> ProviderResult<()> {
        self.manager_for(database)?.record_failover_epoch(database, epoch).await
    }

    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        self.manager_for(database)?.status(database).await
    }

    async fn primary_writability(&self, database: &DatabaseId) -> ProviderResult<Writability> {
        self.manager_for(database)?.primary_writability(database).await
    }

    async fn fence_primary(&self, database: &DatabaseId) -> ProviderResult<FenceOutcome> {
        self.manager_for(database)?.fence_primary(database).await
    }

    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn> {
        self.manager_for(database)?.wait_for_catch_up(database, request).await
    }

    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        self.manager_for(database)?.promote_standby(database).await
    }

    async fn promotion_state(&self, database: &DatabaseId) -> ProviderResult<PromotionState> {
        self.manager_for(database)?.promotion_state(database).await
    }

    async fn post_promotion_fixups(
        &self,
        database: &DatabaseId,
        state: &PromotionState,
    ) -> ProviderResult<FixupReport> {
        self.manager_for(database)?.post_promotion_fixups(database, state).await
    }

    async fn write_heartbeat(&self, database: &DatabaseId) -> ProviderResult<Heartbeat> {
        self.manager_for(database)?.write_heartbeat(database).await
    }

    async fn last_heartbeat(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<Heartbeat>> {
        self.manager_for(database)?.last_heartbeat(database, node).await
    }

    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        self.manager_for(database)?.reprotect(database).await
    }
}
