//! [`DnsRouter`]: one [`DnsSwitcher`] over several, each record sent to the
//! provider (and zone) that serves it, so that a plan may mix Route53, Cloudflare
//! and a self-hosted server.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use super::dns::{ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, SwitchRequest, TargetHealth};
use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{ChangeId, DnsRecordId, DnsTarget};

const NAME: &str = "dns-router";

/// Routes each record (and its targets) to the switcher that serves it.
///
/// Change ids are prefixed with the route's index (`2:C123`), so a change is
/// tracked by the switcher that made it, also after a restart.
///
/// ```
/// use std::sync::Arc;
/// use qovery_dr_core::provider::{DnsRouter, DnsSwitcher};
/// # use qovery_dr_core::provider::{DnsCapabilities, DnsRecordState, SwitchRequest, ChangeStatus, TargetHealth};
/// # use qovery_dr_core::{async_trait, ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult};
/// # #[derive(Debug)] struct Zone(&'static str);
/// # #[async_trait] impl DnsSwitcher for Zone {
/// #   fn name(&self) -> &str { self.0 }
/// #   fn capabilities(&self) -> DnsCapabilities { DnsCapabilities::default().with_record_swap(true) }
/// #   async fn current(&self, r: &DnsRecordId) -> ProviderResult<DnsRecordState> { Err(ProviderError::new(ErrorKind::NotFound, self.0, "current", r.to_string())) }
/// #   async fn switch(&self, _: &SwitchRequest) -> ProviderResult<ChangeId> { Ok(ChangeId::new("c1")) }
/// #   async fn change_status(&self, _: &ChangeId) -> ProviderResult<ChangeStatus> { Ok(ChangeStatus::InSync) }
/// #   async fn target_health(&self, _: &DnsTarget) -> ProviderResult<TargetHealth> { Ok(TargetHealth::Unknown) }
/// # }
/// let router = DnsRouter::new()
///     .route("shop.example.com", ["203.0.113.10", "198.51.100.20"], Arc::new(Zone("route53")))
///     .route("api.example.net", ["192.0.2.1", "192.0.2.2"], Arc::new(Zone("cloudflare")));
/// assert_eq!(router.switcher_for(&"api.example.net".into()).unwrap().name(), "cloudflare");
/// assert!(router.switcher_for(&"other.example.org".into()).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct DnsRouter {
    switchers: Vec<Arc<dyn DnsSwitcher>>,
    records: BTreeMap<DnsRecordId, usize>,
    targets: BTreeMap<DnsTarget, usize>,
}

impl DnsRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `record` and its `targets` to `switcher`. Switchers given several
    /// records (the same `Arc`) are called as one.
    pub fn route<T: Into<DnsTarget>>(
        mut self,
        record: impl Into<DnsRecordId>,
        targets: impl IntoIterator<Item = T>,
        switcher: Arc<dyn DnsSwitcher>,
    ) -> Self {
        let index = match self.switchers.iter().position(|s| Arc::ptr_eq(s, &switcher)) {
            Some(i) => i,
            None => {
                self.switchers.push(switcher);
                self.switchers.len() - 1
            }
        };
        self.records.insert(record.into(), index);
        for t in targets {
            self.targets.insert(t.into(), index);
        }
        self
    }

    /// The switcher serving `record`; `NotFound` naming the routed records otherwise.
    pub fn switcher_for(&self, record: &DnsRecordId) -> ProviderResult<&Arc<dyn DnsSwitcher>> {
        self.records.get(record).and_then(|i| self.switchers.get(*i)).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                NAME,
                "route",
                format!(
                    "no DNS provider serves {record}; routed records: {}",
                    self.records.keys().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

#[async_trait]
impl DnsSwitcher for DnsRouter {
    fn name(&self) -> &str {
        NAME
    }

    /// What any of the routed switchers can do; [`capabilities_for`](DnsSwitcher::capabilities_for)
    /// answers per record.
    fn capabilities(&self) -> DnsCapabilities {
        self.switchers.iter().map(|s| s.capabilities()).fold(DnsCapabilities::default(), |a, c| DnsCapabilities {
            record_swap: a.record_swap || c.record_swap,
            failover_routing: a.failover_routing || c.failover_routing,
            weighted: a.weighted || c.weighted,
            load_balancer_pools: a.load_balancer_pools || c.load_balancer_pools,
            health_checks: a.health_checks || c.health_checks,
        })
    }

    fn capabilities_for(&self, record: &DnsRecordId) -> DnsCapabilities {
        self.switcher_for(record).map(|s| s.capabilities_for(record)).unwrap_or_default()
    }

    fn planes_for(&self, record: &DnsRecordId) -> crate::stability::Planes {
        match self.switcher_for(record) {
            Ok(s) => s.planes_for(record),
            Err(_) => crate::stability::Planes::undeclared(format!("{NAME} (no switcher for {record})")),
        }
    }

    async fn failover_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        self.switcher_for(record)?.failover_epoch(record).await
    }

    async fn publish_failover_epoch(
        &self,
        record: &DnsRecordId,
        epoch: &crate::model::FailoverEpoch,
    ) -> ProviderResult<ChangeId> {
        let index = self.records.get(record).copied();
        let change = self.switcher_for(record)?.publish_failover_epoch(record, epoch).await?;
        // Routed as a switch's change is, for change_status.
        Ok(ChangeId::new(format!("{}:{change}", index.unwrap_or_default())))
    }

    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        self.switcher_for(record)?.current(record).await
    }

    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        let index = self.records.get(&request.record).copied();
        let change = self.switcher_for(&request.record)?.switch(request).await?;
        Ok(ChangeId::new(format!("{}:{change}", index.unwrap_or_default())))
    }

    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
        let routed = change.as_str().split_once(':').and_then(|(i, inner)| Some((i.parse::<usize>().ok()?, inner)));
        let Some((switcher, inner)) = routed.and_then(|(i, inner)| Some((self.switchers.get(i)?, inner))) else {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                NAME,
                "change_status",
                format!("change {change} was not made through this router (expected ROUTE:ID)"),
            ));
        };
        switcher.change_status(&ChangeId::new(inner)).await
    }

    async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
        match self.targets.get(target).and_then(|i| self.switchers.get(*i)) {
            Some(s) => s.target_health(target).await,
            None => Ok(TargetHealth::Unknown),
        }
    }
}
