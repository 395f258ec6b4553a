//! A local real stack: every peer a failover touches, running on 127.0.0.1,
//! started by one call, with the plan file that describes it.
//!
//! - the stateful Qovery fake over HTTP, with two sites' clusters and
//!   environments, several container services per environment, deploys that take
//!   real seconds and one deployment per environment at a time (a second one is
//!   `409`, as on Qovery);
//! - a PostgreSQL 15 primary and a physical streaming standby (or, with
//!   [`LocalStackOptions::logical`], a publisher and a logical subscriber), the
//!   pgbench tables in place;
//! - two docker-registry servers: the primary's holds the services' images, the
//!   DR one holds them under `mirror/` (unless [`LocalStackOptions::mirrored`] is off);
//! - two Knot servers authoritative for `qdr.test` (a primary taking RFC 2136
//!   updates and a secondary transferring from it) holding `app.qdr.test`;
//! - `api.example.com` on the Cloudflare fake, or on moto's Route53
//!   ([`LocalStackOptions::route53`]).
//!
//! Every secret (the Qovery and Cloudflare tokens, the database password, the
//! TSIG key) is in a file of its own in the stack's directory, referenced from
//! the plan as `file:` (the plan holds none).
//!
//! ```no_run
//! use qovery_dr_testkit::local_stack::{LocalStack, LocalStackOptions};
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = LocalStack::start(LocalStackOptions::default()).await?;
//! let plan = stack.write_plan()?;
//! println!("cargo run -p qovery-dr-examples --features live --example failover_drill -- --live --plan {}", plan.display());
//! # Ok(()) }
//! ```
//!
//! Needs the binaries `scripts/tools.sh` installs (PostgreSQL 15, `docker-registry`,
//! `knotd` and `kdig`, and moto for the Route53 variant); a missing one is
//! [`LocalStackError::MissingTool`], naming its package.

mod daemon;
pub mod knot;
pub mod moto;
mod plan;
pub mod postgres;
pub mod registry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cloudflare_fake::CloudflareFake;
use crate::qovery_fake::QoveryFake;
pub use knot::KnotPair;
pub use moto::MotoServer;
pub use postgres::{Load, PgNode};
pub use registry::RegistryServer;

/// The Qovery organization of the stack.
pub const ORG: &str = "org-local";
/// The Qovery API token the fake accepts (a sentinel: tests look for it in logs).
pub const QOVERY_TOKEN: &str = "qovery-token-sentinel-7f3a";
/// The Cloudflare zone id.
pub const CF_ZONE: &str = "0123456789abcdef0123456789abcdef";
/// The Cloudflare API token the fake accepts.
pub const CF_TOKEN: &str = "cloudflare-token-sentinel-9c1e";
/// The database password written to the plan's secret file (the servers trust 127.0.0.1).
pub const PG_PASSWORD: &str = "pg-password-sentinel-44d0";
/// The zone the Knot servers serve.
pub const ZONE: &str = "qdr.test";
/// The record on the Knot servers.
pub const APP: &str = "app.qdr.test";
/// The record on Cloudflare (or Route53).
pub const API: &str = "api.example.com";
/// `app`'s primary target.
pub const APP_PRIMARY: &str = "203.0.113.10";
/// `app`'s DR target.
pub const APP_DR: &str = "198.51.100.20";
/// `api`'s primary target.
pub const API_PRIMARY: &str = "203.0.113.11";
/// `api`'s DR target.
pub const API_DR: &str = "198.51.100.21";
/// The image tag every service runs.
pub const TAG: &str = "v1";

/// What went wrong starting or using the stack.
#[derive(Debug, thiserror::Error)]
pub enum LocalStackError {
    /// A binary the stack runs is not installed.
    #[error("{} is missing: install {package} (./scripts/tools.sh installs it) or set {variable} to its path", path.display())]
    MissingTool {
        /// Where it was looked for.
        path: PathBuf,
        /// What provides it.
        package: String,
        /// The environment variable that overrides the path.
        variable: String,
    },
    /// A server did not start, or a command against one failed.
    #[error("{what}: {detail}")]
    Failed {
        /// What was being done.
        what: String,
        /// What happened (the server's log when it did not start).
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl LocalStackError {
    pub(crate) fn failed(what: &str, detail: &str) -> Self {
        Self::Failed { what: what.to_owned(), detail: detail.trim().to_owned() }
    }

    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// How the database pair replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// Physical streaming through a slot.
    Physical,
    /// A publication and a subscription.
    Logical,
}

/// Where `api.example.com` lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiDns {
    /// The Cloudflare fake.
    Cloudflare,
    /// moto's Route53.
    Route53,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LocalStackOptions {
    /// The database pair.
    pub replication: Replication,
    /// Where the second record lives.
    pub api_dns: ApiDns,
    /// The container services of each environment.
    pub services: Vec<String>,
    /// How long a deployment stays queued in the Qovery fake.
    pub queued: Duration,
    /// How long it then deploys.
    pub deploying: Duration,
    /// Whether the DR registry already holds the primary's images.
    pub mirrored: bool,
    /// Whether the DR registry is a container registry of the Qovery organization.
    pub dr_registry_in_qovery: bool,
    /// The directory for the plan and its secret files (default: a new temporary one,
    /// removed when the stack drops; a given one is kept).
    pub dir: Option<PathBuf>,
}

impl Default for LocalStackOptions {
    fn default() -> Self {
        Self {
            replication: Replication::Physical,
            api_dns: ApiDns::Cloudflare,
            services: ["api", "web", "worker"].map(str::to_owned).to_vec(),
            queued: Duration::from_millis(300),
            deploying: Duration::from_millis(1500),
            mirrored: true,
            dr_registry_in_qovery: true,
            dir: None,
        }
    }
}

impl LocalStackOptions {
    /// A logical pair instead of a physical one.
    pub fn logical(mut self) -> Self {
        self.replication = Replication::Logical;
        self
    }

    /// `api.example.com` on moto's Route53 instead of the Cloudflare fake.
    pub fn route53(mut self) -> Self {
        self.api_dns = ApiDns::Route53;
        self
    }

    /// Whether the DR registry starts with the primary's images.
    pub fn mirrored(mut self, mirrored: bool) -> Self {
        self.mirrored = mirrored;
        self
    }

    /// Whether the DR registry is known to Qovery from the start.
    pub fn dr_registry_in_qovery(mut self, known: bool) -> Self {
        self.dr_registry_in_qovery = known;
        self
    }

    /// How long deployments stay queued, then deploying.
    pub fn deploy_durations(mut self, queued: Duration, deploying: Duration) -> Self {
        self.queued = queued;
        self.deploying = deploying;
        self
    }

    /// The directory for the plan and its secrets (kept when the stack stops).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
}

/// `api.example.com`'s provider in a running stack.
#[derive(Debug)]
pub enum ApiProvider {
    /// The Cloudflare fake and the record's id.
    Cloudflare(CloudflareFake, String),
    /// moto and the hosted zone's id.
    Route53(MotoServer, String),
}

/// The running stack. Dropping it stops every server.
#[derive(Debug)]
pub struct LocalStack {
    /// The plan's directory (the plan, its secret files, `state/`).
    pub dir: PathBuf,
    keep_dir: bool,
    /// What was started.
    pub options: LocalStackOptions,
    /// The Qovery fake.
    pub qovery: QoveryFake,
    /// The primary database.
    pub primary: PgNode,
    /// The DR database (standby or subscriber).
    pub standby: PgNode,
    /// The primary site's registry.
    pub registry_a: RegistryServer,
    /// The DR site's registry.
    pub registry_b: RegistryServer,
    /// The authoritative servers of `qdr.test`.
    pub knot: KnotPair,
    /// `api.example.com`'s provider.
    pub api: ApiProvider,
    /// The primary and DR clusters' ids.
    pub clusters: (String, String),
    /// The primary and DR environments' ids.
    pub environments: (String, String),
}

impl LocalStack {
    /// Starts everything; servers that do not come up fail with their log.
    pub async fn start(options: LocalStackOptions) -> Result<LocalStack, LocalStackError> {
        let (dir, keep_dir) = match &options.dir {
            Some(d) => {
                // A journal or lock left by a previous stack names servers that are gone.
                let _ = std::fs::remove_dir_all(d.join("state"));
                (d.clone(), true)
            }
            None => (daemon::scratch("local-stack")?, false),
        };
        std::fs::create_dir_all(dir.join("state")).map_err(|e| LocalStackError::io(&dir, e))?;
        for (name, value) in [
            ("qovery-token", QOVERY_TOKEN),
            ("cf-token", CF_TOKEN),
            ("pg-password", PG_PASSWORD),
            ("tsig", knot::TSIG_SECRET),
        ] {
            daemon::write(&dir.join(name), &format!("{value}\n"))?;
        }
        let replication = options.replication;
        let databases = blocking(move || start_databases(replication));
        let registries = blocking(|| Ok((RegistryServer::start()?, RegistryServer::start()?)));
        let dns = blocking(|| KnotPair::start(ZONE, &[format!("app 60 A {APP_PRIMARY}")]));
        let moto = async {
            match options.api_dns {
                ApiDns::Route53 => blocking(MotoServer::start).await.map(Some),
                ApiDns::Cloudflare => Ok(None),
            }
        };
        let (databases, registries, knot, moto) = tokio::join!(databases, registries, dns, moto);
        let ((primary, standby), (registry_a, registry_b), knot, moto) = (databases?, registries?, knot?, moto?);

        for (i, name) in options.services.iter().enumerate() {
            let seed = 10 * i as u64;
            let layers = [registry::layer(seed + 1, 64 << 10), registry::layer(seed + 2, 32 << 10)];
            registry::push_image(&registry_a.url(), &format!("shop/{name}"), TAG, &layers).await?;
            if options.mirrored {
                // The same bytes under the DR prefix: the same digests, as a mirror holds them.
                registry::push_image(&registry_b.url(), &format!("mirror/shop/{name}"), TAG, &layers).await?;
            }
        }

        let qovery = QoveryFake::start(ORG).await;
        qovery.require_token(QOVERY_TOKEN);
        let c1 = qovery.add_cluster("paris");
        let c2 = qovery.add_cluster("frankfurt");
        let e1 = qovery.add_environment("project-1", "prod", &c1);
        let e2 = qovery.add_environment("project-1", "prod-dr", &c2);
        qovery.set_durations(options.queued, options.deploying);
        for name in &options.services {
            let image = format!("shop/{name}");
            qovery.add_container(&e1, name, &registry_a.url(), &image, TAG);
            // The DR environment runs the primary's images until a failover remaps them.
            qovery.add_container(&e2, name, &registry_a.url(), &image, TAG);
        }
        if options.dr_registry_in_qovery {
            qovery.add_registry(&registry_b.url());
        }

        let api = match moto {
            Some(moto) => {
                let zone = moto.create_zone("example.com").await?;
                moto.upsert_a(&zone, API, API_PRIMARY, 60).await?;
                ApiProvider::Route53(moto, zone)
            }
            None => {
                let cloudflare = CloudflareFake::start(CF_ZONE, CF_TOKEN).await;
                let record = cloudflare.add_record(API, "A", API_PRIMARY, 60);
                ApiProvider::Cloudflare(cloudflare, record)
            }
        };
        Ok(LocalStack {
            dir,
            keep_dir,
            options,
            qovery,
            primary,
            standby,
            registry_a,
            registry_b,
            knot,
            api,
            clusters: (c1, c2),
            environments: (e1, e2),
        })
    }

    /// The plan describing this stack (TOML).
    pub fn plan_toml(&self) -> String {
        plan::render(self)
    }

    /// Writes the plan to `<dir>/plan.toml` and returns its path.
    pub fn write_plan(&self) -> Result<PathBuf, LocalStackError> {
        let path = self.dir.join("plan.toml");
        daemon::write(&path, &self.plan_toml())?;
        Ok(path)
    }

    /// What each authoritative server of `qdr.test` answers for `name` (primary first),
    /// asked with `kdig`. Blocks for the queries.
    pub fn app_answers(&self, name: &str) -> Result<[String; 2], LocalStackError> {
        let [a, b] = self.knot.servers();
        Ok([self.knot.answer(a, name)?, self.knot.answer(b, name)?])
    }

    /// The content `api.example.com` has at its provider now.
    pub async fn api_target(&self) -> Result<Option<String>, LocalStackError> {
        match &self.api {
            ApiProvider::Cloudflare(fake, record) => Ok(fake.content(record)),
            ApiProvider::Route53(moto, zone) => Ok(moto.a_values(zone, API).await?.into_iter().next()),
        }
    }

    /// Environment variables the AWS SDK needs for the Route53 variant (moto accepts any key).
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        match &self.api {
            ApiProvider::Route53(..) => vec![
                ("AWS_ACCESS_KEY_ID", "AKIDLOCALSTACK".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "local-stack-secret".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
            ],
            ApiProvider::Cloudflare(..) => Vec::new(),
        }
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a blocking launcher off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LocalStackError> + Send + 'static,
) -> Result<T, LocalStackError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| LocalStackError::failed("a server launcher", &e.to_string()))?
}

fn start_databases(replication: Replication) -> Result<(PgNode, PgNode), LocalStackError> {
    let primary = PgNode::primary()?;
    primary.pgbench_init(1)?;
    let standby = match replication {
        Replication::Physical => PgNode::standby_of(&primary, "dr_slot")?,
        Replication::Logical => {
            let subscriber = PgNode::primary()?;
            // Logical replication carries no DDL: the same tables on both sides; the
            // subscription then copies the rows.
            subscriber.pgbench_init(1)?;
            subscriber.sql("TRUNCATE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history")?;
            PgNode::subscribe(&primary, &subscriber)?;
            subscriber
        }
    };
    Ok((primary, standby))
}
