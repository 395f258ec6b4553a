//! Conformance checks for [`ReplicationManager`].

use std::time::Duration;

use qovery_dr_core::provider::{
    FenceOutcome, LinkState, Node, PromoteOutcome, ReplicationManager, ReplicationMode, Writability,
};
use qovery_dr_core::{DatabaseId, ErrorKind};

use super::{assert_kind, eventually};

/// What the replication checks need.
#[derive(Debug, Clone)]
pub struct ReplicationFixture<P> {
    /// The implementation under test.
    pub provider: P,
    /// A healthy pair: writable primary, replicating standby. The checks fence and promote it.
    pub database: DatabaseId,
    /// How long the standby may take to catch up.
    pub catch_up_timeout: Duration,
    /// How often to poll.
    pub poll_interval: Duration,
}

const MISSING: &str = "qdr-conformance-missing-db";

/// `status` of a healthy pair: a declared mode, a live link, replay not ahead of the primary.
pub async fn status_of_a_healthy_pair<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    let s = f.provider.status(&f.database).await.expect("status");
    assert_eq!(s.database, f.database);
    let caps = f.provider.capabilities();
    let declared = match s.mode {
        ReplicationMode::Physical => caps.physical,
        ReplicationMode::Logical => caps.logical,
        ReplicationMode::Dump => caps.dump,
        other => panic!("mode {other} is newer than this suite: update qovery-dr-testkit"),
    };
    assert!(declared, "mode {} is declared in the capabilities", s.mode);
    match s.mode {
        ReplicationMode::Dump => assert_eq!(s.link, LinkState::NotApplicable),
        _ => assert_eq!(s.link, LinkState::Streaming, "a healthy pair is streaming"),
    }
    if let (Some(p), Some(r)) = (s.primary_lsn, s.standby_replay_lsn) {
        assert!(r <= p, "replay {r} is not ahead of the primary {p}");
        if let Some(b) = s.lag_bytes {
            assert_eq!(b, p.bytes_since(r), "lag_bytes is the LSN distance");
        }
    }
    assert_kind(f.provider.status(&DatabaseId::new(MISSING)).await, ErrorKind::NotFound, "status(unknown)");
}

/// Heartbeats increase, are readable on the primary, and reach the standby.
pub async fn heartbeats_round_trip<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    if !f.provider.capabilities().heartbeat {
        assert_kind(
            f.provider.write_heartbeat(&f.database).await,
            ErrorKind::NotSupported,
            "heartbeat without capability",
        );
        return;
    }
    let h1 = f.provider.write_heartbeat(&f.database).await.expect("write_heartbeat");
    let h2 = f.provider.write_heartbeat(&f.database).await.expect("write_heartbeat");
    assert!(h2.sequence > h1.sequence, "sequences increase");
    assert!(h2.written_at >= h1.written_at, "times do not go back");
    let on_primary = f.provider.last_heartbeat(&f.database, Node::Primary).await.expect("last_heartbeat(primary)");
    assert_eq!(on_primary.map(|h| h.sequence), Some(h2.sequence), "the primary shows its last heartbeat");
    let mode = f.provider.status(&f.database).await.expect("status").mode;
    if mode != ReplicationMode::Dump {
        let seen = eventually(f.catch_up_timeout, f.poll_interval, || async {
            let h = f.provider.last_heartbeat(&f.database, Node::Standby).await.expect("last_heartbeat(standby)");
            h.filter(|h| h.sequence >= h2.sequence)
        })
        .await;
        assert!(seen.is_some(), "the standby shows heartbeat {} within {:?}", h2.sequence, f.catch_up_timeout);
    }
    assert_kind(
        f.provider.write_heartbeat(&DatabaseId::new(MISSING)).await,
        ErrorKind::NotFound,
        "write_heartbeat(unknown)",
    );
}

/// Fencing is idempotent and verified: the primary refuses writes afterwards.
pub async fn fence_is_idempotent_and_verified<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    if !f.provider.capabilities().fencing {
        assert_kind(f.provider.fence_primary(&f.database).await, ErrorKind::NotSupported, "fence without capability");
        return;
    }
    assert_eq!(f.provider.primary_writability(&f.database).await.expect("writability"), Writability::Writable);
    assert_eq!(f.provider.fence_primary(&f.database).await.expect("fence"), FenceOutcome::Fenced);
    assert_eq!(f.provider.fence_primary(&f.database).await.expect("fence again"), FenceOutcome::AlreadyFenced);
    assert_eq!(f.provider.primary_writability(&f.database).await.expect("writability"), Writability::ReadOnly);
    if f.provider.capabilities().heartbeat {
        assert_kind(f.provider.write_heartbeat(&f.database).await, ErrorKind::Conflict, "write on a fenced primary");
    }
}

/// After fencing (where supported), the standby catches up to the primary's
/// final position (for dumps: to the last restored position).
pub async fn catch_up_to_the_final_position<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    if f.provider.capabilities().fencing {
        f.provider.fence_primary(&f.database).await.expect("fence");
    }
    let s = f.provider.status(&f.database).await.expect("status");
    let target = match s.mode {
        ReplicationMode::Dump => s.standby_replay_lsn.expect("a dump standby reports its restored position"),
        _ => s.primary_lsn.expect("a reachable primary reports its LSN"),
    };
    let reached = f
        .provider
        .wait_for_catch_up(&f.database, &qovery_dr_core::provider::CatchUp::new(target, f.catch_up_timeout))
        .await
        .expect("catch up");
    assert!(reached >= target, "replayed {reached} ≥ target {target}");
}

/// Waiting for a position the primary never reaches times out.
pub async fn catch_up_times_out<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    let s = f.provider.status(&f.database).await.expect("status");
    let beyond = s.primary_lsn.unwrap_or_default().advance(1 << 40);
    assert_kind(
        f.provider
            .wait_for_catch_up(&f.database, &qovery_dr_core::provider::CatchUp::new(beyond, Duration::from_secs(1)))
            .await,
        ErrorKind::Timeout,
        "catch up to an unreachable position",
    );
}

/// Promotion is idempotent and makes the standby writable; fix-ups are idempotent
/// and refused before promotion.
pub async fn promote_is_idempotent<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    let state = f.provider.promotion_state(&f.database).await.expect("promotion state (read-only)");
    assert_kind(
        f.provider.post_promotion_fixups(&f.database, &state).await,
        ErrorKind::Conflict,
        "fix-ups before promotion",
    );
    assert!(!f.provider.status(&f.database).await.expect("status").standby_promoted, "not promoted yet");
    if f.provider.capabilities().fencing {
        f.provider.fence_primary(&f.database).await.expect("fence first");
    }
    assert_eq!(f.provider.promote_standby(&f.database).await.expect("promote"), PromoteOutcome::Promoted);
    assert_eq!(f.provider.promote_standby(&f.database).await.expect("promote again"), PromoteOutcome::AlreadyPrimary);
    f.provider.post_promotion_fixups(&f.database, &state).await.expect("fix-ups");
    f.provider.post_promotion_fixups(&f.database, &state).await.expect("fix-ups again");
    let s = f.provider.status(&f.database).await.expect("status after promotion");
    assert_eq!(s.link, LinkState::NotApplicable, "a promoted standby has no upstream link");
    assert!(s.standby_promoted, "the status shows the promotion");
    assert_kind(f.provider.promote_standby(&DatabaseId::new(MISSING)).await, ErrorKind::NotFound, "promote(unknown)");
}

/// Re-protection never rewrites a standby that already follows its primary: on the
/// healthy pair it answers `already` (the standby follows) or `Conflict` (nothing was
/// promoted to re-protect from), and the pair is left as it was. Without the `reprotect`
/// capability it is `NotSupported`; an unknown database is `NotFound`.
pub async fn reprotect_leaves_a_healthy_pair_alone<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    if !f.provider.capabilities().reprotect {
        assert_kind(
            f.provider.reprotect(&f.database).await,
            ErrorKind::NotSupported,
            "reprotect without the reprotect capability",
        );
        return;
    }
    let before = f.provider.status(&f.database).await.expect("status");
    match f.provider.reprotect(&f.database).await {
        Ok(report) => assert!(
            report.already,
            "re-protected a standby that already follows its primary (what it wrote would be discarded): {report:?}"
        ),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "reprotect of a healthy pair: {e}"),
    }
    let after = f.provider.status(&f.database).await.expect("status after reprotect");
    assert_eq!(after.standby_promoted, before.standby_promoted, "reprotect changed which side is primary");
    assert_eq!(after.link, before.link, "reprotect changed the link of a healthy pair");
    assert_eq!(
        f.provider.primary_writability(&f.database).await.expect("writability"),
        Writability::Writable,
        "the primary stays writable"
    );
    assert_kind(f.provider.reprotect(&DatabaseId::new(MISSING)).await, ErrorKind::NotFound, "reprotect(unknown)");
}

/// The failover epoch in the promoted database: refused (`Conflict`) before promotion;
/// after it, none at first, recorded and read back on the promoted side, the same epoch
/// of the same run again a no-op, the same number from another run or an older epoch a
/// `Conflict` that leaves the newest alone. A manager that keeps none answers
/// `NotSupported` to both the read and the record.
pub async fn failover_epoch_is_recorded_guarded<P: ReplicationManager>(f: &ReplicationFixture<P>) {
    use qovery_dr_core::{FailoverEpoch, Timestamp};
    let epoch = |n: u64, run: &str| FailoverEpoch::new(n, run, "failover", Timestamp::from_unix_millis(0));
    let first = f.provider.failover_epoch(&f.database, Node::Standby).await;
    if let Err(e) = &first
        && e.kind() == ErrorKind::NotSupported
    {
        assert_kind(
            f.provider.record_failover_epoch(&f.database, &epoch(1, "run-a")).await,
            ErrorKind::NotSupported,
            "record_failover_epoch without support",
        );
        return;
    }
    assert_eq!(first.expect("failover_epoch"), None, "no epoch in a fresh pair");
    assert_kind(
        f.provider.record_failover_epoch(&f.database, &epoch(1, "run-a")).await,
        ErrorKind::Conflict,
        "recording an epoch before promotion",
    );
    if f.provider.capabilities().fencing {
        f.provider.fence_primary(&f.database).await.expect("fence");
    }
    f.provider.promote_standby(&f.database).await.expect("promote");
    let read = || async { f.provider.failover_epoch(&f.database, Node::Standby).await.expect("read").map(|e| e.epoch) };
    f.provider.record_failover_epoch(&f.database, &epoch(1, "run-a")).await.expect("record epoch 1");
    assert_eq!(read().await, Some(1), "the promoted side holds the epoch");
    f.provider.record_failover_epoch(&f.database, &epoch(1, "run-a")).await.expect("record epoch 1 again (a retry)");
    assert_kind(
        f.provider.record_failover_epoch(&f.database, &epoch(1, "run-b")).await,
        ErrorKind::Conflict,
        "epoch 1 from another run",
    );
    f.provider.record_failover_epoch(&f.database, &epoch(2, "run-b")).await.expect("record epoch 2");
    assert_kind(
        f.provider.record_failover_epoch(&f.database, &epoch(1, "run-c")).await,
        ErrorKind::Conflict,
        "recording an older epoch",
    );
    assert_eq!(read().await, Some(2), "the newer epoch stays");
    assert_kind(
        f.provider.record_failover_epoch(&DatabaseId::new(MISSING), &epoch(3, "run-d")).await,
        ErrorKind::NotFound,
        "record_failover_epoch(unknown)",
    );
}

/// Expands to one `#[tokio::test]` per replication check, in a module named `$name`.
/// `$setup` is an expression giving a future of a fresh [`ReplicationFixture`].
#[macro_export]
macro_rules! replication_manager_conformance {
    ($name:ident, $setup:expr) => {
        $crate::replication_manager_conformance!(@inner $name, $setup, #[::tokio::test]);
    };
    ($name:ident, $setup:expr, start_paused) => {
        $crate::replication_manager_conformance!(@inner $name, $setup, #[::tokio::test(start_paused = true)]);
    };
    (@inner $name:ident, $setup:expr, #[$test:meta]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(replication, $setup, #[$test], [
                status_of_a_healthy_pair,
                heartbeats_round_trip,
                fence_is_idempotent_and_verified,
                catch_up_to_the_final_position,
                catch_up_times_out,
                promote_is_idempotent,
                reprotect_leaves_a_healthy_pair_alone,
                failover_epoch_is_recorded_guarded,
            ]);
        }
    };
}
