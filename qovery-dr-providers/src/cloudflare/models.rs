//! Typed Cloudflare API models: the envelope and DNS records.

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
