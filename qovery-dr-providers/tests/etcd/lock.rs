//! EtcdFailoverLock and EtcdJournal against real etcd.

use std::time::Duration;

use qovery_dr_core::engine::{
    FailoverLock, Journal, JournalEntry, JournalError, JournalEvent, LockError, Outcome, RunMode,
};
use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
use qovery_dr_testkit::{World, WorldConfig};

use qovery_dr_testkit::etcd_server::EtcdServer as Etcd;

use crate::lock_fixtures::{engine_with, entry, example_plan, holder, plan_name};

async fn connect(etcd: &Etcd, ttl: Duration) -> EtcdFailoverLock {
    EtcdFailoverLock::connect(EtcdConfig::new(etcd.endpoints()).lease_ttl(ttl).timeout(Duration::from_secs(1)))
        .await
        .unwrap()
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_refused_one_names_it() {
    let etcd = Etcd::single().unwrap();
    let plan = plan_name();
    // Two orchestrators: separate connections, as on two machines.
    let (a, b) = (connect(&etcd, Duration::from_secs(10)).await, connect(&etcd, Duration::from_secs(10)).await);
    a.acquire(&plan, &holder("run-a", "alice@laptop")).await.unwrap();
    a.acquire(&plan, &holder("run-a", "alice@laptop")).await.expect("re-entrant for the same run");
    match b.acquire(&plan, &holder("run-b", "bob@ci")).await {
        Err(LockError::Held { holder, .. }) => {
            assert_eq!((holder.run_id.as_str(), holder.owner.as_str()), ("run-a", "alice@laptop"));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    let err = b.acquire(&plan, &holder("run-b", "bob@ci")).await.unwrap_err();
    assert!(err.to_string().contains("run run-a by alice@laptop"), "{err}");
    assert_eq!(b.holder(&plan).await.unwrap().unwrap().owner, "alice@laptop", "readable by others");
    // The non-holder cannot write the journal.
    let refused = b.journal(&plan).append(&entry(0, "run-b")).await.unwrap_err();
    assert!(matches!(refused, JournalError::Refused(_)), "{refused}");

    a.release(&plan, "run-a").await.unwrap();
    assert_eq!(a.holder(&plan).await.unwrap(), None);
    b.acquire(&plan, &holder("run-b", "bob@ci")).await.unwrap();
    b.journal(&plan).append(&entry(0, "run-b")).await.unwrap();
}

#[tokio::test]
async fn the_journal_round_trips_in_order_and_never_overwrites() {
    let etcd = Etcd::single().unwrap();
    let plan = plan_name();
    let lock = connect(&etcd, Duration::from_secs(10)).await;
    lock.acquire(&plan, &holder("run-1", "alice")).await.unwrap();
    let journal = lock.journal(&plan);
    let written: Vec<JournalEntry> = (0..12).map(|i| entry(i, "run-1")).collect();
    for e in &written {
        journal.append(e).await.unwrap();
    }
    let read = journal.entries().await.unwrap();
    assert_eq!(
        serde_json::to_value(&read).unwrap(),
        serde_json::to_value(&written).unwrap(),
        "12 entries back in order (10 after 9)"
    );
    // Appending the same entry again (a retry whose first attempt was applied) is a no-op;
    // a different entry at a taken position is refused.
    journal.append(&entry(3, "run-1")).await.expect("idempotent");
    let dup = journal.append(&entry(3, "run-other")).await.unwrap_err();
    assert!(matches!(dup, JournalError::Refused(_)), "{dup}");
    assert_eq!(journal.entries().await.unwrap().len(), 12);
    // Another machine reads the same journal without holding the lock.
    let other = connect(&etcd, Duration::from_secs(10)).await;
    assert_eq!(other.journal(&plan).entries().await.unwrap().len(), 12);
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
        a.acquire(&plan, &holder("run-a", "alice@laptop")).await.unwrap();
        let j = a.journal(&plan);
        j.append(&entry(0, "run-a")).await.unwrap();
        (a, j)
    });
    std::thread::sleep(Duration::from_millis(3500)); // the pause: longer than the 2 s lease

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let b = connect(&etcd, Duration::from_secs(10)).await;
        b.acquire(&plan, &holder("run-a", "bob@ci")).await.expect("the lease expired, so the lock is free");
        b.journal(&plan).append(&entry(1, "run-a")).await.unwrap();
    });
    // The first holder wakes up and tries to continue: its fencing token is refused.
    let err = paused.block_on(journal_a.append(&entry(2, "run-a"))).unwrap_err();
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
    let journal = lock.journal(&plan.name);
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
    assert_eq!(lock.holder(&plan.name).await.unwrap(), None, "released at the end");
}
