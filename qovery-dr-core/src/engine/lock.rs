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
/// `acquire` is re-entrant for the same `run_id`, so a run resumed from its
/// journal takes its own lock back.
#[async_trait]
pub trait FailoverLock: Send + Sync + Debug + 'static {
    /// Takes the lock for `plan`, or says who holds it.
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<(), LockError>;

    /// Releases the lock if `run_id` holds it (no-op otherwise).
    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError>;

    /// Who holds the lock, if anyone.
    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError>;
}

#[async_trait]
impl<T: FailoverLock + ?Sized> FailoverLock for Arc<T> {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<(), LockError> {
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
    held: Arc<Mutex<HashMap<String, LockHolder>>>,
}

impl InProcessLock {
    /// A free lock.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl FailoverLock for InProcessLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<(), LockError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.get(plan) {
            Some(h) if h.run_id != holder.run_id => Err(LockError::Held { plan: plan.to_owned(), holder: h.clone() }),
            Some(_) => Ok(()),
            None => {
                held.insert(plan.to_owned(), holder.clone());
                Ok(())
            }
        }
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(plan).is_some_and(|h| h.run_id == run_id) {
            held.remove(plan);
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        Ok(self.held.lock().unwrap_or_else(PoisonError::into_inner).get(plan).cloned())
    }
}

/// A lock file per plan in a directory (`<dir>/<plan>.lock`, created
/// exclusively, holding the holder as JSON): one failover at a time on one
/// machine or a shared filesystem.
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
        let safe: String =
            plan.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        self.dir.join(format!("{safe}.lock"))
    }

    fn backend(plan: &str, what: impl std::fmt::Display) -> LockError {
        LockError::Backend { plan: plan.to_owned(), message: what.to_string() }
    }

    async fn read(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        match tokio::fs::read(self.path(plan)).await {
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

#[async_trait]
impl FailoverLock for FileLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<(), LockError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| Self::backend(plan, e))?;
        let body = serde_json::to_vec(holder).map_err(|e| Self::backend(plan, e))?;
        let path = self.path(plan);
        let created = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
            std::io::Write::write_all(&mut f, &body)?;
            f.sync_all()
        })
        .await
        .map_err(|e| Self::backend(plan, e))?;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.read(plan).await? {
                Some(h) if h.run_id == holder.run_id => Ok(()),
                Some(h) => Err(LockError::Held { plan: plan.to_owned(), holder: h }),
                None => Err(Self::backend(plan, "lock file vanished while acquiring; retry")),
            },
            Err(e) => Err(Self::backend(plan, e)),
        }
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        if self.read(plan).await?.is_some_and(|h| h.run_id == run_id) {
            tokio::fs::remove_file(self.path(plan)).await.map_err(|e| Self::backend(plan, e))?;
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        self.read(plan).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str) -> LockHolder {
        LockHolder { run_id: run.into(), owner: "alice@laptop".into(), acquired_at: Timestamp::from_unix_millis(0) }
    }

    async fn exercise(lock: &dyn FailoverLock) {
        lock.acquire("shop", &holder("r1")).await.unwrap();
        lock.acquire("shop", &holder("r1")).await.unwrap();
        let e = lock.acquire("shop", &holder("r2")).await.unwrap_err();
        assert!(e.to_string().contains("run r1 by alice@laptop"), "{e}");
        lock.acquire("other-plan", &holder("r2")).await.unwrap();
        lock.release("shop", "r2").await.unwrap();
        assert_eq!(lock.holder("shop").await.unwrap().unwrap().run_id, "r1");
        lock.release("shop", "r1").await.unwrap();
        assert_eq!(lock.holder("shop").await.unwrap(), None);
        lock.acquire("shop", &holder("r2")).await.unwrap();
    }

    #[tokio::test]
    async fn in_process_lock_is_single_flight_and_reentrant() {
        exercise(&InProcessLock::new()).await;
    }

    #[tokio::test]
    async fn file_lock_is_single_flight_and_reentrant() {
        let dir =
            std::env::temp_dir().join(format!("qdr-lock-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        exercise(&FileLock::new(&dir)).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
