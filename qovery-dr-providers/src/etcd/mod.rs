//! One failover at a time across machines, on etcd (`etcd-client`).
//!
//! [`EtcdFailoverLock`] is a lock key per plan, created only if absent in one
//! transaction and attached to a lease that a background task keeps alive while
//! the process lives. If the process dies or stalls past the lease TTL, etcd
//! deletes the key and another orchestrator can take the lock (and resume the
//! run: see `EngineOptions::lock_wait`).
//!
//! [`EtcdJournal`] keeps the engine's journal in etcd, one key per entry. Every
//! write is a transaction guarded by the lock key's *create revision*, which is
//! unique to one holding of the lock: a fencing token. A holder whose lease
//! expired (a long GC pause, a frozen VM, a partition) finds its token gone and
//! its writes refused, so it can never write over its successor.
//!
//! Calls are retried with backoff through leader elections and a lost member
//! (gRPC Unavailable and timeouts), for up to the lease TTL plus one request
//! timeout; retried writes are
//! made idempotent (an append that was applied is recognised by its value).
//!
//! Keys, under the configured prefix (default `/qovery-dr`):
//! `<prefix>/locks/<plan>` (the holder as JSON) and
//! `<prefix>/journal/<plan>/<seq, 20 digits>` (one entry as JSON).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
//!
//! let lock = EtcdFailoverLock::connect(
//!     EtcdConfig::new(["http://10.0.0.1:2379", "http://10.0.1.1:2379", "http://10.0.2.1:2379"]),
//! )
//! .await?;
//! let journal = lock.journal("shop-eu");
//! // Engine::builder(plan, providers).lock(lock).journal(journal)...
//! # let _ = journal; Ok(()) }
//! ```

mod config;
mod journal;
mod lock;
mod retry;

pub use config::EtcdConfig;
pub use journal::EtcdJournal;
pub use lock::EtcdFailoverLock;
