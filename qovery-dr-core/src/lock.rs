//! One failover at a time: the single-flight lock.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::model::Timestamp;

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    /// The run holding it (a resumed run re-enters its own lock).
    pub run_id: String,
    /// Who started the run (user@host, CI job…).
    pub owner: String,
    /// When it was taken.
    pub acquired_at: Timestamp,
}

/// A fencing token: every new holding of a plan's lock gets a larger one than every
/// holding before it, so a journal can refuse the writes of a holder that lost the lock
/// (its token is smaller than the newest it has seen, or no longer the lock's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct FencingToken(pub u64);

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Proof that a run holds a plan's failover lock: what [`FailoverLock::acquire`] returns
/// and [`Journal::append`](crate::journal::Journal::append) requires.
///
/// ```
/// use qovery_dr_core::engine::{FailoverLock, InProcessLock, LockHolder};
/// use qovery_dr_core::model::Timestamp;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let lock = InProcessLock::new();
/// let holder = |run: &str| LockHolder { run_id: run.into(), owner: "alice@laptop".into(), acquired_at: Timestamp::from_unix_millis(0) };
/// let first = lock.acquire("shop", &holder("run-1")).await.unwrap();
/// assert_eq!(lock.acquire("shop", &holder("run-1")).await.unwrap(), first); // re-entrant: same token
/// lock.release("shop", "run-1").await.unwrap();
/// let second = lock.acquire("shop", &holder("run-2")).await.unwrap();
/// assert!(second.token > first.token);
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    /// The plan.
    pub plan: String,
    /// The run holding it.
    pub run_id: String,
    /// This holding's token.
    pub token: FencingToken,
}

/// The lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another run holds it.
    #[error("another run holds the failover lock for plan {plan}: run {} by {} since {}; wait for it to finish, or release the lock if that run is dead", holder.run_id, holder.owner, holder.acquired_at)]
    Held {
        /// The plan.
        plan: String,
        /// The holder.
        holder: LockHolder,
    },
    /// The lock's storage failed.
    #[error("failover lock for plan {plan}: {message}")]
    Backend {
        /// The plan.
        plan: String,
        /// What failed.
        message: String,
    },
}

/// A lock that lets one run at a time drive a plan's failover.
///
/// The contract (checked for every backend by the testkit's `failover_lock_conformance!`):
/// - `acquire` is exclusive per plan: while one run holds it, another run's `acquire`
///   returns [`LockError::Held`] naming the holder; plans are independent.
/// - `acquire` is re-entrant for the same `run_id` while the holding lasts (a run resumed
///   in the same process takes its own lock back) and returns the same token.
/// - every new holding gets a [`FencingToken`] larger than every earlier holding's of
///   that plan, so a journal refuses a holder that lost the lock.
/// - `release` by a run that does not hold the lock is a no-op, except that releasing
///   another run's holding by its run id frees it (an operator's takeover of a dead run).
/// - `holder` says who holds it, or `None`.
#[async_trait]
pub trait FailoverLock: Send + Sync + Debug + 'static {
    /// Takes the lock for `plan`, or says who holds it.
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError>;

    /// Releases the lock if `run_id` holds it (no-op otherwise).
    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError>;

    /// Who holds the lock, if anyone.
    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError>;
}

#[async_trait]
impl<T: FailoverLock + ?Sized> FailoverLock for Arc<T> {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        (**self).acquire(plan, holder).await
    }
    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        (**self).release(plan, run_id).await
    }
    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        (**self).holder(plan).await
    }
}

/// A lock shared by the engines of one process (clone it to share).
#[derive(Debug, Clone, Default)]
pub struct InProcessLock {
    held: Arc<Mutex<HashMap<String, (LockHolder, FencingToken)>>>,
    /// The last token given out per plan.
    tokens: Arc<Mutex<HashMap<String, u64>>>,
}

impl InProcessLock {
    /// A free lock.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl FailoverLock for InProcessLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let guard = |token| LockGuard { plan: plan.to_owned(), run_id: holder.run_id.clone(), token };
        match held.get(plan) {
            Some((h, _)) if h.run_id != holder.run_id => {
                Err(LockError::Held { plan: plan.to_owned(), holder: h.clone() })
            }
            Some((_, token)) => Ok(guard(*token)),
            None => {
                let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                let last = tokens.entry(plan.to_owned()).or_insert(0);
                *last += 1;
                let token = FencingToken(*last);
                held.insert(plan.to_owned(), (holder.clone(), token));
                Ok(guard(token))
            }
        }
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(plan).is_some_and(|(h, _)| h.run_id == run_id) {
            held.remove(plan);
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        Ok(self.held.lock().unwrap_or_else(PoisonError::into_inner).get(plan).map(|(h, _)| h.clone()))
    }
}

/// A lock file per plan in a directory (`<dir>/<plan>.lock`, created
/// exclusively, holding the holder and its fencing token as JSON): one failover at a
/// time on one machine or a shared filesystem. The last token given out is kept in
/// `<dir>/<plan>.token`, written only by the process that just created the lock file.
#[derive(Debug, Clone)]
pub struct FileLock {
    dir: PathBuf,
}

impl FileLock {
    /// Lock files in `dir` (created if missing).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self { dir: dir.as_ref().to_path_buf() }
    }

    fn path(&self, plan: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", Self::safe(plan)))
    }

    fn token_path(&self, plan: &str) -> PathBuf {
        self.dir.join(format!("{}.token", Self::safe(plan)))
    }

    fn safe(plan: &str) -> String {
        plan.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
    }

    fn backend(plan: &str, what: impl std::fmt::Display) -> LockError {
        LockError::Backend { plan: plan.to_owned(), message: what.to_string() }
    }

    async fn read(&self, plan: &str) -> Result<Option<LockFile>, LockError> {
        // A lock file is created empty, then written by its creator: give it a moment.
        let mut read = tokio::fs::read(self.path(plan)).await;
        for _ in 0..50 {
            if !matches!(&read, Ok(b) if b.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            read = tokio::fs::read(self.path(plan)).await;
        }
        match read {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Self::backend(
                    plan,
                    format!(
                        "lock file {} is not readable ({e}); remove it if no run is alive",
                        self.path(plan).display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::backend(plan, e)),
        }
    }
}

/// What a lock file holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LockFile {
    #[serde(flatten)]
    holder: LockHolder,
    /// Absent in lock files written before tokens: such a holding has token 0.
    #[serde(default)]
    token: u64,
}

#[async_trait]
impl FailoverLock for FileLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| Self::backend(plan, e))?;
        let (path, token_path, mine) = (self.path(plan), self.token_path(plan), holder.clone());
        // Create the lock file empty and exclusively, then (as its creator, alone) take the
        // next token and write both: a reader that finds it empty retries.
        let created = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
            let last = match std::fs::read_to_string(&token_path) {
                Ok(t) => t.trim().parse::<u64>().map_err(std::io::Error::other)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(e),
            };
            let token = last + 1;
            let tmp = token_path.with_extension("token.tmp");
            std::fs::write(&tmp, token.to_string())?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &token_path)?;
            let body = serde_json::to_vec(&LockFile { holder: mine, token }).map_err(std::io::Error::other)?;
            std::io::Write::write_all(&mut f, &body)?;
            f.sync_all()?;
            Ok(token)
        })
        .await
        .map_err(|e| Self::backend(plan, e))?;
        let guard =
            |token| LockGuard { plan: plan.to_owned(), run_id: holder.run_id.clone(), token: FencingToken(token) };
        match created {
            Ok(token) => Ok(guard(token)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.read(plan).await {
                Ok(Some(f)) if f.holder.run_id == holder.run_id => Ok(guard(f.token)),
                Ok(Some(f)) => Err(LockError::Held { plan: plan.to_owned(), holder: f.holder }),
                Ok(None) => Err(Self::backend(plan, "lock file vanished while acquiring; retry")),
                Err(e) => Err(e),
            },
            Err(e) => Err(Self::backend(plan, format!("{e} (lock file {})", self.path(plan).display()))),
        }
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        if self.read(plan).await?.is_some_and(|f| f.holder.run_id == run_id) {
            tokio::fs::remove_file(self.path(plan)).await.map_err(|e| Self::backend(plan, e))?;
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        Ok(self.read(plan).await?.map(|f| f.holder))
    }
}

/// How [`take`] got the lock.
#[derive(Debug)]
pub(crate) struct Taken {
    pub guard: LockGuard,
    /// The evidence of the holder taken over by the operator's `LockHeld` override, to journal.
    pub took_over: Option<String>,
}

/// Why [`take`] did not get the lock.
#[derive(Debug)]
pub(crate) enum TakeError {
    /// Another run holds it (the evidence names it) and no override allows a takeover.
    Held(String),
    /// The lock's storage failed.
    Lock(LockError),
}

/// Takes `plan`'s lock for `holder`: the one place that does. Waits up to `wait` while
/// another run holds it (polling every `poll`); with `takeover` (the operator's `LockHeld`
/// override, declaring the holder dead) releases the other run's holding and takes it.
pub(crate) async fn take(
    lock: &dyn FailoverLock,
    plan: &str,
    holder: &LockHolder,
    takeover: bool,
    wait: std::time::Duration,
    poll: std::time::Duration,
) -> Result<Taken, TakeError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let other = match lock.acquire(plan, holder).await {
            Ok(guard) => return Ok(Taken { guard, took_over: None }),
            Err(LockError::Held { holder: other, .. }) => other,
            Err(e) => return Err(TakeError::Lock(e)),
        };
        let evidence = format!("run {} by {} holds the lock since {}", other.run_id, other.owner, other.acquired_at);
        if takeover {
            lock.release(plan, &other.run_id).await.map_err(TakeError::Lock)?;
            let guard = lock.acquire(plan, holder).await.map_err(TakeError::Lock)?;
            tracing::warn!(%evidence, "failover lock taken over by operator override");
            return Ok(Taken { guard, took_over: Some(evidence) });
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(%evidence, "the failover lock is held by another run");
            return Err(TakeError::Held(evidence));
        }
        tracing::info!(%evidence, "waiting for the failover lock");
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(poll.min(left)).await;
    }
}

// The contract is checked for every backend by the testkit's `failover_lock_conformance!`
// (in-process and file locks in `qovery-dr-testkit/tests/testkit/lock_conformance.rs`).
