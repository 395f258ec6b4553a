//! The journal: intent and outcome of every step, written before and after,
//! so a run killed at any point resumes without redoing completed work. It is
//! also the audit log (who approved, which interlock was overridden, every
//! attempt and error).

use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::engine::{Approval, Interlock, Outcome, RunMode, RunReport, Runbook};
use crate::error::ErrorKind;
use crate::lock::{FencingToken, LockGuard, LockHolder};

mod rules;

use crate::model::Timestamp;
pub use rules::validate_journal;

/// The journal schema this version writes. Entries without a `schema` field were written
/// before it was recorded (schema 0, the same layout); an entry with a larger number was
/// written by a newer version and is refused rather than misread.
pub const JOURNAL_SCHEMA: u32 = 1;

/// One journal line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    /// The schema it was written with ([`JOURNAL_SCHEMA`] for entries of this version).
    #[serde(default)]
    pub schema: u32,
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

impl JournalEntry {
    /// An entry of this version's schema.
    pub fn new(seq: u64, at: Timestamp, run_id: impl Into<String>, event: JournalEvent) -> Self {
        Self { schema: JOURNAL_SCHEMA, seq, at, run_id: run_id.into(), event }
    }

    /// The DR activity this entry shows done: one recorded by hand, or a run that
    /// succeeded (a drill is a partial drill; a switchover, failover or failback a full one).
    pub fn completed_activity(&self) -> Option<crate::model::Activity> {
        use crate::model::Activity;
        match &self.event {
            JournalEvent::ActivityRecorded { activity, .. } => Some(*activity),
            JournalEvent::RunFinished { outcome: Outcome::Succeeded, report } => Some(match report.mode? {
                RunMode::Drill => Activity::PartialDrill,
                _ => Activity::FullFailoverDrill,
            }),
            _ => None,
        }
    }
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
        runbook: Option<Box<Runbook>>,
    },
    /// A stopped run is driven again (`Engine::resume`): the only entry of a run that may
    /// follow its `RunFinished`, and never one whose outcome was a success.
    RunResumed {
        /// Who resumed it.
        operator: String,
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
        activity: crate::model::Activity,
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
    /// An entry that breaks the journal's rules (out of order, a step finishing before it
    /// started, an entry after its run finished, an output that does not decode, a schema
    /// newer than this version reads).
    #[error(
        "journal entry {seq} is invalid: {message}; refusing to resume from this journal (read it, or resume with the version that wrote it)"
    )]
    Invalid {
        /// The entry's sequence number.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The journal's store refused the write (e.g. a fencing token mismatch).
    #[error("journal write refused: {0}")]
    Refused(String),
}

/// Where the engine records a run.
///
/// The contract (checked for every backend by the testkit's `journal_conformance!`):
/// - an append is durable when it returns (for files: written and fsynced);
/// - it is written only with a [`LockGuard`] of the plan's failover lock, and a guard
///   whose token is older than the lock's current holding (or than the newest token
///   the journal has seen) is refused with [`JournalError::Refused`]: a holder that lost
///   the lock cannot write after its successor;
/// - appending exactly the entry already at that sequence number is a no-op (a retried
///   append whose first attempt was applied); a different entry there is refused;
/// - `entries` returns every entry in sequence order.
#[async_trait]
pub trait Journal: Send + Sync + Debug + 'static {
    /// Appends an entry durably, as the holder of `guard`.
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError>;

    /// Every entry, in order.
    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError>;
}

#[async_trait]
impl<T: Journal + ?Sized> Journal for Arc<T> {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        (**self).append(guard, entry).await
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
    entries: Arc<Mutex<Stored>>,
}

/// Entries in sequence order, with the fencing token each was written with, and the
/// newest token (kept as entries come in: an append does not rescan the journal).
#[derive(Debug, Default)]
struct Stored {
    entries: Vec<(JournalEntry, Option<FencingToken>)>,
    newest: Option<FencingToken>,
}

impl Stored {
    /// Adds an entry at its place in sequence order.
    fn insert(&mut self, entry: JournalEntry, token: Option<FencingToken>) {
        let at = self.entries.partition_point(|(e, _)| e.seq <= entry.seq);
        self.entries.insert(at, (entry, token));
        self.newest = self.newest.max(token);
    }

    /// The contract's rules for an append at the end of `entries`: `Ok(true)` to write,
    /// `Ok(false)` for an identical re-append.
    fn admit(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<bool, JournalError> {
        if let Some(newest) = self.newest.filter(|n| guard.token < *n) {
            return Err(JournalError::Refused(format!(
                "fencing token {} of run {} is stale: the journal holds entries of a later holding of the lock \
                 of plan {} (token {newest}); this run lost the lock and must stop (or the journal is shared by \
                 two plans: give each plan its own)",
                guard.token, guard.run_id, guard.plan
            )));
        }
        let taken = self.entries.binary_search_by_key(&entry.seq, |(e, _)| e.seq).ok().map(|i| &self.entries[i].0);
        match taken {
            Some(existing) if existing == entry => Ok(false),
            Some(_) => Err(JournalError::Refused(format!(
                "entry {} already exists with other content; the journal is never overwritten",
                entry.seq
            ))),
            None => Ok(true),
        }
    }
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A journal holding these entries (e.g. the first k of another run's).
    pub fn with_entries(entries: Vec<JournalEntry>) -> Self {
        let mut stored = Stored::default();
        for e in entries {
            stored.insert(e, None);
        }
        Self { entries: Arc::new(Mutex::new(stored)) }
    }

    /// A copy of the entries.
    pub fn snapshot(&self) -> Vec<JournalEntry> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).entries.iter().map(|(e, _)| e.clone()).collect()
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut stored = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if stored.admit(guard, entry)? {
            stored.insert(entry.clone(), Some(guard.token));
        }
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self.snapshot())
    }
}

/// A JSON-lines journal file: each append is written and fsynced before it
/// returns (on tokio's blocking pool, never on the runtime's threads). Each line is
/// the entry with the fencing token it was written with (`"token"`).
#[derive(Debug, Clone)]
pub struct FileJournal {
    path: PathBuf,
    state: Arc<Mutex<FileState>>,
}

/// What this process knows of the file: re-read whenever its length is not the one we left.
#[derive(Debug, Default)]
struct FileState {
    file: Option<std::fs::File>,
    seen_len: Option<u64>,
    stored: Stored,
}

impl FileJournal {
    /// A journal at `path` (created on first append; appended to if it exists).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self { path: path.as_ref().to_path_buf(), state: Arc::new(Mutex::new(FileState::default())) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io { path: self.path.display().to_string(), source }
    }

    /// Brings `state` up to date with the file (blocking).
    fn refresh(&self, state: &mut FileState) -> Result<(), JournalError> {
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(self.io(e)),
        };
        if state.seen_len != Some(len) {
            let (stored, len) = self.load()?;
            state.stored = stored;
            state.seen_len = Some(len);
        }
        Ok(())
    }

    /// Reads the file (blocking). A crash mid-write can tear the last line only: that entry
    /// was never acknowledged, so it is cut off and the next appends follow a whole line.
    fn load(&self) -> Result<(Stored, u64), JournalError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Stored::default(), 0)),
            Err(e) => return Err(self.io(e)),
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut stored = Stored::default();
        let mut len = text.len() as u64;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<JournalEntry>(line).and_then(|entry| {
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: Option<FencingToken>,
                }
                serde_json::from_str::<Token>(line).map(|t| (entry, t.token))
            });
            match parsed {
                Ok((e, token)) => stored.insert(e, token),
                Err(e) if i + 1 == lines.len() && !text.ends_with('\n') => {
                    tracing::warn!(path = %self.path.display(), error = %e, "removing a torn last journal line");
                    let keep = (text.len() - line.len()) as u64;
                    let f = std::fs::OpenOptions::new().write(true).open(&self.path).map_err(|e| self.io(e))?;
                    f.set_len(keep).map_err(|e| self.io(e))?;
                    f.sync_all().map_err(|e| self.io(e))?;
                    len = keep;
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
        Ok((stored, len))
    }

    fn append_blocking(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh(&mut state)?;
        if !state.stored.admit(guard, entry)? {
            return Ok(());
        }
        // The entry as it serializes (fields in their declared order, which readers of the
        // file may grep), with the token appended as its last field.
        let mut line = serde_json::to_vec(entry).map_err(|e| self.io(std::io::Error::other(e)))?;
        if line.pop() != Some(b'}') {
            return Err(self.io(std::io::Error::other("a journal entry did not serialize as a JSON object")));
        }
        line.extend_from_slice(format!(",\"token\":{}}}\n", guard.token.0).as_bytes());
        if state.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| self.io(e))?;
            state.file = Some(f);
        }
        let Some(file) = state.file.as_mut() else {
            return Err(self.io(std::io::Error::other("journal file not open")));
        };
        file.write_all(&line).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))?;
        state.seen_len = state.seen_len.map(|l| l + line.len() as u64);
        state.stored.insert(entry.clone(), Some(guard.token));
        Ok(())
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        let (this, guard, entry) = (self.clone(), guard.clone(), entry.clone());
        tokio::task::spawn_blocking(move || this.append_blocking(&guard, &entry))
            .await
            .map_err(|e| self.io(std::io::Error::other(e)))?
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = this.state.lock().unwrap_or_else(PoisonError::into_inner);
            this.refresh(&mut state)?;
            Ok(state.stored.entries.iter().map(|(e, _)| e.clone()).collect())
        })
        .await
        .map_err(|e| self.io(std::io::Error::other(e)))?
    }
}
