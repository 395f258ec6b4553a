//! Typed Cloudflare API models: the envelope, DNS records, load balancers and pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every Cloudflare v4 answer: `{success, errors, messages, result, result_info}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) success: bool,
    #[serde(default)]
    pub(crate) errors: Vec<ApiMessage>,
    pub(crate) result: Option<T>,
    #[serde(default)]
    pub(crate) result_info: Option<ResultInfo>,
}

/// One entry of `errors`/`messages`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApiMessage {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// Pagination of list answers.
#[derive(Debug, Deserialize)]
pub(crate) struct ResultInfo {
    #[serde(default)]
    pub(crate) page: u32,
    #[serde(default)]
    pub(crate) total_pages: u32,
}

/// A DNS record as Cloudflare returns it (the fields this crate uses).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DnsRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) record_type: String,
    pub(crate) content: String,
    #[serde(default)]
    pub(crate) ttl: u64,
}

/// The body of a DNS record PATCH. The name is sent unchanged: the schema requires it.
#[derive(Debug, Serialize)]
pub(crate) struct DnsRecordPatch<'a> {
    pub(crate) name: &'a str,
    #[serde(rename = "type")]
    pub(crate) record_type: &'a str,
    pub(crate) content: &'a str,
}

/// A zone load balancer (the fields this crate uses).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LoadBalancer {
    pub(crate) id: String,
    /// The DNS hostname it answers for.
    pub(crate) name: String,
    /// Pool ids in failover priority order.
    #[serde(default)]
    pub(crate) default_pools: Vec<String>,
    /// The pool used when every other pool is unhealthy.
    #[serde(default)]
    pub(crate) fallback_pool: Option<String>,
}

/// The body of a load balancer PATCH: only the pool order and the fallback change.
#[derive(Debug, Serialize)]
pub(crate) struct LoadBalancerPatch<'a> {
    pub(crate) default_pools: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fallback_pool: Option<&'a str>,
}

/// An account pool (the fields this crate uses).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Pool {
    pub(crate) id: String,
    /// Disabled pools receive no traffic; load balancers fail over to the next pool.
    #[serde(default = "enabled_by_default")]
    pub(crate) enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// The body of a pool PATCH.
#[derive(Debug, Serialize)]
pub(crate) struct PoolPatch {
    pub(crate) enabled: bool,
}

/// `GET .../pools/{id}/health`: the pool's health as seen from each Cloudflare PoP.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PoolHealth {
    #[serde(default)]
    pub(crate) pop_health: BTreeMap<String, PopHealth>,
}

/// One PoP's view of a pool.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PopHealth {
    #[serde(default)]
    pub(crate) healthy: bool,
}

/// Fuzzing entry: every answer the Cloudflare client decodes, from arbitrary bytes.
#[cfg(fuzzing)]
pub(crate) fn fuzz_envelopes(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Envelope<Vec<DnsRecord>>>(bytes);
    let _ = serde_json::from_slice::<Envelope<DnsRecord>>(bytes);
    let _ = serde_json::from_slice::<Envelope<Vec<LoadBalancer>>>(bytes);
    let _ = serde_json::from_slice::<Envelope<Pool>>(bytes);
    let _ = serde_json::from_slice::<Envelope<PoolHealth>>(bytes);
}
