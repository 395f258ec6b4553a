//! PostgreSQL [`ReplicationManager`](qovery_dr_core::provider::ReplicationManager): physical streaming or logical
//! replication between two PostgreSQL servers (tested on PostgreSQL 15 only), on tokio-postgres.
//!
//! What it gets right, where tools often do not:
//! - **Lag** in bytes from LSNs and in time from a **heartbeat** row (never
//!   `now() - pg_last_xact_replay_timestamp()`, which grows on an idle primary).
//! - A standby without a WAL receiver, on another timeline, with replay paused
//!   or not advancing, is **not** reported as streaming.
//! - **Fencing** is verified: `ALTER SYSTEM SET default_transaction_read_only`,
//!   reload, client backends terminated, then a fresh session must see it.
//!   This is a *soft* fence: a client can `SET default_transaction_read_only =
//!   off` in its session. Stop the server (or restart it as a standby with
//!   `standby.signal`) where you have that access.
//! - **Logical promotion** syncs sequences (PostgreSQL 15 does not replicate
//!   them), from the publisher when it answers, else from the last values
//!   captured and the subscriber's own data; a slot left on a dead publisher is
//!   reported.
//!
//! One failover at a time across machines, for teams that run a PostgreSQL outside both
//! sites: [`PgFailoverLock`] (a session advisory lock, the holder readable in a table) and
//! [`PgJournal`] (the engine's journal in a table, fenced by the lock).
//!
//! Dumps (the Backup & Restore strategy): [`PgDumpBackup`] keeps them in a local folder, or,
//! with the `dump-store` feature, in an object store ([`DumpStore`]: S3, S3-compatible,
//! or a folder), records beside them; [`run_dump_schedule`] takes them on a schedule and
//! verifies restores into a scratch database.
//!
//! TLS: with the `postgres-tls` feature, [`PgEndpoint::with_tls`] requires TLS and
//! verifies the server's certificate against a CA file (rustls). Without the
//! feature, asking for TLS is an error, never a silent plain-text connection.

mod dump;
mod dump_facts;
mod dump_schedule;
#[cfg(feature = "dump-store")]
mod dump_store;
pub(crate) mod endpoint;
mod lock;
mod manager;
mod server;
mod sql;
mod staging;
#[cfg(feature = "postgres-tls")]
mod tls;

pub use dump::{BackupRecord, PgDumpBackup, RestoreCheck, TableFacts, Verification};
pub use dump_schedule::{DumpJobs, DumpSchedule, ScheduleSummary, run_dump_schedule};
#[cfg(feature = "dump-store")]
pub use dump_store::{DumpStore, DumpStoreOptions};
pub use endpoint::{PROVIDER, PgEndpoint};
pub use lock::{PgFailoverLock, PgJournal};
pub use manager::{HeartbeatSetup, PostgresReplicationManager, SenderInfo};
pub use server::LocalPgServer;
