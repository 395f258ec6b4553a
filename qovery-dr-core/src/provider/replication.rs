//! [`ReplicationManager`]: the database pair whose lag is the RPO.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::ProviderResult;
use crate::model::{DatabaseId, FailoverEpoch, Lsn, Timestamp};

/// What a replication manager supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReplicationCapabilities {
    /// Physical streaming replication.
    pub physical: bool,
    /// Logical replication (publications/subscriptions).
    pub logical: bool,
    /// Periodic dumps restored on the DR side.
    pub dump: bool,
    /// [`ReplicationManager::fence_primary`] works.
    pub fencing: bool,
    /// Heartbeat writes/reads work (measured RPO).
    pub heartbeat: bool,
    /// [`ReplicationManager::reprotect`] works.
    #[serde(default)]
    pub reprotect: bool,
}

with_setters!(ReplicationCapabilities {
    set {
        with_physical => physical: bool,
        with_logical => logical: bool,
        with_dump => dump: bool,
        with_fencing => fencing: bool,
        with_heartbeat => heartbeat: bool,
        with_reprotect => reprotect: bool,
    }
});

/// How the old primary is fenced before a planned promotion.
///
/// ```
/// use qovery_dr_core::provider::FenceKind;
/// assert_eq!(FenceKind::default(), FenceKind::Logins);
/// assert_eq!(serde_json::from_str::<FenceKind>("\"read-only\"").unwrap(), FenceKind::ReadOnly);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FenceKind {
    /// No client can commit: every login role but the orchestrator's own (and the
    /// replication roles streaming from it) loses its login and its sessions; the
    /// databases are made read-only too. Logins come back on the promoted side and
    /// on unfence.
    #[default]
    Logins,
    /// Weaker, named on purpose: the databases default to read-only and sessions are
    /// terminated, but a client that asks (`BEGIN READ WRITE`,
    /// `SET default_transaction_read_only = off`) can still commit. Only when the plan
    /// chooses it (applications that cannot lose their login, e.g. a shared role).
    ReadOnly,
}

/// How the DR copy is kept up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReplicationMode {
    /// Physical streaming (WAL shipping).
    Physical,
    /// Logical replication.
    Logical,
    /// Periodic dump and restore.
    Dump,
}

impl ReplicationMode {
    /// The lowercase name used in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationMode::Physical => "physical",
            ReplicationMode::Logical => "logical",
            ReplicationMode::Dump => "dump",
        }
    }
}

impl fmt::Display for ReplicationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The replication link as observed on the standby.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
#[non_exhaustive]
pub enum LinkState {
    /// Receiving and replaying.
    Streaming,
    /// No WAL receiver / subscription worker, or replay not advancing.
    Down(String),
    /// Diverged (e.g. another timeline): cannot catch up.
    Broken(String),
    /// There is no link (dump strategy, or the standby was promoted).
    NotApplicable,
}

/// A completed backup (dump strategy).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BackupInfo {
    /// When it finished.
    pub finished_at: Timestamp,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Whether a restore of it was verified.
    pub restore_verified: bool,
    /// When a restore of a dump (this one or an older one) was last verified: restored
    /// into a scratch database and compared with its source.
    #[serde(default)]
    pub last_verified_restore_at: Option<Timestamp>,
    /// The last failed attempt (dump, upload or restore check), when it came after the last
    /// success of its kind.
    #[serde(default)]
    pub last_failure: Option<BackupFailure>,
}

impl BackupInfo {
    /// A backup finished at `finished_at`, `size_bytes` long, whose restore was not verified.
    pub fn new(finished_at: Timestamp, size_bytes: u64) -> Self {
        Self { finished_at, size_bytes, restore_verified: false, last_verified_restore_at: None, last_failure: None }
    }
}

with_setters!(BackupInfo {
    set { with_restore_verified => restore_verified: bool }
    some {
        with_last_verified_restore_at => last_verified_restore_at: Timestamp,
        with_last_failure => last_failure: BackupFailure,
    }
});

/// A dump or restore check that failed, as recorded beside the dumps.
///
/// ```
/// use qovery_dr_core::Timestamp;
/// use qovery_dr_core::provider::BackupFailure;
/// let f = BackupFailure::new(Timestamp::from_unix_millis(0), "dump", "pg_dump exited with 1");
/// assert_eq!(f.to_string(), "dump failed at 1970-01-01T00:00:00.000Z: pg_dump exited with 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BackupFailure {
    /// When it failed.
    pub at: Timestamp,
    /// What failed: `dump` (taking or storing a dump) or `restore-check` (restoring one
    /// into the scratch database, or comparing it with the source).
    pub stage: String,
    /// Why, as the failing call reported it.
    pub reason: String,
}

impl BackupFailure {
    /// A failure of `stage` at `at`, for `reason`.
    pub fn new(at: Timestamp, stage: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { at, stage: stage.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for BackupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed at {}: {}", self.stage, self.at, self.reason)
    }
}

/// A replication slot on the primary (PostgreSQL `pg_replication_slots`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SlotInfo {
    /// Its name.
    pub name: String,
    /// `physical` or `logical`.
    pub kind: String,
    /// Whether a consumer is connected.
    pub active: bool,
    /// The oldest WAL it retains.
    pub restart_lsn: Option<Lsn>,
    /// What a logical consumer confirmed.
    pub confirmed_flush_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Bytes it can still retain before it is lost (NULL without `max_slot_wal_keep_size`).
    pub safe_wal_size: Option<i64>,
}

impl SlotInfo {
    /// Slot `name` of `kind` (`physical`, `logical`), active or not; positions unknown.
    pub fn new(name: impl Into<String>, kind: impl Into<String>, active: bool) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            active,
            restart_lsn: None,
            confirmed_flush_lsn: None,
            wal_status: None,
            safe_wal_size: None,
        }
    }
}

with_setters!(SlotInfo {
    some {
        with_restart_lsn => restart_lsn: Lsn,
        with_confirmed_flush_lsn => confirmed_flush_lsn: Lsn,
        with_wal_status => wal_status: String,
        with_safe_wal_size => safe_wal_size: i64,
    }
});

/// A replication status snapshot. Fields PostgreSQL reports as NULL in normal
/// states are `Option`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReplicationStatus {
    /// The database.
    pub database: DatabaseId,
    /// The mode.
    pub mode: ReplicationMode,
    /// The link.
    pub link: LinkState,
    /// The primary's current WAL position, if reachable.
    pub primary_lsn: Option<Lsn>,
    /// The standby's replayed position.
    pub standby_replay_lsn: Option<Lsn>,
    /// Bytes of WAL not yet replayed on the standby.
    pub lag_bytes: Option<u64>,
    /// Time lag measured with the heartbeat (never `now - last replay time`).
    #[serde(with = "opt_duration_ms")]
    pub lag: Option<Duration>,
    /// The last successful backup (dump strategy).
    pub last_backup: Option<BackupInfo>,
    /// Whether the standby has been promoted (it no longer replays; it is a primary).
    pub standby_promoted: bool,
    /// Replication slots on the primary (empty where the notion does not apply).
    #[serde(default)]
    pub slots: Vec<SlotInfo>,
}

impl ReplicationStatus {
    /// `database` replicated by `mode`, its link in `link`; positions, lag and backup
    /// unknown, the standby not promoted, no slot.
    pub fn new(database: DatabaseId, mode: ReplicationMode, link: LinkState) -> Self {
        Self {
            database,
            mode,
            link,
            primary_lsn: None,
            standby_replay_lsn: None,
            lag_bytes: None,
            lag: None,
            last_backup: None,
            standby_promoted: false,
            slots: Vec::new(),
        }
    }
}

with_setters!(ReplicationStatus {
    set {
        with_standby_promoted => standby_promoted: bool,
        with_slots => slots: Vec<SlotInfo>,
    }
    some {
        with_primary_lsn => primary_lsn: Lsn,
        with_standby_replay_lsn => standby_replay_lsn: Lsn,
        with_lag_bytes => lag_bytes: u64,
        with_lag => lag: Duration,
        with_last_backup => last_backup: BackupInfo,
    }
});

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Whether the old primary can accept writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Writability {
    /// It accepts writes.
    Writable,
    /// It is up and refuses writes (fenced, or in recovery).
    ReadOnly,
    /// It cannot be reached: it may or may not accept writes from others.
    Unreachable,
}

/// What [`ReplicationManager::fence_primary`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FenceOutcome {
    /// It was writable and is now fenced.
    Fenced,
    /// It was already fenced.
    AlreadyFenced,
}

/// What [`ReplicationManager::promote_standby`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PromoteOutcome {
    /// The standby was promoted now.
    Promoted,
    /// It was already a primary.
    AlreadyPrimary,
}

/// What [`ReplicationManager::wait_for_catch_up`] waits for: a position, within a time.
/// Built with [`CatchUp::new`]; fields added later get defaults, so implementations and
/// callers keep compiling.
///
/// ```
/// use qovery_dr_core::provider::CatchUp;
/// use std::time::Duration;
/// let c = CatchUp::new("0/3000060".parse().unwrap(), Duration::from_secs(30));
/// assert_eq!(c.timeout, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatchUp {
    /// The position the standby must have replayed.
    pub target: Lsn,
    /// How long to wait at most.
    pub timeout: Duration,
}

impl CatchUp {
    /// Wait until `target` is replayed, at most `timeout`.
    pub fn new(target: Lsn, timeout: Duration) -> Self {
        Self { target, timeout }
    }
}

/// What the post-promotion fix-ups need to know from before the promotion, read by
/// [`ReplicationManager::promotion_state`] once the old primary is fenced (or found
/// unreachable) and journaled by the engine, so that a process that dies between the
/// promotion and the fix-ups resumes with it instead of with an empty memory.
///
/// ```
/// use qovery_dr_core::provider::PromotionState;
/// let mut s = PromotionState::default();
/// s.sequence_floors.insert("public.orders_id_seq".into(), 41);
/// let mut later = PromotionState::default();
/// later.sequence_floors.insert("public.orders_id_seq".into(), 42);
/// later.replication_slots.push("dr_sub".into());
/// s.merge(later);
/// assert_eq!(s.sequence_floors["public.orders_id_seq"], 42);
/// assert_eq!(s.replication_slots, ["dr_sub"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PromotionState {
    /// Sequence values used on the old primary (logical replication does not carry
    /// sequences): the fix-ups move the promoted side's sequences past them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sequence_floors: std::collections::BTreeMap<String, i64>,
    /// Replication slots on the old primary that the DR side consumes: after the
    /// promotion they are orphaned if left there (their WAL retention fills its disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replication_slots: Vec<String>,
    /// What could not be read (shown to the operator with the fix-ups' warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl PromotionState {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.sequence_floors.is_empty() && self.replication_slots.is_empty() && self.warnings.is_empty()
    }

    /// Adds what `other` knows (the larger floor of each sequence wins).
    pub fn merge(&mut self, other: PromotionState) {
        for (name, value) in other.sequence_floors {
            let floor = self.sequence_floors.entry(name).or_insert(value);
            *floor = (*floor).max(value);
        }
        for slot in other.replication_slots {
            if !self.replication_slots.contains(&slot) {
                self.replication_slots.push(slot);
            }
        }
        self.warnings.extend(other.warnings);
    }
}

/// What the post-promotion fix-ups did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FixupReport {
    /// Sequences advanced past the values used on the old primary (logical replication).
    pub sequences_synced: u32,
    /// Things left for an operator (e.g. a replication slot orphaned on a dead publisher).
    pub warnings: Vec<String>,
}

with_setters!(FixupReport {
    set {
        with_sequences_synced => sequences_synced: u32,
        with_warnings => warnings: Vec<String>,
    }
});

/// Which node of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// The (old) primary.
    Primary,
    /// The standby (or the promoted new primary).
    Standby,
}

/// One heartbeat row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Heartbeat {
    /// Monotonic sequence number.
    pub sequence: u64,
    /// When the primary wrote it (the database's clock).
    pub written_at: Timestamp,
    /// The clock of the server it was read from, at the read (`None` if the provider
    /// does not say). The engine uses it to put `written_at` on its own clock before
    /// comparing the two, so that a skew between the orchestrator and the databases
    /// cannot shrink a data-loss bound (the databases' clocks are assumed in sync with
    /// each other: hosts of one replicated pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<Timestamp>,
}

impl Heartbeat {
    /// Heartbeat number `sequence`, written at `written_at`, not yet read.
    pub fn new(sequence: u64, written_at: Timestamp) -> Self {
        Self { sequence, written_at, read_at: None }
    }
}

with_setters!(Heartbeat { some { with_read_at => read_at: Timestamp } });

/// What [`ReplicationManager::reprotect`] did.
///
/// ```
/// use qovery_dr_core::provider::ReprotectReport;
/// let r = ReprotectReport::new("pg_rewind").with_note("writes after the fork were discarded");
/// assert!(!r.already && r.notes.len() == 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReprotectReport {
    /// How (e.g. `pg_rewind`, `resubscribe`, `dump`).
    pub method: String,
    /// The standby followed the primary already: nothing was done.
    pub already: bool,
    /// What an operator should know (e.g. what was discarded).
    pub notes: Vec<String>,
}

impl ReprotectReport {
    /// Re-protected now, by `method`.
    pub fn new(method: impl Into<String>) -> Self {
        Self { method: method.into(), already: false, notes: Vec::new() }
    }

    /// The standby already followed: nothing done.
    pub fn already(method: impl Into<String>) -> Self {
        Self { method: method.into(), already: true, notes: Vec::new() }
    }

    /// The same report with one more note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// A replicated database pair: PostgreSQL, or your own.
#[async_trait]
pub trait ReplicationManager: Send + Sync + Debug + 'static {
    /// A short name for errors and reports (e.g. `postgres`).
    fn name(&self) -> &str;

    /// The modes and operations this implementation supports.
    fn capabilities(&self) -> ReplicationCapabilities;

    /// What each operation depends on (control or data plane, and where), for the
    /// static-stability lint ([`crate::stability`]). Default: nothing declared (the
    /// lint lists the steps using this provider as not checked).
    fn planes(&self) -> crate::stability::Planes {
        crate::stability::Planes::undeclared(self.name())
    }

    /// What the operations on `database` depend on (a router answers with the
    /// database's manager's). Default: [`planes`](Self::planes).
    fn planes_for(&self, database: &DatabaseId) -> crate::stability::Planes {
        let _ = database;
        self.planes()
    }

    /// A status snapshot.
    ///
    /// # Contract
    /// Read-only. `NotFound` for an unknown database. A link whose receiver is
    /// missing or whose replay stopped is `Down`, never `Streaming`.
    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus>;

    /// Whether the old primary accepts writes.
    ///
    /// # Contract
    /// Read-only. An unreachable primary is `Ok(Unreachable)`, not an error.
    async fn primary_writability(&self, database: &DatabaseId) -> ProviderResult<Writability>;

    /// Makes the old primary refuse writes (and verifies it does).
    ///
    /// # Contract
    /// Idempotent (`AlreadyFenced`). `Timeout`/`Transient` if the primary
    /// cannot be reached: it is then NOT fenced. `NotSupported` without the
    /// `fencing` capability. Afterwards [`primary_writability`](Self::primary_writability)
    /// is `ReadOnly`.
    async fn fence_primary(&self, database: &DatabaseId) -> ProviderResult<FenceOutcome>;

    /// Waits until the standby has replayed up to `target`, at most `timeout`.
    ///
    /// # Contract
    /// Read-only on the primary. Returns the replayed position (≥ `target`). `Timeout` if
    /// not reached in time; `Conflict` if the link is broken and never will. A streaming
    /// pair only waits; a dump pair, which has no stream, catches up by restoring a dump
    /// of the (fenced) primary taken now into the standby.
    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn>;

    /// Promotes the standby to a writable primary.
    ///
    /// # Contract
    /// Idempotent (`AlreadyPrimary`). Not reversible: past the point of no
    /// return. The engine calls it only after fencing or proving the old
    /// primary down. Afterwards the standby accepts writes.
    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome>;

    /// What the fix-ups will need, read before the promotion (after the fence): see
    /// [`PromotionState`]. The engine journals it.
    ///
    /// # Contract
    /// Read-only. Answers even when the old primary is unreachable (with what the
    /// standby side and earlier reads know, and a warning). The default knows nothing.
    async fn promotion_state(&self, database: &DatabaseId) -> ProviderResult<PromotionState> {
        let _ = database;
        Ok(PromotionState::default())
    }

    /// Fix-ups after promotion (e.g. sequences for logical replication), from the
    /// state journaled before it (`state`), never from the manager's memory alone.
    ///
    /// # Contract
    /// Idempotent. `Conflict` if the standby is not promoted yet.
    async fn post_promotion_fixups(&self, database: &DatabaseId, state: &PromotionState)
    -> ProviderResult<FixupReport>;

    /// Writes a heartbeat row on the primary.
    ///
    /// # Contract
    /// Not idempotent (each call writes a new, higher sequence). `Conflict` if
    /// the primary refuses writes (fenced); `Transient`/`Timeout` if unreachable.
    async fn write_heartbeat(&self, database: &DatabaseId) -> ProviderResult<Heartbeat>;

    /// The newest heartbeat present on a node.
    ///
    /// # Contract
    /// Read-only. `Ok(None)` if no heartbeat was ever written or replicated there.
    async fn last_heartbeat(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<Heartbeat>>;

    /// Re-protection after a promotion: makes the standby side (the old primary the
    /// promotion left behind) follow the primary side again, so that a failback can
    /// promote it in turn.
    ///
    /// # Contract
    /// Idempotent (`already` when the standby follows the primary). `Conflict` when there
    /// is nothing to re-protect from (the primary side is not a promoted primary). It
    /// discards what the standby side wrote after the fork, and says so in `notes`; it
    /// never touches the primary side's data. Afterwards [`status`](Self::status) shows
    /// the link `Streaming` (or, for dumps, a restored dump), possibly after a catch-up.
    /// `NotSupported` without the `reprotect` capability (the default).
    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        Err(crate::error::ProviderError::new(
            crate::error::ErrorKind::NotSupported,
            self.name(),
            "reprotect",
            format!("this replication manager cannot re-protect {database}: make the old primary a standby by hand"),
        ))
    }

    /// The newest failover epoch recorded in `database` on `node` (`None`: none yet).
    ///
    /// # Contract
    /// Read-only. `NotSupported` when the manager keeps no epoch (the default).
    async fn failover_epoch(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<FailoverEpoch>> {
        let _ = node;
        Err(crate::error::ProviderError::new(
            crate::error::ErrorKind::NotSupported,
            self.name(),
            "failover_epoch",
            format!("this replication manager keeps no failover epoch in {database}"),
        ))
    }

    /// Records `epoch` in the promoted database (the standby side, now the primary), where
    /// applications can compare their own epoch with it.
    ///
    /// # Contract
    /// Idempotent: recording the same epoch of the same run again is a no-op. An epoch
    /// not above the newest recorded one (by another run) is a `Conflict`, and so is
    /// recording before the standby is promoted. `NotSupported` when the manager keeps no
    /// epoch (the default). Checked by
    /// `qovery_dr_testkit::conformance::replication::failover_epoch_is_recorded_guarded`.
    async fn record_failover_epoch(&self, database: &DatabaseId, epoch: &FailoverEpoch) -> ProviderResult<()> {
        Err(crate::error::ProviderError::new(
            crate::error::ErrorKind::NotSupported,
            self.name(),
            "record_failover_epoch",
            format!("this replication manager cannot record epoch {} in {database}", epoch.epoch),
        ))
    }
}

replication_manager_methods!(emit_forwarding!(Arc));
replication_manager_methods!(emit_forwarding!(Box));
