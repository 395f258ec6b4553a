//! Replicated pairs for the tests, and a manager that owns its servers.

use std::time::Duration;

use qovery_dr_core::provider::*;
use qovery_dr_core::{DatabaseId, Lsn, ProviderResult, async_trait};
use qovery_dr_providers::postgres::PostgresReplicationManager;

use super::cluster::PgServer;

/// The manager and the servers it manages (dropped together).
#[derive(Debug)]
pub struct Pair {
    pub manager: PostgresReplicationManager,
    pub primary: PgServer,
    pub standby: PgServer,
}

pub const DB: &str = "shop-db";

/// A new manager for a logical pair (what a new orchestrator process builds).
pub fn logical_manager_like(pair: &Pair) -> PostgresReplicationManager {
    PostgresReplicationManager::logical(DatabaseId::new(DB), pair.primary.endpoint(), pair.standby.endpoint(), "sub")
}

/// A primary and a streaming standby, heartbeat table in place.
pub async fn physical() -> Pair {
    let primary = PgServer::primary();
    let standby = PgServer::standby_of(&primary, "standby_slot");
    let manager = PostgresReplicationManager::physical(DatabaseId::new(DB), primary.endpoint(), standby.endpoint());
    manager.setup_heartbeat(None).await.unwrap();
    Pair { manager, primary, standby }
}

/// A publisher and a subscriber (publication `pub` for all tables, subscription `sub`).
pub async fn logical(setup_sql: &str) -> Pair {
    let sql = setup_sql.to_owned();
    logical_with(
        move |s: &PgServer| {
            if !sql.is_empty() {
                s.sql(&sql);
            }
        },
        true,
    )
    .await
}

/// A publisher and a subscriber prepared identically by `prepare`.
pub async fn logical_with(prepare: impl Fn(&PgServer), copy_data: bool) -> Pair {
    let primary = PgServer::primary();
    let standby = PgServer::primary();
    let manager =
        PostgresReplicationManager::logical(DatabaseId::new(DB), primary.endpoint(), standby.endpoint(), "sub");
    manager.setup_heartbeat(None).await.unwrap();
    prepare(&primary);
    prepare(&standby);
    primary.sql("CREATE PUBLICATION pub FOR ALL TABLES");
    let conninfo = primary.endpoint().conninfo();
    standby.sql(&format!(
        "CREATE SUBSCRIPTION sub CONNECTION '{}' PUBLICATION pub WITH (copy_data = {copy_data})",
        conninfo.expose()
    ));
    // Wait for the initial table sync.
    for _ in 0..200 {
        if standby.sql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Pair { manager, primary, standby }
}

#[async_trait]
impl ReplicationManager for Pair {
    fn name(&self) -> &str {
        self.manager.name()
    }
    fn capabilities(&self) -> ReplicationCapabilities {
        self.manager.capabilities()
    }
    async fn status(&self, d: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        self.manager.status(d).await
    }
    async fn primary_writability(&self, d: &DatabaseId) -> ProviderResult<Writability> {
        self.manager.primary_writability(d).await
    }
    async fn fence_primary(&self, d: &DatabaseId) -> ProviderResult<FenceOutcome> {
        self.manager.fence_primary(d).await
    }
    async fn wait_for_catch_up(&self, d: &DatabaseId, l: &CatchUp) -> ProviderResult<Lsn> {
        self.manager.wait_for_catch_up(d, l).await
    }
    async fn promote_standby(&self, d: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        self.manager.promote_standby(d).await
    }
    async fn promotion_state(&self, d: &DatabaseId) -> ProviderResult<qovery_dr_core::provider::PromotionState> {
        self.manager.promotion_state(d).await
    }
    async fn post_promotion_fixups(
        &self,
        d: &DatabaseId,
        s: &qovery_dr_core::provider::PromotionState,
    ) -> ProviderResult<FixupReport> {
        self.manager.post_promotion_fixups(d, s).await
    }
    async fn write_heartbeat(&self, d: &DatabaseId) -> ProviderResult<Heartbeat> {
        self.manager.write_heartbeat(d).await
    }
    async fn last_heartbeat(&self, d: &DatabaseId, n: Node) -> ProviderResult<Option<Heartbeat>> {
        self.manager.last_heartbeat(d, n).await
    }
    async fn reprotect(&self, d: &DatabaseId) -> ProviderResult<qovery_dr_core::provider::ReprotectReport> {
        self.manager.reprotect(d).await
    }
}

/// A primary and a DR server refreshed by verified dumps (one taken already).
pub async fn dump() -> Pair {
    let primary = PgServer::primary();
    let standby = PgServer::primary();
    primary
        .sql("CREATE TABLE orders (id serial PRIMARY KEY, note text); INSERT INTO orders (note) VALUES ('a'), ('b')");
    let dir = primary.data.parent().unwrap().join("dumps");
    let backup = qovery_dr_providers::postgres::PgDumpBackup::new(primary.endpoint(), standby.endpoint(), dir)
        .with_jobs(2)
        .with_bin_dir(super::cluster::bin("pg_dump").parent().unwrap());
    let manager = PostgresReplicationManager::dump(DatabaseId::new(DB), backup.clone(), primary.endpoint());
    manager.setup_heartbeat(None).await.unwrap();
    manager.write_heartbeat(&DatabaseId::new(DB)).await.unwrap();
    backup.backup_and_verify(false).await.unwrap();
    Pair { manager, primary, standby }
}
