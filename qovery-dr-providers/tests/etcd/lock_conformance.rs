//! The failover-lock and journal contracts, checked against real etcd.

use std::time::Duration;

use qovery_dr_providers::etcd::{EtcdFailoverLock, EtcdJournal};
use qovery_dr_testkit::conformance::lock::{JournalFixture, LockFixture};
use qovery_dr_testkit::etcd_server::EtcdServer;

use super::lock::connect;
use crate::lock_fixtures::plan_name;

async fn lock() -> LockFixture<EtcdFailoverLock> {
    let etcd = EtcdServer::single().unwrap();
    let (lock, other) = (connect(&etcd, Duration::from_secs(10)).await, connect(&etcd, Duration::from_secs(10)).await);
    LockFixture { lock, other, plan: plan_name(), keep_alive: vec![Box::new(etcd)] }
}

async fn journal() -> JournalFixture<EtcdFailoverLock, EtcdJournal> {
    let f = lock().await;
    let journal = f.lock.journal(&f.plan);
    JournalFixture { lock: f.lock, other: f.other, journal, plan: f.plan, keep_alive: f.keep_alive }
}

qovery_dr_testkit::failover_lock_conformance!(etcd_lock, lock());
qovery_dr_testkit::journal_conformance!(etcd_journal, journal());
