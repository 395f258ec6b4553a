//! A background heartbeat writer: the measured RPO is only as fine as the
//! heartbeat interval.

use std::sync::Arc;
use std::time::Duration;

use crate::model::DatabaseId;
use crate::provider::ReplicationManager;

/// Writes a heartbeat on the primary every interval until dropped.
#[derive(Debug)]
pub struct HeartbeatWriter {
    task: tokio::task::JoinHandle<()>,
}

impl HeartbeatWriter {
    /// Spawns the writer on the current tokio runtime. Failures are logged
    /// and retried at the next tick (a fenced primary refuses them by design).
    pub fn spawn(replication: Arc<dyn ReplicationManager>, database: DatabaseId, interval: Duration) -> Self {
        Self::spawn_each(replication, vec![database], interval)
    }

    /// One writer for several databases (a site with several): each tick writes a
    /// heartbeat on every one of them, side by side, so that each database's data loss is
    /// measured to the same interval.
    pub fn spawn_each(
        replication: Arc<dyn ReplicationManager>,
        databases: Vec<DatabaseId>,
        interval: Duration,
    ) -> Self {
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let mut writes = tokio::task::JoinSet::new();
                for database in &databases {
                    let (replication, database) = (Arc::clone(&replication), database.clone());
                    writes.spawn(async move {
                        if let Err(e) = replication.write_heartbeat(&database).await {
                            tracing::debug!(%database, error = %e, "heartbeat not written");
                        }
                    });
                }
                while writes.join_next().await.is_some() {}
            }
        });
        Self { task }
    }
}

impl Drop for HeartbeatWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
