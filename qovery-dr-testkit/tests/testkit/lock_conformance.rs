//! The failover-lock and journal contracts against the in-process and file backends,
//! and the checks failing on backends that break each rule (the etcd and PostgreSQL
//! backends run the same macros in the providers' tests).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{
    FailoverLock, FencingToken, FileJournal, FileLock, InProcessLock, Journal, JournalEntry, JournalError, LockError,
    LockGuard, LockHolder, MemoryJournal,
};
use qovery_dr_testkit::conformance::lock::{self as checks, JournalFixture, LockFixture};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "qdr-lock-conformance-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn in_process() -> LockFixture<InProcessLock> {
    let lock = InProcessLock::new();
    LockFixture { other: lock.clone(), lock, plan: "shop".into(), keep_alive: Vec::new() }
}

async fn file_lock() -> LockFixture<FileLock> {
    // Two FileLock values on one directory: two processes sharing a filesystem.
    let dir = scratch();
    LockFixture { lock: FileLock::new(&dir), other: FileLock::new(&dir), plan: "shop".into(), keep_alive: Vec::new() }
}

async fn memory_journal() -> JournalFixture<InProcessLock, MemoryJournal> {
    let lock = InProcessLock::new();
    JournalFixture {
        other: lock.clone(),
        lock,
        journal: MemoryJournal::new(),
        plan: "shop".into(),
        keep_alive: Vec::new(),
    }
}

async fn file_journal() -> JournalFixture<FileLock, FileJournal> {
    let dir = scratch();
    JournalFixture {
        lock: FileLock::new(&dir),
        other: FileLock::new(&dir),
        journal: FileJournal::new(dir.join("journal.jsonl")),
        plan: "shop".into(),
        keep_alive: Vec::new(),
    }
}

qovery_dr_testkit::failover_lock_conformance!(in_process_lock, in_process());
qovery_dr_testkit::failover_lock_conformance!(file_lock_on_one_directory, file_lock());
qovery_dr_testkit::journal_conformance!(memory_journal_and_in_process_lock, memory_journal());
qovery_dr_testkit::journal_conformance!(file_journal_and_file_lock, file_journal());

#[tokio::test]
async fn a_file_journal_reopened_by_another_process_keeps_refusing_the_stale_holder() {
    let dir = scratch();
    let path = dir.join("journal.jsonl");
    let lock = FileLock::new(&dir);
    let holder = |run: &str| checks::holder(run, "ops");
    let old = lock.acquire("shop", &holder("run-a")).await.unwrap();
    FileJournal::new(&path).append(&old, &checks::entry(0, "run-a")).await.unwrap();
    lock.release("shop", "run-a").await.unwrap();
    let new = lock.acquire("shop", &holder("run-b")).await.unwrap();
    FileJournal::new(&path).append(&new, &checks::entry(1, "run-b")).await.unwrap();
    // A third process opens the file fresh: the tokens are in the file, not in memory.
    let stale = FileJournal::new(&path).append(&old, &checks::entry(2, "run-a")).await;
    assert!(matches!(stale, Err(JournalError::Refused(_))), "{stale:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().all(|l| l.contains("\"token\":")), "every line records its token:\n{text}");
}

// ---- The checks reject backends that break the contract --------------------------------

/// Runs `check` and returns its failure message (or panics if it passed).
async fn fails<Fut: std::future::Future<Output = ()> + Send + 'static>(check: Fut) -> String {
    match tokio::spawn(check).await {
        Ok(()) => panic!("the check passed on a broken backend"),
        Err(e) => {
            let p = e.into_panic();
            p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned())).unwrap()
        }
    }
}

/// A journal that ignores the fencing token.
#[derive(Debug, Clone, Default)]
struct Unfenced(Arc<Mutex<Vec<JournalEntry>>>);

#[async_trait]
impl Journal for Unfenced {
    async fn append(&self, _: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut v = self.0.lock().unwrap();
        if let Some(existing) = v.iter().find(|e| e.seq == entry.seq) {
            return if existing == entry { Ok(()) } else { Err(JournalError::Refused("taken".into())) };
        }
        v.push(entry.clone());
        Ok(())
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// A journal that overwrites a taken sequence number.
#[derive(Debug, Clone, Default)]
struct Overwriting(Arc<Mutex<Vec<JournalEntry>>>);

#[async_trait]
impl Journal for Overwriting {
    async fn append(&self, _: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut v = self.0.lock().unwrap();
        v.retain(|e| e.seq != entry.seq);
        v.push(entry.clone());
        v.sort_by_key(|e| e.seq);
        Ok(())
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// A journal that returns its entries newest first.
#[derive(Debug, Clone, Default)]
struct Reversed(MemoryJournal);

#[async_trait]
impl Journal for Reversed {
    async fn append(&self, g: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        self.0.append(g, entry).await
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.0.snapshot().into_iter().rev().collect())
    }
}

fn journal_fixture<J: Journal>(journal: J) -> JournalFixture<InProcessLock, J> {
    let lock = InProcessLock::new();
    JournalFixture { other: lock.clone(), lock, journal, plan: "shop".into(), keep_alive: Vec::new() }
}

#[tokio::test]
async fn the_journal_checks_fail_on_journals_that_break_a_rule() {
    let m = fails(async { checks::a_stale_token_is_refused(&journal_fixture(Unfenced::default())).await }).await;
    assert!(m.contains("must be refused"), "{m}");
    let m =
        fails(async { checks::a_taken_sequence_is_never_overwritten(&journal_fixture(Overwriting::default())).await })
            .await;
    assert!(m.contains("must be refused"), "{m}");
    let m = fails(async { checks::entries_come_back_in_order(&journal_fixture(Reversed::default())).await }).await;
    assert!(m.contains("in order"), "{m}");
}

/// A lock with a flaw.
#[derive(Debug, Clone)]
struct BrokenLock {
    inner: InProcessLock,
    flaw: Flaw,
    calls: Arc<AtomicU32>,
}

#[derive(Debug, Clone, Copy)]
enum Flaw {
    /// Lets a second run in.
    NotExclusive,
    /// Gives every holding the same token.
    ConstantToken,
    /// A re-entrant acquire gets a new token.
    NewTokenOnReentry,
}

#[async_trait]
impl FailoverLock for BrokenLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut g = match (self.flaw, self.inner.acquire(plan, holder).await) {
            (Flaw::NotExclusive, Err(LockError::Held { .. })) => {
                return Ok(LockGuard { plan: plan.into(), run_id: holder.run_id.clone(), token: FencingToken(99) });
            }
            (_, r) => r?,
        };
        match self.flaw {
            Flaw::ConstantToken => g.token = FencingToken(1),
            Flaw::NewTokenOnReentry => g.token = FencingToken(u64::from(n) + 100),
            Flaw::NotExclusive => {}
        }
        Ok(g)
    }
    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        self.inner.release(plan, run_id).await
    }
    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        self.inner.holder(plan).await
    }
}

fn broken(flaw: Flaw) -> LockFixture<BrokenLock> {
    let lock = BrokenLock { inner: InProcessLock::new(), flaw, calls: Arc::new(AtomicU32::new(0)) };
    LockFixture { other: lock.clone(), lock, plan: "shop".into(), keep_alive: Vec::new() }
}

#[tokio::test]
async fn the_lock_checks_fail_on_locks_that_break_a_rule() {
    let m = fails(async { checks::exclusive_and_names_the_holder(&broken(Flaw::NotExclusive)).await }).await;
    assert!(m.contains("a second run took a held lock"), "{m}");
    let m = fails(async { checks::tokens_increase_with_every_holding(&broken(Flaw::ConstantToken)).await }).await;
    assert!(m.contains("tokens must increase"), "{m}");
    let m = fails(async { checks::reentrant_with_the_same_token(&broken(Flaw::NewTokenOnReentry)).await }).await;
    assert!(m.contains("same holding"), "{m}");
}
