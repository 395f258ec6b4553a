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

impl DnsAuthoritativeResolver {
    /// The zone's authoritative servers, discovered from its NS records: `server` (one
    /// authoritative server, e.g. the one taking updates) is asked for the zone's NS
    /// names, and each name's addresses come from `server` (glue, for names inside the
    /// zone), else from the system resolver. Every discovered address is asked on
    /// `server`'s port (53 in production). `NotFound` when the zone lists no reachable
    /// name server.
    pub async fn discover(server: SocketAddr, zone: &str, timeout: Duration) -> ProviderResult<Self> {
        const OP: &str = "discover";
        let asked = Server { addr: server, timeout, signer: None };
        let zone_name = fqdn(zone, OP)?;
        let names = asked.nameserver_names(&zone_name, OP).await?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut unresolved = Vec::new();
        for name in &names {
            // Glue for names inside the zone; a server refuses names it is not authoritative for.
            let glue = if zone_name.zone_of(name) { asked.addresses(name, OP).await? } else { Vec::new() };
            let mut found: Vec<SocketAddr> = glue.into_iter().map(|ip| SocketAddr::new(ip, server.port())).collect();
            if found.is_empty() {
                let host = name.to_utf8();
                found = tokio::net::lookup_host((host.trim_end_matches('.'), server.port()))
                    .await
                    .map(Iterator::collect)
                    .unwrap_or_default();
            }
            if found.is_empty() {
                unresolved.push(name.to_utf8());
            }
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        if addrs.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                OP,
                format!(
                    "{server} lists no reachable name server for {zone} (NS: {}; unresolved: {}): list them in the plan (nameservers = [\"ip:port\", ...])",
                    names.iter().map(hickory_proto::rr::Name::to_utf8).collect::<Vec<_>>().join(", "),
                    unresolved.join(", ")
                ),
            ));
        }
        Ok(Self::new(addrs, timeout))
    }
}

/// Discovers the zone's servers on first use (connect contacts nothing), then asks them.
#[derive(Debug)]
pub(crate) struct DiscoveringResolver {
    server: SocketAddr,
    zone: String,
    timeout: Duration,
    found: tokio::sync::OnceCell<DnsAuthoritativeResolver>,
}

impl DiscoveringResolver {
    /// Discovers from `server`'s NS records for `zone` when first asked.
    pub(crate) fn new(server: SocketAddr, zone: &str, timeout: Duration) -> Self {
        Self { server, zone: zone.to_owned(), timeout, found: tokio::sync::OnceCell::new() }
    }

    async fn resolver(&self) -> ProviderResult<&DnsAuthoritativeResolver> {
        self.found.get_or_try_init(|| DnsAuthoritativeResolver::discover(self.server, &self.zone, self.timeout)).await
    }
}

#[async_trait]
impl AuthoritativeResolver for DiscoveringResolver {
    async fn nameservers(&self, record: &DnsRecordId) -> ProviderResult<Vec<String>> {
        self.resolver().await?.nameservers(record).await
    }

    async fn lookup(&self, server: &str, record: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
        self.resolver().await?.lookup(server, record).await
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
