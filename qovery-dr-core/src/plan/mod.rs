//! DR plans: loaded from TOML, YAML or JSON and validated into a typed [`DrPlan`].
//!
//! Loading goes through one intermediate JSON value, so every format reports
//! the same field paths (`sites.dr.database.port`), then through cross-field
//! rules (the sites differ, the objectives fit the tier, TTLs fit the RTO…).
//! All problems found are reported together, not one at a time.

mod error;
mod fields;
mod live;
mod pairing;
mod raw;
mod rds;
mod repair;
mod terraform;
mod validate;
mod validate_live;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use error::{FieldIssue, PlanError};
pub use live::{DnsProviderPlan, QoveryPlan, RegistryAuthPlan, StateBackend, TsigPlan};
pub use pairing::EnvironmentPair;
pub use terraform::TerraformPlan;

use crate::model::{DnsRecordId, DnsTarget, Objectives, ResilienceLevel, SecretRef, Site, SiteRole, Tier};
use crate::provider::{RegistryMapping, ReplicationMode, SwitchStrategy};

/// The text format of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanFormat {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl PlanFormat {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// How the DR database is kept up to date.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicationPlan {
    /// The mode.
    pub mode: ReplicationMode,
    /// For [`ReplicationMode::Dump`]: how often a dump is taken.
    #[serde(with = "crate::model::duration_serde::option")]
    pub dump_interval: Option<Duration>,
    /// How often the heartbeat row is written (bounds the measured RPO's precision).
    #[serde(with = "crate::model::duration_serde")]
    pub heartbeat_interval: Duration,
    /// The schema holding the heartbeat table (default `qovery_dr`).
    pub heartbeat_schema: String,
    /// How the old primary is fenced (default: logins, the fence that holds against any client).
    pub fence: crate::provider::FenceKind,
    /// For [`ReplicationMode::Dump`]: the object store the dumps and their records are kept
    /// in (`None`: a folder on the orchestrator's disk, given when connecting).
    pub dump_store: Option<DumpStorePlan>,
    /// For [`ReplicationMode::Dump`]: how often a restore of the newest dump into a scratch
    /// database is verified (row counts and checksums); readiness fails when the last
    /// verified restore is older than this plus one dump interval.
    #[serde(with = "crate::model::duration_serde::option")]
    pub restore_check_interval: Option<Duration>,
    /// For [`ReplicationMode::Dump`]: the scratch database the restore checks use, on the
    /// DR database's server (default: the DR database's name with `_restore_check`).
    pub restore_check_database: Option<String>,
}

/// Where dumps are kept: an object store named by a URL.
///
/// `s3://bucket/prefix` (Amazon S3, or an S3-compatible store such as Scaleway's with
/// `endpoint`) or `file:///absolute/folder`. Credentials for S3 come from the plan's two
/// secret references when it has them (an S3-compatible store's keys are not the AWS
/// ones the DNS provider may use), else from the standard `AWS_*` environment variables
/// or the instance's role.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DumpStorePlan {
    /// The location, as written in the plan (`s3://…` or `file://…`).
    pub url: String,
    /// The store's region (S3), when it is not the environment's.
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store (e.g. `https://s3.fr-par.scw.cloud`).
    pub endpoint: Option<String>,
    /// The access key id, a secret reference (`env:SCW_ACCESS_KEY`).
    pub access_key_id: Option<crate::model::SecretRef>,
    /// The secret access key, a secret reference.
    pub secret_access_key: Option<crate::model::SecretRef>,
}

/// One DNS record the failover switches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsRecordPlan {
    /// The record's name.
    pub record: DnsRecordId,
    /// The hosted zone, where the provider needs it.
    pub zone: Option<String>,
    /// The record's TTL.
    #[serde(with = "crate::model::duration_serde")]
    pub ttl: Duration,
    /// How to switch.
    pub strategy: SwitchStrategy,
    /// The target serving from the primary site.
    pub primary_target: DnsTarget,
    /// The target serving from the DR site.
    pub dr_target: DnsTarget,
    /// Whether both targets have DNS health checks.
    pub health_check: bool,
    /// The DNS provider serving the record (`None` in plans of the first version:
    /// connecting to real infrastructure then says what to add).
    pub provider: Option<DnsProviderPlan>,
}

/// Who must approve a failover.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApprovalPolicy {
    /// Whether a human approval is required before anything past preflight.
    pub required: bool,
    /// Who may approve (empty: anyone the approver accepts).
    pub approvers: Vec<String>,
    /// Whether drills proceed without asking.
    pub drill_auto_approve: bool,
}

/// How a failover goes, beyond the default sequence (the plan's `[failover]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FailoverOptions {
    /// Both sites pull from one global registry (the DR guide's "single global registry"
    /// option): no image is copied, and the registry must survive the primary site's loss.
    pub single_global_registry: bool,
    /// After a failover or switchover, stop the old primary's environments: applications
    /// still running there could write to the old database or serve stale data.
    pub stop_old_primary: bool,
    /// A stopped DR cluster is started (and waited for) before anything else changes,
    /// instead of refused: pilot light keeps the DR cluster stopped to save its cost.
    pub start_stopped_cluster: bool,
    /// Hot standby and active-active: the failover promotes the database and switches DNS
    /// only ("no variable updates, no redeployments"), after verifying that the DR site
    /// already serves the DR configuration.
    pub dns_only: bool,
    /// A failback first re-protects: each original primary is made a standby of the
    /// current primary again by the replication manager ([`ReplicationManager::reprotect`](crate::provider::ReplicationManager::reprotect):
    /// `pg_rewind`, a reverse subscription, or a fresh dump back), and the run waits until
    /// it follows, instead of refusing until an operator has done it. Writes the original
    /// primary took after the failover's fork are discarded: they are the loss the failover
    /// reported.
    pub reprotect_on_failback: bool,
}

/// Something allowed but worth a second look, at a field path.
pub type PlanWarning = FieldIssue;

/// A validated DR plan.
///
/// ```
/// use qovery_dr_core::plan::{DrPlan, PlanFormat};
/// let text = r#"
/// name = "shop"
/// tier = "warm-standby"
/// resilience = "cross-region"
/// objectives = { rto = "15m", rpo = "1m" }
/// replication = { mode = "physical" }
/// [sites.primary]
/// name = "paris"
/// cloud = "aws"
/// region = "eu-west-3"
/// cluster = "c-paris"
/// environments = ["e-paris"]
/// database = { id = "db", host = "db.paris", port = 5432, dbname = "shop", user = "dr", password = "env:PG_PASSWORD" }
/// registry = { host = "1.dkr.ecr.eu-west-3.amazonaws.com" }
/// [sites.dr]
/// name = "frankfurt"
/// cloud = "aws"
/// region = "eu-central-1"
/// cluster = "c-frankfurt"
/// environments = ["e-frankfurt"]
/// database = { id = "db", host = "db.frankfurt", port = 5432, dbname = "shop", user = "dr" }
/// registry = { host = "1.dkr.ecr.eu-central-1.amazonaws.com" }
/// "#;
/// let plan = DrPlan::parse(text, PlanFormat::Toml).unwrap();
/// assert_eq!(plan.dr().cluster.as_str(), "c-frankfurt");
///
/// let bad = text.replace("port = 5432, dbname = \"shop\", user = \"dr\" }", "port = \"abc\", dbname = \"shop\", user = \"dr\" }");
/// let err = DrPlan::parse(&bad, PlanFormat::Toml).unwrap_err();
/// assert!(err.to_string().contains(r#"sites.dr.database.port: expected an integer 1-65535, got "abc""#));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrPlan {
    /// The plan's name.
    pub(crate) name: String,
    /// Free text.
    pub(crate) description: Option<String>,
    /// The DR strategy tier.
    pub(crate) tier: Tier,
    /// The resilience level.
    pub(crate) resilience: ResilienceLevel,
    /// RTO and RPO.
    pub(crate) objectives: Objectives,
    /// How the database is replicated.
    pub(crate) replication: ReplicationPlan,
    /// The site serving production.
    pub(crate) primary: Site,
    /// The DR site.
    pub(crate) dr: Site,
    /// Which DR environment stands in for which primary one (stated by the plan, or the
    /// only pairing of one environment per site).
    pub(crate) environment_pairs: Vec<EnvironmentPair>,
    /// The DNS records to switch.
    pub(crate) dns: Vec<DnsRecordPlan>,
    /// Primary registry → DR registry.
    pub(crate) registry_mapping: RegistryMapping,
    /// Who approves.
    pub(crate) approval: ApprovalPolicy,
    /// How a failover goes beyond the default sequence.
    pub(crate) failover: FailoverOptions,
    /// Named credential references (e.g. `qovery_token`), resolved at run time.
    pub(crate) credentials: BTreeMap<String, SecretRef>,
    /// The Qovery API (`None`: the plan runs on simulated or user-built providers only).
    pub(crate) qovery: Option<QoveryPlan>,
    /// Where the failover lock and journal live (`None`: the caller decides).
    pub(crate) state: Option<StateBackend>,
    /// Things allowed but worth a second look.
    pub(crate) warnings: Vec<PlanWarning>,
    /// `[terraform]`: the sources and the fields tied to their outputs.
    pub(crate) terraform: Option<TerraformPlan>,
}

/// A validated plan is read through these: its fields cannot be changed afterwards, so
/// "validated" holds for as long as the value lives. To change a plan, change its text
/// and parse it again.
///
/// ```compile_fail
/// # fn edit(mut plan: qovery_dr_core::plan::DrPlan) {
/// plan.dns.clear(); // error[E0616]: the fields are private
/// # }
/// ```
impl DrPlan {
    /// The plan's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Free text.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The DR strategy tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }
    /// The resilience level.
    pub fn resilience(&self) -> ResilienceLevel {
        self.resilience
    }
    /// RTO and RPO.
    pub fn objectives(&self) -> &Objectives {
        &self.objectives
    }
    /// How the database is replicated.
    pub fn replication(&self) -> &ReplicationPlan {
        &self.replication
    }
    /// The site serving production.
    pub fn primary(&self) -> &Site {
        &self.primary
    }
    /// The DR site.
    pub fn dr(&self) -> &Site {
        &self.dr
    }
    /// Which DR environment stands in for which primary one.
    pub fn environment_pairs(&self) -> &[EnvironmentPair] {
        &self.environment_pairs
    }
    /// The DNS records to switch.
    pub fn dns(&self) -> &[DnsRecordPlan] {
        &self.dns
    }
    /// Primary registry → DR registry.
    pub fn registry_mapping(&self) -> &RegistryMapping {
        &self.registry_mapping
    }
    /// Who approves.
    pub fn approval(&self) -> &ApprovalPolicy {
        &self.approval
    }
    /// Named credential references (e.g. `qovery_token`), resolved at run time.
    pub fn credentials(&self) -> &BTreeMap<String, SecretRef> {
        &self.credentials
    }
    /// The Qovery API (`None`: the plan runs on simulated or user-built providers only).
    pub fn qovery(&self) -> Option<&QoveryPlan> {
        self.qovery.as_ref()
    }
    /// Where the failover lock and journal live (`None`: the caller decides).
    pub fn state(&self) -> Option<&StateBackend> {
        self.state.as_ref()
    }
    /// How a failover goes beyond the default sequence (`[failover]`).
    pub fn failover(&self) -> &FailoverOptions {
        &self.failover
    }
    /// Things allowed but worth a second look.
    pub fn warnings(&self) -> &[PlanWarning] {
        &self.warnings
    }
}

/// The outputs of `source`, or why they could not be read.
async fn read_outputs(
    source: &crate::terraform::TerraformSource,
) -> Result<crate::terraform::TerraformOutputs, String> {
    #[cfg(feature = "terraform")]
    {
        crate::terraform::read_outputs(source).await.map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "terraform"))]
    {
        let _ = source;
        Err(crate::terraform::TerraformError::NotCompiled.to_string())
    }
}

impl DrPlan {
    /// Parses and validates a plan from text. A plan with Terraform references needs
    /// [`load`](Self::load) (which reads the outputs) or
    /// [`from_value_with_outputs`](Self::from_value_with_outputs).
    pub fn parse(text: &str, format: PlanFormat) -> Result<Self, PlanError> {
        Self::from_value(Self::parse_value(text, format)?)
    }

    fn parse_value(text: &str, format: PlanFormat) -> Result<serde_json::Value, PlanError> {
        Ok(match format {
            #[cfg(feature = "toml")]
            PlanFormat::Toml => toml::from_str(text)
                .map_err(|e| PlanError::Syntax { format: "TOML", message: e.to_string().trim_end().to_owned() })?,
            #[cfg(feature = "yaml")]
            PlanFormat::Yaml => serde_yaml_ng::from_str(text)
                .map_err(|e| PlanError::Syntax { format: "YAML", message: e.to_string() })?,
            PlanFormat::Json => {
                serde_json::from_str(text).map_err(|e| PlanError::Syntax { format: "JSON", message: e.to_string() })?
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(PlanError::Syntax {
                    format: if other == PlanFormat::Toml { "TOML" } else { "YAML" },
                    message: "this build of qovery-dr-core reads plans in JSON only: enable its `toml` or `yaml` \
                              feature (both are on by default)"
                        .to_owned(),
                });
            }
        })
    }

    /// Validates a plan already parsed into a JSON value (see [`from_value_with_outputs`](Self::from_value_with_outputs)
    /// for one with Terraform references).
    pub fn from_value(value: serde_json::Value) -> Result<Self, PlanError> {
        Self::from_value_with_outputs(value, &BTreeMap::new())
    }

    /// Validates a plan whose `tf:SOURCE/OUTPUT` references take their values from
    /// `outputs` (by source name), outputs read by the caller: the embedder's own reading
    /// of the state, or a test's. [`load`](Self::load) reads them with the CLI.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use qovery_dr_core::plan::DrPlan;
    /// use qovery_dr_core::terraform::TerraformOutputs;
    /// let site = |name: &str, region: &str, cluster: &str, db: &str| serde_json::json!({
    ///     "name": name, "cloud": "aws", "region": region, "cluster": cluster, "environments": [format!("env-{name}")],
    ///     "database": { "id": "db", "host": db, "port": 5432, "dbname": "shop", "user": "u" },
    ///     "registry": { "host": format!("registry.{region}.example.com") } });
    /// let plan = serde_json::json!({
    ///     "name": "shop", "tier": "warm-standby", "resilience": "cross-region",
    ///     "objectives": { "rto": "15m", "rpo": "1m" }, "replication": { "mode": "physical" },
    ///     "terraform": { "sources": { "dr": { "dir": "infra/dr" } } },
    ///     "sites": { "primary": site("paris", "eu-west-3", "c1", "db1"),
    ///                "dr": site("frankfurt", "eu-central-1", "tf:dr/cluster_id", "db2") },
    ///     "dns": [] });
    /// let outputs = TerraformOutputs::parse(r#"{"cluster_id": {"value": "c2-from-terraform", "type": "string", "sensitive": false}}"#).unwrap();
    /// let plan = DrPlan::from_value_with_outputs(plan, &BTreeMap::from([("dr".to_owned(), outputs)])).unwrap();
    /// assert_eq!(plan.dr().cluster.as_str(), "c2-from-terraform");
    /// assert_eq!(plan.terraform().unwrap().bindings[0].field, "sites.dr.cluster");
    /// ```
    pub fn from_value_with_outputs(
        mut value: serde_json::Value,
        outputs: &BTreeMap<String, crate::terraform::TerraformOutputs>,
    ) -> Result<Self, PlanError> {
        let config = terraform::take_config(&mut value, None).map_err(PlanError::Invalid)?;
        let outputs = outputs.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect();
        Self::validated(value, config, &outputs)
    }

    fn validated(
        mut value: serde_json::Value,
        config: terraform::Config,
        outputs: &BTreeMap<String, Result<crate::terraform::TerraformOutputs, String>>,
    ) -> Result<Self, PlanError> {
        let resolved = terraform::resolve(&mut value, &config, outputs);
        let tf = (!config.sources.is_empty())
            .then(|| TerraformPlan { sources: config.sources.clone(), bindings: resolved.bindings.clone() });
        match Self::validate_value(value) {
            Ok(mut plan) if resolved.issues.is_empty() => {
                plan.terraform = tf;
                Ok(plan)
            }
            Ok(_) => Err(PlanError::Invalid(resolved.issues)),
            Err(PlanError::Invalid(mut issues)) => {
                terraform::annotate(&mut issues, &resolved.bindings);
                let mut all = resolved.issues;
                all.append(&mut issues);
                Err(PlanError::Invalid(all))
            }
            Err(other) => Err(other),
        }
    }

    /// Every problem is reported, not only the first: a value of the wrong type is
    /// reported and replaced by a marker that its field accepts, an unknown field is
    /// reported and removed, a missing one reported and filled with the marker, and
    /// deserialisation starts again, until the plan deserialises; then the rules
    /// between fields run on what is left.
    fn validate_value(mut value: serde_json::Value) -> Result<Self, PlanError> {
        // Each round fixes one value; a plan has far fewer fields than this.
        const MAX_ROUNDS: usize = 256;
        let mut reported: Vec<FieldIssue> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let e = match serde_path_to_error::deserialize::<_, raw::RawPlan>(&value) {
                Ok(raw) => return validate::validate(raw, reported),
                Err(e) => e,
            };
            let segments: Vec<serde_path_to_error::Segment> = e.path().iter().cloned().collect();
            let issue = FieldIssue::new(e.path().to_string(), e.into_inner().to_string());
            if reported.contains(&issue) || !repair::repair(&mut value, &segments, &issue.message) {
                // No way round this one: report it with the others found so far.
                if !reported.contains(&issue) {
                    reported.push(issue);
                }
                break;
            }
            reported.push(issue);
        }
        Err(PlanError::Invalid(reported))
    }

    /// Reads and validates a plan file; the format comes from the extension. With a
    /// `[terraform]` table, each source's outputs are read with its CLI first (`dir` and
    /// `state` relative to the plan file's folder), and each `tf:SOURCE/OUTPUT` field
    /// takes its output's value.
    pub async fn load(path: impl AsRef<Path>) -> Result<Self, PlanError> {
        let path = path.as_ref();
        let format = PlanFormat::from_path(path).ok_or_else(|| PlanError::UnknownFormat(path.display().to_string()))?;
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| PlanError::Io { path: path.display().to_string(), source })?;
        let mut value = Self::parse_value(&text, format)?;
        let config = terraform::take_config(&mut value, path.parent()).map_err(PlanError::Invalid)?;
        let mut outputs = BTreeMap::new();
        for source in &config.sources {
            outputs.insert(source.name.clone(), read_outputs(source).await);
        }
        Self::validated(value, config, &outputs)
    }

    /// What `[terraform]` says: the sources, the fields tied to outputs.
    pub fn terraform(&self) -> Option<&TerraformPlan> {
        self.terraform.as_ref()
    }

    /// The plan's fields against what their Terraform outputs say now, the outputs read
    /// again with the CLI: a field whose value came from an output that changed since the
    /// plan was loaded, or a literal that `[terraform.compare]` ties to an output that says
    /// otherwise. Empty without `[terraform]`.
    pub async fn terraform_drift(&self) -> crate::terraform::DriftReport {
        let Some(tf) = &self.terraform else { return crate::terraform::DriftReport::default() };
        let mut outputs = BTreeMap::new();
        for source in &tf.sources {
            outputs.insert(source.name.clone(), read_outputs(source).await);
        }
        crate::terraform::compare_bindings(&tf.bindings, &outputs)
    }

    /// The same comparison with outputs the caller read.
    pub fn terraform_drift_against(
        &self,
        outputs: &BTreeMap<String, crate::terraform::TerraformOutputs>,
    ) -> crate::terraform::DriftReport {
        let Some(tf) = &self.terraform else { return crate::terraform::DriftReport::default() };
        let outputs = outputs.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect();
        crate::terraform::compare_bindings(&tf.bindings, &outputs)
    }

    /// The site with the given role.
    pub fn site(&self, role: SiteRole) -> &Site {
        match role {
            SiteRole::Primary => &self.primary,
            SiteRole::Dr => &self.dr,
        }
    }

    /// The plan for the reverse direction (failback): the DR site becomes the
    /// primary. Objectives, DNS records and policy are kept; targets swap.
    pub fn reversed(&self) -> DrPlan {
        let mut p = self.clone();
        std::mem::swap(&mut p.primary, &mut p.dr);
        p.primary.role = SiteRole::Primary;
        p.dr.role = SiteRole::Dr;
        for r in &mut p.dns {
            std::mem::swap(&mut r.primary_target, &mut r.dr_target);
        }
        std::mem::swap(&mut p.registry_mapping.from, &mut p.registry_mapping.to);
        for pair in &mut p.environment_pairs {
            std::mem::swap(&mut pair.primary, &mut pair.dr);
        }
        for b in p.terraform.iter_mut().flat_map(|t| t.bindings.iter_mut()) {
            b.field = if let Some(rest) = b.field.strip_prefix("sites.primary.") {
                format!("sites.dr.{rest}")
            } else if let Some(rest) = b.field.strip_prefix("sites.dr.") {
                format!("sites.primary.{rest}")
            } else if let Some(rest) = b.field.strip_suffix(".primary_target") {
                format!("{rest}.dr_target")
            } else if let Some(rest) = b.field.strip_suffix(".dr_target") {
                format!("{rest}.primary_target")
            } else {
                b.field.clone()
            };
        }
        p
    }

    /// The primary environment a DR environment stands in for.
    pub fn primary_counterpart(&self, dr: &crate::model::EnvironmentId) -> Option<&crate::model::EnvironmentId> {
        self.environment_pairs.iter().find(|p| &p.dr == dr).map(|p| &p.primary)
    }
}
