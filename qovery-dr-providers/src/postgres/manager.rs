//! The manager and its trait implementation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use qovery_dr_core::provider::{
    CatchUp, FenceKind, FenceOutcome, FixupReport, Heartbeat, LinkState, Node, PromoteOutcome, PromotionState,
    ReplicationCapabilities, ReplicationManager, ReplicationMode, ReplicationStatus, ReprotectReport, Writability,
};
use qovery_dr_core::{DatabaseId, ErrorKind, Lsn, ProviderError, ProviderResult, async_trait};
use tokio::time::Instant;
use tokio_postgres::Client;

use super::endpoint::{PROVIDER, PgEndpoint};
use super::sql::{RowExt, exec, ident, literal, lsn, millis, one_row, opt_row};

mod epoch;

/// Where the heartbeat table lives.
#[derive(Debug, Clone)]
pub struct HeartbeatSetup {
    /// Schema of the table (created if missing).
    pub schema: String,
}

impl Default for HeartbeatSetup {
    fn default() -> Self {
        Self { schema: "qovery_dr".to_owned() }
    }
}

/// One WAL sender on the primary (`pg_stat_replication`). The lags are NULL
/// when the standby is caught up and the primary idle: `None` then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderInfo {
    /// The standby's `application_name` (the subscription's name for logical).
    pub application_name: String,
    /// `streaming`, `catchup`, `startup`…
    pub state: String,
    /// WAL sent.
    pub sent_lsn: Option<Lsn>,
    /// WAL written on the standby.
    pub write_lsn: Option<Lsn>,
    /// WAL flushed on the standby.
    pub flush_lsn: Option<Lsn>,
    /// WAL replayed on the standby.
    pub replay_lsn: Option<Lsn>,
    /// Time to write, as measured by the primary.
    pub write_lag: Option<Duration>,
    /// Time to flush.
    pub flush_lag: Option<Duration>,
    /// Time to replay.
    pub replay_lag: Option<Duration>,
    /// `async`, `sync`, `potential` or `quorum`.
    pub sync_state: String,
}

/// A primary/standby pair (physical) or publisher/subscriber pair (logical).
///
/// ```
/// use qovery_dr_providers::postgres::{PgEndpoint, PostgresReplicationManager};
/// let m = PostgresReplicationManager::physical(
///     "shop-db".into(),
///     PgEndpoint::new("10.0.0.1", 5432, "dr", "shop").with_password(qovery_dr_core::SecretString::new("pw")),
///     PgEndpoint::new("10.1.0.1", 5432, "dr", "shop").with_password(qovery_dr_core::SecretString::new("pw")),
/// );
/// assert!(!format!("{m:?}").contains("pw\""));
/// ```
#[derive(Debug)]
pub struct PostgresReplicationManager {
    database: DatabaseId,
    mode: ReplicationMode,
    primary: PgEndpoint,
    standby: PgEndpoint,
    subscription: String,
    heartbeat: HeartbeatSetup,
    /// Sequence values last seen on the publisher (logical), for when it is dead.
    sequences: Mutex<BTreeMap<String, i64>>,
    /// The last replay position seen and since when, to detect a stuck replay.
    replay: Mutex<Option<(Lsn, Instant)>>,
    stuck_after: Duration,
    dump: Option<super::dump::PgDumpBackup>,
    fence: FenceKind,
    /// The standby side's server, when this machine can stop, rewind and start it.
    standby_server: Option<super::server::LocalPgServer>,
    /// Logical: the publication a re-protection subscribes to (created on the primary side
    /// for all tables when missing).
    reprotect_publication: Option<String>,
}

/// Whether `name` is a slot of a subscription's initial table synchronisation
/// (`pg_<subscription oid>_sync_<relation oid>_<system id>`).
fn is_tablesync_slot(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("pg_") else { return false };
    let parts: Vec<&str> = rest.split('_').collect();
    parts.len() == 4
        && parts[1] == "sync"
        && [parts[0], parts[2], parts[3]].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

impl PostgresReplicationManager {
    fn dump_store_url(&self) -> Option<&str> {
        self.dump.as_ref().and_then(|d| d.store_url())
    }
}

impl PostgresReplicationManager {
    /// Physical streaming replication from `primary` to `standby`.
    pub fn physical(database: DatabaseId, primary: PgEndpoint, standby: PgEndpoint) -> Self {
        Self::new(database, ReplicationMode::Physical, primary, standby, String::new())
    }

    /// Logical replication from `publisher` to `subscriber` through `subscription`.
    pub fn logical(
        database: DatabaseId,
        publisher: PgEndpoint,
        subscriber: PgEndpoint,
        subscription: impl Into<String>,
    ) -> Self {
        Self::new(database, ReplicationMode::Logical, publisher, subscriber, subscription.into())
    }

    fn new(
        database: DatabaseId,
        mode: ReplicationMode,
        primary: PgEndpoint,
        standby: PgEndpoint,
        subscription: String,
    ) -> Self {
        Self {
            database,
            mode,
            primary,
            standby,
            subscription,
            heartbeat: HeartbeatSetup::default(),
            sequences: Mutex::new(BTreeMap::new()),
            replay: Mutex::new(None),
            stuck_after: Duration::from_secs(5),
            dump: None,
            fence: FenceKind::Logins,
            standby_server: None,
            reprotect_publication: None,
        }
    }

    /// The dump strategy (Backup & Restore, cross-cloud): the DR database is
    /// refreshed by `backup`'s dumps; promotion restores the newest dump if it
    /// is not restored yet, and the status reports the last backup for
    /// readiness.
    pub fn dump(database: DatabaseId, backup: super::dump::PgDumpBackup, primary: PgEndpoint) -> Self {
        let standby = backup.target().clone();
        let mut m = Self::new(database, ReplicationMode::Dump, primary, standby, String::new());
        m.dump = Some(backup);
        m
    }

    async fn dump_promoted(&self, s: &Client, op: &str) -> ProviderResult<bool> {
        let sql = format!("SELECT 1 FROM {}.promotion LIMIT 1", ident(&self.heartbeat.schema));
        match s.query_opt(&sql, &[]).await {
            Ok(r) => Ok(r.is_some()),
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42P01" || d.code().code() == "3F000") => {
                Ok(false)
            }
            Err(e) => Err(super::endpoint::pg_error(op, &self.standby.label(), e)),
        }
    }

    /// Another heartbeat schema.
    pub fn with_heartbeat_setup(mut self, setup: HeartbeatSetup) -> Self {
        self.heartbeat = setup;
        self
    }

    /// The standby side's server, for a physical re-protection
    /// ([`reprotect`](ReplicationManager::reprotect)): on the failback manager (the DR
    /// database as primary), the original primary's server. Without it, re-protection is
    /// `NotSupported` and [`physical_reprotect_steps`](Self::physical_reprotect_steps)
    /// tells an operator what to run.
    pub fn with_standby_server(mut self, server: super::server::LocalPgServer) -> Self {
        self.standby_server = Some(server);
        self
    }

    /// Logical pairs: re-protection subscribes the standby side to `publication` on the
    /// primary side (created there for all tables when missing). Without it a logical
    /// pair's re-protection is `NotSupported`.
    pub fn with_reprotect_publication(mut self, publication: impl Into<String>) -> Self {
        self.reprotect_publication = Some(publication.into());
        self
    }

    /// Logical re-protection: the standby side's published tables are emptied and copied
    /// again from the primary side through a new subscription; returns once every table
    /// is synchronised.
    async fn reprotect_logical(&self, publication: &str) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        let (pl, sl) = (self.primary.label(), self.standby.label());
        let p = self.primary.connect(OP).await?;
        if one_row(&p, OP, &pl, "SELECT pg_is_in_recovery()").await?.col::<bool>(0)? {
            return Err(err(ErrorKind::Conflict, OP, format!("nothing to re-protect from: {pl} is in recovery")));
        }
        let s = self.standby.connect(OP).await?;
        let pending = format!(
            "SELECT count(*) FILTER (WHERE sr.srsubstate <> 'r')::bigint, count(*)::bigint FROM pg_subscription s \
             LEFT JOIN pg_subscription_rel sr ON sr.srsubid = s.oid WHERE s.subname = {}",
            literal(&self.subscription)
        );
        let subscribed = opt_row(
            &s,
            OP,
            &sl,
            &format!("SELECT 1 FROM pg_subscription WHERE subname = {}", literal(&self.subscription)),
        )
        .await?
        .is_some();
        let mut report = ReprotectReport::already("resubscribe");
        if !subscribed {
            let exists =
                opt_row(&p, OP, &pl, &format!("SELECT 1 FROM pg_publication WHERE pubname = {}", literal(publication)))
                    .await?
                    .is_some();
            if !exists {
                exec(&p, OP, &pl, &format!("CREATE PUBLICATION {} FOR ALL TABLES", ident(publication))).await?;
            }
            let rows = p
                .query(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1",
                    &[&publication],
                )
                .await
                .map_err(|e| super::endpoint::pg_error(OP, &pl, e))?;
            let tables: Vec<String> = rows.iter().map(|r| r.col::<String>(0)).collect::<ProviderResult<_>>()?;
            // The session may be under the fence's read-only default: this one is the
            // orchestrator's (a statement of its own, so that the next transaction starts writable).
            s.batch_execute("SET default_transaction_read_only = off")
                .await
                .map_err(|e| super::endpoint::pg_error(OP, &sl, e))?;
            // Our own table made on the promoted side (the failover epoch) is published too:
            // a subscription needs it on this side as well.
            self.epoch_schema(&s, OP, &sl).await?;
            if !tables.is_empty() {
                s.batch_execute(&format!("TRUNCATE {}", tables.join(", "))).await.map_err(|e| {
                    err(
                        ErrorKind::Conflict,
                        OP,
                        format!(
                            "emptying the tables of publication {publication} on {sl} failed ({}); if a table outside \
                             the publication references them, re-protect by hand",
                            super::endpoint::pg_error(OP, &sl, e)
                        ),
                    )
                })?;
            }
            // CREATE SUBSCRIPTION cannot run in a transaction block, and carries the password: never logged.
            let conninfo = self.primary.conninfo();
            let create = format!(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = true)",
                ident(&self.subscription),
                literal(conninfo.expose()),
                ident(publication)
            );
            s.batch_execute(&create).await.map_err(|e| super::endpoint::pg_error(OP, &sl, e))?;
            report = ReprotectReport::new("resubscribe").with_note(format!(
                "the {} tables of publication {publication} on {sl} were emptied and are copied again from {pl}: \
                 what {sl} wrote after the failover was discarded",
                tables.len()
            ));
        }
        // Ready when every table's initial copy is done (a failback's catch-up reads the
        // apply position, which does not cover a copy in progress).
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let row = one_row(&s, OP, &sl, &pending).await?;
            let (left, total): (i64, i64) = (row.col(0)?, row.col(1)?);
            if left == 0 {
                return Ok(report
                    .with_note(format!("subscription {} on {sl}: {total} tables synchronised", self.subscription)));
            }
            if Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::Timeout,
                    OP,
                    format!(
                        "{left} of {total} tables of subscription {} on {sl} still copying after an hour",
                        self.subscription
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The logins a fence took on a server being promoted (it was a fenced primary once: a
    /// failback of a logical or dump pair), given back; a failure is a warning, as the
    /// promotion itself is done.
    async fn give_back_logins(&self, s: &Client, op: &str, label: &str) {
        match self.restore_logins(s, op, label).await {
            Ok(restored) if !restored.is_empty() => {
                tracing::info!(server = %label, roles = ?restored, "logins given back on the promoted primary")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(server = %label, error = %e, "could not give back fenced logins"),
        }
    }

    /// A dump restored into the standby side carries the primary side's promotion marker
    /// (the primary side was promoted once): the standby side is not promoted by it.
    async fn forget_promotion_marker(&self, op: &str) -> ProviderResult<()> {
        let s = self.standby.connect(op).await?;
        exec(&s, op, &self.standby.label(), "SET default_transaction_read_only = off").await?;
        exec(
            &s,
            op,
            &self.standby.label(),
            &format!("DROP TABLE IF EXISTS {}.promotion", ident(&self.heartbeat.schema)),
        )
        .await
    }

    /// Dump re-protection: a fresh dump of the primary side (the promoted DR database)
    /// restored into the standby side (the original primary) and verified.
    async fn reprotect_dump(&self, dump: &super::dump::PgDumpBackup) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        let p = self.primary.connect(OP).await?;
        if !self.dump_promoted(&p, OP).await? {
            return Err(err(
                ErrorKind::Conflict,
                OP,
                format!("nothing to re-protect from: {} was never promoted from a dump", self.primary.label()),
            ));
        }
        let record = dump.backup_and_verify(false).await?;
        self.forget_promotion_marker(OP).await?;
        Ok(ReprotectReport::new("dump").with_note(format!(
            "the database on {} was replaced by a fresh dump of {} ({} tables, verified): what it wrote after the \
             failover was discarded",
            self.standby.label(),
            self.primary.label(),
            record.tables
        )))
    }

    /// The physical slot a re-protected standby streams from, on the primary.
    fn reprotect_slot(&self) -> String {
        let id: String = self
            .database
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect();
        format!("qdr_reprotect_{id}")
    }

    /// Physical re-protection: the standby side (the original primary) is stopped, rewound
    /// onto the primary's timeline with `pg_rewind`, and started as its standby on a slot.
    async fn reprotect_physical(&self, server: &super::server::LocalPgServer) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        let pl = self.primary.label();
        let p = self.primary.connect(OP).await?;
        if one_row(&p, OP, &pl, "SELECT pg_is_in_recovery()").await?.col::<bool>(0)? {
            return Err(err(
                ErrorKind::Conflict,
                OP,
                format!("nothing to re-protect from: {pl} is a standby, not a promoted primary"),
            ));
        }
        // Already a standby streaming from it: nothing to do.
        if let Ok(s) = self.standby.connect(OP).await {
            let row = one_row(
                &s,
                OP,
                &self.standby.label(),
                "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)",
            )
            .await?;
            if row.col::<bool>(0)? && row.col::<Option<String>>(1)?.as_deref() == Some("streaming") {
                return Ok(ReprotectReport::already("pg_rewind"));
            }
        }
        let fork =
            one_row(&p, OP, &pl, "SELECT timeline_id::text FROM pg_control_checkpoint()").await?.col::<String>(0)?;
        let slot = self.reprotect_slot();
        let exists =
            opt_row(&p, OP, &pl, &format!("SELECT 1 FROM pg_replication_slots WHERE slot_name = {}", literal(&slot)))
                .await?
                .is_some();
        if !exists {
            exec(&p, OP, &pl, &format!("SELECT pg_create_physical_replication_slot({})", literal(&slot))).await?;
        }
        server.stop().await?;
        let rewound = server.rewind_from(&self.primary).await?;
        server.append_auto_conf(&format!("primary_slot_name = {}", literal(&slot))).await?;
        server.start().await?;
        Ok(ReprotectReport::new("pg_rewind")
            .with_note(format!(
                "{} was rewound onto the timeline of {pl} (timeline {fork}): what it wrote after the failover's fork was discarded",
                self.standby.label()
            ))
            .with_note(format!("it streams from slot {slot} on {pl}; pg_rewind said: {rewound}")))
    }

    /// How the old primary is fenced (default [`FenceKind::Logins`]).
    pub fn with_fence(mut self, kind: FenceKind) -> Self {
        self.fence = kind;
        self
    }

    /// The table recording the roles a logins fence disabled (on the fenced primary,
    /// replicated physically to the standby, where promotion gives them back).
    fn fence_table(&self) -> String {
        format!("{}.fenced_logins", ident(&self.heartbeat.schema))
    }

    /// Takes the login away from every role but ours and the replication roles streaming
    /// from this server, recording each in the fence table (one transaction per role).
    async fn fence_logins(&self, c: &Client, op: &str, label: &str) -> ProviderResult<Vec<String>> {
        exec(
            c,
            op,
            label,
            &format!(
                "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS {} (role text PRIMARY KEY, fenced_at timestamptz NOT NULL DEFAULT now())",
                ident(&self.heartbeat.schema),
                self.fence_table()
            ),
        )
        .await?;
        let rows = c
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname <> current_user \
                 AND rolname NOT IN (SELECT usename FROM pg_stat_replication WHERE usename IS NOT NULL) ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| super::endpoint::pg_error(op, label, e))?;
        let roles: Vec<String> = rows.iter().map(|r| r.col(0)).collect::<ProviderResult<_>>()?;
        for role in &roles {
            exec(
                c,
                op,
                label,
                &format!(
                    "BEGIN; INSERT INTO {} (role) VALUES ({}) ON CONFLICT DO NOTHING; ALTER ROLE {} NOLOGIN; COMMIT",
                    self.fence_table(),
                    literal(role),
                    ident(role)
                ),
            )
            .await?;
        }
        Ok(roles)
    }

    /// Gives back the logins a fence took (on `c`'s server), emptying the fence table.
    async fn restore_logins(&self, c: &Client, op: &str, label: &str) -> ProviderResult<Vec<String>> {
        let rows = match c.query(&format!("SELECT role FROM {} ORDER BY 1", self.fence_table()), &[]).await {
            Ok(rows) => rows,
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42P01" || d.code().code() == "3F000") => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(super::endpoint::pg_error(op, label, e)),
        };
        let roles: Vec<String> = rows.iter().map(|r| r.col(0)).collect::<ProviderResult<_>>()?;
        for role in &roles {
            exec(
                c,
                op,
                label,
                &format!(
                    "BEGIN; DELETE FROM {} WHERE role = {}; DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {}) THEN ALTER ROLE {} LOGIN; END IF; END $$; COMMIT",
                    self.fence_table(),
                    literal(role),
                    literal(role),
                    ident(role)
                ),
            )
            .await?;
        }
        Ok(roles)
    }

    /// The standby's replay position (physical: replayed WAL; logical: the subscription's
    /// last confirmed end).
    fn replay_position_sql(&self) -> String {
        if self.mode == ReplicationMode::Logical {
            format!(
                "SELECT max(latest_end_lsn)::text FROM pg_stat_subscription WHERE subname = {} AND relid IS NULL",
                literal(&self.subscription)
            )
        } else {
            "SELECT pg_last_wal_replay_lsn()::text".to_owned()
        }
    }

    /// How long replay may stand still while WAL waits before the link is reported down.
    pub fn with_stuck_after(mut self, d: Duration) -> Self {
        self.stuck_after = d;
        self
    }

    fn table(&self) -> String {
        format!("{}.heartbeat", ident(&self.heartbeat.schema))
    }

    fn check(&self, db: &DatabaseId, op: &str) -> ProviderResult<()> {
        if db == &self.database {
            Ok(())
        } else {
            Err(err(ErrorKind::NotFound, op, format!("this manager handles database {}, not {db}", self.database)))
        }
    }

    /// Creates the heartbeat table on the primary (and, for logical
    /// replication, on the subscriber, and adds it to the publication if the
    /// publication lists tables). Idempotent.
    pub async fn setup_heartbeat(&self, publication: Option<&str>) -> ProviderResult<()> {
        const OP: &str = "setup_heartbeat";
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {table} (seq bigint PRIMARY KEY, written_at timestamptz NOT NULL);",
            schema = ident(&self.heartbeat.schema),
            table = self.table()
        );
        let p = self.primary.connect(OP).await?;
        exec(&p, OP, &self.primary.label(), &ddl).await?;
        if self.mode == ReplicationMode::Logical {
            let s = self.standby.connect(OP).await?;
            exec(&s, OP, &self.standby.label(), &ddl).await?;
            if let Some(publication) = publication {
                let all = opt_row(
                    &p,
                    OP,
                    &self.primary.label(),
                    &format!("SELECT puballtables FROM pg_publication WHERE pubname = {}", literal(publication)),
                )
                .await?;
                let listed = opt_row(
                    &p,
                    OP,
                    &self.primary.label(),
                    &format!(
                        "SELECT 1 FROM pg_publication_tables WHERE pubname = {} AND schemaname = {} AND tablename = 'heartbeat'",
                        literal(publication),
                        literal(&self.heartbeat.schema)
                    ),
                )
                .await?;
                match all {
                    Some(row) if !row.col::<bool>(0)? && listed.is_none() => {
                        exec(
                            &p,
                            OP,
                            &self.primary.label(),
                            &format!("ALTER PUBLICATION {} ADD TABLE {}", ident(publication), self.table()),
                        )
                        .await?;
                    }
                    Some(_) => {}
                    None => {
                        return Err(err(
                            ErrorKind::NotFound,
                            OP,
                            format!("publication {publication} does not exist on {}", self.primary.label()),
                        ));
                    }
                }
                // A subscription replicates a table only once it knows it: a table created after
                // CREATE SUBSCRIPTION (even under a FOR ALL TABLES publication) needs a refresh.
                let unknown = opt_row(
                    &s,
                    OP,
                    &self.standby.label(),
                    &format!(
                        "SELECT 1 FROM pg_subscription sub WHERE sub.subname = {} AND NOT EXISTS \
                         (SELECT 1 FROM pg_subscription_rel r WHERE r.srsubid = sub.oid AND r.srrelid = to_regclass({}))",
                        literal(&self.subscription),
                        literal(&self.table())
                    ),
                )
                .await?;
                if unknown.is_some() {
                    exec(
                        &s,
                        OP,
                        &self.standby.label(),
                        &format!("ALTER SUBSCRIPTION {} REFRESH PUBLICATION", ident(&self.subscription)),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Reads the publisher's sequence values now (call it periodically: after
    /// a disaster they are what the subscriber's sequences are moved past).
    pub async fn capture_sequences(&self) -> ProviderResult<usize> {
        const OP: &str = "capture_sequences";
        let p = self.primary.connect(OP).await?;
        let rows = p
            .query("SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences WHERE last_value IS NOT NULL", &[])
            .await
            .map_err(|e| super::endpoint::pg_error(OP, &self.primary.label(), e))?;
        let mut cache = self.sequences.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for r in &rows {
            let (name, value): (String, i64) = (r.col(0)?, r.col(1)?);
            let slot = cache.entry(name).or_insert(value);
            *slot = (*slot).max(value);
        }
        Ok(rows.len())
    }

    /// Lifts the fence on the old primary (only if the standby was not promoted): the
    /// logins it took come back, exactly those, and the databases take writes again.
    pub async fn unfence_primary(&self) -> ProviderResult<()> {
        const OP: &str = "unfence_primary";
        let c = self.primary.connect(OP).await?;
        let label = self.primary.label();
        exec(&c, OP, &label, "SET default_transaction_read_only = off").await?;
        self.restore_logins(&c, OP, &label).await?;
        exec(&c, OP, &label, "ALTER SYSTEM RESET default_transaction_read_only").await?;
        exec(&c, OP, &label, "SELECT pg_reload_conf()").await
    }

    async fn timeline(&self, c: &Client, server: &str, op: &str) -> ProviderResult<i32> {
        one_row(c, op, server, "SELECT timeline_id FROM pg_control_checkpoint()").await?.col(0)
    }

    async fn heartbeat_on(&self, ep: &PgEndpoint, op: &str) -> ProviderResult<Option<Heartbeat>> {
        let c = ep.connect(op).await?;
        self.heartbeat_in(&c, &ep.label(), op).await
    }

    /// The newest heartbeat row through an open session.
    async fn heartbeat_in(&self, c: &Client, label: &str, op: &str) -> ProviderResult<Option<Heartbeat>> {
        let sql = format!(
            "SELECT seq, (extract(epoch FROM written_at) * 1000)::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
             FROM {} ORDER BY seq DESC LIMIT 1",
            self.table()
        );
        match c.query_opt(&sql, &[]).await {
            Ok(Some(row)) => {
                let seq: i64 = row.col(0)?;
                Ok(millis(&row, 1).map(|written_at| {
                    Heartbeat::new(u64::try_from(seq).unwrap_or(0), written_at).with_read_at(millis(&row, 2))
                }))
            }
            Ok(None) => Ok(None),
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42P01" || d.code().code() == "3F000") => {
                Ok(None)
            }
            Err(e) => Err(super::endpoint::pg_error(op, label, e)),
        }
    }

    async fn slots(&self, c: &Client, op: &str) -> ProviderResult<Vec<qovery_dr_core::provider::SlotInfo>> {
        let rows = c
            .query(
                "SELECT slot_name::text, slot_type, active, restart_lsn::text, confirmed_flush_lsn::text, wal_status, safe_wal_size FROM pg_replication_slots ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| super::endpoint::pg_error(op, &self.primary.label(), e))?;
        rows.iter()
            .map(|r| {
                let (name, kind, active): (String, String, bool) = (r.col(0)?, r.col(1)?, r.col(2)?);
                let (wal_status, safe_wal_size): (Option<String>, Option<i64>) = (r.col(5)?, r.col(6)?);
                Ok(qovery_dr_core::provider::SlotInfo::new(name, kind, active)
                    .with_restart_lsn(lsn(r, 3))
                    .with_confirmed_flush_lsn(lsn(r, 4))
                    .with_wal_status(wal_status)
                    .with_safe_wal_size(safe_wal_size))
            })
            .collect()
    }

    /// The WAL senders on the primary (`pg_stat_replication`).
    pub async fn senders(&self) -> ProviderResult<Vec<SenderInfo>> {
        const OP: &str = "senders";
        let c = self.primary.connect(OP).await?;
        let rows = c
            .query(
                "SELECT application_name, state, sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
                        (extract(epoch FROM write_lag) * 1000)::bigint, (extract(epoch FROM flush_lag) * 1000)::bigint,
                        (extract(epoch FROM replay_lag) * 1000)::bigint, sync_state
                 FROM pg_stat_replication ORDER BY application_name",
                &[],
            )
            .await
            .map_err(|e| super::endpoint::pg_error(OP, &self.primary.label(), e))?;
        let ms = |r: &tokio_postgres::Row, i: usize| -> ProviderResult<Option<Duration>> {
            Ok(r.col::<Option<i64>>(i)?.and_then(|v| u64::try_from(v).ok()).map(Duration::from_millis))
        };
        rows.iter()
            .map(|r| {
                Ok(SenderInfo {
                    application_name: r.col(0)?,
                    state: r.col::<Option<String>>(1)?.unwrap_or_default(),
                    sent_lsn: lsn(r, 2),
                    write_lsn: lsn(r, 3),
                    flush_lsn: lsn(r, 4),
                    replay_lsn: lsn(r, 5),
                    write_lag: ms(r, 6)?,
                    flush_lag: ms(r, 7)?,
                    replay_lag: ms(r, 8)?,
                    sync_state: r.col::<Option<String>>(9)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Checks a logical setup: `wal_level`, free slots, slots at risk of
    /// losing WAL, inactive slots retaining WAL. Returns the problems found.
    pub async fn check_logical_setup(&self) -> ProviderResult<Vec<String>> {
        const OP: &str = "check_logical_setup";
        let c = self.primary.connect(OP).await?;
        let label = self.primary.label();
        let mut problems = Vec::new();
        let row = one_row(&c, OP, &label, "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, (SELECT count(*)::int FROM pg_replication_slots)").await?;
        let (wal_level, max_slots, used): (String, i32, i32) = (row.col(0)?, row.col(1)?, row.col(2)?);
        if self.mode == ReplicationMode::Logical && wal_level != "logical" {
            problems.push(format!(
                "wal_level is {wal_level} on {label}: logical replication needs wal_level = logical (restart required)"
            ));
        }
        if used >= max_slots {
            problems.push(format!(
                "all {max_slots} replication slots are used on {label}: no slot is left for re-protection"
            ));
        }
        for s in self.slots(&c, OP).await? {
            match s.wal_status.as_deref() {
                Some("lost") => {
                    problems.push(format!("slot {} has lost required WAL: its consumer must be rebuilt", s.name))
                }
                Some("unreserved") | Some("extended") => problems.push(format!(
                    "slot {} retains WAL beyond the limits (wal_status {}): disk at risk",
                    s.name,
                    s.wal_status.as_deref().unwrap_or("?")
                )),
                _ => {}
            }
            // A subscription's initial table copy uses temporary slots (pg_<sub>_sync_<rel>_<system>)
            // that are idle between its steps and dropped by PostgreSQL when the copy ends.
            if !s.active && !is_tablesync_slot(&s.name) {
                problems.push(format!(
                    "slot {} is inactive and retains WAL from {}",
                    s.name,
                    s.restart_lsn.map_or("?".into(), |l| l.to_string())
                ));
            }
        }
        Ok(problems)
    }

    /// Creates the publication (on the primary) and the subscription (on the
    /// standby) if missing: the initial setup, or re-protection in the other
    /// direction with a manager built the other way round. `copy_data` copies
    /// the existing rows (false only when both sides already hold the same data).
    pub async fn setup_logical(&self, publication: &str, copy_data: bool) -> ProviderResult<()> {
        const OP: &str = "setup_logical";
        if self.mode != ReplicationMode::Logical {
            return Err(err(ErrorKind::InvalidInput, OP, "setup_logical is for logical replication"));
        }
        let p = self.primary.connect(OP).await?;
        let exists = opt_row(
            &p,
            OP,
            &self.primary.label(),
            &format!("SELECT 1 FROM pg_publication WHERE pubname = {}", literal(publication)),
        )
        .await?;
        if exists.is_none() {
            exec(&p, OP, &self.primary.label(), &format!("CREATE PUBLICATION {} FOR ALL TABLES", ident(publication)))
                .await?;
        }
        let s = self.standby.connect(OP).await?;
        let sub = opt_row(
            &s,
            OP,
            &self.standby.label(),
            &format!("SELECT 1 FROM pg_subscription WHERE subname = {}", literal(&self.subscription)),
        )
        .await?;
        if sub.is_none() {
            // CREATE SUBSCRIPTION cannot run in a transaction block, and carries the password: never logged.
            let conninfo = self.primary.conninfo();
            let sql = format!(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {copy_data})",
                ident(&self.subscription),
                literal(conninfo.expose()),
                ident(publication)
            );
            s.batch_execute(&sql).await.map_err(|e| super::endpoint::pg_error(OP, &self.standby.label(), e))?;
        }
        Ok(())
    }

    /// The steps to re-protect after a physical failover: the old primary
    /// becomes a standby of the promoted one. They need shell access to the
    /// old primary's host, which this SDK does not assume: hand them to an
    /// operator (or a runner with that access).
    pub fn physical_reprotect_steps(&self, old_primary_data_dir: &str) -> Vec<String> {
        let new = &self.standby;
        vec![
            format!("on the old primary's host: pg_ctl -D {old_primary_data_dir} stop -m fast (it must be stopped cleanly or crashed; never running)"),
            format!(
                "pg_rewind --target-pgdata={old_primary_data_dir} --source-server='host={} port={} user={} dbname={}' --progress (wal_log_hints or data checksums must be on: they are in the supported setup)",
                new.host, new.port, new.user, new.dbname
            ),
            format!("touch {old_primary_data_dir}/standby.signal"),
            format!(
                "in {old_primary_data_dir}/postgresql.auto.conf: primary_conninfo = 'host={} port={} user={}' and primary_slot_name = '<a physical slot created on {}>'",
                new.host, new.port, new.user, new.label()
            ),
            format!("SELECT pg_create_physical_replication_slot('<that slot>'); on {}", new.label()),
            format!("pg_ctl -D {old_primary_data_dir} start; then check pg_stat_wal_receiver on it shows status 'streaming'"),
            "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf(); on it is NOT needed: a standby is read-only by itself".to_owned(),
        ]
    }

    /// Whether the standby side is a primary now.
    async fn standby_promoted(&self, s: &Client, op: &str) -> ProviderResult<bool> {
        match self.mode {
            ReplicationMode::Dump => self.dump_promoted(s, op).await,
            ReplicationMode::Logical => {
                let row = opt_row(
                    s,
                    op,
                    &self.standby.label(),
                    &format!("SELECT 1 FROM pg_subscription WHERE subname = {}", literal(&self.subscription)),
                )
                .await?;
                Ok(row.is_none())
            }
            _ => Ok(!one_row(s, op, &self.standby.label(), "SELECT pg_is_in_recovery()").await?.col::<bool>(0)?),
        }
    }

    fn note_replay(&self, replay: Option<Lsn>, pending: bool) -> bool {
        let mut last = self.replay.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match (replay, *last) {
            (Some(r), Some((prev, since))) if r == prev => pending && now.duration_since(since) >= self.stuck_after,
            (Some(r), _) => {
                *last = Some((r, now));
                false
            }
            (None, _) => false,
        }
    }
}

#[async_trait]
impl ReplicationManager for PostgresReplicationManager {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> ReplicationCapabilities {
        ReplicationCapabilities::default()
            .with_physical(self.mode == ReplicationMode::Physical)
            .with_logical(self.mode == ReplicationMode::Logical)
            .with_dump(self.mode == ReplicationMode::Dump)
            .with_fencing(true)
            .with_heartbeat(true)
            .with_reprotect(match self.mode {
                ReplicationMode::Physical => self.standby_server.is_some(),
                ReplicationMode::Logical => self.reprotect_publication.is_some(),
                ReplicationMode::Dump => self.dump.is_some(),
                _ => false,
            })
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        use qovery_dr_core::stability::catalogue;
        match self.mode {
            ReplicationMode::Dump => {
                catalogue::dump(self.database.as_str(), catalogue::dump_store(self.dump_store_url()))
            }
            _ => catalogue::postgres(self.database.as_str()),
        }
    }

    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        const OP: &str = "status";
        self.check(database, OP)?;
        let s = self.standby.connect(OP).await?;
        let sl = self.standby.label();
        let p = self.primary.connect(OP).await.ok();
        let primary_lsn = match &p {
            Some(p) => {
                let row = one_row(p, OP, &self.primary.label(), "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text").await?;
                lsn(&row, 0)
            }
            None => None,
        };
        let promoted = self.standby_promoted(&s, OP).await?;
        if let Some(dump) = &self.dump {
            let record = dump.last_backup().await?;
            let info = match &record {
                Some(r) => Some(dump.info_of(r).await?),
                None => None,
            };
            return Ok(ReplicationStatus::new(database.clone(), ReplicationMode::Dump, LinkState::NotApplicable)
                .with_primary_lsn(primary_lsn)
                .with_standby_replay_lsn(record.as_ref().and_then(|r| r.lsn))
                .with_last_backup(info)
                .with_standby_promoted(promoted)
                .with_slots(Vec::new()));
        }
        let (link, standby_lsn) = if promoted {
            (LinkState::NotApplicable, None)
        } else if self.mode == ReplicationMode::Logical {
            let row = opt_row(
                &s,
                OP,
                &sl,
                &format!(
                    "SELECT pid IS NOT NULL, latest_end_lsn::text FROM pg_stat_subscription WHERE subname = {} AND relid IS NULL",
                    literal(&self.subscription)
                ),
            )
            .await?;
            match row {
                Some(r) if r.col::<bool>(0)? => (LinkState::Streaming, lsn(&r, 1)),
                Some(r) => {
                    (LinkState::Down("the subscription has no apply worker (disabled or failing)".into()), lsn(&r, 1))
                }
                None => (LinkState::Down("no subscription worker".into()), None),
            }
        } else {
            let row = one_row(
                &s,
                OP,
                &sl,
                "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, pg_is_wal_replay_paused(),
                        (SELECT status FROM pg_stat_wal_receiver), (SELECT received_tli FROM pg_stat_wal_receiver)",
            )
            .await?;
            let (received, replayed, paused) = (lsn(&row, 0), lsn(&row, 1), row.col::<bool>(2)?);
            let receiver: Option<String> = row.col(3)?;
            let received_tli: Option<i32> = row.col(4)?;
            let primary_tli = match &p {
                Some(p) => Some(self.timeline(p, &self.primary.label(), OP).await?),
                None => None,
            };
            let stuck = self.note_replay(replayed, received.zip(replayed).is_some_and(|(a, b)| a > b));
            let link = match (receiver.as_deref(), received_tli, primary_tli) {
                (_, Some(r), Some(p)) if r != p => {
                    LinkState::Broken(format!("the standby is on timeline {r}, the primary on {p}"))
                }
                (None, _, _) => LinkState::Down("no WAL receiver".into()),
                (Some(st), _, _) if st != "streaming" => LinkState::Down(format!("WAL receiver is {st}")),
                _ if paused => LinkState::Down("replay is paused (pg_wal_replay_pause)".into()),
                _ if stuck => {
                    LinkState::Down(format!("replay has not advanced for {:?} while WAL waits", self.stuck_after))
                }
                _ => LinkState::Streaming,
            };
            (link, replayed)
        };
        let lag_bytes = match (primary_lsn, standby_lsn, &link) {
            (Some(p), Some(s), LinkState::Streaming | LinkState::Down(_)) => Some(p.bytes_since(s)),
            _ => None,
        };
        // Time lag from the heartbeat: the primary's newest against the standby's newest.
        let lag = if promoted {
            None
        } else {
            // The two sessions already open (a status used to open four).
            let on_primary = match &p {
                Some(p) => self.heartbeat_in(p, &self.primary.label(), OP).await.ok().flatten(),
                None => None,
            };
            match (on_primary, self.heartbeat_in(&s, &sl, OP).await.ok().flatten()) {
                (Some(ph), Some(sh)) => Some(ph.written_at.saturating_since(sh.written_at)),
                _ => None,
            }
        };
        let slots = match &p {
            Some(p) => self.slots(p, OP).await.unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(ReplicationStatus::new(database.clone(), self.mode, link)
            .with_slots(slots)
            .with_primary_lsn(primary_lsn)
            .with_standby_replay_lsn(standby_lsn)
            .with_lag_bytes(lag_bytes)
            .with_lag(lag)
            .with_standby_promoted(promoted))
    }

    async fn primary_writability(&self, database: &DatabaseId) -> ProviderResult<Writability> {
        const OP: &str = "primary_writability";
        self.check(database, OP)?;
        let Ok(c) = self.primary.connect(OP).await else { return Ok(Writability::Unreachable) };
        let row = one_row(
            &c,
            OP,
            &self.primary.label(),
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')",
        )
        .await?;
        let (recovery, ro): (bool, String) = (row.col(0)?, row.col(1)?);
        Ok(if recovery || ro == "on" { Writability::ReadOnly } else { Writability::Writable })
    }

    async fn fence_primary(&self, database: &DatabaseId) -> ProviderResult<FenceOutcome> {
        const OP: &str = "fence_primary";
        self.check(database, OP)?;
        let label = self.primary.label();
        let c = self.primary.connect(OP).await.map_err(|e| {
            err(e.kind(), OP, format!("{label} cannot be reached, so it is NOT fenced: {}", e.message()))
        })?;
        let row =
            one_row(&c, OP, &label, "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")
                .await?;
        if row.col::<bool>(0)? {
            return Ok(FenceOutcome::AlreadyFenced);
        }
        let was = row.col::<String>(1)? == "on";
        // The logins first (a read-only default would refuse the fence's own bookkeeping).
        let fenced_roles = if self.fence == FenceKind::Logins && self.mode != ReplicationMode::Dump {
            if was {
                // A soft fence already in place: lift it for the bookkeeping, then put it back.
                exec(&c, OP, &label, "SET default_transaction_read_only = off").await?;
            }
            self.fence_logins(&c, OP, &label).await?
        } else {
            Vec::new()
        };
        let shared: i64 = one_row(
            &c,
            OP,
            &label,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = current_user AND pid <> pg_backend_pid()",
        )
        .await?
        .col(0)?;
        if shared > 0 && self.fence == FenceKind::Logins {
            tracing::warn!(
                server = %label,
                sessions = shared,
                "other sessions use the orchestrator's own role: they are terminated but keep their login, so they \
                 could reconnect and commit with BEGIN READ WRITE; give the orchestrator a role of its own"
            );
        }
        // ALTER SYSTEM cannot run in a transaction block: one statement at a time.
        exec(&c, OP, &label, "ALTER SYSTEM SET default_transaction_read_only = on").await?;
        exec(&c, OP, &label, "SELECT pg_reload_conf()").await?;
        exec(&c, OP, &label, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").await?;
        // Verify from a fresh session: the reload is asynchronous.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.primary.connect(OP).await?;
            let ro: String =
                one_row(&v, OP, &label, "SELECT current_setting('default_transaction_read_only')").await?.col(0)?;
            if ro == "on" {
                let left: i64 = if self.fence == FenceKind::Logins {
                    one_row(
                        &v,
                        OP,
                        &label,
                        "SELECT (SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname <> current_user \
                           AND rolname NOT IN (SELECT usename FROM pg_stat_replication WHERE usename IS NOT NULL)) \
                         + (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                           AND usename <> current_user AND usename NOT IN (SELECT usename FROM pg_stat_replication WHERE usename IS NOT NULL))",
                    )
                    .await?
                    .col(0)?
                } else {
                    0
                };
                // A write probe that leaves nothing behind when it is (wrongly) accepted
                // (last on this session: a refused probe leaves its transaction aborted).
                let write = v.batch_execute("BEGIN; CREATE TABLE qovery_dr_fence_probe (); ROLLBACK").await;
                let refused = match &write {
                    Err(e) => e.as_db_error().is_some_and(|d| d.code().code() == "25006"),
                    Ok(()) => false,
                };
                if refused && left == 0 {
                    tracing::info!(server = %label, roles = ?fenced_roles, "fenced: no role but the orchestrator's can log in");
                    return Ok(if was && fenced_roles.is_empty() {
                        FenceOutcome::AlreadyFenced
                    } else {
                        FenceOutcome::Fenced
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::Transient,
                    OP,
                    format!(
                        "{label} still accepts writes, or logins of roles other than the orchestrator's, after the fence"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn> {
        let (target, timeout) = (request.target, request.timeout);
        const OP: &str = "wait_for_catch_up";
        self.check(database, OP)?;
        let deadline = Instant::now() + timeout;
        if self.mode == ReplicationMode::Dump {
            let status = self.status(database).await?;
            if let Some(l) = status.standby_replay_lsn.filter(|l| *l >= target) {
                return Ok(l);
            }
            // A dump pair catches up by a dump of the fenced primary, restored and verified:
            // it starts after `target` was read, so it holds at least that.
            let Some(dump) = &self.dump else {
                return Err(err(ErrorKind::InvalidConfig, OP, "dump mode without a PgDumpBackup"));
            };
            let record = tokio::time::timeout(timeout, dump.backup_and_verify(false)).await.map_err(|_| {
                err(ErrorKind::Timeout, OP, format!("the final dump and its restore took longer than {timeout:?}"))
            })??;
            self.forget_promotion_marker(OP).await?;
            return match record.lsn {
                Some(l) if l >= target => Ok(l),
                other => Err(err(
                    ErrorKind::Timeout,
                    OP,
                    format!(
                        "a dump taken now holds up to {}, not {target}: the primary has not written that far",
                        other.map_or("nothing".into(), |l| l.to_string())
                    ),
                )),
            };
        }
        // One standby session polled every 50 ms for the replay position; the full status
        // (two sessions, link and timeline checks) every 10th poll and at the deadline.
        let mut session: Option<Client> = None;
        let mut polls: u32 = 0;
        loop {
            polls += 1;
            if polls % 10 != 1 && Instant::now() < deadline {
                if session.as_ref().is_none_or(Client::is_closed) {
                    session = self.standby.connect(OP).await.ok();
                }
                if let Some(c) = &session
                    && let Ok(row) = one_row(c, OP, &self.standby.label(), &self.replay_position_sql()).await
                    && let Some(r) = lsn(&row, 0).filter(|r| *r >= target)
                {
                    return Ok(r);
                }
                tokio::time::sleep(Duration::from_millis(50).min(deadline - Instant::now())).await;
                continue;
            }
            let status = self.status(database).await?;
            if let LinkState::Broken(why) = &status.link {
                return Err(err(ErrorKind::Conflict, OP, format!("the standby can never reach {target}: {why}")));
            }
            if let LinkState::Down(why) = &status.link
                && why.contains("paused")
            {
                return Err(err(
                    ErrorKind::Conflict,
                    OP,
                    format!(
                        "the standby will not reach {target} while its {why}: resume it (SELECT pg_wal_replay_resume() on {})",
                        self.standby.label()
                    ),
                ));
            }
            if let Some(r) = status.standby_replay_lsn.filter(|r| *r >= target) {
                return Ok(r);
            }
            if Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::Timeout,
                    OP,
                    format!(
                        "the standby reached {}, not {target}, within {timeout:?}",
                        status.standby_replay_lsn.map_or("?".into(), |l| l.to_string())
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50).min(deadline - Instant::now())).await;
        }
    }

    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        const OP: &str = "promote_standby";
        self.check(database, OP)?;
        let s = self.standby.connect(OP).await?;
        let sl = self.standby.label();
        if self.standby_promoted(&s, OP).await? {
            return Ok(PromoteOutcome::AlreadyPrimary);
        }
        match self.mode {
            ReplicationMode::Dump => {
                let Some(dump) = &self.dump else {
                    return Err(err(ErrorKind::InvalidConfig, OP, "dump mode without a PgDumpBackup"));
                };
                let record = dump
                    .last_backup()
                    .await?
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, "no backup was ever taken: nothing to restore"))?;
                if !record.restore_verified {
                    dump.restore(&record).await?;
                }
                // A once-fenced primary (a failback) is read-only by default until the end of
                // this promotion: this session is the orchestrator's.
                exec(&s, OP, &sl, "SET default_transaction_read_only = off").await?;
                exec(
                    &s,
                    OP,
                    &sl,
                    &format!(
                        "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {schema}.promotion (at timestamptz NOT NULL, dump text NOT NULL);
                         INSERT INTO {schema}.promotion VALUES (clock_timestamp(), {dump})",
                        schema = ident(&self.heartbeat.schema),
                        dump = literal(&record.path.display().to_string())
                    ),
                )
                .await?;
                // The logins a fence took on it, when it was a fenced primary (a failback).
                self.give_back_logins(&s, OP, &sl).await;
            }
            ReplicationMode::Logical => {
                // Capture the publisher's sequences while it answers.
                if let Err(e) = self.capture_sequences().await {
                    tracing::warn!(error = %e, "publisher unreachable: sequences come from the last capture and the data");
                }
                let sub = ident(&self.subscription);
                // A subscriber that was a fenced primary once (a failback) keeps its read-only
                // default until the end of this promotion: this session is the orchestrator's.
                exec(&s, OP, &sl, "SET default_transaction_read_only = off").await?;
                exec(&s, OP, &sl, &format!("ALTER SUBSCRIPTION {sub} DISABLE")).await?;
                // With the publisher down, DROP SUBSCRIPTION cannot drop its slot there: detach it.
                // The slot's name is in the promotion state journaled before this call, and the
                // fix-ups report it.
                let publisher_up = self.primary.connect(OP).await.is_ok();
                if !publisher_up {
                    exec(&s, OP, &sl, &format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)")).await?;
                }
                exec(&s, OP, &sl, &format!("DROP SUBSCRIPTION {sub}")).await?;
                // The logins its own fence took, when it was a fenced primary (a failback).
                self.give_back_logins(&s, OP, &sl).await;
            }
            _ => {
                // pg_promote(true) waits inside one query, whose snapshot conflicts with the very
                // replay it waits for: on a lagging standby replay stalls until
                // max_standby_streaming_delay (30 s by default) cancels it. Ask, then poll with
                // short queries that hold no snapshot across the wait.
                let asked: bool = one_row(&s, OP, &sl, "SELECT pg_promote(false)").await?.col(0)?;
                if !asked {
                    return Err(err(ErrorKind::Transient, OP, format!("{sl} refused the promotion request")));
                }
                let deadline = Instant::now() + Duration::from_secs(60);
                while one_row(&s, OP, &sl, "SELECT pg_is_in_recovery()").await?.col::<bool>(0)? {
                    if Instant::now() >= deadline {
                        return Err(err(
                            ErrorKind::Timeout,
                            OP,
                            format!("{sl} did not finish promoting within 60 s (it is replaying the WAL it has)"),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // The logins the fence took (replicated with the catalog) come back here.
                exec(&s, OP, &sl, "SET default_transaction_read_only = off").await?;
                let restored = self.restore_logins(&s, OP, &sl).await?;
                if !restored.is_empty() {
                    tracing::info!(server = %sl, roles = ?restored, "logins given back on the promoted primary");
                }
                // Forget the old upstream, and checkpoint (pg_rewind needs it later).
                exec(&s, OP, &sl, "ALTER SYSTEM RESET primary_conninfo").await?;
                exec(&s, OP, &sl, "ALTER SYSTEM RESET primary_slot_name").await?;
                exec(&s, OP, &sl, "SELECT pg_reload_conf()").await?;
                exec(&s, OP, &sl, "CHECKPOINT").await?;
            }
        }
        // The promoted side must take writes.
        exec(&s, OP, &sl, "ALTER SYSTEM RESET default_transaction_read_only").await?;
        exec(&s, OP, &sl, "SELECT pg_reload_conf()").await?;
        let v = self.standby.connect(OP).await?;
        let row = one_row(&v, OP, &sl, "SELECT pg_is_in_recovery()").await?;
        if row.col::<bool>(0)? {
            return Err(err(ErrorKind::Transient, OP, format!("{sl} is still in recovery after promotion")));
        }
        Ok(PromoteOutcome::Promoted)
    }

    async fn promotion_state(&self, database: &DatabaseId) -> ProviderResult<PromotionState> {
        const OP: &str = "promotion_state";
        self.check(database, OP)?;
        let mut state = PromotionState::default();
        if self.mode != ReplicationMode::Logical {
            return Ok(state);
        }
        if let Err(e) = self.capture_sequences().await {
            state.warnings.push(format!(
                "the publisher's sequence values could not be read ({e}): the fix-ups move sequences past the \
                 values captured earlier by this process and the largest values the data holds"
            ));
        }
        state.sequence_floors = self.sequences.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let s = self.standby.connect(OP).await?;
        let slot: Option<String> = opt_row(
            &s,
            OP,
            &self.standby.label(),
            &format!("SELECT subslotname FROM pg_subscription WHERE subname = {}", literal(&self.subscription)),
        )
        .await?
        .map(|r| r.col::<Option<String>>(0))
        .transpose()?
        .flatten();
        state.replication_slots.extend(slot);
        Ok(state)
    }

    async fn post_promotion_fixups(
        &self,
        database: &DatabaseId,
        state: &PromotionState,
    ) -> ProviderResult<FixupReport> {
        const OP: &str = "post_promotion_fixups";
        self.check(database, OP)?;
        let s = self.standby.connect(OP).await?;
        let sl = self.standby.label();
        if !self.standby_promoted(&s, OP).await? {
            return Err(err(ErrorKind::Conflict, OP, format!("{sl} is not promoted yet")));
        }
        let mut report = FixupReport::default().with_warnings(state.warnings.clone());
        if self.mode != ReplicationMode::Logical {
            return Ok(report);
        }
        // Slots the subscription consumed on the old publisher: dropped with the subscription
        // when the publisher answered, orphaned there when it did not.
        let publisher = self.primary.connect(OP).await.ok();
        for slot in &state.replication_slots {
            let drop = format!("SELECT pg_drop_replication_slot({})", literal(slot));
            match &publisher {
                None => report.warnings.push(format!(
                    "replication slot {slot} was left on the unreachable publisher {}: drop it when it comes back \
                     ({drop}), or its WAL retention fills the disk",
                    self.primary.label()
                )),
                Some(p) => {
                    let left = opt_row(
                        p,
                        OP,
                        &self.primary.label(),
                        &format!("SELECT 1 FROM pg_replication_slots WHERE slot_name = {}", literal(slot)),
                    )
                    .await?
                    .is_some();
                    if left {
                        report.warnings.push(format!(
                            "replication slot {slot} remains on the old publisher {}: drop it ({drop}), or its WAL \
                             retention fills the disk",
                            self.primary.label()
                        ));
                    }
                }
            }
        }
        // Every sequence moves past both the publisher's last value (journaled before the
        // promotion, and whatever this process captured since) and the largest value its
        // owning column holds here.
        let mut cached = state.sequence_floors.clone();
        for (name, value) in self.sequences.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let floor = cached.entry(name.clone()).or_insert(*value);
            *floor = (*floor).max(*value);
        }
        let owned = s
            .query(
                "SELECT format('%I.%I', sn.nspname, sc.relname), format('%I.%I', tn.nspname, t.relname), quote_ident(a.attname)
                 FROM pg_class sc JOIN pg_namespace sn ON sn.oid = sc.relnamespace
                 LEFT JOIN pg_depend d ON d.objid = sc.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                 LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                 WHERE sc.relkind = 'S' AND sn.nspname NOT IN ('pg_catalog', 'information_schema')",
                &[],
            )
            .await
            .map_err(|e| super::endpoint::pg_error(OP, &sl, e))?;
        for row in owned {
            let seq: String = row.col(0)?;
            let table: Option<String> = row.col(1)?;
            let column: Option<String> = row.col(2)?;
            let mut floor = cached.get(&seq).copied().unwrap_or(0);
            if let (Some(t), Some(col)) = (table.filter(|t| t != "."), column) {
                let max: Option<i64> =
                    one_row(&s, OP, &sl, &format!("SELECT max({col})::bigint FROM {t}")).await?.col(0)?;
                floor = floor.max(max.unwrap_or(0));
            }
            if floor > 0 {
                exec(
                    &s,
                    OP,
                    &sl,
                    &format!(
                        "SELECT setval({}, GREATEST({floor}, (SELECT last_value FROM {seq})), true)",
                        literal(&seq)
                    ),
                )
                .await?;
                report.sequences_synced += 1;
            }
        }
        Ok(report)
    }

    async fn write_heartbeat(&self, database: &DatabaseId) -> ProviderResult<Heartbeat> {
        const OP: &str = "write_heartbeat";
        self.check(database, OP)?;
        let c = self.primary.connect(OP).await?;
        // Append-only rows (keyed by seq): inserts replicate to a logical
        // subscriber whatever it held before, and max + 1 keeps counting
        // on a promoted standby (sequences are not replicated).
        let table = self.table();
        let sql = format!(
            "WITH n AS (INSERT INTO {table} (seq, written_at) SELECT coalesce(max(seq), 0) + 1, clock_timestamp() FROM {table}
                        RETURNING seq, (extract(epoch FROM written_at) * 1000)::bigint AS ms)
             SELECT seq, ms FROM n"
        );
        let row = opt_row(&c, OP, &self.primary.label(), &sql).await?;
        let row =
            row.ok_or_else(|| err(ErrorKind::NotFound, OP, "the heartbeat row is missing: run setup_heartbeat"))?;
        let seq: i64 = row.col(0)?;
        let written_at =
            millis(&row, 1).ok_or_else(|| err(ErrorKind::Transient, OP, "the heartbeat time did not read back"))?;
        // Keep the table small: every 100th heartbeat drops all but the last 1,000 rows.
        if seq % 100 == 0 {
            exec(&c, OP, &self.primary.label(), &format!("DELETE FROM {table} WHERE seq <= {}", seq - 1000)).await?;
        }
        Ok(Heartbeat::new(u64::try_from(seq).unwrap_or(0), written_at))
    }

    async fn last_heartbeat(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<Heartbeat>> {
        const OP: &str = "last_heartbeat";
        self.check(database, OP)?;
        match node {
            Node::Primary => self.heartbeat_on(&self.primary, OP).await,
            Node::Standby => self.heartbeat_on(&self.standby, OP).await,
        }
    }

    async fn failover_epoch(
        &self,
        database: &DatabaseId,
        node: Node,
    ) -> ProviderResult<Option<qovery_dr_core::FailoverEpoch>> {
        const OP: &str = "failover_epoch";
        self.check(database, OP)?;
        match node {
            Node::Primary => self.epoch_on(&self.primary, OP).await,
            Node::Standby => self.epoch_on(&self.standby, OP).await,
        }
    }

    async fn record_failover_epoch(
        &self,
        database: &DatabaseId,
        epoch: &qovery_dr_core::FailoverEpoch,
    ) -> ProviderResult<()> {
        const OP: &str = "record_failover_epoch";
        self.check(database, OP)?;
        self.record_epoch(epoch, OP).await
    }

    /// Physical pairs with a [`LocalPgServer`](super::LocalPgServer) for the standby side:
    /// `pg_rewind` and a restart as a standby. Logical pairs with a publication
    /// ([`with_reprotect_publication`](Self::with_reprotect_publication)): the standby's
    /// published tables emptied and copied again through a new subscription. Dump pairs: a
    /// fresh dump of the primary side restored into the standby side and verified. The
    /// others, without what they need: `NotSupported`.
    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        const OP: &str = "reprotect";
        self.check(database, OP)?;
        match (&self.mode, &self.standby_server) {
            (ReplicationMode::Physical, Some(server)) => self.reprotect_physical(server).await,
            (ReplicationMode::Dump, _) => match &self.dump {
                Some(dump) => self.reprotect_dump(dump).await,
                None => Err(err(ErrorKind::InvalidConfig, OP, "dump mode without a PgDumpBackup")),
            },
            (ReplicationMode::Logical, _) => match &self.reprotect_publication {
                Some(publication) => self.reprotect_logical(publication).await,
                None => Err(err(
                    ErrorKind::NotSupported,
                    OP,
                    "this logical manager has no publication to re-protect through (with_reprotect_publication)",
                )),
            },
            (ReplicationMode::Physical, None) => Err(err(
                ErrorKind::NotSupported,
                OP,
                "this manager has no server control for the original primary (with_standby_server): follow \
                 physical_reprotect_steps by hand",
            )),
            (mode, _) => Err(err(
                ErrorKind::NotSupported,
                OP,
                format!(
                    "re-protection of a {mode} pair is not implemented by this manager: re-create the reverse replication by hand"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tablesync_slots_are_recognised_and_nothing_else() {
        assert!(super::is_tablesync_slot("pg_16397_sync_16392_7714514507511967495"));
        for other in ["sub", "forgotten", "pg_16397_sync_x_1", "pg_1_sync_2", "pg_16397_16392_1_2"] {
            assert!(!super::is_tablesync_slot(other), "{other}");
        }
    }
}
