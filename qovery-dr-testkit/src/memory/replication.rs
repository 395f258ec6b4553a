//! In-memory [`ReplicationManager`].

use std::time::Duration;

use qovery_dr_core::provider::{
    BackupInfo, CatchUp, FenceOutcome, FixupReport, Heartbeat, LinkState, Node, PromoteOutcome, PromotionState,
    ReplicationCapabilities, ReplicationManager, ReplicationMode, ReplicationStatus, ReprotectReport, Writability,
};
use qovery_dr_core::{DatabaseId, ErrorKind, Lsn, ProviderError, ProviderResult, async_trait};
use tokio::time::Instant;

use crate::world::state::{DatabaseSim, NodeSim, State};
use crate::world::{NodeCondition, PROVIDER, World};

/// A [`ReplicationManager`] over a [`World`]'s databases. "Primary" is the
/// side currently designated primary (the original primary, or after
/// [`World::reprotect`] the promoted one), so the same manager serves failback.
#[derive(Debug, Clone)]
pub struct InMemoryReplication {
    world: World,
    capabilities: ReplicationCapabilities,
}

impl InMemoryReplication {
    /// A manager with every capability.
    pub fn new(world: &World) -> Self {
        let capabilities = ReplicationCapabilities::default()
            .with_physical(true)
            .with_logical(true)
            .with_dump(true)
            .with_fencing(true)
            .with_heartbeat(true)
            .with_reprotect(true);
        Self { world: world.clone(), capabilities }
    }

    /// The same manager declaring other capabilities.
    pub fn with_capabilities(mut self, capabilities: ReplicationCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

fn err(kind: ErrorKind, op: &str, msg: String) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

fn db_mut<'a>(s: &'a mut State, id: &DatabaseId, op: &str) -> ProviderResult<&'a mut DatabaseSim> {
    s.databases.get_mut(id).ok_or_else(|| err(ErrorKind::NotFound, op, format!("database {id} does not exist")))
}

fn sides(db: &DatabaseSim) -> (&NodeSim, &NodeSim) {
    if db.reversed { (&db.b, &db.a) } else { (&db.a, &db.b) }
}

fn sides_mut(db: &mut DatabaseSim) -> (&mut NodeSim, &mut NodeSim) {
    if db.reversed { (&mut db.b, &mut db.a) } else { (&mut db.a, &mut db.b) }
}

fn unreachable(op: &str, what: &str) -> ProviderError {
    err(ErrorKind::Timeout, op, format!("cannot reach the {what}: connection timed out"))
}

/// Time since the primary was at `lsn` (heartbeat-equivalent time lag).
fn time_lag(primary: &NodeSim, lsn: Lsn, now: Instant) -> Duration {
    if lsn >= primary.lsn {
        return Duration::ZERO;
    }
    for w in primary.history.windows(2) {
        let ((t0, l0), (t1, l1)) = (w[0], w[1]);
        if l1 > lsn && l1 > l0 {
            let frac = lsn.bytes_since(l0) as f64 / l1.bytes_since(l0) as f64;
            let t = t0 + t1.duration_since(t0).mul_f64(frac.clamp(0.0, 1.0));
            return now.saturating_duration_since(t);
        }
    }
    Duration::ZERO
}

impl InMemoryReplication {
    fn check_heartbeat(&self, op: &str) -> ProviderResult<()> {
        if self.capabilities.heartbeat {
            Ok(())
        } else {
            Err(err(ErrorKind::NotSupported, op, "heartbeats are not supported by this manager".to_owned()))
        }
    }

    fn check_mode(&self, mode: ReplicationMode, op: &str) -> ProviderResult<()> {
        let ok = match mode {
            ReplicationMode::Physical => self.capabilities.physical,
            ReplicationMode::Logical => self.capabilities.logical,
            ReplicationMode::Dump => self.capabilities.dump,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(err(ErrorKind::NotSupported, op, format!("{mode} replication is not supported by this manager")))
        }
    }
}

#[async_trait]
impl ReplicationManager for InMemoryReplication {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> ReplicationCapabilities {
        self.capabilities
    }

    async fn status(&self, database: &DatabaseId) -> ProviderResult<ReplicationStatus> {
        const OP: &str = "replication.status";
        self.world
            .call(OP, false, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                self.check_mode(db.mode, OP)?;
                let link = db.link_state();
                let (p, st) = sides(db);
                let primary_reachable = p.condition == NodeCondition::Up;
                let primary_lsn = primary_reachable.then_some(p.lsn);
                let standby_lsn = (st.condition == NodeCondition::Up).then_some(st.lsn);
                let streaming = link == LinkState::Streaming || (db.mode == ReplicationMode::Dump && !st.is_primary);
                let lag_bytes = match (primary_lsn, standby_lsn) {
                    (Some(pl), Some(sl)) if streaming => Some(pl.bytes_since(sl)),
                    _ => None,
                };
                let lag = match (primary_reachable, standby_lsn) {
                    (true, Some(sl)) if streaming => Some(time_lag(p, sl, ctx.now)),
                    _ => None,
                };
                let last_backup = match (db.mode, db.dump_every) {
                    (ReplicationMode::Dump, Some(every)) if !every.is_zero() => {
                        let since = ctx.now.saturating_duration_since(db.created_at);
                        let n = u32::try_from(since.as_nanos() / every.as_nanos()).unwrap_or(u32::MAX);
                        (n > 0).then(|| {
                            let at = ctx.world.wall_at(db.created_at + every * n);
                            BackupInfo::new(at, st.lsn.0)
                                .with_restore_verified(db.restores_verified)
                                .with_last_verified_restore_at(db.restores_verified.then_some(at))
                                .with_last_failure(db.backup_failure.clone())
                        })
                    }
                    _ => None,
                };
                Ok(ReplicationStatus::new(database.clone(), db.mode, link)
                    .with_primary_lsn(primary_lsn)
                    .with_standby_replay_lsn(standby_lsn)
                    .with_lag_bytes(lag_bytes)
                    .with_lag(lag)
                    .with_last_backup(last_backup)
                    .with_standby_promoted(st.is_primary)
                    .with_slots(Vec::new()))
            })
            .await
    }

    async fn primary_writability(&self, database: &DatabaseId) -> ProviderResult<Writability> {
        const OP: &str = "replication.primary_writability";
        self.world
            .call(OP, false, database.to_string(), |s, _| {
                let db = db_mut(s, database, OP)?;
                let (p, _) = sides(db);
                Ok(match p.condition {
                    NodeCondition::Down | NodeCondition::Partitioned => Writability::Unreachable,
                    NodeCondition::Up if p.writable() => Writability::Writable,
                    NodeCondition::Up => Writability::ReadOnly,
                })
            })
            .await
    }

    async fn fence_primary(&self, database: &DatabaseId) -> ProviderResult<FenceOutcome> {
        const OP: &str = "replication.fence_primary";
        if !self.capabilities.fencing {
            return Err(err(ErrorKind::NotSupported, OP, "fencing is not supported by this manager".to_owned()));
        }
        self.world
            .call(OP, true, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                let (p, _) = sides_mut(db);
                if p.condition != NodeCondition::Up {
                    return Err(unreachable(OP, "primary"));
                }
                if p.fenced || !p.is_primary {
                    ctx.no_change();
                    return Ok(FenceOutcome::AlreadyFenced);
                }
                p.fenced = true;
                Ok(FenceOutcome::Fenced)
            })
            .await
    }

    async fn wait_for_catch_up(&self, database: &DatabaseId, request: &CatchUp) -> ProviderResult<Lsn> {
        let (target, timeout) = (request.target, request.timeout);
        const OP: &str = "replication.wait_for_catch_up";
        self.world
            .call(OP, false, format!("{database} {target} within {timeout:?}"), |s, _| {
                db_mut(s, database, OP).map(|_| ())
            })
            .await?;
        let deadline = Instant::now() + timeout;
        loop {
            let (replayed, link) = self
                .world
                .with_state(|s| s.databases.get(database).map(|db| (sides(db).1.lsn, db.link_state())))
                .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("database {database} does not exist")))?;
            if replayed >= target {
                return Ok(replayed);
            }
            if let LinkState::Broken(reason) = link {
                return Err(err(ErrorKind::Conflict, OP, format!("the standby cannot catch up to {target}: {reason}")));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(err(
                    ErrorKind::Timeout,
                    OP,
                    format!("the standby replayed up to {replayed}, not {target}, within {timeout:?}"),
                ));
            }
            tokio::time::sleep(self.world.config().poll_step.min(deadline - now)).await;
        }
    }

    /// The old primary (this manager's primary side, fenced or down) becomes a streaming
    /// standby of the promoted one, and the sides swap, as [`World::reprotect`] does.
    async fn reprotect(&self, database: &DatabaseId) -> ProviderResult<ReprotectReport> {
        const OP: &str = "replication.reprotect";
        if !self.capabilities.reprotect {
            return Err(err(ErrorKind::NotSupported, OP, "this manager was built without re-protection".into()));
        }
        self.world
            .call(OP, true, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                let (old, promoted) = sides_mut(db);
                if !promoted.is_primary {
                    if old.is_primary && db.link == crate::world::LinkSim::Up {
                        ctx.no_change();
                        return Ok(ReprotectReport::already("simulated rewind"));
                    }
                    return Err(err(
                        ErrorKind::Conflict,
                        OP,
                        format!("nothing to re-protect {database} from: its standby was never promoted"),
                    ));
                }
                if promoted.condition != NodeCondition::Up {
                    return Err(unreachable(OP, "promoted primary"));
                }
                let discarded = old.lsn.0.saturating_sub(promoted.history.first().map_or(0, |(_, l)| l.0));
                let lsn = promoted.lsn;
                let heartbeat = promoted.last_heartbeat;
                old.is_primary = false;
                old.fenced = false;
                old.condition = NodeCondition::Up;
                old.lsn = lsn;
                old.history = vec![(ctx.now, lsn)];
                old.last_heartbeat = heartbeat;
                // Rewound onto the promoted node: its rows (the epochs among them) too.
                old.epochs = promoted.epochs.clone();
                db.reversed = !db.reversed;
                db.link = crate::world::LinkSim::Up;
                db.fixed_up = false;
                Ok(ReprotectReport::new("simulated rewind").with_note(format!(
                    "the old primary of {database} was rewound onto the promoted one's timeline ({discarded} bytes of WAL after the fork discarded)"
                )))
            })
            .await
    }

    async fn promote_standby(&self, database: &DatabaseId) -> ProviderResult<PromoteOutcome> {
        const OP: &str = "replication.promote_standby";
        self.world
            .call(OP, true, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                let (_, st) = sides_mut(db);
                if st.is_primary {
                    ctx.no_change();
                    return Ok(PromoteOutcome::AlreadyPrimary);
                }
                if st.condition != NodeCondition::Up {
                    return Err(unreachable(OP, "standby"));
                }
                st.is_primary = true;
                st.fenced = false;
                st.history = vec![(ctx.now, st.lsn)];
                st.updated_at = ctx.now;
                Ok(PromoteOutcome::Promoted)
            })
            .await
    }

    /// Logical pairs: one floor per sequence of the database (`public.seq_<i>`).
    async fn promotion_state(&self, database: &DatabaseId) -> ProviderResult<PromotionState> {
        const OP: &str = "replication.promotion_state";
        self.world
            .call(OP, false, database.to_string(), |s, _| {
                let db = db_mut(s, database, OP)?;
                let mut state = PromotionState::default();
                if db.mode == ReplicationMode::Logical {
                    state.sequence_floors = (0..db.sequences).map(|i| (format!("public.seq_{i}"), 1)).collect();
                }
                Ok(state)
            })
            .await
    }

    /// Syncs the sequences `state` names (so a run that forgot to journal it syncs none).
    async fn post_promotion_fixups(
        &self,
        database: &DatabaseId,
        state: &PromotionState,
    ) -> ProviderResult<FixupReport> {
        const OP: &str = "replication.post_promotion_fixups";
        let floors = u32::try_from(state.sequence_floors.len()).unwrap_or(u32::MAX);
        self.world
            .call(OP, true, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                if !sides(db).1.is_primary {
                    return Err(err(ErrorKind::Conflict, OP, "the standby is not promoted yet".to_owned()));
                }
                if db.fixed_up {
                    ctx.no_change();
                }
                let synced = if db.mode == ReplicationMode::Logical && !db.fixed_up { floors } else { 0 };
                db.fixed_up = true;
                Ok(FixupReport::default().with_sequences_synced(synced).with_warnings(Vec::new()))
            })
            .await
    }

    async fn write_heartbeat(&self, database: &DatabaseId) -> ProviderResult<Heartbeat> {
        const OP: &str = "replication.write_heartbeat";
        self.check_heartbeat(OP)?;
        self.world
            .call(OP, true, database.to_string(), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                let seq = db.next_heartbeat;
                let reversed = db.reversed;
                let (p, _) = sides_mut(db);
                if p.condition != NodeCondition::Up {
                    return Err(unreachable(OP, "primary"));
                }
                if !p.writable() {
                    return Err(err(
                        ErrorKind::Conflict,
                        OP,
                        "the primary refuses writes (fenced or in recovery)".to_owned(),
                    ));
                }
                let written_at = ctx.wall();
                p.lsn = p.lsn.advance(128);
                p.history.push((ctx.now, p.lsn));
                p.last_heartbeat = Some((seq, written_at));
                let lsn = p.lsn;
                db.next_heartbeat += 1;
                if reversed {
                    db.heartbeats_on_b.push((seq, written_at, lsn))
                } else {
                    db.heartbeats_on_a.push((seq, written_at, lsn))
                }
                Ok(Heartbeat::new(seq, written_at))
            })
            .await
    }

    async fn last_heartbeat(&self, database: &DatabaseId, node: Node) -> ProviderResult<Option<Heartbeat>> {
        const OP: &str = "replication.last_heartbeat";
        self.check_heartbeat(OP)?;
        self.world
            .call(OP, false, format!("{database} {node:?}"), |s, _| {
                let db = db_mut(s, database, OP)?;
                let (p, st) = sides(db);
                let n = match node {
                    Node::Primary => p,
                    Node::Standby => st,
                };
                if n.condition != NodeCondition::Up {
                    return Err(unreachable(OP, if node == Node::Primary { "primary" } else { "standby" }));
                }
                Ok(n.last_heartbeat.map(|(sequence, written_at)| Heartbeat::new(sequence, written_at)))
            })
            .await
    }

    async fn failover_epoch(
        &self,
        database: &DatabaseId,
        node: Node,
    ) -> ProviderResult<Option<qovery_dr_core::FailoverEpoch>> {
        const OP: &str = "replication.failover_epoch";
        self.world
            .call(OP, false, format!("{database} {node:?}"), |s, _| {
                let db = db_mut(s, database, OP)?;
                let (p, st) = sides(db);
                let n = if node == Node::Primary { p } else { st };
                if n.condition != NodeCondition::Up {
                    return Err(unreachable(OP, if node == Node::Primary { "primary" } else { "standby" }));
                }
                Ok(n.epochs.iter().max_by_key(|e| e.epoch).cloned())
            })
            .await
    }

    async fn record_failover_epoch(
        &self,
        database: &DatabaseId,
        epoch: &qovery_dr_core::FailoverEpoch,
    ) -> ProviderResult<()> {
        const OP: &str = "replication.record_failover_epoch";
        self.world
            .call(OP, true, format!("{database} epoch {}", epoch.epoch), |s, ctx| {
                let db = db_mut(s, database, OP)?;
                let (_, promoted) = sides_mut(db);
                if promoted.condition != NodeCondition::Up {
                    return Err(unreachable(OP, "promoted primary"));
                }
                if !promoted.writable() {
                    return Err(err(ErrorKind::Conflict, OP, "the standby is not a writable primary".to_owned()));
                }
                match promoted.epochs.iter().max_by_key(|e| e.epoch) {
                    Some(e) if e.epoch == epoch.epoch && e.run_id == epoch.run_id => {
                        ctx.no_change();
                        return Ok(());
                    }
                    Some(e) if e.epoch >= epoch.epoch => {
                        return Err(err(
                            ErrorKind::Conflict,
                            OP,
                            format!("epoch {} (run {}) is already recorded in {database}", e.epoch, e.run_id),
                        ));
                    }
                    _ => {}
                }
                promoted.epochs.push(epoch.clone());
                Ok(())
            })
            .await
    }
}
