//! The two sites of a DR plan.

use std::collections::BTreeMap;
use std::fmt;

use super::{ClusterId, DatabaseId, DnsRecordId, DnsTarget, EnvironmentId, ProjectId, SecretRef};

/// Which side of the plan a site is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteRole {
    /// The site serving production today.
    Primary,
    /// The disaster-recovery site.
    Dr,
}

impl SiteRole {
    /// The other side.
    pub fn other(self) -> SiteRole {
        match self {
            SiteRole::Primary => SiteRole::Dr,
            SiteRole::Dr => SiteRole::Primary,
        }
    }

    /// `primary` or `dr`, as in plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteRole::Primary => "primary",
            SiteRole::Dr => "dr",
        }
    }
}

impl fmt::Display for SiteRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the orchestrator reaches a site's database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatabaseEndpoint {
    /// The database's name in the plan (shared by both sites' copies).
    pub id: DatabaseId,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub dbname: String,
    /// User name.
    pub user: String,
    /// Where the password is found at run time.
    pub password: Option<SecretRef>,
    /// Require TLS and verify the server against this CA file.
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The logical replication publication on this site's database (when it publishes).
    #[serde(default)]
    pub publication: Option<String>,
    /// The logical replication subscription on this site's database (when it subscribes).
    #[serde(default)]
    pub subscription: Option<String>,
    /// The database server's data directory as the orchestrator's machine reaches it
    /// (`server = { data_dir = … }`): lets a failback re-protect this database when it is
    /// the original primary (stop, `pg_rewind`, start as a standby).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<DatabaseServer>,
    /// The Amazon RDS instance behind this database (`rds = { … }`): with `rds` on both
    /// databases of a physical pair, the failover promotes through the RDS API instead of
    /// over SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds: Option<RdsDatabase>,
}

/// An Amazon RDS for PostgreSQL instance, possibly a member of an Aurora cluster.
///
/// Both databases of a pair in one `cluster`: the DR one is a reader of the cluster,
/// made its writer with `FailoverDBCluster`. Neither in a cluster: the DR one is a read
/// replica of the primary, promoted with `PromoteReadReplica`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RdsDatabase {
    /// The instance's AWS region.
    pub region: String,
    /// Its `DBInstanceIdentifier`.
    pub instance: String,
    /// The Aurora cluster it is a member of (`DBClusterIdentifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The DB parameter group it uses, of its own: the `read-only` fence sets
    /// `default_transaction_read_only` in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
}

/// A database server the orchestrator controls on its own machine (or a volume mounted
/// there), for a physical re-protection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatabaseServer {
    /// The data directory (absolute).
    pub data_dir: std::path::PathBuf,
    /// Where `pg_ctl` and `pg_rewind` are, when not on the `PATH`.
    #[serde(default)]
    pub bin_dir: Option<std::path::PathBuf>,
    /// Options for the server at start (`pg_ctl start -o`).
    #[serde(default)]
    pub start_options: Option<String>,
    /// The server's log file at start (`pg_ctl start -l`).
    #[serde(default)]
    pub log_file: Option<std::path::PathBuf>,
    /// The operating-system user that owns the data directory, when the orchestrator runs
    /// as root.
    #[serde(default)]
    pub os_user: Option<String>,
}

/// A site's container registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryEndpoint {
    /// Host with optional port, e.g. `123456789012.dkr.ecr.eu-west-3.amazonaws.com`.
    pub host: String,
    /// The API's base URL when it is not `https://{host}` (e.g. `http://127.0.0.1:5000`).
    #[serde(default)]
    pub url: Option<String>,
    /// How the orchestrator authenticates.
    #[serde(default)]
    pub auth: crate::plan::RegistryAuthPlan,
}

/// How many instances of a service run, and with what resources.
///
/// ```
/// use qovery_dr_core::ServiceScale;
/// let s = ServiceScale::new(2, 6).with_cpu_millicores(1000).with_memory_mib(2048);
/// assert_eq!((s.min_instances, s.max_instances, s.cpu_millicores), (2, 6, Some(1000)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ServiceScale {
    /// Instances that always run.
    pub min_instances: u32,
    /// The most instances autoscaling may run.
    pub max_instances: u32,
    /// CPU per instance, in millicores (1000 = one CPU), when the plan states it.
    pub cpu_millicores: Option<u32>,
    /// Memory per instance, in MiB, when the plan states it.
    pub memory_mib: Option<u32>,
}

impl ServiceScale {
    /// `min_instances` to `max_instances`, resources unchanged.
    pub fn new(min_instances: u32, max_instances: u32) -> Self {
        Self { min_instances, max_instances, cpu_millicores: None, memory_mib: None }
    }

    /// Why a platform would refuse this scale (min above max), if it would.
    pub fn problem(&self) -> Option<String> {
        (self.min_instances > self.max_instances)
            .then(|| format!("min_instances {} is above max_instances {}", self.min_instances, self.max_instances))
    }

    /// The same scale with CPU per instance.
    pub fn with_cpu_millicores(mut self, m: u32) -> Self {
        self.cpu_millicores = Some(m);
        self
    }

    /// The same scale with memory per instance.
    pub fn with_memory_mib(mut self, m: u32) -> Self {
        self.memory_mib = Some(m);
        self
    }
}

/// What a site runs at: a scale for every service, and per-service exceptions (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteScale {
    /// The scale of every service the site runs, unless named below.
    pub default: Option<ServiceScale>,
    /// By service name.
    pub services: BTreeMap<String, ServiceScale>,
}

impl SiteScale {
    /// The scale the plan states for service `name`, if any.
    pub fn for_service(&self, name: &str) -> Option<ServiceScale> {
        self.services.get(name).copied().or(self.default)
    }

    /// Whether the plan states any scale for the site.
    pub fn is_stated(&self) -> bool {
        self.default.is_some() || !self.services.is_empty()
    }
}

/// One site: where it runs and what of the application lives there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Site {
    /// Primary or DR.
    pub role: SiteRole,
    /// A human name (e.g. `aws-eu-west-3`).
    pub name: String,
    /// The cloud provider (e.g. `aws`, `scaleway`, `gcp`).
    pub cloud: String,
    /// The cloud region (e.g. `eu-west-3`).
    pub region: String,
    /// The Qovery cluster.
    pub cluster: ClusterId,
    /// The Qovery project holding the environments, if known.
    pub project: Option<ProjectId>,
    /// The environments the application runs in on this site.
    pub environments: Vec<EnvironmentId>,
    /// The site's database (the first, when the site has several).
    pub database: DatabaseEndpoint,
    /// The site's other databases (`[[sites.<role>.additional_databases]]`), each a
    /// replicated pair of its own with the same id on both sites: a failover fences,
    /// catches up and promotes all of them in the same stages, and refuses before
    /// fencing any when one of them cannot follow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_databases: Vec<DatabaseEndpoint>,
    /// The site's container registry.
    pub registry: RegistryEndpoint,
    /// For each DNS record of the plan, the target that serves from this site.
    pub dns_targets: BTreeMap<DnsRecordId, DnsTarget>,
    /// Per-site parameter values (the prod/DR differences), applied as
    /// environment variables on failover.
    pub parameters: BTreeMap<String, String>,
    /// What the site runs at (`[sites.<role>.scale]`): a failover sets the DR site's
    /// values before deploying; readiness compares the two sites' capacity.
    #[serde(default)]
    pub scale: SiteScale,
}

impl Site {
    /// Every database of the site: [`database`](Self::database) first, then the
    /// [`additional_databases`](Self::additional_databases) in plan order.
    pub fn databases(&self) -> impl Iterator<Item = &DatabaseEndpoint> {
        std::iter::once(&self.database).chain(self.additional_databases.iter())
    }

    /// The ids of every database of the site, in the order of [`databases`](Self::databases).
    pub fn database_ids(&self) -> Vec<DatabaseId> {
        self.databases().map(|d| d.id.clone()).collect()
    }

    /// The plan-file path of the site's `n`th database (in the order of
    /// [`databases`](Self::databases)): `sites.dr.database`, then
    /// `sites.dr.additional_databases[0]`, and so on.
    pub fn database_field(&self, n: usize) -> String {
        match n {
            0 => format!("sites.{}.database", self.role),
            n => format!("sites.{}.additional_databases[{}]", self.role, n - 1),
        }
    }

    /// The database named `id` on this site.
    pub fn database_by_id(&self, id: &DatabaseId) -> Option<&DatabaseEndpoint> {
        self.databases().find(|d| &d.id == id)
    }
}
