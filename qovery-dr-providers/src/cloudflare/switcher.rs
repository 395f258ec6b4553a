//! [`CloudflareDnsSwitcher`]: guarded DNS record swaps.

use std::net::IpAddr;
use std::time::Duration;

use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, GuardDecision, SwitchRequest, SwitchStrategy,
    TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult, async_trait};
use reqwest::Method;

use super::client::{Client, PROVIDER};
use super::config::CloudflareConfig;
use super::load_balancer::LB_CHANGE_PREFIX;
use super::models::{DnsRecord, DnsRecordPatch};

/// A `DnsSwitcher` for Cloudflare DNS records (A, AAAA, CNAME; one record per name) and,
/// with [`CloudflareConfig::with_load_balancers`], load balancers (targets are pool ids; see the
/// [module docs](super)).
///
/// The API has no conditional write: the switcher reads, refuses a foreign value,
/// PATCHes, and re-reads to verify; a foreign value found on the re-read is a
/// `Conflict`. A foreign write that lands between the read and the PATCH is overwritten
/// and cannot be seen afterwards (the record's `modified_on` then shows the PATCH). Change ids are `cf:<record id>`. Cloudflare publishes no propagation
/// status: `change_status` is `InSync` once the API serves the record, which says nothing
/// of its name servers. List them in the plan (`[dns.cloudflare] nameservers`) and the
/// engine's DNS step asks each one until it answers the new target (or call
/// `verify_propagation` yourself); without them the step's output says it was not verified.
#[derive(Debug)]
pub struct CloudflareDnsSwitcher {
    pub(super) client: Client,
}

const CHANGE_PREFIX: &str = "cf:";

impl CloudflareDnsSwitcher {
    /// A switcher for the configured zone.
    pub fn new(config: CloudflareConfig) -> ProviderResult<Self> {
        Ok(Self { client: Client::new(config)? })
    }

    /// The single address record at `record`, following pagination.
    async fn record(&self, record: &DnsRecordId, operation: &str) -> ProviderResult<DnsRecord> {
        let path = format!("/zones/{}/dns_records", self.client.zone_id());
        let mut found: Vec<DnsRecord> = Vec::new();
        let mut page = 1u32;
        loop {
            let p = page.to_string();
            let (records, info): (Vec<DnsRecord>, _) = self
                .client
                .call(
                    Method::GET,
                    &path,
                    &[("name", record.as_str()), ("page", &p), ("per_page", "100")],
                    None::<&()>,
                    operation,
                    false,
                )
                .await?;
            found.extend(records.into_iter().filter(|r| {
                r.name.trim_end_matches('.').eq_ignore_ascii_case(record.as_str().trim_end_matches('.'))
                    && matches!(r.record_type.as_str(), "A" | "AAAA" | "CNAME")
            }));
            match info {
                Some(i) if i.page < i.total_pages => page = i.page + 1,
                _ => break,
            }
        }
        match found.len() {
            0 => Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                operation,
                format!("{record} has no A, AAAA or CNAME record in zone {}", self.client.zone_id()),
            )),
            1 => Ok(found.remove(0)),
            n => Err(ProviderError::new(
                ErrorKind::NotSupported,
                PROVIDER,
                operation,
                format!(
                    "{record} has {n} address records; a record swap needs exactly one (use a load balancer for several)"
                ),
            )),
        }
    }

    async fn by_id(&self, id: &str, operation: &str) -> ProviderResult<DnsRecord> {
        let path = format!("/zones/{}/dns_records/{id}", self.client.zone_id());
        Ok(self.client.call(Method::GET, &path, &[], None::<&()>, operation, false).await?.0)
    }
}

/// The record type a target needs.
fn record_type(target: &DnsTarget) -> ProviderResult<&'static str> {
    let t = target.as_str().trim();
    if t.is_empty() || t.contains(',') {
        return Err(ProviderError::new(
            ErrorKind::InvalidInput,
            PROVIDER,
            "switch",
            format!("target {target:?}: one address or one host name"),
        ));
    }
    Ok(match t.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => "A",
        Ok(IpAddr::V6(_)) => "AAAA",
        Err(_) => "CNAME",
    })
}

#[async_trait]
impl DnsSwitcher for CloudflareDnsSwitcher {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> DnsCapabilities {
        let lb = self.client.account_id().is_some();
        DnsCapabilities::default()
            .with_record_swap(true)
            .with_load_balancer_pools(lb)
            .with_health_checks(lb)
            .with_failover_routing(false)
            .with_weighted(false)
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        qovery_dr_core::stability::catalogue::cloudflare()
    }

    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        if let Some(lb) = self.load_balancer(record, "current").await? {
            return Ok(Self::lb_record_state(record, &lb));
        }
        let r = self.record(record, "current").await?;
        // TTL 1 means "automatic" (300 s) at Cloudflare.
        let ttl = Duration::from_secs(if r.ttl <= 1 { 300 } else { r.ttl });
        Ok(DnsRecordState::new(record.clone(), DnsTarget::new(r.content), ttl))
    }

    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        if request.strategy == SwitchStrategy::LoadBalancerPool && self.client.account_id().is_some() {
            let lb = self.load_balancer(&request.record, "switch").await?.ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::NotFound,
                    PROVIDER,
                    "switch",
                    format!("no load balancer answers for {} in zone {}", request.record, self.client.zone_id()),
                )
            })?;
            return self.lb_switch(request, lb).await;
        }
        request.require_strategy(PROVIDER, SwitchStrategy::RecordSwap)?;
        let new_type = record_type(&request.new_target)?;
        let r = self.record(&request.record, "switch").await?;
        let change = ChangeId::new(format!("{CHANGE_PREFIX}{}", r.id));
        if request.guard(PROVIDER, &DnsTarget::new(r.content.as_str()))? == GuardDecision::AlreadySwitched {
            return Ok(change);
        }
        let path = format!("/zones/{}/dns_records/{}", self.client.zone_id(), r.id);
        let patch = DnsRecordPatch { name: &r.name, record_type: new_type, content: request.new_target.as_str() };
        let _: (DnsRecord, _) = self.client.call(Method::PATCH, &path, &[], Some(&patch), "switch", true).await?;
        // Re-verify: another writer may have raced us between the read and the PATCH.
        let after = self.by_id(&r.id, "switch").await?;
        if after.content != request.new_target.as_str() {
            return Err(request.conflict(PROVIDER, &DnsTarget::new(after.content)));
        }
        tracing::info!(record = %request.record, from = %r.content, to = %request.new_target, "cloudflare record swapped");
        Ok(change)
    }

    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
        if let Some(lb) = change.as_str().strip_prefix(LB_CHANGE_PREFIX)
            && !lb.is_empty()
            && lb.len() <= 64
            && lb.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            self.lb_change_exists(lb).await?;
            return Ok(ChangeStatus::InSync);
        }
        let id = change
            .as_str()
            .strip_prefix(CHANGE_PREFIX)
            .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let Some(id) = id else {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                "change_status",
                format!("{change} is not a change made by this switcher (cf:<record id>)"),
            ));
        };
        self.by_id(id, "change_status").await?;
        Ok(ChangeStatus::InSync)
    }

    async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
        self.lb_target_health(target).await
    }
}
