//! EtcdFailoverLock and EtcdJournal against real etcd.

use std::time::Duration;

use qovery_dr_core::engine::{FailoverLock, Journal, JournalError, JournalEvent, Outcome, RunMode};
use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
use qovery_dr_testkit::{World, WorldConfig};

use qovery_dr_testkit::etcd_server::EtcdServer as Etcd;

use crate::lock_fixtures::{engine_with, entry, example_plan, holder, plan_name};

pub(super) async fn connect(etcd: &Etcd, ttl: Duration) -> EtcdFailoverLock {
    EtcdFailoverLock::connect(
        EtcdConfig::new(etcd.endpoints()).with_lease_ttl(ttl).with_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap()
}

// Exclusivity, re-entry, tokens, ordering and no-overwrite: `lock_conformance.rs`.

#[tokio::test]
async fn the_refused_orchestrator_names_the_holder_and_cannot_write_before_the_successor() {
    let etcd = Etcd::single().unwrap();
    let plan = plan_name();
    let (a, b) = (connect(&etcd, Duration::from_secs(10)).await, connect(&etcd, Duration::from_secs(10)).await);
    let ga = a.acquire(&plan, &holder("run-a", "alice@laptop")).await.unwrap();
    let err = b.acquire(&plan, &holder("run-b", "bob@ci")).await.unwrap_err();
    assert!(err.to_string().contains("run run-a by alice@laptop"), "{err}");
    a.journal(&plan).append(&ga, &entry(0, "run-a")).await.unwrap();
    // Once the lock is released, the old guard is refused even before anyone else writes:
    // etcd compares it with the lock key itself.
    a.release(&plan, "run-a").await.unwrap();
    let refused = a.journal(&plan).append(&ga, &entry(1, "run-a")).await.unwrap_err();
    assert!(matches!(refused, JournalError::Refused(_)), "{refused}");
    // Another machine reads the journal without holding the lock.
    assert_eq!(b.journal(&plan).entries().await.unwrap().len(), 1);
}

#[test]
fn a_holder_paused_past_its_lease_is_fenced_out_of_the_journal() {
    let etcd = Etcd::single().unwrap();
    let plan = plan_name();
    // The first holder runs on its own single-threaded runtime: its tasks (the lease
    // keep-alive included) only run while we drive it, so not driving it is a real pause.
    let paused = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (a, journal_a) = paused.block_on(async {
        let a = connect(&etcd, Duration::from_secs(2)).await;
        let guard = a.acquire(&plan, &holder("run-a", "alice@laptop")).await.unwrap();
        let j = a.journal(&plan);
        j.append(&guard, &entry(0, "run-a")).await.unwrap();
        (a, (j, guard))
    });
    let (journal_a, guard_a) = journal_a;
    std::thread::sleep(Duration::from_millis(3500)); // the pause: longer than the 2 s lease

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let b = connect(&etcd, Duration::from_secs(10)).await;
        let guard = b.acquire(&plan, &holder("run-a", "bob@ci")).await.expect("the lease expired, so the lock is free");
        b.journal(&plan).append(&guard, &entry(1, "run-a")).await.unwrap();
    });
    // The first holder wakes up and tries to continue: its fencing token is refused.
    let err = paused.block_on(journal_a.append(&guard_a, &entry(2, "run-a"))).unwrap_err();
    match &err {
        JournalError::Refused(m) => {
            assert!(m.contains("fencing token") && m.contains("bob@ci"), "{m}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(paused.block_on(async { a.acquire(&plan, &holder("run-a", "alice@laptop")).await }).is_err());
    // (journal_a's connection lives on the paused runtime: read through it there.)
    let entries = paused.block_on(journal_a.entries()).unwrap();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1], "nothing written after the pause");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_survives_losing_one_of_three_members() {
    let mut etcd = Etcd::cluster(3).unwrap();
    let plan = example_plan();
    let sim = World::from_plan(&plan);
    // Deployments of 600 ms leave time to kill a member mid-run.
    sim.world.set_config(WorldConfig { deploy_duration: Duration::from_millis(600), ..WorldConfig::real_time_fast() });
    sim.world.use_real_wall_clock();
    let lock = connect(&etcd, Duration::from_secs(4)).await;
    let journal = lock.journal(plan.name());
    let engine = engine_with(&sim, lock.clone(), journal.clone(), "etcd-test").build();
    let run = tokio::spawn(async move { engine.run(RunMode::Failover).await });
    // Once the run is under way, stop one member (whichever the client may be using).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while journal.entries().await.unwrap().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    etcd.kill(0);
    let report = run.await.unwrap().unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let entries = journal.entries().await.unwrap();
    assert!(entries.iter().any(|e| matches!(e.event, JournalEvent::RunFinished { .. })), "finished in the journal");
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..entries.len() as u64).collect::<Vec<_>>(), "no entry lost or duplicated");
    assert_eq!(lock.holder(plan.name()).await.unwrap(), None, "released at the end");
}
