//! The failover epoch in the database: a row per epoch in `<schema>.failover_epoch`,
//! written on the promoted side, and `<schema>.check_failover_epoch(bigint)` for
//! applications to refuse writing with an older epoch than the database's.

use qovery_dr_core::{ErrorKind, FailoverEpoch, ProviderResult};
use tokio_postgres::Client;

use super::super::endpoint::PgEndpoint;
use super::super::sql::{RowExt, exec, ident, literal, millis, opt_row};
use super::{PostgresReplicationManager, err};

impl PostgresReplicationManager {
    fn epoch_table(&self) -> String {
        format!("{}.failover_epoch", ident(&self.heartbeat.schema))
    }

    /// The newest epoch row on `ep` (`None` when there is none, or no table yet).
    pub(super) async fn epoch_on(&self, ep: &PgEndpoint, op: &str) -> ProviderResult<Option<FailoverEpoch>> {
        let c = ep.connect(op).await?;
        let sql = format!(
            "SELECT epoch, run_id, mode, (extract(epoch FROM recorded_at) * 1000)::bigint FROM {} \
             ORDER BY epoch DESC LIMIT 1",
            self.epoch_table()
        );
        match c.query_opt(&sql, &[]).await {
            Ok(Some(row)) => {
                let epoch: i64 = row.col(0)?;
                let run_id: String = row.col(1)?;
                let mode: String = row.col(2)?;
                let at = millis(&row, 3).unwrap_or_else(|| qovery_dr_core::Timestamp::from_unix_millis(0));
                Ok(Some(FailoverEpoch::new(u64::try_from(epoch).unwrap_or(0), run_id, mode, at)))
            }
            Ok(None) => Ok(None),
            // No schema or table yet: no failover recorded here.
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42P01" || d.code().code() == "3F000") => {
                Ok(None)
            }
            Err(e) => Err(super::super::endpoint::pg_error(op, &ep.label(), e)),
        }
    }

    /// Creates the table and the check function if missing (on a writable server).
    pub(super) async fn epoch_schema(&self, c: &Client, op: &str, label: &str) -> ProviderResult<()> {
        let schema = ident(&self.heartbeat.schema);
        let table = self.epoch_table();
        exec(
            c,
            op,
            label,
            &format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {table} (
                     epoch bigint PRIMARY KEY,
                     run_id text NOT NULL,
                     mode text NOT NULL,
                     recorded_at timestamptz NOT NULL DEFAULT clock_timestamp());
                 CREATE OR REPLACE FUNCTION {schema}.check_failover_epoch(app_epoch bigint) RETURNS bigint
                 LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $qdr$
                 DECLARE db_epoch bigint;
                 BEGIN
                     SELECT coalesce(max(epoch), 0) INTO db_epoch FROM {table};
                     IF app_epoch < db_epoch THEN
                         RAISE EXCEPTION 'stale failover epoch %: this database is at epoch %', app_epoch, db_epoch
                             USING ERRCODE = 'QDR01',
                                   HINT = 'this writer belongs to the side that was failed over from: stop writing';
                     END IF;
                     RETURN db_epoch;
                 END $qdr$;"
            ),
        )
        .await
    }

    /// Records `epoch` on the promoted standby: once per epoch, never below the newest.
    pub(super) async fn record_epoch(&self, epoch: &FailoverEpoch, op: &str) -> ProviderResult<()> {
        let c = self.standby.connect(op).await?;
        let label = self.standby.label();
        if !self.standby_promoted(&c, op).await? {
            return Err(err(
                ErrorKind::Conflict,
                op,
                format!("{label} is not promoted: the epoch goes on the new primary"),
            ));
        }
        self.epoch_schema(&c, op, &label).await?;
        let table = self.epoch_table();
        let number = i64::try_from(epoch.epoch)
            .map_err(|_| err(ErrorKind::InvalidInput, op, format!("epoch {} is out of range", epoch.epoch)))?;
        // One statement: inserted only when no epoch at or above it is there.
        let inserted = opt_row(
            &c,
            op,
            &label,
            &format!(
                "INSERT INTO {table} (epoch, run_id, mode) SELECT {number}, {}, {} \
                 WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE epoch >= {number}) RETURNING epoch",
                literal(&epoch.run_id),
                literal(&epoch.mode)
            ),
        )
        .await?;
        if inserted.is_some() {
            tracing::info!(server = %label, epoch = epoch.epoch, "failover epoch recorded");
            return Ok(());
        }
        match self.epoch_on(&self.standby, op).await? {
            Some(e) if e.epoch == epoch.epoch && e.run_id == epoch.run_id => Ok(()),
            Some(e) => Err(err(
                ErrorKind::Conflict,
                op,
                format!("{label} already holds epoch {} (run {}), not below {}", e.epoch, e.run_id, epoch.epoch),
            )),
            None => Err(err(ErrorKind::Transient, op, format!("{label}: the epoch row did not read back"))),
        }
    }
}
