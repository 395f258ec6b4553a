//! The failover-lock and journal contracts, checked against a real PostgreSQL 15 server.

use qovery_dr_providers::postgres::{PgFailoverLock, PgJournal};
use qovery_dr_testkit::conformance::lock::{JournalFixture, LockFixture};

use super::cluster::PgServer;
use crate::lock_fixtures::plan_name;

async fn lock() -> LockFixture<PgFailoverLock> {
    let pg = PgServer::primary();
    let lock = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    let other = PgFailoverLock::connect(pg.endpoint()).await.unwrap();
    LockFixture { lock, other, plan: plan_name(), keep_alive: vec![Box::new(pg)] }
}

async fn journal() -> JournalFixture<PgFailoverLock, PgJournal> {
    let f = lock().await;
    let journal = f.lock.journal(&f.plan);
    JournalFixture { lock: f.lock, other: f.other, journal, plan: f.plan, keep_alive: f.keep_alive }
}

qovery_dr_testkit::failover_lock_conformance!(pg_lock, lock());
qovery_dr_testkit::journal_conformance!(pg_journal, journal());
