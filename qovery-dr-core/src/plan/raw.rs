//! The plan file format, as deserialised before validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fields::{HumanDuration, NonEmpty, Port, SecretField, TtlSeconds};
use crate::model::{ResilienceLevel, Tier};
use crate::provider::ReplicationMode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub name: NonEmpty,
    #[serde(default)]
    pub description: Option<String>,
    pub tier: Tier,
    pub resilience: ResilienceLevel,
    pub objectives: RawObjectives,
    pub replication: RawReplication,
    pub sites: RawSites,
    #[serde(default)]
    pub dns: Vec<RawDnsRecord>,
    #[serde(default)]
    pub approval: RawApproval,
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretField>,
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
    pub mode: ReplicationMode,
    #[serde(default)]
    pub dump_interval: Option<HumanDuration>,
    #[serde(default)]
    pub heartbeat_interval: Option<HumanDuration>,
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
    pub registry: RawRegistry,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    pub host: NonEmpty,
    #[serde(default)]
    pub prefix: Option<NonEmpty>,
    #[serde(default)]
    pub credentials: Option<SecretField>,
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
    pub strategy: RawStrategy,
    pub primary_target: NonEmpty,
    pub dr_target: NonEmpty,
    #[serde(default = "yes")]
    pub health_check: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub approvers: Vec<NonEmpty>,
    #[serde(default)]
    pub drill_auto_approve: bool,
}

impl Default for RawApproval {
    fn default() -> Self {
        Self { required: true, approvers: Vec::new(), drill_auto_approve: false }
    }
}
