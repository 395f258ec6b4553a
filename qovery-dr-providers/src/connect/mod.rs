//! From a plan to ready providers: [`connect`] turns a validated [`DrPlan`] into
//! the [`Providers`] a run drives, the failover lock and the journal, the way
//! `object_store::parse_url_opts` turns a URL into a store.
//!
//! - Each provider comes from its plan block and its cargo feature: `[qovery]`
//!   (`qovery`), each `[[dns]]` record's `route53` / `cloudflare` / `rfc2136` block
//!   (routed per record by a [`DnsRouter`]), the sites' databases (`postgres`, and
//!   `postgres-tls` for `tls_ca_file`; `rds` for a physical pair whose databases both
//!   state `rds = { … }`), the sites' registries (`registry`), and
//!   `[state] url` (`file://` always, `etcd://` with `etcd`, `postgres://` with
//!   `postgres`). A plan that needs a provider this build lacks gets
//!   [`ConnectError::FeatureMissing`] naming the field and the feature.
//! - Secret references are resolved here, once each, at run time; errors name the
//!   field and the reference, never the value.
//! - Nothing is written anywhere: the PostgreSQL heartbeat table is created and the
//!   writer started only by [`Connected::start_heartbeat`], so that read-only tools
//!   (readiness, plan checks) stay read-only.
//!
//! [`inspect`] says what `connect` would build, and whether each secret resolves,
//! without contacting anything.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use qovery_dr_core::engine::{AutoApprove, RunMode};
//! use qovery_dr_core::plan::DrPlan;
//! use qovery_dr_providers::connect::{ConnectOptions, connect};
//!
//! let plan = DrPlan::load("plans/shop.toml").await?;
//! let connected = connect(&plan, ConnectOptions::new()).await?;
//! let _heartbeat = connected.start_heartbeat().await?; // measured RPO needs it
//! let engine = connected.engine_builder(plan)?.approver(AutoApprove::new("oncall-sre")).build();
//! let runbook = engine.plan(RunMode::Switchover).await?; // dry run first
//! println!("{}", runbook.to_table());
//! # Ok(()) }
//! ```

mod build;
#[cfg(any(feature = "route53", feature = "cloudflare", feature = "rfc2136"))]
mod dns;
mod error;
mod inspect;
#[cfg(feature = "rds")]
mod rds;
#[cfg(feature = "registry")]
mod registry_auth;
mod resolver;
mod secrets;

use std::path::PathBuf;
use std::sync::Arc;

use qovery_dr_core::engine::{Engine, EngineBuilder, FailoverLock, HeartbeatWriter, Journal, Providers};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::DnsRouter;

#[cfg(feature = "postgres")]
pub use build::dump_backups;
pub use error::ConnectError;
pub use inspect::{Component, PlanConnections, SecretCheck, inspect};

/// Options of [`connect`] that a plan does not carry (they depend on the machine).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Where dumps are written (replication mode `dump`).
    pub dump_dir: Option<PathBuf>,
    /// PostgreSQL client tools (`pg_dump`, `pg_restore`) folder, when not on `PATH`.
    pub pg_bin_dir: Option<PathBuf>,
    /// The AWS configuration (credentials, region) for Route53, ECR and RDS instead of the
    /// standard chain; the plan's region and endpoint overrides still apply.
    #[cfg(any(feature = "route53", feature = "ecr", feature = "rds"))]
    pub aws: Option<aws_config::SdkConfig>,
}

impl ConnectOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where dumps are written (replication mode `dump`).
    pub fn with_dump_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dump_dir = Some(dir.into());
        self
    }

    /// The AWS configuration for Route53, ECR and RDS (default: the standard credential chain).
    #[cfg(any(feature = "route53", feature = "ecr", feature = "rds"))]
    pub fn with_aws_config(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.aws = Some(sdk);
        self
    }

    /// The folder of `pg_dump` and `pg_restore`.
    pub fn with_pg_bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pg_bin_dir = Some(dir.into());
        self
    }
}

/// What [`connect`] built.
#[derive(Debug)]
pub struct Connected {
    /// The providers a run or a readiness evaluation drives.
    pub providers: Providers,
    /// The failover lock and the journal (`None` without `[state]` in the plan).
    pub state: Option<(Arc<dyn FailoverLock>, Arc<dyn Journal>)>,
    router: DnsRouter,
    heartbeat: build::HeartbeatSource,
}

impl Connected {
    /// An engine builder over these providers, lock and journal. A live run needs a
    /// durable journal: without `[state]` in the plan this says what to add.
    pub fn engine_builder(&self, plan: DrPlan) -> Result<EngineBuilder, ConnectError> {
        let Some((lock, journal)) = &self.state else {
            return Err(ConnectError::Missing {
                path: "state".to_owned(),
                what: "a live run needs a durable lock and journal: add [state] url = \"file:///var/lib/qovery-dr\" \
                       (one machine), \"etcd://HOST:2379/qovery-dr\" or \"postgres://USER@HOST/DB\" (several)"
                    .to_owned(),
            });
        };
        Ok(Engine::builder(plan, self.providers.clone()).lock(Arc::clone(lock)).journal(Arc::clone(journal)))
    }

    /// Creates the heartbeat table (idempotent: on the primary, and on the subscriber
    /// for logical replication) and starts writing a heartbeat every
    /// `replication.heartbeat_interval`, so that an unplanned failover can bound the
    /// data it lost. The writer stops when the returned handle is dropped.
    ///
    /// A fenced primary (a run that stopped past its fence) refuses the table's DDL:
    /// the error says so, and resuming that run does not need a heartbeat.
    pub async fn start_heartbeat(&self) -> Result<HeartbeatWriter, ConnectError> {
        self.heartbeat.start(&self.providers, false).await
    }

    /// The heartbeat once the DR database is the primary (after a switchover or a
    /// failover, with the original primary re-protected as its standby): written on the
    /// DR database, so that a failback measures its RPO the same way.
    pub async fn start_heartbeat_back(&self) -> Result<HeartbeatWriter, ConnectError> {
        self.heartbeat.start(&self.providers, true).await
    }

    /// The DNS router (also `providers.dns`), for callers that need the record → provider mapping.
    pub fn dns_router(&self) -> &DnsRouter {
        &self.router
    }
}

/// Builds the providers, lock and journal a plan describes. See the [module docs](self).
pub async fn connect(plan: &DrPlan, options: ConnectOptions) -> Result<Connected, ConnectError> {
    build::connect(plan, &options).await
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn default_docker_config() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".docker").join("config.json")
}
