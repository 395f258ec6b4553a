//! # qovery-dr-core
//!
//! The model, the four provider traits, DR plans, readiness and the failover engine of **qovery-dr**,
//! an SDK for disaster-recovery orchestration of applications on Qovery.
//!
//! - [`model`][]: typed identifiers, [`Objectives`] (RTO/RPO), [`Tier`],
//!   [`ResilienceLevel`], [`Site`], [`ImageRef`], [`Lsn`], secrets.
//! - [`provider`][]: [`ClusterProvider`](provider::ClusterProvider),
//!   [`DnsSwitcher`](provider::DnsSwitcher),
//!   [`ReplicationManager`](provider::ReplicationManager),
//!   [`RegistrySync`](provider::RegistrySync): object-safe, held as `Arc<dyn …>`.
//! - [`plan`][]: [`DrPlan`](plan::DrPlan), loaded from TOML/YAML/JSON and validated.
//! - [`engine`][]: the failover engine (runbooks, interlocks, journal, resume).
//! - [`ProviderError`][]: the error every provider method returns, with an
//!   [`ErrorKind`] the engine acts on (plans, secrets and Terraform outputs have their
//!   own: [`plan::PlanError`], [`SecretError`], [`terraform::TerraformError`]).
//!
//! This crate has no HTTP, SQL or cloud dependency: real providers live in
//! `qovery-dr-providers`, the simulated world in `qovery-dr-testkit`.

pub mod clock;
#[cfg(feature = "documents")]
pub mod document;
pub mod engine;
pub mod error;
pub mod journal;
pub mod lock;
pub mod model;
#[cfg(feature = "monitor")]
pub mod monitor;
pub mod plan;
pub mod provider;
pub mod readiness;
pub mod resilience;
pub mod stability;
pub mod terraform;

/// Re-exported so implementors of the provider traits need no extra dependency.
pub use async_trait::async_trait;
pub use error::{ErrorKind, ProviderError, ProviderResult};
pub use model::*;
