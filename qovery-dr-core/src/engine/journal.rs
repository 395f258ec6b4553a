//! The journal: intent and outcome of every step, written before and after,
//! so a run killed at any point resumes without redoing completed work. It is
//! also the audit log (who approved, which interlock was overridden, every
//! attempt and error).

use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::approval::Approval;
use super::interlock::Interlock;
use super::lock::LockHolder;
use super::mode::RunMode;
use super::report::{Outcome, RunReport};
use crate::error::ErrorKind;
use crate::model::Timestamp;

/// One journal line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    /// Position in the journal (0-based).
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// The run it belongs to.
    pub run_id: String,
    /// What happened.
    #[serde(flatten)]
    pub event: JournalEvent,
}

/// What a journal entry records.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEvent {
    /// A run began (the trigger).
    RunStarted {
        /// The mode.
        mode: RunMode,
        /// The plan's name.
        plan: String,
        /// Who started it.
        operator: String,
        /// The runbook it executes, so that a resume runs and reports the same steps
        /// (rebuilding it from live state would drop steps whose effect is already in
        /// place). `None` in journals written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runbook: Option<Box<super::Runbook>>,
    },
    /// A human (or policy) approved the run.
    ApprovalGranted {
        /// The approval.
        approval: Approval,
    },
    /// The approval was refused: the run stops.
    ApprovalDenied {
        /// Who refused, and why.
        reason: String,
    },
    /// The single-flight lock was taken.
    LockAcquired {
        /// The holder.
        holder: LockHolder,
    },
    /// The run releases its lock as it finishes (written just before `RunFinished`; the release
    /// itself follows, since a shared journal accepts writes from the holder only).
    LockReleased,
    /// An interlock refused a step.
    InterlockRefused {
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// What was observed.
        evidence: String,
    },
    /// An interlock was overridden by an operator.
    InterlockOverridden {
        /// The step.
        step: String,
        /// The rule.
        rule: Interlock,
        /// The operator's reason.
        reason: String,
        /// What was observed.
        evidence: String,
    },
    /// A step's action is about to run (written and synced before the action).
    StepStarted {
        /// The step.
        step: String,
        /// The attempt (1-based).
        attempt: u32,
    },
    /// An attempt failed.
    StepAttemptFailed {
        /// The step.
        step: String,
        /// The attempt.
        attempt: u32,
        /// The error kind.
        kind: ErrorKind,
        /// The error.
        message: String,
        /// Whether it will be retried.
        will_retry: bool,
    },
    /// A step completed (written and synced after the verification).
    StepFinished {
        /// The step.
        step: String,
        /// What resuming needs from it (ids created, positions reached).
        output: serde_json::Value,
        /// Attempts used.
        attempts: u32,
        /// Time taken, in milliseconds.
        duration_ms: u64,
    },
    /// A step failed for good.
    StepFailed {
        /// The step.
        step: String,
        /// The error kind.
        kind: Option<ErrorKind>,
        /// The error.
        message: String,
    },
    /// A DR activity done outside the engine (restore test, runbook review),
    /// recorded for the drill cadence.
    ActivityRecorded {
        /// What was done.
        activity: crate::readiness::Activity,
        /// Who did it.
        by: String,
        /// Free text (what was tested, the result).
        note: String,
    },
    /// The run ended.
    RunFinished {
        /// How.
        outcome: Outcome,
        /// The report.
        report: Box<RunReport>,
    },
}

/// A journal that cannot be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// An I/O error on the journal's storage.
    #[error("journal {path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not a journal entry (not the last: a torn last line is ignored).
    #[error(
        "journal {path}: line {line} is not a journal entry ({message}); the journal is corrupt, refusing to resume from it"
    )]
    Corrupt {
        /// Where.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// The parse error.
        message: String,
    },
    /// The journal's store refused the write (e.g. a fencing token mismatch).
    #[error("journal write refused: {0}")]
    Refused(String),
}

/// Where the engine records a run. Appends must be durable when they return.
#[async_trait]
pub trait Journal: Send + Sync + Debug + 'static {
    /// Appends an entry durably (for files: written and fsynced).
    async fn append(&self, entry: &JournalEntry) -> Result<(), JournalError>;

    /// Every entry, in order.
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError>;
}

#[async_trait]
impl<T: Journal + ?Sized> Journal for Arc<T> {
    async fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        (**self).append(entry).await
    }
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        (**self).entries().await
    }
}

/// An in-memory journal (tests, and runs that need no resume).
///
/// ```
/// use qovery_dr_core::engine::{Journal, MemoryJournal};
/// # tokio_test_block_on(async {
/// let j = MemoryJournal::new();
/// assert!(j.entries().await.unwrap().is_empty());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    entries: Arc<Mutex<Vec<JournalEntry>>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A journal holding these entries (e.g. the first k of another run's).
    pub fn with_entries(entries: Vec<JournalEntry>) -> Self {
        Self { entries: Arc::new(Mutex::new(entries)) }
    }

    /// A copy of the entries.
    pub fn snapshot(&self) -> Vec<JournalEntry> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).push(entry.clone());
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.snapshot())
    }
}

/// A JSON-lines journal file: each append is written and fsynced before it
/// returns (on tokio's blocking pool, never on the runtime's threads).
#[derive(Debug, Clone)]
pub struct FileJournal {
    path: PathBuf,
    file: Arc<Mutex<Option<std::fs::File>>>,
}

impl FileJournal {
    /// A journal at `path` (created on first append; appended to if it exists).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_path_buf(), file: Arc::new(Mutex::new(None)) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io { path: self.path.display().to_string(), source }
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = this.file.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.is_none() {
                if let Some(dir) = this.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| this.io(e))?;
                }
                let f =
                    std::fs::OpenOptions::new().create(true).append(true).open(&this.path).map_err(|e| this.io(e))?;
                *guard = Some(f);
            }
            let Some(file) = guard.as_mut() else {
                return Err(this.io(std::io::Error::other("journal file not open")));
            };
            file.write_all(&line).map_err(|e| this.io(e))?;
            file.sync_data().map_err(|e| this.io(e))
        })
        .await
        .map_err(|e| self.io(std::io::Error::other(e)))?
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalEntry>(line) {
                Ok(e) => out.push(e),
                // A crash mid-write can tear the last line only: that entry was never
                // acknowledged. Cut it off so the next appends follow a whole line.
                Err(e) if i + 1 == lines.len() && !text.ends_with('\n') => {
                    tracing::warn!(path = %self.path.display(), error = %e, "removing a torn last journal line");
                    let keep = text.len() - line.len();
                    let path = self.path.clone();
                    tokio::task::spawn_blocking(move || {
                        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
                        f.set_len(keep as u64)?;
                        f.sync_all()
                    })
                    .await
                    .map_err(|e| self.io(std::io::Error::other(e)))?
                    .map_err(|e| self.io(e))?;
                }
                Err(e) => {
                    return Err(JournalError::Corrupt {
                        path: self.path.display().to_string(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }
}
