//! The Qovery [`ClusterProvider`](qovery_dr_core::provider::ClusterProvider):
//! Qovery's REST API (the official OpenAPI spec's operations), with a shared
//! reqwest client (rustls).
//!
//! - Auth: API tokens are sent as `Authorization: Token …`, JWTs as `Bearer …`;
//!   the token never prints.
//! - Retries: GETs retry 429 (honouring `Retry-After`), 5xx and connection
//!   errors with backoff and jitter; mutations retry only 429 (a refused
//!   request), and report a 5xx or a lost answer as `Indeterminate`, so the
//!   engine reads the state before trying again.
//! - Variables: an upsert by key (list, then PUT or POST), idempotent; only the
//!   scope's own values are managed (inherited, alias, override and BUILT_IN
//!   ones are left alone); secret values are never read back. The per-level
//!   APIs (`/environment|container|application/{id}/environmentVariable` and
//!   `/secret`) are used rather than the unified `/variable` API because they
//!   address one scope exactly and are what the console uses for them.
//! - Clones: `POST /environment/{id}/clone` creates the environment **without
//!   deploying it**, and **database data is not cloned** (only the
//!   configuration): a drill restores or points at data itself.
//! - States: see [`states`] for the 29 deployment states and the ambiguous three.

mod client;
mod provider;
pub mod states;

pub use client::{PROVIDER, QoveryToken};
pub use provider::{DEFAULT_API_URL, OPERATIONS, QoveryBuilder, QoveryClusterProvider};

#[cfg(fuzzing)]
pub(crate) use provider::fuzz_bodies;
