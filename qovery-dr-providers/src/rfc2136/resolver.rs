//! [`DnsAuthoritativeResolver`]: asks each authoritative server directly, for propagation checks.

use std::net::SocketAddr;
use std::time::Duration;

use qovery_dr_core::async_trait;
use qovery_dr_core::provider::AuthoritativeResolver;
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult};

use super::wire::{PROVIDER, Server, fqdn};

/// Queries a fixed list of authoritative servers directly (no recursion, no cache),
/// for [`verify_propagation`](qovery_dr_core::provider::verify_propagation).
///
/// Works with any authoritative DNS, including the ones behind Route53 and Cloudflare:
/// list the zone's NS addresses.
#[derive(Debug, Clone)]
pub struct DnsAuthoritativeResolver {
    servers: Vec<Server>,
}

impl DnsAuthoritativeResolver {
    /// A resolver asking these servers, each with `timeout` per query.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self { servers: servers.into_iter().map(|addr| Server { addr, timeout, signer: None }).collect() }
    }
}

#[async_trait]
impl AuthoritativeResolver for DnsAuthoritativeResolver {
    async fn nameservers(&self, _record: &DnsRecordId) -> ProviderResult<Vec<String>> {
        Ok(self.servers.iter().map(|s| s.addr.to_string()).collect())
    }

    async fn lookup(&self, server: &str, record: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
        let s = self.servers.iter().find(|s| s.addr.to_string() == server).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::InvalidInput,
                PROVIDER,
                "lookup",
                format!("{server} is not one of the listed servers"),
            )
        })?;
        let name = fqdn(record.as_str(), "lookup")?;
        Ok(s.address_records(&name, "lookup").await?.map(|served| served.target()))
    }
}
