//! The plan file format, as deserialised before validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fields::{Choice, HumanDuration, NonEmpty, Port, SecretField, TtlSeconds};
use crate::model::{ResilienceLevel, Tier};
use crate::provider::ReplicationMode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: NonEmpty,
    #[serde(default)]
    pub description: Option<String>,
    pub tier: Choice<Tier>,
    pub resilience: Choice<ResilienceLevel>,
    pub objectives: RawObjectives,
    pub replication: RawReplication,
    pub sites: RawSites,
    #[serde(default)]
    pub dns: Vec<RawDnsRecord>,
    #[serde(default)]
    pub approval: RawApproval,
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretField>,
    #[serde(default)]
    pub qovery: Option<RawQovery>,
    #[serde(default)]
    pub state: Option<RawState>,
    #[serde(default)]
    pub environment_pairs: Vec<RawEnvironmentPair>,
    #[serde(default)]
    pub failover: RawFailover,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFailover {
    #[serde(default = "no")]
    pub single_global_registry: Choice<bool>,
    #[serde(default = "no")]
    pub stop_old_primary: Choice<bool>,
    #[serde(default = "no")]
    pub start_stopped_cluster: Choice<bool>,
    #[serde(default = "no")]
    pub dns_only: Choice<bool>,
    #[serde(default = "no")]
    pub reprotect_on_failback: Choice<bool>,
}

impl Default for RawFailover {
    fn default() -> Self {
        Self {
            single_global_registry: no(),
            stop_old_primary: no(),
            start_stopped_cluster: no(),
            dns_only: no(),
            reprotect_on_failback: no(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironmentPair {
    pub primary: NonEmpty,
    pub dr: NonEmpty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQovery {
    #[serde(default)]
    pub api_url: Option<NonEmpty>,
    pub organization: NonEmpty,
    pub token: SecretField,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub url: NonEmpty,
    #[serde(default)]
    pub password: Option<SecretField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawObjectives {
    pub rto: HumanDuration,
    pub rpo: HumanDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplication {
    pub mode: Choice<ReplicationMode>,
    #[serde(default)]
    pub dump_interval: Option<HumanDuration>,
    #[serde(default)]
    pub heartbeat_interval: Option<HumanDuration>,
    #[serde(default)]
    pub heartbeat_schema: Option<NonEmpty>,
    #[serde(default)]
    pub fence: Option<Choice<crate::provider::FenceKind>>,
    #[serde(default)]
    pub dump_location: Option<NonEmpty>,
    #[serde(default)]
    pub dump_store_region: Option<NonEmpty>,
    #[serde(default)]
    pub dump_store_endpoint: Option<NonEmpty>,
    #[serde(default)]
    pub dump_store_access_key_id: Option<SecretField>,
    #[serde(default)]
    pub dump_store_secret_access_key: Option<SecretField>,
    #[serde(default)]
    pub restore_check_interval: Option<HumanDuration>,
    #[serde(default)]
    pub restore_check_database: Option<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSites {
    pub primary: RawSite,
    pub dr: RawSite,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    pub name: NonEmpty,
    pub cloud: NonEmpty,
    pub region: NonEmpty,
    pub cluster: NonEmpty,
    #[serde(default)]
    pub project: Option<NonEmpty>,
    pub environments: Vec<NonEmpty>,
    pub database: RawDatabase,
    #[serde(default)]
    pub additional_databases: Vec<RawDatabase>,
    pub registry: RawRegistry,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub scale: Option<RawScale>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServiceScale {
    pub min_instances: u32,
    pub max_instances: u32,
    #[serde(default)]
    pub cpu_millicores: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScale {
    #[serde(default)]
    pub min_instances: Option<u32>,
    #[serde(default)]
    pub max_instances: Option<u32>,
    #[serde(default)]
    pub cpu_millicores: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
    #[serde(default)]
    pub services: BTreeMap<String, RawServiceScale>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub id: NonEmpty,
    pub host: NonEmpty,
    pub port: Port,
    pub dbname: NonEmpty,
    pub user: NonEmpty,
    #[serde(default)]
    pub password: Option<SecretField>,
    #[serde(default)]
    pub tls_ca_file: Option<NonEmpty>,
    #[serde(default)]
    pub publication: Option<NonEmpty>,
    #[serde(default)]
    pub subscription: Option<NonEmpty>,
    #[serde(default)]
    pub server: Option<RawDatabaseServer>,
    #[serde(default)]
    pub rds: Option<RawRds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRds {
    pub region: NonEmpty,
    pub instance: NonEmpty,
    #[serde(default)]
    pub cluster: Option<NonEmpty>,
    #[serde(default)]
    pub parameter_group: Option<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabaseServer {
    pub data_dir: NonEmpty,
    #[serde(default)]
    pub bin_dir: Option<NonEmpty>,
    #[serde(default)]
    pub start_options: Option<NonEmpty>,
    #[serde(default)]
    pub log_file: Option<NonEmpty>,
    #[serde(default)]
    pub os_user: Option<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    pub host: NonEmpty,
    #[serde(default)]
    pub prefix: Option<NonEmpty>,
    #[serde(default)]
    pub credentials: Option<SecretField>,
    #[serde(default)]
    pub url: Option<NonEmpty>,
    #[serde(default)]
    pub auth: Option<RawRegistryAuth>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawAuthKind {
    Anonymous,
    Basic,
    Bearer,
    Ecr,
    DockerConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistryAuth {
    pub kind: Choice<RawAuthKind>,
    #[serde(default)]
    pub username: Option<NonEmpty>,
    #[serde(default)]
    pub password: Option<SecretField>,
    #[serde(default)]
    pub token: Option<SecretField>,
    #[serde(default)]
    pub region: Option<NonEmpty>,
    #[serde(default)]
    pub endpoint_url: Option<NonEmpty>,
    #[serde(default)]
    pub path: Option<NonEmpty>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawStrategy {
    RecordSwap,
    FailoverRouting,
    Weighted,
    LoadBalancerPool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDnsRecord {
    pub name: NonEmpty,
    #[serde(default)]
    pub zone: Option<NonEmpty>,
    pub ttl: TtlSeconds,
    pub strategy: Choice<RawStrategy>,
    pub primary_target: NonEmpty,
    pub dr_target: NonEmpty,
    #[serde(default = "yes")]
    pub health_check: Choice<bool>,
    #[serde(default)]
    pub route53: Option<RawRoute53>,
    #[serde(default)]
    pub cloudflare: Option<RawCloudflare>,
    #[serde(default)]
    pub rfc2136: Option<RawRfc2136>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute53 {
    #[serde(default)]
    pub hosted_zone_id: Option<NonEmpty>,
    #[serde(default)]
    pub endpoint_url: Option<NonEmpty>,
    #[serde(default)]
    pub region: Option<NonEmpty>,
    #[serde(default)]
    pub primary_health_check: Option<NonEmpty>,
    #[serde(default)]
    pub dr_health_check: Option<NonEmpty>,
    #[serde(default)]
    pub nameservers: Vec<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCloudflare {
    #[serde(default)]
    pub zone_id: Option<NonEmpty>,
    pub token: SecretField,
    #[serde(default)]
    pub account_id: Option<NonEmpty>,
    #[serde(default)]
    pub api_base: Option<NonEmpty>,
    #[serde(default)]
    pub nameservers: Vec<NonEmpty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRfc2136 {
    pub server: NonEmpty,
    #[serde(default)]
    pub zone: Option<NonEmpty>,
    #[serde(default)]
    pub nameservers: Vec<NonEmpty>,
    #[serde(default)]
    pub tsig_key_name: Option<NonEmpty>,
    #[serde(default)]
    pub tsig_algorithm: Option<NonEmpty>,
    #[serde(default)]
    pub tsig_secret: Option<SecretField>,
}

fn yes() -> Choice<bool> {
    Choice(Some(true))
}

fn no() -> Choice<bool> {
    Choice(Some(false))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    #[serde(default = "yes")]
    pub required: Choice<bool>,
    #[serde(default)]
    pub approvers: Vec<NonEmpty>,
    #[serde(default = "no")]
    pub drill_auto_approve: Choice<bool>,
}

impl Default for RawApproval {
    fn default() -> Self {
        Self { required: yes(), approvers: Vec::new(), drill_auto_approve: no() }
    }
}
