//! The [`FailoverLock`] and [`Journal`] contracts (see their trait docs), checked
//! together: a journal is written by the holder of a plan's lock, so its checks take
//! guards from a real lock of the same backend.
//!
//! ```
//! use qovery_dr_core::engine::{InProcessLock, MemoryJournal};
//! use qovery_dr_testkit::conformance::lock::{JournalFixture, LockFixture};
//!
//! async fn lock() -> LockFixture<InProcessLock> {
//!     let lock = InProcessLock::new();
//!     // `other` is a second client of the same store (another orchestrator).
//!     LockFixture { other: lock.clone(), lock, plan: "shop".into(), keep_alive: Vec::new() }
//! }
//! async fn journal() -> JournalFixture<InProcessLock, MemoryJournal> {
//!     let lock = InProcessLock::new();
//!     let journal = MemoryJournal::new();
//!     JournalFixture { other: lock.clone(), lock, journal, plan: "shop".into(), keep_alive: Vec::new() }
//! }
//! qovery_dr_testkit::failover_lock_conformance!(in_process_lock, lock());
//! qovery_dr_testkit::journal_conformance!(memory_journal, journal());
//! # fn main() {}
//! ```

use qovery_dr_core::Timestamp;
use qovery_dr_core::engine::{
    FailoverLock, Journal, JournalEntry, JournalError, JournalEvent, LockError, LockGuard, LockHolder,
};

/// A lock under test.
pub struct LockFixture<L> {
    /// The lock.
    pub lock: L,
    /// A second client of the same store (another orchestrator process).
    pub other: L,
    /// A plan name no other test uses.
    pub plan: String,
    /// What must live as long as the check (e.g. the server the lock is in).
    pub keep_alive: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// A journal under test, with two clients of the lock that fences it.
pub struct JournalFixture<L, J> {
    /// The lock.
    pub lock: L,
    /// A second client of the same lock store.
    pub other: L,
    /// The plan's journal (empty).
    pub journal: J,
    /// The plan (the journal's, and the lock's).
    pub plan: String,
    /// What must live as long as the check (e.g. the server the journal is in).
    pub keep_alive: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// A lock holder for `run`.
pub fn holder(run: &str, owner: &str) -> LockHolder {
    LockHolder { run_id: run.into(), owner: owner.into(), acquired_at: Timestamp::from_unix_millis(1_700_000_000_000) }
}

/// A small journal entry of `run` at `seq`.
pub fn entry(seq: u64, run: &str) -> JournalEntry {
    JournalEntry::new(seq, Timestamp::from_unix_millis(1_700_000_000_000 + seq), run, JournalEvent::LockReleased)
}

impl<L: std::fmt::Debug> std::fmt::Debug for LockFixture<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFixture").field("lock", &self.lock).field("plan", &self.plan).finish_non_exhaustive()
    }
}

impl<L: std::fmt::Debug, J: std::fmt::Debug> std::fmt::Debug for JournalFixture<L, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalFixture")
            .field("journal", &self.journal)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

async fn take<L: FailoverLock>(lock: &L, plan: &str, run: &str) -> LockGuard {
    lock.acquire(plan, &holder(run, &format!("{run}-owner"))).await.unwrap_or_else(|e| panic!("acquire {run}: {e}"))
}

/// One holder at a time; the refusal names the holder; others can read who holds it.
pub async fn exclusive_and_names_the_holder<L: FailoverLock>(f: &LockFixture<L>) {
    take(&f.lock, &f.plan, "run-a").await;
    match f.other.acquire(&f.plan, &holder("run-b", "bob@ci")).await {
        Err(LockError::Held { holder, .. }) => {
            assert_eq!(holder.run_id, "run-a", "the refusal names the holding run");
            assert_eq!(holder.owner, "run-a-owner", "the refusal names the holder's owner");
        }
        other => panic!("a second run took a held lock: {other:?}"),
    }
    let seen = f.other.holder(&f.plan).await.unwrap();
    assert_eq!(seen.map(|h| h.run_id).as_deref(), Some("run-a"), "another client reads the holder");
    f.lock.release(&f.plan, "run-a").await.unwrap();
    assert_eq!(f.other.holder(&f.plan).await.unwrap(), None, "released");
}

/// The same run takes its own lock again, with the same token.
pub async fn reentrant_with_the_same_token<L: FailoverLock>(f: &LockFixture<L>) {
    let first = take(&f.lock, &f.plan, "run-a").await;
    let again = take(&f.lock, &f.plan, "run-a").await;
    assert_eq!(first, again, "a re-entrant acquire is the same holding");
    assert_eq!(first.plan, f.plan);
    assert_eq!(first.run_id, "run-a");
    f.lock.release(&f.plan, "run-a").await.unwrap();
}

/// Plans are locked independently.
pub async fn plans_are_independent<L: FailoverLock>(f: &LockFixture<L>) {
    let second = format!("{}-second", f.plan);
    take(&f.lock, &f.plan, "run-a").await;
    take(&f.other, &second, "run-b").await;
    f.lock.release(&f.plan, "run-a").await.unwrap();
    f.other.release(&second, "run-b").await.unwrap();
}

/// Every new holding has a larger token than every one before it, whichever client took it.
pub async fn tokens_increase_with_every_holding<L: FailoverLock>(f: &LockFixture<L>) {
    let a = take(&f.lock, &f.plan, "run-a").await;
    f.lock.release(&f.plan, "run-a").await.unwrap();
    let b = take(&f.other, &f.plan, "run-b").await;
    assert!(b.token > a.token, "token {} after {}: tokens must increase", b.token, a.token);
    f.other.release(&f.plan, "run-b").await.unwrap();
    let c = take(&f.lock, &f.plan, "run-c").await;
    assert!(c.token > b.token, "token {} after {}: tokens must increase", c.token, b.token);
    f.lock.release(&f.plan, "run-c").await.unwrap();
}

/// Releasing with another run's id does not free a holding... unless it names the holder:
/// then it is an operator's takeover of a dead run, and frees it.
pub async fn release_frees_only_the_named_run<L: FailoverLock>(f: &LockFixture<L>) {
    take(&f.lock, &f.plan, "run-a").await;
    f.other.release(&f.plan, "run-x").await.unwrap();
    let h = f.other.holder(&f.plan).await.unwrap();
    assert_eq!(h.map(|h| h.run_id).as_deref(), Some("run-a"), "a release naming another run changed nothing");
    f.other.release(&f.plan, "run-a").await.unwrap();
    take(&f.other, &f.plan, "run-b").await;
    f.other.release(&f.plan, "run-b").await.unwrap();
}

/// Entries come back in sequence order.
pub async fn entries_come_back_in_order<L: FailoverLock, J: Journal>(f: &JournalFixture<L, J>) {
    assert!(f.journal.entries().await.unwrap().is_empty(), "the fixture's journal starts empty");
    let g = take(&f.lock, &f.plan, "run-a").await;
    for seq in 0..12 {
        f.journal.append(&g, &entry(seq, "run-a")).await.unwrap_or_else(|e| panic!("append {seq}: {e}"));
    }
    let seqs: Vec<u64> = f.journal.entries().await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..12).collect::<Vec<_>>(), "every entry, in order");
    assert_eq!(f.journal.entries().await.unwrap()[3], entry(3, "run-a"), "an entry reads back as written");
    f.lock.release(&f.plan, "run-a").await.unwrap();
}

/// Appending the entry already at a sequence number is a no-op; a different one is refused.
pub async fn a_taken_sequence_is_never_overwritten<L: FailoverLock, J: Journal>(f: &JournalFixture<L, J>) {
    let g = take(&f.lock, &f.plan, "run-a").await;
    for seq in 0..3 {
        f.journal.append(&g, &entry(seq, "run-a")).await.unwrap();
    }
    f.journal.append(&g, &entry(1, "run-a")).await.expect("an identical re-append is a no-op");
    match f.journal.append(&g, &entry(1, "run-other")).await {
        Err(JournalError::Refused(_)) => {}
        other => panic!("a different entry at a taken sequence number must be refused, got {other:?}"),
    }
    let read = f.journal.entries().await.unwrap();
    assert_eq!(read.len(), 3, "no entry added by the re-append or the refused one");
    assert_eq!(read[1], entry(1, "run-a"), "the entry was not overwritten");
    f.lock.release(&f.plan, "run-a").await.unwrap();
}

/// A holder that lost the lock cannot write once its successor has.
pub async fn a_stale_token_is_refused<L: FailoverLock, J: Journal>(f: &JournalFixture<L, J>) {
    let old = take(&f.lock, &f.plan, "run-a").await;
    f.journal.append(&old, &entry(0, "run-a")).await.unwrap();
    // The operator declares run-a dead and another orchestrator takes over.
    f.other.release(&f.plan, "run-a").await.unwrap();
    let new = take(&f.other, &f.plan, "run-b").await;
    f.journal.append(&new, &entry(1, "run-b")).await.expect("the new holder writes");
    match f.journal.append(&old, &entry(2, "run-a")).await {
        Err(JournalError::Refused(m)) => assert!(!m.is_empty()),
        other => panic!("the old holder's write (token {}) must be refused, got {other:?}", old.token),
    }
    assert_eq!(f.journal.entries().await.unwrap().len(), 2, "nothing written by the stale holder");
    f.other.release(&f.plan, "run-b").await.unwrap();
}

/// Expands to one `#[tokio::test]` per [`FailoverLock`] check, in a module `$name`.
/// `$setup` is an expression giving a future of a fresh [`LockFixture`].
#[macro_export]
macro_rules! failover_lock_conformance {
    ($name:ident, $setup:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(lock, $setup, #[::tokio::test], [
                exclusive_and_names_the_holder,
                reentrant_with_the_same_token,
                plans_are_independent,
                tokens_increase_with_every_holding,
                release_frees_only_the_named_run,
            ]);
        }
    };
}

/// Expands to one `#[tokio::test]` per [`Journal`] check, in a module `$name`.
/// `$setup` is an expression giving a future of a fresh [`JournalFixture`].
#[macro_export]
macro_rules! journal_conformance {
    ($name:ident, $setup:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(lock, $setup, #[::tokio::test], [
                entries_come_back_in_order,
                a_taken_sequence_is_never_overwritten,
                a_stale_token_is_refused,
            ]);
        }
    };
}
